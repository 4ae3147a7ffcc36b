"""Maintenance windows: create, list, read, change, end early, delete.

A write is a new revision of the whole window, published to the compacted ``maintenance``
topic, which every evaluator reads (a delete is a tombstone record, ``deleted``). Inside a
window the heartbeats it covers are evaluated and recorded as always, but their alerts are
held until it ends (docs/semantics.md, "Maintenance windows and muting").
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from aiohttp import web

from services.query.api.context import API, PROJECT
from services.query.api.errors import answer, not_found
from services.query.api.schemas.maintenance import (
    MAX_DURATION_S,
    MAX_WINDOWS,
    MIN_DURATION_S,
    Covering,
    Maintenance,
    MaintenanceCreate,
    MaintenanceList,
    MaintenanceUpdate,
)
from services.query.audit import record_change
from services.query.maintenance_view import active_until, next_start
from services.query.validation import InvalidField
from shared.clock import iso_ms, now_ms
from shared.events import MaintenanceWindow
from shared.ids import new_id

log = structlog.get_logger()


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def window_answer(window: MaintenanceWindow, now: int) -> Maintenance:
    return Maintenance(
        id=window.id, name=window.name, starts_at=iso_ms(window.starts_ms), ends_at=_iso(window.ends_ms),
        schedule=window.schedule, duration=window.duration_s, timezone=window.timezone,
        covering=Covering(heartbeats=list(window.monitor_ids), tags=list(window.tags),
                          whole_project=window.whole_project),
        ended_at=_iso(window.ended_ms), active_until=_iso(active_until(window, now)),
        next_start=_iso(next_start(window, now)), created_at=iso_ms(window.created_ms),
        updated_at=iso_ms(window.updated_ms),
    )  # fmt: skip


def window_or_404(request: web.Request) -> MaintenanceWindow:
    """The window named in the path, if the caller's project has it; another project's is 404 too."""
    window = request.app[API].maintenance.get(request.match_info["id"])
    if window is None or window.project_id != request[PROJECT].id:
        raise not_found("maintenance window")
    return window


def _given(body: MaintenanceUpdate) -> dict[str, Any]:
    """The :class:`MaintenanceWindow` fields a body sets."""
    out: dict[str, Any] = dict(body.times_ms())
    for field, name in (("name", "name"), ("schedule", "schedule"), ("duration", "duration_s"),
                        ("timezone", "timezone")):  # fmt: skip
        value = getattr(body, field)
        if value is not msgspec.UNSET:
            out[name] = value
    if isinstance(body.covering, Covering):
        out.update(monitor_ids=body.covering.heartbeats, tags=body.covering.tags,
                   whole_project=body.covering.whole_project)  # fmt: skip
    return out


def checked(request: web.Request, window: MaintenanceWindow, given: dict[str, Any]) -> MaintenanceWindow:
    """``window`` is whole and makes sense: one-off with both times, or recurring with a schedule
    and a duration; ends after it starts; it covers only heartbeats of the caller's project."""
    if window.schedule is None:
        if window.duration_s is not None:
            raise InvalidField(
                "duration", "only with a schedule (a one-off window lasts from starts_at to ends_at)"
            )
        if window.ends_ms is None:
            raise InvalidField("ends_at", "required for a one-off window (or give a schedule)")
        length_ms = window.ends_ms - window.starts_ms
        if length_ms <= 0:
            raise InvalidField("ends_at", "must be after starts_at")
        if not MIN_DURATION_S * 1000 <= length_ms <= MAX_DURATION_S * 1000:
            raise InvalidField("ends_at", "must be 1 minute to 31 days after starts_at")
    else:
        if window.duration_s is None:
            raise InvalidField("duration", "required with a schedule (how long each occurrence lasts)")
        if window.ends_ms is not None and window.ends_ms <= window.starts_ms:
            raise InvalidField("ends_at", "must be after starts_at")
    project_id = request[PROJECT].id
    monitors = request.app[API].monitors
    for monitor_id in window.monitor_ids if "monitor_ids" in given else ():
        monitor = monitors.get(monitor_id)
        if monitor is None or monitor.project_id != project_id:
            raise InvalidField("covering", f"unknown heartbeat id {monitor_id!r} in heartbeats")
    return window


