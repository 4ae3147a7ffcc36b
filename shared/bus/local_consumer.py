"""A consumer of the embedded bus: one process owns the log, so it is assigned every
partition. It reads through :class:`~shared.bus.local.LocalBus` (its tail in memory, else
the file), starts where Kafka's ``auto_offset_reset=earliest`` would, and waits for appends
on an event the bus sets rather than polling the file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import structlog

from shared.bus.base import PartitionsCallback, PositionedConsumer, Record, TopicPartition

if TYPE_CHECKING:
    from shared.bus.local import LocalBus

log = structlog.get_logger()


class LocalConsumer(PositionedConsumer):
    """One process owns the embedded bus, so a consumer is assigned every partition."""

    def __init__(
        self,
        bus: LocalBus,
        topics: Iterable[str],
        group: str | None,
        on_assign: PartitionsCallback | None,
        on_revoke: PartitionsCallback | None,
        fixed: list[TopicPartition] | None = None,
    ):
        self._fixed = fixed
        self._bus = bus
        self._topics = topics
        self._group = group
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._positions: dict[TopicPartition, int] = {}
        self._appended: asyncio.Event | None = None
        self._drained = False
        """The last look found nothing: until the bus appends to these topics (``_appended``)
        or a position moves, a poll that would not wait has nothing to find. The evaluator
        looks at two such readers before each batch of pings."""

    async def start(self) -> None:
        self._drained = False
        tps = self._fixed or [(t, p) for t in self._topics for p in range(self._bus.partitions(t))]
        for tp in tps:
            committed = await self._bus.committed(self._group, tp) if self._group else None
            self._positions[tp] = await self._starting_position(tp, committed)
        if self._on_assign is not None:
            await self._on_assign(set(self._positions))

    async def _starting_position(self, tp: TopicPartition, committed: int | None) -> int:
        """Where to start reading ``tp``: Kafka's ``auto_offset_reset=earliest``, spelled out.

        Without a committed offset (a view, or a group's first start): the oldest record
        still stored, or the end when retention removed them all. A committed offset below
        that: the oldest stored (what was removed is gone). One beyond the end cannot come
        from this bus's own reads; it is trusted no further than the end, because starting
        past it would skip the records about to be appended there."""
        first = await self._bus.first_offset(tp)
        if committed is None:
            return first
        end = self._bus.end_offset(tp)
        topic, partition = tp
        if committed > end:
            log.warning(
                "bus.local.committed_beyond_end",
                group=self._group,
                topic=topic,
                partition=partition,
                committed=committed,
                end=end,
            )
            return end
        if committed < first:
            if not self._bus.is_compacted(topic):  # compaction removes superseded records only
                log.warning(
                    "bus.local.records_expired_unread",
                    group=self._group,
                    topic=topic,
                    partition=partition,
                    committed=committed,
                    first=first,
                )
            return first
        return committed

    async def close(self) -> None:
        if self._appended is not None:
            self._bus.unwatch(self._appended)
            self._appended = None
        if self._on_revoke is not None and self._positions:
            await self._on_revoke(set(self._positions))
        self._positions = {}

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._bus.end_offset(tp) for tp in partitions}

    def lags(self) -> dict[TopicPartition, int]:
        return {tp: max(0, self._bus.end_offset(tp) - pos) for tp, pos in list(self._positions.items())}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._drained = False
        super().seek(tp, offset)

    async def poll(self, max_records: int = 1000, timeout_ms: int = 1000) -> list[Record]:
        if timeout_ms <= 0 and self._drained and self._appended is not None and not self._appended.is_set():
            return []
        deadline = time.monotonic() + timeout_ms / 1000
        if self._appended is None:
            self._appended = asyncio.Event()
            self._bus.watch({topic for topic, _ in self._positions}, self._appended)
        while True:
            self._appended.clear()  # before looking: an append after the look still wakes us
            records: list[Record] = []
            for tp, pos in self._positions.items():
                end = self._bus.end_offset(tp)  # before the read: all below it is on disk
                if pos >= end or len(records) >= max_records:
                    continue
                batch = await self._bus.read(tp, pos, max_records - len(records))
                if batch:
                    self._positions[tp] = batch[-1].offset + 1
                    records.extend(batch)
                else:
                    # Compaction or retention removed everything from ``pos`` to ``end``.
                    # Not the end read now: records appended during the read are still to come.
                    self._positions[tp] = end
            self._drained = not records
            if records:
                return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event fires, and a follower's close() would then hang for good.
            try:
                async with asyncio.timeout(remaining):
                    await self._appended.wait()
            except TimeoutError:
                pass

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self._group is None:
            raise RuntimeError("a consumer without a group cannot commit")
        await self._bus.commit(self._group, offsets)
