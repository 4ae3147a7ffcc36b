"""Which offsets the notifier may commit while alerts finish out of order.

Alerts of different monitors finish in any order (one may be retrying for a minute while
others are delivered), but a committed offset promises that *everything before it* is
settled. So per partition the committable offset is the lowest one still in flight, or
one past the highest seen when nothing is.
"""

from __future__ import annotations

from shared.bus import TopicPartition


class OffsetTracker:
    def __init__(self) -> None:
        self._in_flight: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def started(self, tp: TopicPartition, offset: int) -> None:
        self._in_flight.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def settled(self, tp: TopicPartition, offset: int) -> None:
        """The record at ``offset`` is done with: delivered, given up, skipped or poison."""
        self._in_flight.get(tp, set()).discard(offset)

    @property
    def in_flight(self) -> int:
        return sum(len(offsets) for offsets in self._in_flight.values())

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets (next to read) that moved since the last :meth:`mark_committed`."""
        ready = {}
        for tp, next_offset in self._next.items():
            pending = self._in_flight.get(tp)
            offset = min(pending) if pending else next_offset
            if offset != self._committed.get(tp):
                ready[tp] = offset
        return ready

    def mark_committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop revoked partitions: their next owner resumes from the committed offsets."""
        for tp in partitions:
            self._in_flight.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
