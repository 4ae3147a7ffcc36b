"""The heartbeat list of every project, kept sorted and filtered as the views change.

A list request costs in proportion to the page it returns, not to the project or the
installation: each project keeps its monitors in sorted lists (by name, case-insensitive
then id; and by creation time then id), once for all of them, once per status and once
per tag, plus a counter per status. They are updated one monitor at a time when the
monitors view or the status view changes, so a 100,000-heartbeat project answers a page
with a bisection and ``limit`` steps.

The name filter ``q`` is the one that scans: from the cursor, in sort order, handing the
loop back every :data:`SCAN_STEP` entries and stopping once the page is full.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
from sortedcontainers import SortedList

from services.query.status_view import CurrentStatus, StatusView, notify_all, shown_status
from shared.bus.view import ConfigView
from shared.events import MonitorConfig

STATUSES = ("up", "down", "late", "new", "paused", "running")
"""What ``status=`` accepts and ``counts`` reports. ``running``: a run began (``/start``)
and has not ended yet."""
SORTS = ("name", "created")
SCAN_STEP = 2000
"""Entries a filtered scan looks at between two yields to the event loop (~1 ms)."""

T = TypeVar("T")
ConfigListener = Callable[[str, "T | None", "T | None"], None]


class WatchedConfigView(ConfigView[T], Generic[T]):
    """A :class:`ConfigView` that tells listeners of each change, ``(id, before, after)``
    (``after`` is None once deleted), whether it came from the topic or from ``put``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._listeners: list[ConfigListener] = []

    def listen(self, listener: ConfigListener) -> None:
        self._listeners.append(listener)

    def put(self, event: T) -> None:
        key = event.id  # type: ignore[attr-defined]
        before = self.get(key)
        super().put(event)
        after = self.get(key)
        if after is not before:
            notify_all(self._listeners, key, before, after)



class _Entry:
    __slots__ = ("monitor", "status", "name_key", "created_key")

    def __init__(self, monitor: MonitorConfig, status: str):
        self.monitor = monitor
        self.status = status
        self.name_key = (monitor.name.casefold(), monitor.id)
        self.created_key = (monitor.created_ms, monitor.id)


class _Index:
    """One set of monitors in both sort orders."""

    __slots__ = ("name", "created")

    def __init__(self, entries: list[_Entry] = ()):  # type: ignore[assignment]
        self.name = SortedList(e.name_key for e in entries)  # one sort, not one insert each
        self.created = SortedList(e.created_key for e in entries)

    def add(self, entry: _Entry) -> None:
        self.name.add(entry.name_key)
        self.created.add(entry.created_key)

    def remove(self, entry: _Entry) -> None:
        self.name.remove(entry.name_key)
        self.created.remove(entry.created_key)

    def __len__(self) -> int:
        return len(self.name)


class _Project:
    __slots__ = ("all", "by_status", "by_tag", "counts")

    def __init__(self):
        self.all = _Index()
        self.by_status: dict[str, _Index] = {}
        self.by_tag: dict[str, _Index] = {}
        self.counts: dict[str, int] = {}


def _add_to(indexes: dict[str, _Index], name: str, entry: _Entry) -> None:
    index = indexes.get(name)
    if index is None:
        index = indexes[name] = _Index()
    index.add(entry)


def _remove_from(indexes: dict[str, _Index], name: str, entry: _Entry) -> None:
    index = indexes[name]
    index.remove(entry)
    if not len(index):
        del indexes[name]  # tags come and go: keep no empty sets behind


