"""The heartbeat list of every project, kept sorted and filtered as the views change.

A list request costs in proportion to the page it returns, not to the project or the
installation: each project keeps its monitors in sorted lists (by name, case-insensitive
then id; and by creation time then id), once for all of them, once per status and once
per tag, plus a counter per status. They are updated one monitor at a time when the
monitors view or the status view changes, so a 100,000-heartbeat project answers a page
with a bisection and ``limit`` steps. ``sort=status`` (problems first: down, late, then
the rest, each by name) reads the per-status sets in turn, merging those of the rest, so
it needs no set of its own.

The name filter ``q`` is the one that scans: from the cursor, in sort order, handing the
loop back every :data:`SCAN_STEP` entries and stopping once the page is full.

Memory (a million heartbeats per process is the target): an entry holds no config, only what
it is sorted and filtered by, in structs without a GC header; ids and project ids are the
interned strings the views share, and equal tag lists one tuple. A page decodes the configs
it returns from the (packed) monitors view.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Literal, TypeVar, get_args

import msgspec
from sortedcontainers import SortedList

from services.query.dependencies import DependencyGraph
from services.query.status_view import CurrentStatus, StatusView, notify_all, shown_status_name
from shared.bus.view import Keyed, PackedConfigView
from shared.errors import PinguraError
from shared.events import STATUSES, MonitorConfig

# STATUSES (from shared.events) is what ``status=`` accepts and ``counts`` reports, in that
# order. ``running``: a run began (``/start``) and has not ended yet.
Sort = Literal["name", "created", "status"]
"""The orders a page comes in. ``status``: problems first (down, then late, then every other
status), each group by name."""
SORTS: tuple[Sort, ...] = get_args(Sort)
PROBLEM_GROUPS = (("down",), ("late",), tuple(s for s in STATUSES if s not in ("down", "late")))
"""The groups of ``sort=status`` in order; a group's statuses are merged by name."""
SCAN_STEP = 2000
"""Entries a filtered scan looks at between two yields to the event loop (~1 ms)."""

T = TypeVar("T", bound=Keyed)
ConfigListener = Callable[[str, "T | None", "T | None"], None]


class WatchedConfigView(PackedConfigView[T], Generic[T]):
    """A :class:`PackedConfigView` that tells listeners of each change, ``(id, before, after)``
    (``after`` is None once deleted), whether it came from the topic or from ``put``.
    ``before`` is decoded from the view, ``after`` is the event put."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listeners: list[ConfigListener] = []

    def listen(self, listener: ConfigListener) -> None:
        self._listeners.append(listener)

    def put(self, event: T) -> bool:
        if not self._listeners:  # building at start: no decoding of what it replaces
            return super().put(event)
        key = sys.intern(event.id)
        before = self.get(key)
        changed = super().put(event)
        if changed:
            notify_all(self._listeners, key, before, None if getattr(event, "deleted", False) else event)
        return changed


class _NameKey(msgspec.Struct, order=True, frozen=True, gc=False, array_like=True):
    """Sorts as the tuple ``(folded, id)`` does, in 32 bytes instead of a tuple's 56."""

    folded: str
    id: str


class _CreatedKey(msgspec.Struct, order=True, frozen=True, gc=False, array_like=True):
    created_ms: int
    id: str


class _StatusKey(msgspec.Struct, order=True, frozen=True, gc=False, array_like=True):
    """A place in ``sort=status``: made while paging from the status sets' name keys, never
    stored (the sets per status the catalog keeps anyway are the order)."""

    group: int
    folded: str
    id: str


_KEYS: dict[Sort, type[_NameKey | _CreatedKey | _StatusKey]] = {
    "name": _NameKey,
    "created": _CreatedKey,
    "status": _StatusKey,
}


class _Entry(msgspec.Struct, gc=False):
    """What the catalog needs of one monitor: its sort keys and what it filters by. No
    cycles (strings, tuples of strings and the keys), so no GC header."""

    name_key: _NameKey
    created_key: _CreatedKey
    project_id: str
    tags: tuple[str, ...]
    """Each tag once."""
    paused: bool
    status: str


