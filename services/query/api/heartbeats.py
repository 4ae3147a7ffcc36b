"""Heartbeats (monitors): create, list, read, change, pause, resume, rotate the token, delete.

A change is a new revision of the whole config, published to the monitors topic.
Reads never touch ClickHouse: configs come from the monitors view, statuses from the
status view (the evaluator's snapshots), pages from the catalog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import structlog
from aiohttp import web
from msgspec import UNSET

from services.query.api.context import API, PROJECT, READ_ONLY
from services.query.api.errors import answer, not_found
from services.query.api.schemas.checks import FailureRateNow, InstancesSummary, UsualRunTime, check_answers
from services.query.api.schemas.heartbeats import (
    Heartbeat,
    HeartbeatCreate,
    HeartbeatList,
    HeartbeatListQuery,
    HeartbeatUpdate,
    check_channels,
)
from services.query.api.schemas.holding import muted_until_text
from services.query.audit import record_change
from services.query.catalog import BadCursor
from services.query.status_view import RuleFigures, next_expected_ms, shown_status
from services.query.validation import InvalidField
from shared.bus.view import PackedConfigView
from shared.clock import iso_ms, now_ms
from shared.events import MonitorConfig
from shared.ids import new_id, new_token

log = structlog.get_logger()


def monitor_or_404(request: web.Request) -> MonitorConfig:
    """The monitor named in the path, if the caller's project has it; another project's is 404 too."""
    monitor = request.app[API].monitors.get(request.match_info["id"])
    if monitor is None or monitor.project_id != request[PROJECT].id:
        raise not_found("heartbeat")
    return monitor


def _known_channels(request: web.Request, fields: dict) -> None:
    if "channels" in fields:
        project_id = request[PROJECT].id
        check_channels(fields["channels"], {c.id for c in request.app[API].channels.values()
                                            if c.project_id == project_id})  # fmt: skip


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def heartbeat_answer(request: web.Request, m: MonitorConfig) -> Heartbeat:
    """A heartbeat as the API shows it: its config, and its state from the status view
    (no storage call: this runs once per item of a page)."""
    ctx = request.app[API]
    current = ctx.statuses.get(m.id)
    shown = shown_status(m, current)
    secret = not request.get(READ_ONLY, False)
    return Heartbeat(
        id=m.id, name=m.name, status=shown.status, status_since=_iso(shown.since_ms), status_reason=shown.reason,
        last_checkin_at=_iso(current.last_ping_ms) if current is not None else None,
        next_expected_at=_iso(next_expected_ms(m, current, shown.status, now_ms())),
        interval=m.interval_s if m.schedule is None else None, grace=m.grace_s,
        max_consecutive_misses=m.max_consecutive_misses, schedule=m.schedule, timezone=m.timezone,
        max_runtime=m.max_runtime_s, recovery_threshold=m.recovery_threshold, reminder_interval=m.reminder_interval_s,
        channels=m.channels, tags=m.tags, slug=m.slug, paused=m.paused, created_at=iso_ms(m.created_ms),
        updated_at=iso_ms(m.updated_ms),
        token=m.token if secret else UNSET,
        ping_url=f"{ctx.settings.ping_base_url}/api/heartbeat/{m.token}" if secret else UNSET,
        maintenance_until=_iso(ctx.maintenance.maintenance_until(m, now_ms())),
        muted_until=muted_until_text(m.muted_until_ms), depends_on=m.depends_on, depends_on_tags=m.depends_on_tags,
        flap_changes=m.flap_changes, flap_window=m.flap_window_s, flap_stable=m.flap_stable_s,
        flapping_since=_iso(current.flapping_since) if current is not None else None,
        held=current.held if current is not None else None, description=m.description, **check_answers(m),
        **(learned(m, figures) if (figures := ctx.statuses.rules(m.id)) is not None else {}),
    )  # fmt: skip


def learned(m: MonitorConfig, figures: RuleFigures) -> dict:
    """What the evaluator learned through the heartbeat's rules, as its answer shows it (each only
    while its rule is on)."""
    out: dict = {}
    fleet = figures.fleet
    if m.fleet is not None and fleet is not None and fleet.judged_ms:
        out["instances_summary"] = InstancesSummary(
            reported=fleet.reported, members=fleet.members, required=fleet.required,
            missing=list(fleet.missing_first), judged_at=iso_ms(fleet.judged_ms),
        )  # fmt: skip
    if m.run_time is not None and figures.usual is not None:
        median, low, high, runs = figures.usual
        out["usual_run_time"] = UsualRunTime(
            median_s=round(median / 1000, 3),
            low_s=round(low / 1000, 3),
            high_s=round(high / 1000, 3),
            runs=runs,
        )
    if m.failure_rate is not None and figures.outcomes:
        counted: Sequence[int] = figures.outcomes[-m.failure_rate.runs :]
        if m.failure_rate.window_s is not None:  # only runs within the window before the newest
            since = abs(counted[-1]) - m.failure_rate.window_s * 1000
            counted = [ended for ended in counted if abs(ended) >= since]
        failed = sum(1 for ended in counted if ended < 0)
        out["failure_rate_now"] = FailureRateNow(
            failed=failed, runs=len(counted), percent=failed * 100 // len(counted)
        )
    return out


def _check_slug_free(request: web.Request, fields: dict, monitor_id: str | None = None) -> None:
    """A slug names one heartbeat of its project (the catalog indexes slugs: the monitors
    view keeps its configs packed, and decoding them all per request would not scale)."""
    slug = fields.get("slug")
    if slug is None:
        return
    for other in request.app[API].catalog.with_slug(request[PROJECT].id, slug):
        if other != monitor_id:
            raise InvalidField("slug", f"already names heartbeat {other} in this project")


DEPENDENCY_FIELDS = ("tags", "depends_on", "depends_on_tags")


def _dependencies_changed(monitor: MonitorConfig, before: MonitorConfig | None) -> set[str]:
    return {f for f in DEPENDENCY_FIELDS if getattr(monitor, f) != (getattr(before, f) if before else [])}


def _check_dependencies(request: web.Request, monitor: MonitorConfig, before: MonitorConfig | None) -> None:
    """Refuse dependencies on unknown heartbeats, on itself, or that close a cycle (see
    :mod:`services.query.dependencies`)."""
    ctx, project_id = request.app[API], monitor.project_id

    def name_of(other_id: str) -> str | None:
        if other_id == monitor.id:
            return monitor.name
        other = ctx.monitors.get(other_id)
        return other.name if other is not None and other.project_id == project_id else None

    config = {f: getattr(monitor, f) for f in DEPENDENCY_FIELDS}
    added = [d for d in monitor.depends_on if before is None or d not in before.depends_on]
    changed = _dependencies_changed(monitor, before)
    ctx.catalog.dependencies.check(project_id, monitor.id, config, changed, added, name_of)


async def _save(request: web.Request, monitor: MonitorConfig, before: MonitorConfig | None) -> None:
    """Publish a heartbeat's config; one whose dependencies change is checked first, and
    saved under the graph's lock (two changes checked at once could close a cycle together)."""
    ctx = request.app[API]
    if monitor.fleet is not None and monitor.cadence is not None:
        # Its instances check in many times a window by design: cadence would be ignored, so say so.
        raise InvalidField(
            "cadence", "a heartbeat run by a fleet is not judged for cadence: turn off one of the two"
        )
    if not _dependencies_changed(monitor, before):
        await ctx.save(ctx.topics.monitors, monitor, ctx.monitors)
        return
    async with ctx.catalog.dependencies.lock:
        _check_dependencies(request, monitor, before)
        await ctx.save(ctx.topics.monitors, monitor, ctx.monitors)


