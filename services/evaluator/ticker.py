"""The ticker: writes the event-time clock into every ``pings`` partition.

APScheduler runs it once per ``tick_interval_ms``. Several tickers (one per evaluator
instance) are harmless: the clock only moves forward, so a duplicate tick is a no-op.
"""

from __future__ import annotations

import asyncio

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from services.evaluator.consumer import publish_ticks
from shared.bus import Bus, BusUnavailable
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

CLOSE_WAIT_S = 5.0
"""How long closing waits for a tick in flight (a durable append takes milliseconds)."""


class Ticker:
    def __init__(self, settings: Settings, bus: Bus, topics: Topics):
        self._bus = bus
        self._topics = topics
        self._interval_s = settings.tick_interval_ms / 1000
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._in_flight: asyncio.Task | None = None

    async def _tick(self) -> None:
        self._in_flight = asyncio.current_task()
        try:
            await publish_ticks(self._bus, self._topics)
        except BusUnavailable as exc:
            # No tick means the clock stands still: late detection, never a false miss.
            log.warning("evaluator.tick.failed", error=str(exc))
        finally:
            self._in_flight = None

    async def start(self) -> None:
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self._interval_s,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler.start()

    async def close(self) -> None:
        """Stop ticking, letting a tick on its way to the bus land first: shutting the scheduler
        down cancels a job in flight, which then ends with a traceback in the log."""
        self._scheduler.pause()  # no new tick from here on
        tick = self._in_flight
        if tick is not None and not tick.done():
            await asyncio.wait({tick}, timeout=CLOSE_WAIT_S)
        self._scheduler.shutdown(wait=False)