class _Index:
    """One set of monitors in both sort orders."""

    __slots__ = ("created", "name")

    def __init__(self, entries: Sequence[_Entry] = ()) -> None:
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

    def __init__(self) -> None:
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
        self._tags: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct list
        self._slugs: dict[
            tuple[str, str], dict[str, None]
        ] = {}  # (project, slug) -> ids; two if writers raced
        self.dependencies = DependencyGraph()
        """Who depends on whom (built in the same pass): the API refuses a cycle with it."""
        self._build()
        monitors.listen(self._monitor_changed)
        monitors.listen(self.dependencies.changed)
        statuses.listen(self._status_changed)

    def _build(self) -> None:
        """Index many monitors at once (start-up): a sort per list instead of an insert per item."""
        grouped: dict[str, tuple[list, dict[str, list], dict[str, list]]] = {}
        fields = ("project_id", "name", "tags", "paused", "created_ms", "slug")
        rows = self._monitors.select(*fields, "depends_on", "depends_on_tags")
        for monitor_id, (project_id, name, tags, paused, created_ms, slug, *dependencies) in rows:
            self.dependencies.put(monitor_id, project_id, tags, *dependencies)
            entry = self._entries[monitor_id] = self._entry(
                monitor_id, project_id, name, tags, paused, created_ms
            )
            if slug:
                self._slugs.setdefault((entry.project_id, slug), {})[monitor_id] = None
            everything, by_status, by_tag = grouped.setdefault(entry.project_id, ([], {}, {}))
            everything.append(entry)
            by_status.setdefault(entry.status, []).append(entry)
            for tag in entry.tags:
                by_tag.setdefault(tag, []).append(entry)
        for project_id, (everything, by_status, by_tag) in grouped.items():
            project = self._projects[project_id] = _Project()
            project.all = _Index(everything)
            project.by_status = {status: _Index(entries) for status, entries in by_status.items()}
            project.by_tag = {tag: _Index(entries) for tag, entries in by_tag.items()}
            project.counts = {status: len(entries) for status, entries in by_status.items()}

    # following the views ------------------------------------------------------
    def _monitor_changed(
        self, monitor_id: str, before: MonitorConfig | None, after: MonitorConfig | None
    ) -> None:
        if before is not None and before.slug:
            self._forget_slug(monitor_id, before.project_id, before.slug)
        if after is not None and after.slug:
            self._slugs.setdefault((sys.intern(after.project_id), after.slug), {})[monitor_id] = None
        entry = self._entries.get(monitor_id)
        if after is None:
            if entry is not None:
                self._remove(entry)
            self._statuses.forget(monitor_id)
            return
        new = self._entry(
            monitor_id, after.project_id, after.name, after.tags, after.paused, after.created_ms
        )
        if entry is not None:
            if new.name_key == entry.name_key and new.tags == entry.tags and new.status == entry.status:
                entry.paused = new.paused  # nothing it is sorted or filtered by changed
                return
            self._remove(entry)
        self._add(new)

    def _forget_slug(self, monitor_id: str, project_id: str, slug: str) -> None:
        holders = self._slugs.get((project_id, slug))
        if holders is not None:
            holders.pop(monitor_id, None)
            if not holders:
                del self._slugs[(project_id, slug)]

    def _status_changed(self, monitor_id: str, before: CurrentStatus | None, after: CurrentStatus) -> None:
        entry = self._entries.get(monitor_id)
        if entry is None:
            return  # not (or no longer) configured
        status = shown_status_name(entry.paused, after)
        if status == entry.status:
            return  # a check-in that changed no status: most snapshots
        project = self._projects[entry.project_id]
        _remove_from(project.by_status, entry.status, entry)
        project.counts[entry.status] -= 1
        entry.status = status
        _add_to(project.by_status, status, entry)
        project.counts[status] = project.counts.get(status, 0) + 1

    def _entry(
        self, monitor_id: str, project_id: str, name: str, tags, paused: bool, created_ms: int
    ) -> _Entry:
        """``monitor_id`` is the view's key (interned); ``tags`` a list or tuple."""
        tags = tuple(dict.fromkeys(tags))  # a tag twice would list it twice
        return _Entry(
            name_key=_NameKey(name.casefold(), monitor_id), created_key=_CreatedKey(created_ms, monitor_id),
            project_id=sys.intern(project_id), tags=self._tags.setdefault(tags, tags), paused=paused,
            status=shown_status_name(paused, self._statuses.get(monitor_id)),
        )  # fmt: skip

    def _add(self, entry: _Entry) -> None:
        self._entries[entry.name_key.id] = entry
        project = self._projects.get(entry.project_id)
        if project is None:
            project = self._projects[entry.project_id] = _Project()
        project.all.add(entry)
        _add_to(project.by_status, entry.status, entry)
        for tag in entry.tags:
            _add_to(project.by_tag, tag, entry)
        project.counts[entry.status] = project.counts.get(entry.status, 0) + 1

    def _remove(self, entry: _Entry) -> None:
        del self._entries[entry.name_key.id]
        project = self._projects[entry.project_id]
        project.all.remove(entry)
        _remove_from(project.by_status, entry.status, entry)
        for tag in entry.tags:
            _remove_from(project.by_tag, tag, entry)
        project.counts[entry.status] -= 1
        if not len(project.all):
            del self._projects[entry.project_id]

    # reading --------------------------------------------------------------------
    def counts(self, project_id: str) -> dict[str, int]:
        """Monitors per status in the whole project (unfiltered)."""
        project = self._projects.get(project_id)
        counts = project.counts if project is not None else {}
        return {status: counts.get(status, 0) for status in STATUSES}

    def with_slug(self, project_id: str, slug: str) -> list[str]:
        """Ids of the project's heartbeats with this slug: one or none (more only while two
        writers that raced are not put right), oldest first."""
        return list(self._slugs.get((project_id, slug), ()))

    async def page(
        self, project_id: str, *, limit: int, sort: Sort = "name", after: str | None = None,
        status: str | None = None, tag: str | None = None, q: str | None = None,
    ) -> tuple[list[MonitorConfig], str | None]:  # fmt: skip
        """Up to ``limit`` (1 or more) monitors after the cursor ``after``, and the cursor of
        the next page: None when the list has nothing after this page. With a filter that
        drives no index (``q``, or a second one) that next page may turn out empty: finding
        out before answering could mean scanning the rest of the project.
        Raises BadCursor for a cursor this did not issue."""
        position = _KEYS[sort](*decode_cursor(after, sort)) if after else None
        needle = q.casefold() if q else None
        found: list[MonitorConfig] = []
        while True:
            keys = self._keys_after(project_id, sort, status, tag, position)
            if keys is None:
                return found, None
            scanned = 0
            # By name, the key holds the folded name: a search tests it before looking the
            # entry up, which is most of a scan's cost when few names match.
            name_in_key = sort != "created" and needle is not None
            for key in keys:
                position, scanned = key, scanned + 1
                if name_in_key and needle not in key.folded:
                    if scanned == SCAN_STEP:
                        break
                    continue
                entry = self._entries[key.id]
                if (
                    (status is None or entry.status == status) and (tag is None or tag in entry.tags)
                    and (needle is None or needle in entry.name_key.folded)
                ):  # fmt: skip
                    found.append(self._monitors[key.id])
                    if len(found) == limit:
                        more = next(
                            self._keys_after(project_id, sort, status, tag, position) or iter(()), None
                        )
                        return found, encode_cursor(sort, position) if more is not None else None
                if scanned == SCAN_STEP:
                    break
            else:
                return found, None  # the end of the list
            # A filter that matched little: let pings in, then go on from the last key seen
            # (the lists may change meanwhile; a key stays a valid place to resume from).
            await asyncio.sleep(0)

    def _keys_after(
        self, project_id: str, sort: str, status: str | None, tag: str | None, position
    ) -> Iterator | None:
        """The candidates' keys in ``sort`` order after ``position`` (None: from the start);
        None if there are no candidates."""
        if sort != "status":
            order = self._order(project_id, sort, status, tag)
            if order is None:
                return None
            return order.irange(minimum=position, inclusive=(False, True)) if position else iter(order)
        project = self._projects.get(project_id)
        if project is None:
            return None
        return self._by_status_after(project, status, tag, position)

    def _by_status_after(self, project: _Project, status: str | None, tag: str | None, position) -> Iterator:
        """``sort=status``: each group in turn, its statuses' name-sorted sets merged (or, when
        the tag's set is smaller, that set read for the group's members)."""
        tagged = project.by_tag.get(tag) if tag is not None else None
        for group, members in enumerate(PROBLEM_GROUPS):
            if position is not None and group < position.group:
                continue
            if status is not None and status not in members:
                continue
            start = (
                _NameKey(position.folded, position.id)
                if position is not None and group == position.group
                else None
            )
            wanted = members if status is None else (status,)
            sets = [project.by_status[s].name for s in wanted if s in project.by_status]
            if tag is not None and (tagged is None or len(tagged) < sum(map(len, sets))):
                if tagged is None:
                    return
                sets = [tagged.name]  # filtered by status below, by the page's test of each entry
                keys = (k for k in _after(sets[0], start) if self._entries[k.id].status in members)
            else:
                keys = heapq.merge(*(_after(names, start) for names in sets))
            for key in keys:
                yield _StatusKey(group, key.folded, key.id)

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


def _after(names: SortedList, start: _NameKey | None) -> Iterator[_NameKey]:
    return names.irange(minimum=start, inclusive=(False, True)) if start is not None else iter(names)


# cursors ------------------------------------------------------------------------
def encode_cursor(sort: str, key: tuple | _NameKey | _CreatedKey) -> str:
    if not isinstance(key, tuple):
        key = msgspec.structs.astuple(key)
    return base64.urlsafe_b64encode(msgspec.json.encode([sort, *key])).rstrip(b"=").decode()


class BadCursor(PinguraError, ValueError):
    """A ``before`` cursor this API did not issue, or issued for the other sort order."""


_CURSOR_TYPES = {
    "name": tuple[str, str, str],
    "created": tuple[str, int, str],
    "status": tuple[str, int, str, str],
}


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
