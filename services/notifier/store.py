"""What the notifier remembers, rebuilt from the bus at start (no database of its own).

- :class:`DeliveryRecord`: which ``(alert_id, channel_id)`` pairs are settled (delivered or
  given up), from the ``deliveries`` topic. It is what turns at-least-once reading of
  ``alerts`` into at-most-once paging: a replayed alert finds its pair and is skipped.
- :class:`ChannelsView`: the current channel configs, from the compacted ``channels`` topic,
  kept fresh by a background task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping

import msgspec
import structlog

from services.notifier.logic import DeliveryKey
from shared.bus import Bus, Consumer, Record
from shared.events import ChannelConfig, Delivery, decode, encode
from shared.topics import Topics

log = structlog.get_logger()

_VIEW_BATCH = 1000


async def _read_to_end(consumer: Consumer, apply: Callable[[Record], None]) -> None:
    while not await consumer.caught_up():
        for record in await consumer.poll(max_records=_VIEW_BATCH, timeout_ms=100):
            apply(record)


def _decode_as(record: Record, expected: type, poison_event: str):
    try:
        event = decode(record.value)
    except msgspec.DecodeError as exc:
        event, error = None, str(exc)
    else:
        error = f"unexpected event type {type(event).__name__}"
    if isinstance(event, expected):
        return event
    log.warning(poison_event, topic=record.topic, partition=record.partition, offset=record.offset, error=error)
    return None


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
            await _read_to_end(self._consumer, self._apply)

    def _apply(self, record: Record) -> None:
        delivery = _decode_as(record, Delivery, "notifier.delivery.poison")
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


class ChannelsView(Mapping[str, ChannelConfig]):
    """channel id -> live :class:`ChannelConfig`; deleted channels are absent."""

    def __init__(self, bus: Bus, topics: Topics, poll_timeout_ms: int = 1000):
        self._bus = bus
        self._topics = topics
        self._poll_timeout_ms = poll_timeout_ms
        self._channels: dict[str, ChannelConfig] = {}
        self._consumer: Consumer | None = None
        self._follower: asyncio.Task | None = None
        self._advanced = asyncio.Condition()

    async def start(self) -> None:
        self._consumer = self._bus.consumer([self._topics.channels])  # a view: no group
        await self._consumer.start()
        await _read_to_end(self._consumer, self._apply)
        self._follower = asyncio.create_task(self._follow(), name="notifier.channels.follow")

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                records = await self._consumer.poll(max_records=_VIEW_BATCH, timeout_ms=self._poll_timeout_ms)
            except Exception as exc:  # a bus hiccup must not leave the view frozen for good
                log.warning("notifier.channels.poll_failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            for record in records:
                self._apply(record)
            async with self._advanced:
                self._advanced.notify_all()

    def _apply(self, record: Record) -> None:
        channel = _decode_as(record, ChannelConfig, "notifier.channel.poison")
        if channel is None:
            return
        if channel.deleted:
            self._channels.pop(channel.id, None)
        else:
            self._channels[channel.id] = channel

    async def catch_up(self, timeout_s: float = 5.0) -> None:
        """Wait until the view has read everything published before this call.

        Used when an alert names a channel the view does not know yet: it may have been
        created a moment ago, and dropping the page for that would be wrong.
        """
        consumer = self._consumer
        assert consumer is not None, "start() first"
        ends = await consumer.end_offsets(consumer.assignment())

        def reached() -> bool:
            return all(consumer.position(tp) >= end for tp, end in ends.items())

        async with self._advanced:
            try:
                await asyncio.wait_for(self._advanced.wait_for(reached), timeout_s)
            except TimeoutError:
                log.warning("notifier.channels.catch_up_timed_out", timeout_s=timeout_s)

    def __getitem__(self, channel_id: str) -> ChannelConfig:
        return self._channels[channel_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.wait([self._follower])
            self._follower = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
