"""What the notifier remembers, rebuilt from the bus at start (no database of its own).

- :class:`DeliveryRecord`: which ``(alert_id, channel_id)`` pairs are settled (delivered or
  given up), from the ``deliveries`` topic. It is what turns at-least-once reading of
  ``alerts`` into at-most-once paging: a replayed alert finds its pair and is skipped.
- :func:`channels_view`: the current channel configs, from the compacted ``channels`` topic.
"""

from __future__ import annotations

import asyncio

import structlog

from services.notifier.logic import DeliveryKey
from shared.bus import Bus, Consumer, Record
from shared.bus.view import ConfigView, decode_as, drain
from shared.events import ChannelConfig, Delivery, encode
from shared.topics import Topics

log = structlog.get_logger()



class DeliveryRecord:
    def __init__(self, bus: Bus, topics: Topics):
        self._bus = bus
        self._topics = topics
        self._settled: set[DeliveryKey] = set()
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
        delivery = decode_as(record, Delivery, "notifier.delivery.poison")
        if delivery is not None:
            self._settled.add((delivery.alert_id, delivery.channel_id))

    def __contains__(self, key: object) -> bool:
        return key in self._settled

    def __len__(self) -> int:
        return len(self._settled)

    async def record(self, delivery: Delivery) -> None:
        """Publish ``delivery`` (durable on return) and remember it. Raises BusUnavailable."""
        await self._bus.publish(self._topics.deliveries, delivery.monitor_id, encode(delivery))
        self._settled.add((delivery.alert_id, delivery.channel_id))

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None


def channels_view(bus: Bus, topics: Topics, poll_timeout_ms: int = 1000) -> ConfigView[ChannelConfig]:
    """channel id -> live :class:`ChannelConfig`; deleted channels are absent."""
    return ConfigView(bus, topics.channels, ChannelConfig, lambda c: c.updated_ms, poll_timeout_ms=poll_timeout_ms)
