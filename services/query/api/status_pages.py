"""A project's public status page: read-write keys set it up (``/projects/me/status-page``),
anyone with its URL reads it (``/status-page/{key}``, and the page ``/status/{key}``).

Off by default (:attr:`shared.events.ProjectConfig.status_page` is ``None``). What the public
answer holds is what the project chose: a title, an intro, groups of heartbeats each under the
label it was given (stored, so a rename never reaches the page), each one's state now (from
the in-memory views), its daily uptime over 90 days and the recent changes of those heartbeats
(ClickHouse, :mod:`.status_page_history`). No heartbeat id, name, tag, token, message or
output; a heartbeat deleted since is left out. A wrong key, a rotated one and a page turned off
are the same 404.

The public answer is kept for :data:`CACHE_S` seconds per project in this process (and said
cacheable for as long): anyone may ask for it, and it costs two ClickHouse queries.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import msgspec
import structlog
from aiohttp import web

from services.query.api.context import API, PROJECT, ApiContext
from services.query.api.errors import answer, error
from services.query.api.schemas.status_pages import (
    DAYS,
    MAX_CHANGES,
    OverallState,
    PublicChange,
    PublicGroup,
    PublicItem,
    PublicStatusPage,
    StatusPageConfig,
    StatusPageGroupOut,
    StatusPageItemOut,
    StatusPageWrite,
)
from services.query.api.status_page_history import last_changes, uptime_by_monitor
from services.query.audit import record_change
from services.query.status_view import shown_status
from services.query.validation import InvalidField
from shared.clock import iso_ms, now_ms
from shared.events import ProjectConfig, StatusPage, StatusPageGroup, StatusPageItem
from shared.ids import new_ping_key as new_status_page_key  # 22 characters, 128 random bits

log = structlog.get_logger()

NOT_FOUND = "no such status page"
NONE_YET = "the project has no status page (PUT one first)"
CACHE_S = 30
CACHE = {"Cache-Control": f"public, max-age={CACHE_S}"}
MAX_KEY_CHARS = 64
DAY_MS = 86_400_000
WORST_FIRST: tuple[OverallState, ...] = ("down", "degraded", "maintenance")
DEGRADED = frozenset({"late", "unknown"})


@dataclass
class Cached:
    at: float
    key: str
    updated_ms: int
    body: bytes


PUBLIC_CACHE = web.AppKey("status_page_cache", dict)
"""project id -> :class:`Cached`: set up with the routes (:func:`.routes.add_routes`)."""


# configuring --------------------------------------------------------------------------------
def _latest(request: web.Request) -> ProjectConfig:
    project = request[PROJECT]
    return request.app[API].projects.get(project.id) or project


def _config(page: StatusPage) -> StatusPageConfig:
    return StatusPageConfig(
        key=page.key,
        url=f"/status/{page.key}",
        data_url=f"/api/v1/status-page/{page.key}",
        title=page.title,
        intro=page.intro or "",
        groups=[
            StatusPageGroupOut(
                name=group.name,
                items=[StatusPageItemOut(heartbeat_id=i.heartbeat_id, label=i.label) for i in group.items],
            )
            for group in page.groups
        ],
    )


async def _save(request: web.Request, project: ProjectConfig, page: StatusPage | None, action: str) -> None:
    ctx = request.app[API]
    await ctx.save(ctx.topics.projects, msgspec.structs.replace(project, status_page=page), ctx.projects)
    await record_change(
        request, f"status_page.{action}", "status_page", project.id, project.status_page, page
    )
    log.info("query.status_page.saved", project_id=project.id, enabled=page is not None)


async def get_status_page(request: web.Request) -> web.Response:
    page = _latest(request).status_page
    if page is None:
        return error(404, NONE_YET)
    return answer(_config(page), headers={"Cache-Control": "no-store"})


async def put_status_page(request: web.Request, body: StatusPageWrite) -> web.Response:
    """The whole page; every heartbeat named must be this project's. The first PUT turns the
    page on with a new key; later ones keep the key."""
    ctx, project = request.app[API], _latest(request)
    for group in body.groups:
        for item in group.items:
            monitor = ctx.monitors.get(item.heartbeat_id)
            if monitor is None or monitor.project_id != project.id:
                raise InvalidField("groups", f"unknown heartbeat id {item.heartbeat_id!r}")
    old = project.status_page
    page = StatusPage(
        key=old.key if old is not None else new_status_page_key(),
        title=body.title,
        intro=body.intro or None,
        groups=[
            StatusPageGroup(
                name=group.name,
                items=[StatusPageItem(heartbeat_id=i.heartbeat_id, label=i.label) for i in group.items],
            )
            for group in body.groups
        ],
        updated_ms=now_ms(),
    )
    await _save(request, project, page, "update")
    return answer(_config(page))


async def delete_status_page(request: web.Request) -> web.Response:
    """Turn the page off: its URLs answer 404 (a new page later gets a new key)."""
    project = _latest(request)
    if project.status_page is not None:
        await _save(request, project, None, "delete")
    return web.Response(status=204)


async def rotate_status_page_key(request: web.Request) -> web.Response:
    """A new key: the old URLs answer 404 from now on."""
    project = _latest(request)
    if project.status_page is None:
        return error(404, NONE_YET)
    page = msgspec.structs.replace(project.status_page, key=new_status_page_key(), updated_ms=now_ms())
    await _save(request, project, page, "rotate_key")
    return answer(_config(page))


# the public page ----------------------------------------------------------------------------
def project_of_key(ctx: ApiContext, key: str) -> ProjectConfig | None:
    """The project whose status page key this is, compared in constant time with each."""
    wanted = key.encode()
    found = None
    for project_id in list(ctx.projects):
        project = ctx.projects.get(project_id)
        page = project.status_page if project is not None else None
        if page is not None and hmac.compare_digest(page.key.encode(), wanted):
            found = project
    return found


def day_spans(now: int, days: int = DAYS) -> list[tuple[int, int]]:
    """The last ``days`` UTC days, oldest first, today's ending now."""
    today = now - now % DAY_MS
    return [
        (start, min(start + DAY_MS, now)) for start in range(today - (days - 1) * DAY_MS, today + 1, DAY_MS)
    ]


