"""The event bus: one small interface, two implementations (embedded SQLite log, Kafka).

Semantics both keep:
- records of one partition are read in the order they were appended; a key always
  maps to the same partition (:func:`partition_for`), so each key is ordered;
- ``publish`` returns only once the record is durable (fsynced / acked by the broker);
- a consumer group's offsets move only when the consumer commits them, after its work
  succeeded; the committed offset is the *next* offset to read;
- compacted topics keep at least the newest record of every key.
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from shared.errors import PinguraError

if TYPE_CHECKING:
    from shared.metrics import Metrics


class BusUnavailable(PinguraError):
    """The bus cannot take or serve records right now; the caller should retry later."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None


class Record(msgspec.Struct, frozen=True, gc=False):
    """One record as read. A struct made in C and left out of the cyclic GC (its fields are
    a record's strings, ints and bytes: nothing that can form a cycle). The embedded bus keeps
    the newest tens of thousands of every partition in memory; as GC-tracked objects they made
    each full collection walk 300,000 of them, 100-250 ms with everything stopped, the longest
    waits a ping met (measured at a million heartbeats)."""

    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    timestamp_ms: int


TopicPartition = tuple[str, int]
PartitionsCallback = Callable[[set[TopicPartition]], Awaitable[None]]


def partition_for(key: str, partitions: int) -> int:
    """Stable key -> partition mapping shared by every producer, so topics keyed alike
    are co-partitioned (a monitor's pings, config and alerts share a partition number)."""
    return zlib.crc32(key.encode()) % partitions


class Consumer(abc.ABC):
    """Reads a set of topics. With a ``group`` it resumes from committed offsets and shares
    partitions with other members of the group; without one it reads every partition
    from the beginning and commits nothing (a *view*)."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def poll(self, max_records: int = 1000, timeout_ms: int = 1000) -> list[Record]:
        """Up to ``max_records`` records; those of one partition come in offset order."""

    @abc.abstractmethod
    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Store ``offsets`` (next offset to read) for the group."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]: ...

    @abc.abstractmethod
    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]: ...

    @abc.abstractmethod
    async def position(self, tp: TopicPartition) -> int:
        """The next offset this consumer will return for ``tp``."""

    @abc.abstractmethod
    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` on (an assigned partition)."""

    async def reached(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self.position(tp) < end:
                return False
        return True

    def lags(self) -> dict[TopicPartition, int]:
        """Records appended but not read yet, per assigned partition, as far as this consumer
        knows without asking anyone (for ``/metrics``; sync and cheap)."""
        return {}

    async def caught_up(self) -> bool:
        """True when every assigned partition has been read to its end."""
        return await self.reached(await self.end_offsets(self.assignment()))


class PositionedConsumer(Consumer):
    """A consumer that keeps each partition's position itself (the embedded bus's readers)."""

    _positions: dict[TopicPartition, int]

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    async def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._positions[tp] = offset


class Bus(abc.ABC):
    kind = "local"
    """The ``bus`` label of its metrics."""
    metrics: Metrics | None = None
    # A bound loop histogram series (metrics/onloop.py): one publish, until durable.
    _append_seconds: Any = None

    def use_metrics(self, metrics: Metrics) -> None:
        """Record into ``metrics`` (publish latency; lag of its group consumers). Before start."""
        self.metrics = metrics
        self._append_seconds = metrics.bus_append(self.kind)

    def _watch(self, group: str | None, consumer: Consumer) -> Consumer:
        if group is not None and self.metrics is not None:
            self.metrics.watch_consumer(group, consumer)
        return consumer

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None: ...

    @abc.abstractmethod
    def partitions(self, topic: str) -> int: ...

    @abc.abstractmethod
    async def publish(self, topic: str, key: str, value: bytes, partition: int | None = None) -> int:
        """Append one record; returns its offset once it is durable. Raises BusUnavailable."""

    @abc.abstractmethod
    async def publish_many(
        self, topic: str, items: list[tuple[str, bytes]], partition: int | None = None
    ) -> None:
        """Append several records (each to its key's partition, or all to ``partition``) as one
        batch; returns once all are durable. Internal producers (evaluator outputs, snapshots)
        use this."""

    @abc.abstractmethod
    def reader(self, partitions: list[TopicPartition]) -> Consumer:
        """A consumer of exactly ``partitions``, from their beginning, with no group
        (to rebuild a view of a compacted topic, or the partitions an instance owns)."""

    @abc.abstractmethod
    def consumer(
        self,
        topics: list[str],
        group: str | None = None,
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> Consumer: ...
