"""Dependencies between heartbeats: the graph of each project's ``depends_on`` and
``depends_on_tags``, kept to refuse a change that would close a cycle (docs/semantics.md,
"Dependencies").

A cycle could hold alerts for ever: A's down alert held because B is down, B's because A is.
The evaluators cannot see one (each partition holds what relays tell it), but the query
service sees every heartbeat of a project, whatever partition it lives in, so the API refuses
it here, before it is published.

The edges: X -> Y when ``Y`` is in ``X.depends_on``, and X -> every *other* heartbeat carrying a
tag of ``X.depends_on_tags`` (a heartbeat is never held by itself, so depending on a tag it
carries is no cycle). Only a heartbeat with dependencies has edges out, so only those can be on
a cycle: the graph keeps those alone (a project of 100,000 heartbeats without any costs
nothing here), with the tags they carry indexed. The graph had no cycle before a change to X,
so a cycle after it goes through X: one search from X's new edges, visiting each heartbeat and
expanding each tag once, finds it or proves there is none.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence

import msgspec

from services.query.validation import InvalidField
from shared.events import MonitorConfig

MAX_PATH_SHOWN = 6
"""Heartbeats a refusal names along the cycle (the middle of a longer one is elided)."""


class _Node(msgspec.Struct, frozen=True, gc=False):
    """A heartbeat with dependencies: what the search reads of it."""

    project_id: str
    tags: tuple[str, ...]
    depends_on: tuple[str, ...]
    depends_on_tags: tuple[str, ...]


Step = tuple[str, str | None]
"""One hop of a cycle: ``(heartbeat id, the tag it was reached by; None: by id)``."""


class DependencyGraph:
    """Every project's heartbeats that depend on others, by id and by the tags they carry."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        self._carriers: dict[tuple[str, str], set[str]] = {}
        """(project, tag) -> the heartbeats with dependencies carrying it."""
        self.lock = asyncio.Lock()
        """Held from a check to the view's put: two changes checked at once in this process
        could each be fine and close a cycle together."""

    # following the monitors view ----------------------------------------------------------
    def put(
        self, monitor_id: str, project_id: str, tags: Iterable[str], depends_on: Sequence[str],
        depends_on_tags: Sequence[str],
    ) -> None:  # fmt: skip
        """A heartbeat as it is now (with no dependencies: forgotten)."""
        self.forget(monitor_id)
        if not depends_on and not depends_on_tags:
            return
        node = _Node(
            sys.intern(project_id), tuple(dict.fromkeys(tags)), tuple(depends_on), tuple(depends_on_tags)
        )
        self._nodes[monitor_id] = node
        for tag in node.tags:
            self._carriers.setdefault((node.project_id, tag), set()).add(monitor_id)

    def forget(self, monitor_id: str) -> None:
        node = self._nodes.pop(monitor_id, None)
        if node is None:
            return
        for tag in node.tags:
            carriers = self._carriers[(node.project_id, tag)]
            carriers.discard(monitor_id)
            if not carriers:
                del self._carriers[(node.project_id, tag)]

    def changed(self, monitor_id: str, before: MonitorConfig | None, after: MonitorConfig | None) -> None:
        """A listener of the monitors view (``WatchedConfigView.listen``)."""
        if after is None:
            self.forget(monitor_id)
        else:
            self.put(monitor_id, after.project_id, after.tags, after.depends_on, after.depends_on_tags)

    def __len__(self) -> int:
        return len(self._nodes)

    # the check ----------------------------------------------------------------------------
    def check(
        self, project_id: str, monitor_id: str, config: dict, changed: Collection[str], added: Collection[str],
        name_of: Callable[[str], str | None],
    ) -> None:  # fmt: skip
        """Refuse (:class:`InvalidField`) the ``tags``, ``depends_on`` and ``depends_on_tags``
        (``config``) heartbeat ``monitor_id`` would have if it would depend on itself, on a
        heartbeat of ``added`` (the ids new to its ``depends_on``: one deleted since it was
        given stays) ``name_of`` does not know, or close a cycle. ``changed``: the fields the
        change sets anew; the refusal names the one that closes the cycle. ``name_of(id)``: the
        name of a heartbeat of this project, None if it has no such heartbeat."""
        for dependency in added:
            if dependency == monitor_id:
                raise InvalidField("depends_on", "a heartbeat cannot depend on itself")
            if name_of(dependency) is None:
                raise InvalidField("depends_on", f"unknown heartbeat id {dependency!r}")
        path = self.cycle(
            project_id, monitor_id, config["tags"], config["depends_on"], config["depends_on_tags"]
        )
        if path is None:
            return
        field = "depends_on" if path[1][1] is None else "depends_on_tags"
        if field not in changed and "tags" in changed and path[-1][1] is not None:
            field = "tags"  # it now carries the tag by which the cycle comes back to it
        raise InvalidField(field, f"would make a cycle of dependencies: {_spell(path, name_of)}")

    def cycle(
        self, project_id: str, monitor_id: str, tags: Iterable[str], depends_on: Sequence[str],
        depends_on_tags: Sequence[str],
    ) -> list[Step] | None:  # fmt: skip
        """The cycle ``monitor_id`` would be on with these settings, from it back to it
        (``[(monitor_id, None), (next, tag or None), ..., (monitor_id, tag or None)]``); None: none.
        The rest of the project is taken as it is (it has no cycle)."""
        if not depends_on and not depends_on_tags:
            return None
        carries = frozenset(tags)
        came_from: dict[str, Step] = {monitor_id: (monitor_id, None)}
        """heartbeat -> (the heartbeat it was reached from, by which tag; None: by id)."""
        expanded: set[str] = set()

        def edges(at: str, node: _Node) -> Iterator[Step]:
            yield from ((dependency, None) for dependency in node.depends_on)
            for tag in node.depends_on_tags:
                if tag in carries and at != monitor_id:
                    yield monitor_id, tag  # (the index has its tags before this change)
                if tag not in expanded:  # its carriers are reached already
                    expanded.add(tag)
                    for carrier in self._carriers.get((project_id, tag), ()):
                        if carrier != at and carrier != monitor_id:
                            yield carrier, tag

        stack = [(monitor_id, _Node(project_id, tuple(carries), tuple(depends_on), tuple(depends_on_tags)))]
        while stack:
            at, node = stack.pop()
            for target, tag in edges(at, node):
                if target == monitor_id:
                    return _path(came_from, at, monitor_id, tag)
                if target in came_from:
                    continue
                came_from[target] = (at, tag)
                found = self._nodes.get(target)
                if found is not None and found.project_id == project_id:
                    stack.append((target, found))
        return None


def _path(came_from: dict[str, Step], last: str, start: str, tag: str | None) -> list[Step]:
    """``start``, each heartbeat on the way to ``last`` (with the tag it was reached by), and
    ``start`` again (reached from ``last`` by ``tag``)."""
    hops: list[Step] = []
    at = last
    while at != start:
        previous, by = came_from[at]
        hops.append((at, by))
        at = previous
    return [(start, None), *reversed(hops), (start, tag)]


def _spell(path: list[Step], name_of: Callable[[str], str | None]) -> str:
    def hop(step: Step) -> str:
        monitor_id, tag = step
        shown = f"'{name_of(monitor_id) or monitor_id}'"
        return f"(by tag {tag!r}) {shown}" if tag is not None else shown

    shown = path if len(path) <= MAX_PATH_SHOWN else [*path[:3], None, *path[-2:]]
    return " -> ".join("…" if step is None else hop(step) for step in shown)
