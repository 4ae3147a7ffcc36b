"""A fleet's instances (docs/semantics.md, "Fleets"): list them a page at a time, take one out.

The instances are the evaluator's, from its snapshots (the status view's
:class:`~services.query.status_view.FleetFigures`), with those the heartbeat declares and the
evaluator has not saved yet. Taking one out is an :class:`~shared.events.InstanceRemoved` on the
``pings`` topic, keyed by the heartbeat's id, so the evaluator applies it in the order of its
pings: accepted (202) now, shown once the evaluator has applied it.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterator

import structlog
from aiohttp import web

from services.query.api.context import API, PROJECT
from services.query.api.errors import answer, not_found
from services.query.api.heartbeats import monitor_or_404
from services.query.api.schemas.instances import Instance, InstanceListQuery, InstancePage
from services.query.audit import record_change
from services.query.status_view import FleetFigures
from services.query.validation import InvalidField
from shared.clock import iso_ms, now_ms
from shared.events import InstanceRemoved, encode

log = structlog.get_logger()

Known = tuple[str, int]
"""An instance's name and its last check-in (ms; 0: never)."""


def _known(fleet: FleetFigures | None, declared: tuple[str, ...], after: str | None) -> Iterator[Known]:
    """Every instance after ``after`` by name: the evaluator's, and the declared ones it does not know yet."""
    names, last_ms = (fleet.names, fleet.last_ms) if fleet is not None else ((), ())
    start = 0 if after is None else bisect.bisect_right(names, after)
    known = zip(itertools.islice(names, start, None), itertools.islice(last_ms, start, None), strict=True)
    new = sorted(name for name in declared if (after is None or name > after) and not _has(names, name))
    yield from heapq.merge(known, ((name, 0) for name in new)) if new else known


def _has(names: tuple[str, ...], name: str) -> bool:
    at = bisect.bisect_left(names, name)
    return at < len(names) and names[at] == name


def _status(fleet: FleetFigures | None, name: str, last_ms: int) -> str:
    if not last_ms:
        return "never_reported"
    if fleet is not None and name in fleet.missing and last_ms <= fleet.judged_ms:
        return "missing"
    return "reporting"


async def list_instances(request: web.Request, query: InstanceListQuery) -> web.Response:
    """``GET /heartbeats/{id}/instances``: by name, after ``cursor``, only ``status`` if given."""
    monitor = monitor_or_404(request)
    figures = request.app[API].statuses.rules(monitor.id)
    fleet = figures.fleet if figures is not None else None
    declared = monitor.fleet.declared if monitor.fleet is not None else ()
    declared_set = frozenset(declared)
    items: list[Instance] = []
    next_cursor = None
    for name, last_ms in _known(fleet, declared, query.cursor):
        status = _status(fleet, name, last_ms)
        if query.status is not None and status != query.status:
            continue
        if len(items) == query.limit:  # one more is there: the page is full, and not the last
            next_cursor = items[-1].name
            break
        items.append(Instance(name=name, last_ping=iso_ms(last_ms) if last_ms else None, status=status,  # type: ignore[arg-type]
                              declared=name in declared_set))  # fmt: skip
    judged = fleet is not None and fleet.judged_ms > 0
    return answer(InstancePage(
        items=items, reported=fleet.reported if fleet is not None and judged else 0,
        members=fleet.members if fleet is not None else 0, required=fleet.required if fleet is not None else 0,
        judged_at=iso_ms(fleet.judged_ms) if fleet is not None and judged else None, next_cursor=next_cursor,
    ))  # fmt: skip


async def remove_instance(request: web.Request) -> web.Response:
    """``DELETE /heartbeats/{id}/instances/{name}``: it leaves the fleet without paging, until it pings again."""
    monitor = monitor_or_404(request)
    name = request.match_info["name"]
    ctx = request.app[API]
    if monitor.fleet is not None and name in monitor.fleet.declared:
        raise InvalidField(
            "name", "this instance is declared in fleet.instances: take it out of that list instead"
        )
    figures = ctx.statuses.rules(monitor.id)
    if figures is None or figures.fleet is None or not _has(figures.fleet.names, name):
        raise not_found("instance")
    removed = InstanceRemoved(
        monitor_id=monitor.id, project_id=request[PROJECT].id, instance=name, at_ms=now_ms()
    )
    await ctx.bus.publish(ctx.topics.pings, monitor.id, encode(removed))
    gone = {"heartbeat_id": monitor.id, "instance": name}
    await record_change(request, "instance.remove", "instance", f"{monitor.id}/{name}", gone, None)
    log.info("query.instance.removed", monitor_id=monitor.id, instance=name)
    return web.Response(status=202)