SCAN_CHUNK = 2000  # configs read between two yields to the loop (~5 ms; 100,000 take ~260 ms in all)


async def _chosen_token(request: web.Request, token: str) -> str:
    """A token the client chose (a UUID: see :class:`HeartbeatCreate`), if no live heartbeat of
    any project has it; the refusal says no more (not whose it is). A scan of the configs'
    tokens, only on such a create (an import), so that no index is kept for them; it yields
    to the loop every :data:`SCAN_CHUNK` configs, so pings and other requests go on meanwhile."""
    monitors = request.app[API].monitors
    rows = (
        monitors.select("token", "deleted")  # a third of a decode's cost
        if isinstance(monitors, PackedConfigView)
        else ((m.id, [m.token, m.deleted]) for m in monitors.values())
    )
    for n, (_, (held, deleted)) in enumerate(rows, 1):
        if held == token and not deleted:
            raise InvalidField("token", "already in use: choose another, or leave it out for a new one", 409)
        if n % SCAN_CHUNK == 0:
            await asyncio.sleep(0)
    return token


async def create_heartbeat(request: web.Request, body: HeartbeatCreate) -> web.Response:
    fields = body.monitor_fields(creating=True)
    _known_channels(request, fields)
    _check_slug_free(request, fields)
    token = new_token() if body.token is UNSET else await _chosen_token(request, body.token)
    at = now_ms()
    monitor = MonitorConfig(
        id=new_id("hb"),
        project_id=request[PROJECT].id,
        token=token,
        created_ms=at,
        updated_ms=at,
        **fields,
    )
    await _save(request, monitor, None)
    await record_change(request, "heartbeat.create", "heartbeat", monitor.id, None, monitor)
    log.info("query.heartbeat.created", monitor_id=monitor.id, project_id=monitor.project_id)
    return answer(heartbeat_answer(request, monitor), status=201)


