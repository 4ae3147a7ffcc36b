"""The JSON API: projects, heartbeats (monitors), channels, history, uptime, export.

Writes go to the compacted config topics (the single source of truth); reads come
from this service's views of those topics and from ClickHouse. Every request is
authenticated by a project API key (``Authorization: Bearer ...``); a project sees
only its own monitors, channels and history, and another project's ids are 404.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import msgspec
import structlog
from aiohttp import web

from services.notifier.channels import ChannelConfigError, validate_channel
from services.query.store import HistoryStore
from services.query.validation import InvalidField, iso, monitor_fields, parse_time_ms
from shared.bus import Bus, BusUnavailable
from shared.bus.view import ConfigView
from shared.events import ChannelConfig, MonitorConfig, ProjectConfig, encode
from shared.ids import hash_api_key, new_api_key, new_id, new_token, now_ms
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

EXPORT_COLUMNS = [
    "id", "received_at", "kind", "exit_code", "status", "message", "duration", "duration_raw",
    "source_ip", "user_agent", "method",
]


@dataclass
class ApiContext:
    settings: Settings
    bus: Bus
    topics: Topics
    store: HistoryStore
    monitors: ConfigView[MonitorConfig]
    channels: ConfigView[ChannelConfig]
    projects: ConfigView[ProjectConfig]

    def project_for_key(self, key: str) -> ProjectConfig | None:
        digest = hash_api_key(key)
        for project in self.projects.values():
            if digest in project.api_key_hashes:
                return project
        return None


API = web.AppKey("api", ApiContext)
PROJECT = "pingura.project"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def errors_and_auth(request: web.Request, handler):
    auth = request.headers.get("Authorization", "")
    key = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("X-Api-Key", "")
    project = request.app[API].project_for_key(key) if key else None
    if project is None:
        return _error(401, "missing or invalid API key (send Authorization: Bearer <key>)")
    request[PROJECT] = project
    try:
        return await handler(request)
    except InvalidField as exc:
        return _error(400, str(exc))
    except ChannelConfigError as exc:
        return _error(400, str(exc))
    except BusUnavailable:
        return _error(503, "the event bus is unavailable, retry later")


async def _json_body(request: web.Request):
    try:
        return await request.json(loads=msgspec.json.decode)
    except (msgspec.DecodeError, ValueError):
        raise InvalidField("body", "is not valid JSON") from None


# projects -------------------------------------------------------------------
async def create_project(request: web.Request) -> web.Response:
    if not request[PROJECT].admin:
        return _error(403, "only an admin key can create projects")
    body = await _json_body(request)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise InvalidField("name", "required, 1-200 characters")
    key = new_api_key()
    project = ProjectConfig(id=new_id("prj"), name=name.strip(), api_key_hashes=[hash_api_key(key)], created_ms=now_ms())
    await _save(request, request.app[API].topics.projects, project, request.app[API].projects)
    log.info("query.project.created", project_id=project.id)
    return web.json_response({"id": project.id, "name": project.name, "api_key": key}, status=201)


async def current_project(request: web.Request) -> web.Response:
    project = request[PROJECT]
    return web.json_response({"id": project.id, "name": project.name, "admin": project.admin})


async def _save(request: web.Request, topic: str, event, view: ConfigView) -> None:
    await request.app[API].bus.publish(topic, event.id, encode(event))
    view.put(event)


# heartbeats -----------------------------------------------------------------
def _monitor_or_404(request: web.Request) -> MonitorConfig:
    monitor = request.app[API].monitors.get(request.match_info["id"])
    if monitor is None or monitor.project_id != request[PROJECT].id:
        raise web.HTTPNotFound(text='{"error": "heartbeat not found"}', content_type="application/json")
    return monitor


def _project_channels(request: web.Request) -> set[str]:
    return {c.id for c in request.app[API].channels.values() if c.project_id == request[PROJECT].id}


def _monitor_json(ctx: ApiContext, m: MonitorConfig, status: dict | None) -> dict:
    state = status or {}
    current = "paused" if m.paused else state.get("status", "new")
    return {
        "id": m.id,
        "name": m.name,
        "token": m.token,
        "ping_url": f"{ctx.settings.ping_base_url}/api/heartbeat/{m.token}",
        "status": current,
        "status_since": iso(state.get("at_ms")),
        "status_reason": state.get("reason"),
        "interval": m.interval_s,
        "grace": m.grace_s,
        "max_consecutive_misses": m.max_consecutive_misses,
        "channels": m.channels,
        "tags": m.tags,
        "paused": m.paused,
        "created_at": iso(m.created_ms),
        "updated_at": iso(m.updated_ms),
    }


async def create_heartbeat(request: web.Request) -> web.Response:
    ctx = request.app[API]
    fields = monitor_fields(await _json_body(request), creating=True, known_channels=_project_channels(request))
    at = now_ms()
    monitor = MonitorConfig(
        id=new_id("hb"), project_id=request[PROJECT].id, token=new_token(), created_ms=at, updated_ms=at, **fields
    )
    await _save(request, ctx.topics.monitors, monitor, ctx.monitors)
    log.info("query.heartbeat.created", monitor_id=monitor.id, project_id=monitor.project_id)
    return web.json_response(_monitor_json(ctx, monitor, None), status=201)


async def list_heartbeats(request: web.Request) -> web.Response:
    ctx = request.app[API]
    project_id = request[PROJECT].id
    statuses = await ctx.store.current_status(project_id)
    monitors = sorted((m for m in ctx.monitors.values() if m.project_id == project_id), key=lambda m: m.created_ms)
    tag = request.query.get("tag")
    if tag:
        monitors = [m for m in monitors if tag in m.tags]
    return web.json_response({"heartbeats": [_monitor_json(ctx, m, statuses.get(m.id)) for m in monitors]})


async def get_heartbeat(request: web.Request) -> web.Response:
    ctx = request.app[API]
    monitor = _monitor_or_404(request)
    statuses = await ctx.store.current_status(monitor.project_id)
    return web.json_response(_monitor_json(ctx, monitor, statuses.get(monitor.id)))


async def _update(request: web.Request, monitor: MonitorConfig, **changes) -> web.Response:
    ctx = request.app[API]
    updated = msgspec.structs.replace(monitor, updated_ms=now_ms(), revision=monitor.revision + 1, **changes)
    await _save(request, ctx.topics.monitors, updated, ctx.monitors)
    log.info("query.heartbeat.updated", monitor_id=monitor.id, fields=sorted(changes))
    statuses = await ctx.store.current_status(monitor.project_id)
    return web.json_response(_monitor_json(ctx, updated, statuses.get(updated.id)))


async def patch_heartbeat(request: web.Request) -> web.Response:
    monitor = _monitor_or_404(request)
    fields = monitor_fields(await _json_body(request), creating=False, known_channels=_project_channels(request))
    return await _update(request, monitor, **fields)


async def delete_heartbeat(request: web.Request) -> web.Response:
    monitor = _monitor_or_404(request)
    await _update(request, monitor, deleted=True)
    return web.Response(status=204)


async def pause_heartbeat(request: web.Request) -> web.Response:
    return await _update(request, _monitor_or_404(request), paused=True)


async def resume_heartbeat(request: web.Request) -> web.Response:
    return await _update(request, _monitor_or_404(request), paused=False)


async def rotate_token(request: web.Request) -> web.Response:
    return await _update(request, _monitor_or_404(request), token=new_token())


# history ----------------------------------------------------------------------
async def list_checkins(request: web.Request) -> web.Response:
    monitor = _monitor_or_404(request)
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise InvalidField("limit", "must be a whole number") from None
    if not 1 <= limit <= 1000:
        raise InvalidField("limit", "must be from 1 to 1000")
    try:
        rows, cursor = await request.app[API].store.history(
            monitor.project_id, monitor.id, limit=limit, before=request.query.get("before")
        )
    except ValueError as exc:
        raise InvalidField("before", str(exc)) from None
    return web.json_response({"checkins": rows, "next": cursor})


async def get_uptime(request: web.Request) -> web.Response:
    monitor = _monitor_or_404(request)
    uptime = await request.app[API].store.uptime(monitor.project_id, monitor.id, now_ms(), monitor.created_ms)
    return web.json_response({"heartbeat_id": monitor.id, "uptime": uptime})


async def get_timings(request: web.Request) -> web.Response:
    monitor = _monitor_or_404(request)
    now = now_ms()
    to_ms = parse_time_ms("to", request.query.get("to"), now)
    from_ms = parse_time_ms("from", request.query.get("from"), to_ms - 7 * 86400_000)
    bucket_s = _bucket_seconds(request.query.get("bucket", "1h"))
    if (to_ms - from_ms) / 1000 / bucket_s > 5000:
        raise InvalidField("bucket", "too small for this range (at most 5000 buckets)")
    rows = await request.app[API].store.timings(monitor.project_id, monitor.id, from_ms, to_ms, bucket_s)
    return web.json_response({"heartbeat_id": monitor.id, "bucket_s": bucket_s, "points": rows})


def _bucket_seconds(raw: str) -> int:
    from shared.durations import parse_duration_s

    try:
        seconds = int(parse_duration_s(raw))
    except ValueError as exc:
        raise InvalidField("bucket", str(exc)) from None
    if seconds < 60:
        raise InvalidField("bucket", "must be at least 1m")
    return seconds


async def export_checkins(request: web.Request) -> web.StreamResponse:
    monitor = _monitor_or_404(request)
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise InvalidField("format", "must be csv or json")
    now = now_ms()
    to_ms = parse_time_ms("to", request.query.get("to"), now)
    from_ms = parse_time_ms("from", request.query.get("from"), 0)
    if from_ms > to_ms:
        raise InvalidField("from", "must not be after to")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8" if fmt == "csv" else "application/json",
            "Content-Disposition": f'attachment; filename="{monitor.id}-checkins.{fmt}"',
        }
    )
    await response.prepare(request)
    first = True
    if fmt == "csv":
        await response.write(_csv_line(EXPORT_COLUMNS))
    else:
        await response.write(b"[")
    async for chunk in request.app[API].store.export(monitor.project_id, monitor.id, from_ms, to_ms):
        if fmt == "csv":
            await response.write(b"".join(_csv_line([_cell(row.get(c)) for c in EXPORT_COLUMNS]) for row in chunk))
        else:
            parts = []
            for row in chunk:
                parts.append(b"\n" if first else b",\n")
                parts.append(msgspec.json.encode({c: row.get(c) for c in EXPORT_COLUMNS}))
                first = False
            await response.write(b"".join(parts))
    if fmt == "json":
        await response.write(b"\n]\n")
    await response.write_eof()
    return response


def _cell(value) -> str:
    return "" if value is None else str(value)


def _csv_line(values: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()


# channels -------------------------------------------------------------------
def _channel_json(channel: ChannelConfig) -> dict:
    return {
        "id": channel.id,
        "kind": channel.kind,
        "name": channel.name,
        "config": channel.config,
        "created_at": iso(channel.created_ms),
    }


async def create_channel(request: web.Request) -> web.Response:
    ctx = request.app[API]
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    unknown = sorted(set(body) - {"kind", "name", "config"})
    if unknown:
        raise InvalidField(unknown[0], "unknown field")
    kind, name, config = body.get("kind"), body.get("name", ""), body.get("config", {})
    if not isinstance(kind, str):
        raise InvalidField("kind", "required")
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidField("name", "must be a string of at most 200 characters")
    if not isinstance(config, dict):
        raise InvalidField("config", "must be a JSON object")
    normalized = validate_channel(kind, config, ctx.settings)
    at = now_ms()
    channel = ChannelConfig(
        id=new_id("ch"), project_id=request[PROJECT].id, kind=kind, name=name or kind, config=normalized,
        created_ms=at, updated_ms=at,
    )
    await _save(request, ctx.topics.channels, channel, ctx.channels)
    log.info("query.channel.created", channel_id=channel.id, kind=kind)
    return web.json_response(_channel_json(channel), status=201)


def _channel_or_404(request: web.Request) -> ChannelConfig:
    channel = request.app[API].channels.get(request.match_info["id"])
    if channel is None or channel.project_id != request[PROJECT].id:
        raise web.HTTPNotFound(text='{"error": "channel not found"}', content_type="application/json")
    return channel


async def list_channels(request: web.Request) -> web.Response:
    project_id = request[PROJECT].id
    channels = [c for c in request.app[API].channels.values() if c.project_id == project_id]
    return web.json_response({"channels": [_channel_json(c) for c in sorted(channels, key=lambda c: c.created_ms)]})


async def get_channel(request: web.Request) -> web.Response:
    return web.json_response(_channel_json(_channel_or_404(request)))


async def delete_channel(request: web.Request) -> web.Response:
    ctx = request.app[API]
    channel = _channel_or_404(request)
    gone = msgspec.structs.replace(channel, deleted=True, updated_ms=now_ms())
    await _save(request, ctx.topics.channels, gone, ctx.channels)
    return web.Response(status=204)


def api_app(ctx: ApiContext) -> web.Application:
    """The API as a sub-application mounted at ``/api/v1``: its middleware (auth, errors)
    never runs on the ping path."""
    app = web.Application(client_max_size=ctx.settings.max_api_body_bytes, middlewares=[errors_and_auth])
    app[API] = ctx
    r = app.router
    r.add_post("/projects", create_project)
    r.add_get("/projects/me", current_project)
    r.add_post("/heartbeats", create_heartbeat)
    r.add_get("/heartbeats", list_heartbeats)
    r.add_get("/heartbeats/{id}", get_heartbeat)
    r.add_patch("/heartbeats/{id}", patch_heartbeat)
    r.add_delete("/heartbeats/{id}", delete_heartbeat)
    r.add_post("/heartbeats/{id}/pause", pause_heartbeat)
    r.add_post("/heartbeats/{id}/resume", resume_heartbeat)
    r.add_post("/heartbeats/{id}/rotate-token", rotate_token)
    r.add_get("/heartbeats/{id}/checkins", list_checkins)
    r.add_get("/heartbeats/{id}/uptime", get_uptime)
    r.add_get("/heartbeats/{id}/timings", get_timings)
    r.add_get("/heartbeats/{id}/export", export_checkins)
    r.add_post("/channels", create_channel)
    r.add_get("/channels", list_channels)
    r.add_get("/channels/{id}", get_channel)
    r.add_delete("/channels/{id}", delete_channel)
    return app