class Catalog:
    """Sorted, filtered pages of each project's monitors.

    Follows ``monitors`` (a :class:`WatchedConfigView`) and ``statuses``: builds itself from
    what they hold now, then applies each change as it comes. A deleted monitor leaves the
    status view too, since the evaluator writes no tombstone for it.
    """

    def __init__(self, monitors: WatchedConfigView[MonitorConfig], statuses: StatusView):
        self._monitors = monitors
        self._statuses = statuses
        self._entries: dict[str, _Entry] = {}
        self._projects: dict[str, _Project] = {}
        self._build(monitors.values())
        monitors.listen(self._monitor_changed)
        statuses.listen(self._status_changed)

    def _build(self, monitors: list[MonitorConfig]) -> None:
        """Index many monitors at once (start-up): a sort per list instead of an insert per item."""
        grouped: dict[str, tuple[list, dict[str, list], dict[str, list]]] = {}
        for monitor in monitors:
            entry = self._entries[monitor.id] = _Entry(monitor, self._shown(monitor))
            everything, by_status, by_tag = grouped.setdefault(monitor.project_id, ([], {}, {}))
            everything.append(entry)
            by_status.setdefault(entry.status, []).append(entry)
            for tag in dict.fromkeys(monitor.tags):  # a tag twice would list it twice
                by_tag.setdefault(tag, []).append(entry)
        for project_id, (everything, by_status, by_tag) in grouped.items():
            project = self._projects[project_id] = _Project()
            project.all = _Index(everything)
            project.by_status = {status: _Index(entries) for status, entries in by_status.items()}
            project.by_tag = {tag: _Index(entries) for tag, entries in by_tag.items()}
            project.counts = {status: len(entries) for status, entries in by_status.items()}

    # following the views ------------------------------------------------------
    def _monitor_changed(self, monitor_id: str, before: MonitorConfig | None, after: MonitorConfig | None) -> None:
        entry = self._entries.get(monitor_id)
        if after is None:
            if entry is not None:
                self._remove(entry)
            self._statuses.forget(monitor_id)
            return
        if entry is not None:
            if (
                after.name == entry.monitor.name and after.tags == entry.monitor.tags
                and self._shown(after) == entry.status
            ):  # fmt: skip
                entry.monitor = after  # nothing it is sorted or filtered by changed
                return
            self._remove(entry)
        self._add(after)

    def _status_changed(self, monitor_id: str, before: CurrentStatus | None, after: CurrentStatus) -> None:
        entry = self._entries.get(monitor_id)
        if entry is None:
            return  # not (or no longer) configured
        status = shown_status(entry.monitor, after).status
        if status == entry.status:
            return  # a check-in that changed no status: most snapshots
        project = self._projects[entry.monitor.project_id]
        _remove_from(project.by_status, entry.status, entry)
        project.counts[entry.status] -= 1
        entry.status = status
        _add_to(project.by_status, status, entry)
        project.counts[status] = project.counts.get(status, 0) + 1

    def _add(self, monitor: MonitorConfig) -> None:
        entry = _Entry(monitor, self._shown(monitor))
        self._entries[monitor.id] = entry
        project = self._projects.get(monitor.project_id)
        if project is None:
            project = self._projects[monitor.project_id] = _Project()
        project.all.add(entry)
        _add_to(project.by_status, entry.status, entry)
        for tag in dict.fromkeys(monitor.tags):  # a tag twice would list it twice
            _add_to(project.by_tag, tag, entry)
        project.counts[entry.status] = project.counts.get(entry.status, 0) + 1

    def _shown(self, monitor: MonitorConfig) -> str:
        return shown_status(monitor, self._statuses.get(monitor.id)).status

    def _remove(self, entry: _Entry) -> None:
        del self._entries[entry.monitor.id]
        project = self._projects[entry.monitor.project_id]
        project.all.remove(entry)
        _remove_from(project.by_status, entry.status, entry)
        for tag in dict.fromkeys(entry.monitor.tags):
            _remove_from(project.by_tag, tag, entry)
        project.counts[entry.status] -= 1
        if not len(project.all):
            del self._projects[entry.monitor.project_id]

    # reading --------------------------------------------------------------------
    def counts(self, project_id: str) -> dict[str, int]:
        """Monitors per status in the whole project (unfiltered)."""
        project = self._projects.get(project_id)
        counts = project.counts if project is not None else {}
        return {status: counts.get(status, 0) for status in STATUSES}

    async def page(
        self, project_id: str, *, limit: int, sort: str = "name", after: str | None = None,
        status: str | None = None, tag: str | None = None, q: str | None = None,
    ) -> tuple[list[MonitorConfig], str | None]:  # fmt: skip
        """Up to ``limit`` (1 or more) monitors after the cursor ``after``, and the cursor of
        the next page: None when the list has nothing after this page. With a filter that
        drives no index (``q``, or a second one) that next page may turn out empty: finding
        out before answering could mean scanning the rest of the project.
        Raises BadCursor for a cursor this did not issue."""
        position = decode_cursor(after, sort) if after else None
        needle = q.casefold() if q else None
        found: list[MonitorConfig] = []
        while True:
            order = self._order(project_id, sort, status, tag)
            if order is None:
                return found, None
            keys = order.irange(minimum=position, inclusive=(False, True)) if position else iter(order)
            scanned = 0
            # By name, the key holds the folded name: a search tests it before looking the
            # entry up, which is most of a scan's cost when few names match.
            name_in_key = sort == "name" and needle is not None
            for key in keys:
                position, scanned = key, scanned + 1
                if name_in_key and needle not in key[0]:
                    if scanned == SCAN_STEP:
                        break
                    continue
                entry = self._entries[key[1]]
                if (
                    (status is None or entry.status == status) and (tag is None or tag in entry.monitor.tags)
                    and (needle is None or needle in entry.name_key[0])
                ):  # fmt: skip
                    found.append(entry.monitor)
                    if len(found) == limit:
                        more = next(iter(order.irange(minimum=position, inclusive=(False, True))), None)
                        return found, encode_cursor(sort, position) if more is not None else None
                if scanned == SCAN_STEP:
                    break
            else:
                return found, None  # the end of the list
            # A filter that matched little: let pings in, then go on from the last key seen
            # (the lists may change meanwhile; a key stays a valid place to resume from).
            await asyncio.sleep(0)

    def _order(self, project_id: str, sort: str, status: str | None, tag: str | None) -> SortedList | None:
        """The smallest sorted list holding every candidate; None if there are none."""
        project = self._projects.get(project_id)
        if project is None:
            return None
        smallest = project.all
        for indexes, name in ((project.by_status, status), (project.by_tag, tag)):
            if name is not None:
                index = indexes.get(name)
                if index is None:
                    return None
                if len(index) < len(smallest):
                    smallest = index
        return smallest.name if sort == "name" else smallest.created


# cursors ------------------------------------------------------------------------
def encode_cursor(sort: str, key: tuple) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([sort, *key])).rstrip(b"=").decode()


class BadCursor(ValueError):
    """A ``before`` cursor this API did not issue, or issued for the other sort order."""


_CURSOR_TYPES = {"name": tuple[str, str, str], "created": tuple[str, int, str]}


def decode_cursor(cursor: str, sort: str) -> tuple:
    """The sort key a cursor points at. Raises BadCursor if it is not one this issued
    for ``sort`` (a cursor of another sort order would land somewhere arbitrary)."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        issued_for, *key = msgspec.json.decode(raw, type=_CURSOR_TYPES[sort])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadCursor("not a cursor this API issued") from None
    if issued_for != sort:
        raise BadCursor(f"not a cursor of sort={sort}")
    return tuple(key)