async def list_heartbeats(request: web.Request, query: HeartbeatListQuery) -> web.Response:
    """A page of the project's heartbeats from the catalog: the work is the page's, however
    many heartbeats the project or the installation has."""
    ctx = request.app[API]
    project_id = request[PROJECT].id
    try:
        page, cursor = await ctx.catalog.page(
            project_id, limit=query.limit, sort=query.sort, after=query.before, status=query.status, tag=query.tag,
            q=query.q,
        )  # fmt: skip
    except BadCursor as exc:
        raise InvalidField("before", str(exc)) from None
    return answer(HeartbeatList(heartbeats=[heartbeat_answer(request, m) for m in page], next=cursor,
                                counts=ctx.catalog.counts(project_id)))  # fmt: skip


async def get_heartbeat(request: web.Request) -> web.Response:
    return answer(heartbeat_answer(request, monitor_or_404(request)))


async def _update(request: web.Request, monitor: MonitorConfig, action: str, **changes) -> web.Response:
    updated = msgspec.structs.replace(monitor, updated_ms=now_ms(), revision=monitor.revision + 1, **changes)
    await _save(request, updated, monitor)
    after = None if updated.deleted else updated  # the token: masked (audit.MASKED)
    await record_change(request, f"heartbeat.{action}", "heartbeat", monitor.id, monitor, after)
    log.info("query.heartbeat.updated", monitor_id=monitor.id, fields=sorted(changes))
    return answer(heartbeat_answer(request, updated))


async def patch_heartbeat(request: web.Request, body: HeartbeatUpdate) -> web.Response:
    monitor = monitor_or_404(request)
    fields = body.monitor_fields()
    _known_channels(request, fields)
    _check_slug_free(request, fields, monitor.id)
    return await _update(request, monitor, "update", **fields)


async def delete_heartbeat(request: web.Request) -> web.Response:
    monitor = monitor_or_404(request)
    await _update(request, monitor, "delete", deleted=True)
    return web.Response(status=204)


async def pause_heartbeat(request: web.Request) -> web.Response:
    return await _update(request, monitor_or_404(request), "pause", paused=True)


async def resume_heartbeat(request: web.Request) -> web.Response:
    return await _update(request, monitor_or_404(request), "resume", paused=False)


async def rotate_token(request: web.Request) -> web.Response:
    return await _update(request, monitor_or_404(request), "rotate_token", token=new_token())