async def _save(
    request: web.Request,
    window: MaintenanceWindow,
    action: str,
    before: MaintenanceWindow | None,
    status: int = 200,
) -> web.Response:
    ctx = request.app[API]
    await ctx.save(ctx.topics.maintenance, window, ctx.maintenance)
    await record_change(request, f"maintenance.{action}", "maintenance", window.id, before, window)
    return answer(window_answer(window, now_ms()), status=status)


async def create_window(request: web.Request, body: MaintenanceCreate) -> web.Response:
    ctx = request.app[API]
    project_id = request[PROJECT].id
    if len(ctx.maintenance.of_project(project_id)) >= MAX_WINDOWS:
        raise InvalidField(
            "name", f"a project has at most {MAX_WINDOWS} maintenance windows: delete some first"
        )
    at = now_ms()
    given = _given(body)
    fields = {"timezone": "UTC", **given}
    if fields.get("starts_ms") is None and fields.get("schedule") is not None:
        fields["starts_ms"] = at  # recurring from now on
    if fields.get("starts_ms") is None:
        raise InvalidField("starts_at", "required for a one-off window (or give a schedule)")
    window = MaintenanceWindow(id=new_id("mw"), project_id=project_id, created_ms=at, updated_ms=at, **fields)
    window = checked(request, window, given)
    log.info("query.maintenance.created", window_id=window.id, project_id=project_id)
    return await _save(request, window, "create", None, status=201)


async def list_windows(request: web.Request) -> web.Response:
    now = now_ms()
    windows = request.app[API].maintenance.of_project(request[PROJECT].id)
    return answer(MaintenanceList(windows=[window_answer(w, now) for w in windows]))


async def get_window(request: web.Request) -> web.Response:
    return answer(window_answer(window_or_404(request), now_ms()))


async def patch_window(request: web.Request, body: MaintenanceUpdate) -> web.Response:
    window = window_or_404(request)
    given = _given(body)
    at = now_ms()
    changes = dict(given)
    schedule = changes.get("schedule", window.schedule)
    if "starts_ms" in changes and changes["starts_ms"] is None:
        if schedule is None:
            raise InvalidField("starts_at", "required for a one-off window (or give a schedule)")
        changes["starts_ms"] = window.created_ms  # recurring: from its creation
    if schedule is None and "duration_s" not in changes:
        changes["duration_s"] = None  # one-off (again): an occurrence's length means nothing
    timing = ("starts_ms", "ends_ms", "schedule", "duration_s", "timezone")
    if any(k in changes and changes[k] != getattr(window, k) for k in timing):
        changes["ended_ms"] = None  # a new plan: an early end of the old one no longer applies
    updated = msgspec.structs.replace(window, updated_ms=at, revision=window.revision + 1, **changes)
    updated = checked(request, updated, given)
    log.info("query.maintenance.updated", window_id=window.id, fields=sorted(changes))
    return await _save(request, updated, "update", window)


async def end_window(request: web.Request) -> web.Response:
    """End the occurrence on now (a one-off window ends; a recurring one goes on with its next)."""
    window = window_or_404(request)
    at = now_ms()
    if active_until(window, at) is None:
        raise InvalidField("id", "no occurrence of this window is on now (delete it to cancel one to come)")
    ended = msgspec.structs.replace(window, ended_ms=at, updated_ms=at, revision=window.revision + 1)
    log.info("query.maintenance.ended", window_id=window.id)
    return await _save(request, ended, "end", window)


async def delete_window(request: web.Request) -> web.Response:
    ctx = request.app[API]
    window = window_or_404(request)
    at = now_ms()
    gone = msgspec.structs.replace(window, deleted=True, updated_ms=at, revision=window.revision + 1)
    await ctx.save(ctx.topics.maintenance, gone, ctx.maintenance)
    await record_change(request, "maintenance.delete", "maintenance", window.id, window, None)
    log.info("query.maintenance.deleted", window_id=window.id)
    return web.Response(status=204)
