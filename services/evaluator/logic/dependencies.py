"""Dependencies: which heartbeats are down, in every partition, as relayed through the log.

A heartbeat that goes down (or comes back) is told to every partition of ``pings`` as a
:class:`~shared.events.StatusRelayed` (key ``""``), its own partition included. Each partition
keeps the heartbeats down here, so a dependent, wherever it lives, decides by the relays in its
own log's order: a replay reads the same relays at the same places and decides the same.
"""

from __future__ import annotations

import sys

from shared.events import StatusRelayed
from shared.snapshots import DownElsewhere, MonitorState, Rules

MAX_LISTED = 20
"""Dependents an alert names (it says how many there are in all)."""


class Downs:
    """The heartbeats down, of every partition, by id and by (project, tag)."""

    __slots__ = ("_by_holder", "_by_id", "_by_tag", "dirty")

    def __init__(self) -> None:
        self._by_id: dict[str, DownElsewhere] = {}
        self._by_tag: dict[tuple[str, str], set[str]] = {}
        self._by_holder: dict[str, set[str]] = {}
        """dependency id -> ids of the down heartbeats it holds."""
        self.dirty: set[str] = set()
        """Ids whose entry changed (came, went, moved) since their last ``DownSnapshot``: a
        checkpoint writes those, not the whole set (tens of thousands may be down)."""

    def apply(self, relay: StatusRelayed) -> DownElsewhere | None:
        """Take a relay; returns what it replaced or added (None: nothing changed)."""
        known = self._by_id.get(relay.monitor_id)
        if known is not None and (relay.incident, relay.at_ms) < (known.incident, known.at_ms):
            return None  # an older copy, written again by a replay
        if not relay.down:
            if known is None:
                return None
            self._remove(known)
            self.dirty.add(known.monitor_id)
            return known
        entry = DownElsewhere(
            monitor_id=sys.intern(relay.monitor_id), project_id=sys.intern(relay.project_id),
            name=relay.name, tags=tuple(relay.tags), at_ms=relay.at_ms, held_by=tuple(relay.held_by),
            incident=relay.incident,
        )  # fmt: skip
        if entry == known:
            return None
        if known is not None:
            self._remove(known)
        self._add(entry)
        self.dirty.add(entry.monitor_id)
        return entry

    def _add(self, entry: DownElsewhere) -> None:
        self._by_id[entry.monitor_id] = entry
        for tag in entry.tags:
            self._by_tag.setdefault((entry.project_id, tag), set()).add(entry.monitor_id)
        for holder in entry.held_by:
            self._by_holder.setdefault(holder, set()).add(entry.monitor_id)

    def _remove(self, entry: DownElsewhere) -> None:
        del self._by_id[entry.monitor_id]
        for tag in entry.tags:
            ids = self._by_tag.get((entry.project_id, tag))
            if ids is not None:
                ids.discard(entry.monitor_id)
                if not ids:
                    del self._by_tag[(entry.project_id, tag)]
        for holder in entry.held_by:
            held = self._by_holder.get(holder)
            if held is not None:
                held.discard(entry.monitor_id)
                if not held:
                    del self._by_holder[holder]

    def holding(self, state: MonitorState, rules: Rules) -> list[DownElsewhere]:
        """The dependencies of ``state`` that are down (itself never counts)."""
        found = [
            entry
            for monitor_id in rules.depends_on
            if monitor_id != state.monitor_id
            and (entry := self._by_id.get(monitor_id)) is not None
            and entry.project_id == state.project_id
        ]
        for tag in rules.depends_on_tags:
            for monitor_id in sorted(self._by_tag.get((state.project_id, tag), ())):
                entry = self._by_id[monitor_id]
                if monitor_id != state.monitor_id and entry not in found:
                    found.append(entry)
        return found

    def dependents_held(self, monitor_id: str) -> list[DownElsewhere]:
        """The heartbeats down whose alerts are held because ``monitor_id`` is down."""
        entries = (self._by_id[held] for held in self._by_holder.get(monitor_id, ()))
        return sorted(entries, key=lambda e: (e.name, e.monitor_id))

    def snapshot(self) -> tuple[DownElsewhere, ...]:
        return tuple(self._by_id.values())

    def changes(self) -> list[tuple[str, DownElsewhere | None]]:
        """``(id, entry)`` of each id changed since it was last saved; entry None: not down."""
        return [(monitor_id, self._by_id.get(monitor_id)) for monitor_id in self.dirty]

    def saved(self, monitor_ids: list[str]) -> None:
        self.dirty.difference_update(monitor_ids)
        if not self.dirty:
            self.dirty = set()  # an emptied set keeps its table: a million downs cleared at once

    def restore(self, entries: tuple[DownElsewhere, ...]) -> None:
        """The whole set, from an older evaluator's partition snapshot: each is written as a
        record of its own at the next checkpoint, so nothing depends on that snapshot after."""
        self._by_id.clear()
        self._by_tag.clear()
        self._by_holder.clear()
        for entry in entries:
            self._add(entry)
        self.dirty = set(self._by_id)

    def restore_one(self, monitor_id: str, entry: DownElsewhere | None) -> None:
        """One heartbeat's record (``DownSnapshot``), read back in log order."""
        known = self._by_id.get(monitor_id)
        if known is not None:
            self._remove(known)
        if entry is not None:
            self._add(entry)
        self.dirty.discard(monitor_id)

    def __len__(self) -> int:
        return len(self._by_id)
