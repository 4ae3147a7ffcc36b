"""The timer wheel: which monitors need looking at when, in one-second slots.

A tick looks only at the slots that came due, not at every monitor; a monitor costs one list
entry, and pings that only move its deadline later queue nothing new (the entry it has comes
due first, and is queued again for the later time then).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from shared.snapshots import MonitorState


class TimerWheel:
    __slots__ = ("_slot_keys", "_wheel", "slots")

    def __init__(self) -> None:
        self._wheel: dict[int, list[str]] = {}
        """slot (epoch second) -> ids of the monitors queued in it."""
        self.slots: list[int] = []
        """A heap of the slots in use: ``slots[0]`` is the earliest (read it, never change it)."""
        self._slot_keys: dict[int, int] = {}
        """One int object per slot, shared by every monitor's ``queued_slot``."""

    def queue(self, state: MonitorState, due_ms: int) -> None:
        """Look at ``state`` again at ``due_ms`` (unless an entry at least as early is queued)."""
        slot = due_ms // 1000
        if state.queued_slot is not None and state.queued_slot <= slot:
            return  # an entry at least as early is queued; it re-queues when it comes due
        bucket = self._wheel.get(slot)
        if bucket is None:
            bucket = self._wheel[slot] = []
            heapq.heappush(self.slots, slot)
            self._slot_keys[slot] = slot
        bucket.append(state.monitor_id)
        state.queued_slot = self._slot_keys[slot]  # one int object per slot, not per monitor

    def pop_due(self, now_ms: int) -> Iterator[tuple[int, list[str]]]:
        """Take the slots that came due by ``now_ms``, oldest first: ``(slot, monitor ids)``.
        An id may be stale (deleted, or queued again earlier meanwhile): its monitor's
        ``queued_slot`` then differs from the slot."""
        slots, now_slot = self.slots, now_ms // 1000
        while slots and slots[0] <= now_slot:
            slot = heapq.heappop(slots)
            self._slot_keys.pop(slot, None)
            yield slot, self._wheel.pop(slot)

    def due_count(self, now_ms: int) -> int:
        """Entries queued in slots that have come due."""
        return sum(len(self._wheel[s]) for s in self.slots if s <= now_ms // 1000)

    def buckets(self) -> dict[int, list[str]]:
        """slot -> monitor ids queued in it (for measurement: the benchmark weighs these)."""
        return self._wheel
