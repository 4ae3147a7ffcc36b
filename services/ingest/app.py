"""The ingest service: one HTTP ping in, one durable ``Ping`` event out.

``200 OK`` is sent only after the bus said the event is durable; when it cannot take
it, ``503`` with ``Retry-After``. Nothing else happens on this path: no database,
no evaluation.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import hdrs, web

from services.ingest.logic import (
    MAX_USER_AGENT_CHARS,
    PingRejected,
    client_ip,
    header_text,
    parse_metadata,
    parse_outcome,
    refuse_undecodable,
)
from services.ingest.store import TokenIndex
from shared.bus import Bus, BusUnavailable
from shared.events import Ping, encode
from shared.ids import new_ping_id, now_ms
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

TOKEN_INDEX = web.AppKey("token_index", TokenIndex)
BUS = web.AppKey("bus", Bus)
SETTINGS = web.AppKey("settings", Settings)
TOPICS = web.AppKey("topics", Topics)

_HEADERS = {"Cache-Control": "no-store"}


def _text(status: int, body: str, **headers) -> web.Response:
    return web.Response(status=status, body=(body + "\n").encode(), content_type="text/plain",
                        headers={**_HEADERS, **headers})


async def whole_body(request: web.Request, settings: Settings) -> bytes:
    """The body once all of it has arrived: ``content.read(n)`` would return whatever
    happened to be buffered, and a ping must never be recorded from part of its body."""
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PingRejected(413, f"body is larger than {limit} bytes")
    chunks, size = [], 0
    timeout_s = settings.ping_body_timeout_s
    try:
        async with asyncio.timeout(timeout_s if timeout_s > 0 else None):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > limit:  # chunked, or more than Content-Length promised
                    raise PingRejected(413, f"body is larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise PingRejected(408, f"the body did not arrive within {timeout_s:g}s") from None
    except (web.RequestPayloadError, ConnectionError):
        raise PingRejected(400, "the body ended early or is not framed as declared") from None
    return b"".join(chunks)


async def handle_ping(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    received_ms = now_ms()
    try:
        kind, exit_code = parse_outcome(request.match_info.get("suffix", ""))
        refuse_undecodable(request.headers)
        body = await whole_body(request, settings)
        declared = request.content_type if hdrs.CONTENT_TYPE in request.headers else ""
        query = request.query if request.query_string else {}
        fields = parse_metadata(query, body, declared) if query or body else {}
    except PingRejected as exc:
        log.info("ingest.ping.rejected", status=exc.status, reason=exc.reason)
        return _text(exc.status, exc.reason)

    found = await app[TOKEN_INDEX].resolve(request.match_info["token"])
    if found is None:
        return _text(404, "not found: unknown ping token")
    monitor_id, project_id = found
    ping = Ping(
        id=new_ping_id(received_ms),
        monitor_id=monitor_id,
        project_id=project_id,
        received_ms=received_ms,
        kind=kind,
        exit_code=exit_code,
        source_ip=client_ip(request.remote, request.headers.get("X-Forwarded-For"), settings.trusted_proxies),
        user_agent=header_text(request.headers.get("User-Agent", ""), MAX_USER_AGENT_CHARS),
        method=request.method,
        **fields,
    )
    try:
        await app[BUS].publish(app[TOPICS].pings, monitor_id, encode(ping))
    except BusUnavailable as exc:
        log.warning("ingest.ping.unavailable", monitor_id=monitor_id, error=str(exc))
        return _text(503, "unavailable: could not store the ping, retry later", **{"Retry-After": "5"})
    log.debug("ingest.ping.accepted", monitor_id=monitor_id, ping_id=ping.id, kind=kind)
    return _text(200, "OK")


def add_ingest_routes(app: web.Application) -> None:
    for path in ("/api/heartbeat/{token}", "/api/heartbeat/{token}/{suffix}"):
        app.router.add_post(path, handle_ping)
        app.router.add_get(path, handle_ping)  # and HEAD: crontab one-liners use plain curl


def ingest_app(settings: Settings, bus: Bus, topics: Topics, index: TokenIndex) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    attach(app, settings, bus, topics, index)
    add_ingest_routes(app)
    return app


def attach(app: web.Application, settings: Settings, bus: Bus, topics: Topics, index: TokenIndex) -> None:
    app[SETTINGS] = settings
    app[BUS] = bus
    app[TOPICS] = topics
    app[TOKEN_INDEX] = index
