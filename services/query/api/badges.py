"""Public status badges: ``GET /api/v1/badge/{badge_key}/{what}.{svg,json,shields}``, with
``what`` a heartbeat's slug or id or ``project`` (all of its heartbeats), and
``/badge/{badge_key}/tag/{tag}.{...}`` (the heartbeats with that tag).

No credentials: the project's badge key in the URL (``POST /projects/me/badge-key`` makes or
replaces it) is the secret. A badge shows one status and the label asked for, nothing else:
no name, no token, no count. A wrong key, slug, id or tag are the same 404, so a wrong key
cannot be told from a wrong slug. Statuses come from this process's in-memory views (the
catalog and the status view), never ClickHouse: a badge costs a dict lookup or, for a tag,
a walk over that tag's heartbeats.

How the seven statuses show (docs: "Badges"); a tag or the project shows its worst:

======================  ==========  ==========
status                  3 states    2 states
======================  ==========  ==========
up, running, new,       up          up
paused
late, unknown           late        up
down                    down        down
======================  ==========  ==========

``new`` and ``paused`` expect nothing yet, so nothing is failing (as Healthchecks' badges);
``unknown`` (misses held while pings could not reach Pingura) is neither up nor down: late.
"""

from __future__ import annotations

import hmac
from typing import get_args
from xml.sax.saxutils import escape

import structlog
from aiohttp import web

from services.query.api.context import API, ApiContext
from services.query.api.errors import answer, error
from services.query.api.schemas.badges import BadgeQuery, BadgeState, BadgeStatus, ShieldsBadge
from services.query.status_view import shown_status
from shared.events import MonitorConfig, ProjectConfig

log = structlog.get_logger()

PROJECT_WHAT = "project"
"""``what`` naming the whole project (a heartbeat slugged ``project`` is reached by its id)."""
NOT_FOUND = "no such badge (unknown badge key, heartbeat or tag)"
CACHE = {"Cache-Control": "public, max-age=60"}
MAX_PART = 200
"""Longer keys, slugs, ids and tags exist nowhere: refused before any lookup."""
TAG_PAGE = 500

THREE_STATES: dict[str, BadgeState] = {
    "up": "up", "running": "up", "new": "up", "paused": "up",
    "late": "late", "unknown": "late",
    "down": "down",
}  # fmt: skip
SEVERITY = {state: rank for rank, state in enumerate(get_args(BadgeState))}
COLOURS = {"up": "#4c1", "late": "#fe7d37", "down": "#e05d44"}
SHIELDS_COLOURS = {"up": "brightgreen", "late": "orange", "down": "red"}


def badge_state(status: str, states: int) -> BadgeState:
    """The badge's state for a heartbeat's shown status (see the table above)."""
    state = THREE_STATES[status]
    return "up" if states == 2 and state == "late" else state


def worst(states: list[BadgeState]) -> BadgeState:
    return max(states, key=SEVERITY.__getitem__, default="up")


def _project(ctx: ApiContext, badge_key: str) -> ProjectConfig | None:
    """The project whose badge key this is. A scan over the projects (there are few; each
    compared in constant time, so the answer's timing says nothing of the key)."""
    wanted = badge_key.encode()
    found = None
    for project_id in list(ctx.projects):
        project = ctx.projects.get(project_id)
        if (
            project is not None
            and project.badge_key
            and hmac.compare_digest(project.badge_key.encode(), wanted)
        ):
            found = project
    return found


def _heartbeat(ctx: ApiContext, project_id: str, what: str) -> MonitorConfig | None:
    ids = ctx.catalog.with_slug(project_id, what)
    monitor = ctx.monitors.get(ids[0] if ids else what)
    return monitor if monitor is not None and monitor.project_id == project_id else None


def _status(ctx: ApiContext, monitor: MonitorConfig) -> str:
    return shown_status(monitor, ctx.statuses.get(monitor.id)).status


async def _tag_statuses(ctx: ApiContext, project_id: str, tag: str) -> list[str]:
    statuses: list[str] = []
    after = None
    while True:
        page, after = await ctx.catalog.page(project_id, limit=TAG_PAGE, tag=tag, after=after)
        statuses += [_status(ctx, monitor) for monitor in page]
        if after is None:
            return statuses


async def _state(request: web.Request, query: BadgeQuery) -> tuple[BadgeState, str] | None:
    """The badge's state and label, or None: no such badge."""
    info = request.match_info
    badge_key, what, tag = info["badge_key"], info.get("what"), info.get("tag")
    if any(part is not None and len(part) > MAX_PART for part in (badge_key, what, tag)):
        return None
    ctx = request.app[API]
    project = _project(ctx, badge_key)
    if project is None:
        return None
    if tag is not None:
        statuses = await _tag_statuses(ctx, project.id, tag)
        if not statuses:
            return None
        label = tag
    elif what == PROJECT_WHAT:
        counts = ctx.catalog.counts(project.id)
        statuses = [status for status, count in counts.items() if count]
        label = "status"
    else:
        assert what is not None
        monitor = _heartbeat(ctx, project.id, what)
        if monitor is None:
            return None
        statuses = [_status(ctx, monitor)]
        label = what if what == monitor.slug else "status"  # an id is no label; the name is not shown
    state = worst([badge_state(status, query.states) for status in statuses])
    return state, query.label or label


def _not_found() -> web.Response:
    return error(404, NOT_FOUND)


async def svg_badge(request: web.Request, query: BadgeQuery) -> web.Response:
    found = await _state(request, query)
    if found is None:
        return _not_found()
    state, label = found
    return web.Response(
        text=render_svg(label, state),
        content_type="image/svg+xml",
        headers={
            **CACHE,
            "Content-Security-Policy": "default-src 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def json_badge(request: web.Request, query: BadgeQuery) -> web.Response:
    found = await _state(request, query)
    if found is None:
        return _not_found()
    state, label = found
    return answer(BadgeStatus(status=state, label=label), headers=CACHE)


async def shields_badge(request: web.Request, query: BadgeQuery) -> web.Response:
    found = await _state(request, query)
    if found is None:
        return _not_found()
    state, label = found
    return answer(ShieldsBadge(label=label, message=state, color=SHIELDS_COLOURS[state]), headers=CACHE)


# drawing ------------------------------------------------------------------------------------
NARROW = frozenset("fijlrt.,:;!|'() ")
WIDE = frozenset("mwMW@%")


def text_width(text: str) -> int:
    """Pixels of ``text`` in 11 px Verdana, near enough for a badge (no font metrics here)."""
    width = 0.0
    for char in text:
        if char in NARROW:
            width += 4
        elif char in WIDE:
            width += 10
        elif char.isupper() or char.isdigit():
            width += 7.5
        else:
            width += 7 if ord(char) < 0x2E80 else 11  # CJK and wider scripts take a full em
    return round(width)


def _xml_text(text: str) -> str:
    """``text`` safe inside an element or a double-quoted attribute (a control character,
    which XML 1.0 forbids even escaped, becomes U+FFFD)."""
    printable = "".join(char if char.isprintable() else "\ufffd" for char in text)
    return escape(printable, {'"': "&quot;"})


def render_svg(label: str, state: BadgeState) -> str:
    """A flat two-part badge, ``label | state``: shapes and text only (no script, no link,
    nothing fetched), so it shows under the strictest Content-Security-Policy."""
    left, right = text_width(label) + 12, text_width(state) + 12
    total = left + right
    title = _xml_text(f"{label}: {state}")
    text = _xml_text(label)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{COLOURS[state]}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14">{text}</text><text x="{left + right / 2}" y="14">{state}</text></g></svg>'
    )