def overall(states: list[str]) -> OverallState:
    found = {"degraded" if state in DEGRADED else state for state in states}
    return next((state for state in WORST_FIRST if state in found), "up")


async def build_public(
    ctx: ApiContext, project: ProjectConfig, page: StatusPage, now: int
) -> PublicStatusPage:
    shown = [
        (group.name, [(item, ctx.monitors.get(item.heartbeat_id)) for item in group.items])
        for group in page.groups
    ]
    labels = {
        monitor.id: item.label
        for _, items in shown
        for item, monitor in items
        if monitor is not None and monitor.project_id == project.id
    }
    days = day_spans(now)
    whole = (days[0][0], now)
    ids = list(labels)
    uptime = await uptime_by_monitor(ctx.store.clickhouse, project.id, ids, [*days, whole])
    changes = await last_changes(ctx.store.clickhouse, project.id, ids, days[0][0], MAX_CHANGES)
    groups = []
    for name, items in shown:
        public = []
        for item, monitor in items:
            if monitor is None or monitor.id not in labels:
                continue  # deleted since it was chosen
            status = shown_status(monitor, ctx.statuses.get(monitor.id))
            maintenance = ctx.maintenance.maintenance_until(monitor, now) is not None
            spans = uptime[monitor.id]
            public.append(
                PublicItem(
                    label=item.label,
                    state="maintenance" if maintenance else status.status,  # type: ignore[arg-type]
                    since=iso_ms(status.since_ms)
                    if status.since_ms is not None and not maintenance
                    else None,
                    uptime=spans[-1].percent,
                    days=[span.percent for span in spans[:-1]],
                )
            )
        groups.append(PublicGroup(name=name, items=public))
    return PublicStatusPage(
        title=page.title,
        intro=page.intro or "",
        state=overall([item.state for group in groups for item in group.items]),
        updated_at=iso_ms(now),
        days=[iso_ms(start)[:10] for start, _ in days],
        groups=groups,
        changes=[PublicChange(label=labels[m], at=at, state=status) for m, at, status in changes],
    )


async def public_status_page(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    ctx = request.app[API]
    project = project_of_key(ctx, key) if len(key) <= MAX_KEY_CHARS else None
    page = project.status_page if project is not None else None
    if project is None or page is None:
        return error(404, NOT_FOUND)
    cache: dict[str, Cached] = request.app[PUBLIC_CACHE]
    kept = cache.get(project.id)
    if (
        kept is None
        or kept.key != page.key
        or kept.updated_ms != page.updated_ms
        or time.monotonic() - kept.at > CACHE_S
    ):
        body = msgspec.json.encode(await build_public(ctx, project, page, now_ms()))
        kept = cache[project.id] = Cached(time.monotonic(), page.key, page.updated_ms, body)
    return web.Response(body=kept.body, content_type="application/json", headers=CACHE)
