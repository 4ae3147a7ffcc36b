"""The ticker on the real embedded bus: it writes the clock into every partition, and
closing it lets a tick on its way to the bus land before the bus closes."""

from __future__ import annotations

import asyncio

from services.evaluator.ticker import Ticker
from shared.bus.local import LocalBus
from shared.events import Tick, decode
from shared.settings import Settings
from shared.topics import Topics
from tests.polling import eventually

TOPICS = Topics()


class HeldPublishes:
    """The real bus, with each publish held until the test lets it go (to catch a tick in
    flight at the moment the ticker closes)."""

    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus
        self.waiting = asyncio.Event()
        self.go = asyncio.Event()

    def partitions(self, topic: str) -> int:
        return self.bus.partitions(topic)

    async def publish(self, *args, **kwargs) -> int:
        self.waiting.set()
        await self.go.wait()
        return await self.bus.publish(*args, **kwargs)


async def ticks_on(bus: LocalBus) -> list[Tick]:
    reader = bus.reader([(TOPICS.pings, p) for p in range(bus.partitions(TOPICS.pings))])
    await reader.start()
    records = await reader.poll(timeout_ms=50)
    await reader.close()
    return [e for e in (decode(r.value) for r in records) if isinstance(e, Tick)]


async def test_it_lets_a_tick_in_flight_land_before_it_closes(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(2))
    held = HeldPublishes(bus)
    ticker = Ticker(Settings(tick_interval_ms=20), held, TOPICS)  # type: ignore[arg-type]  # the real bus, wrapped
    await ticker.start()
    await asyncio.wait_for(held.waiting.wait(), 5)
    closing = asyncio.create_task(ticker.close())
    await asyncio.sleep(0)  # close has begun and is waiting on the tick, not on the bus
    assert not closing.done()
    held.go.set()
    await asyncio.wait_for(closing, 5)
    ticks = await eventually(lambda: ticks_on(bus))
    assert len(ticks) == 2  # the tick in flight, into each partition, and none after the close
    await bus.close()
