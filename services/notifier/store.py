"""What the notifier remembers, rebuilt from the bus at start (no database of its own).

- :class:`DeliveryRecord`: which ``(alert_id, channel_id)`` pairs are settled (delivered or
  given up), and where each pair still being retried stands (tries made, first try, next
  try due), from the ``deliveries`` topic. It is what turns at-least-once reading of
  ``alerts`` into at-most-once paging: a replayed alert finds its pair and is skipped, and
  an alert read again after a restart resumes its retries where they were.
- :func:`channels_view`: the current channel configs, from the compacted ``channels`` topic.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from services.notifier.logic import DeliveryKey
from shared.bus import Bus, Consumer, Record
from shared.bus.view import ConfigView, decode_as, drain
from shared.events import ChannelConfig, Delivery, DeliveryAttempt, encode
from shared.topics import Topics

log = structlog.get_logger()


@dataclass(frozen=True)
class PendingRetry:
    """A pair whose last try failed and will be tried again."""

    attempt: int
    """Tries made so far."""
    first_attempt_ms: int
    next_attempt_ms: int


class DeliveryRecord:
    def __init__(self, bus: Bus, topics: Topics):
        self._bus = bus
        self._topics = topics
        self._settled: set[DeliveryKey] = set()
        self._pending: dict[DeliveryKey, PendingRetry] = {}
        self._consumer: Consumer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._consumer = self._bus.consumer([self._topics.deliveries])  # a view: no group
        await self._consumer.start()
        await self.catch_up()

    async def catch_up(self) -> None:
        """Read what other notifier instances recorded since; call when taking over partitions."""
        assert self._consumer is not None, "start() first"
        async with self._lock:
            await drain(self._consumer, self._apply)

    def _apply(self, record: Record) -> None:
        event = decode_as(record, (Delivery, DeliveryAttempt), "notifier.delivery.poison")
        if event is not None:
            self._remember(event)

    def _remember(self, event: Delivery | DeliveryAttempt) -> None:
        key = (event.alert_id, event.channel_id)
        if isinstance(event, Delivery) or event.outcome != "retrying":
            self._settled.add(key)
            self._pending.pop(key, None)
        elif key not in self._settled and event.next_attempt_ms is not None:
            known = self._pending.get(key)
            if known is None or event.attempt > known.attempt:
                self._pending[key] = PendingRetry(
                    event.attempt, event.first_attempt_ms, event.next_attempt_ms
                )

    def pending(self, key: DeliveryKey) -> PendingRetry | None:
        """Where a pair being retried stands, or None (never tried, or settled)."""
        return self._pending.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._settled

    def __len__(self) -> int:
        return len(self._settled)

    async def record(self, event: DeliveryAttempt | Delivery) -> None:
        """Publish ``event`` (durable on return) and remember it. Raises BusUnavailable."""
        await self._bus.publish(self._topics.deliveries, event.monitor_id, encode(event))
        self._remember(event)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None


def channels_view(bus: Bus, topics: Topics, poll_timeout_ms: int = 1000) -> ConfigView[ChannelConfig]:
    """channel id -> live :class:`ChannelConfig`; deleted channels are absent."""
    return ConfigView(
        bus, topics.channels, ChannelConfig, lambda c: c.updated_ms, poll_timeout_ms=poll_timeout_ms
    )
