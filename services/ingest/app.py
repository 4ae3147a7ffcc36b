"""The ingest service: one HTTP ping in, one durable ``Ping`` event out.

``200 OK`` is sent only after the bus said the event is durable; when it cannot take
it, ``503`` with ``Retry-After``; likewise while the token index is still being read at
start (a token it has not read yet may exist: never ``404`` then). Nothing else happens
on this path: no database,
no evaluation (a heartbeat created by a ping to a new slug is one more record on the
bus, written before the ping's).

Several URL families, one event: Pingura's own ``/api/heartbeat/{token}``; Healthchecks'
``/ping/{token}`` and ``/ping/{ping_key}/{slug}`` (answered as Healthchecks answers, whose
clients read the text); Uptime Kuma's ``/api/push/{token}`` (answered in its JSON); and
Cronitor's telemetry ``/p/{ping_key}/{slug}``. Each :class:`Dialect` says how its family
answers; what a request means is read by :mod:`services.ingest.logic` the same way for all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import hdrs, web

from services.ingest.logic import (
    CRONITOR_QUERY_READ,
    HC_NOT_FOUND,
    INSTANCE_HEADER,
    MAX_USER_AGENT_CHARS,
    MIN_KEPT_BYTES,
    QUERY_READ,
    PingRejected,
    check_slug,
    client_ip,
    header_text,
    parse_instance,
    parse_kuma_query,
    parse_metadata,
    parse_outcome,
    parse_run_id,
    query_fields,
    refuse_undecodable,
    refuse_undecodable_query,
)
from services.ingest.provision import Provisioner
from services.ingest.shortcut import PINGURA_PATHS
from services.ingest.store import TokenIndex
from shared.bus import Bus, BusUnavailable
from shared.clock import now_ms
from shared.events import Ping, encode
from shared.ids import new_ping_id, token_key
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

TOKEN_INDEX = web.AppKey("token_index", TokenIndex)
PROVISIONER = web.AppKey("provisioner", Provisioner)
BUS = web.AppKey("bus", Bus)
SETTINGS = web.AppKey("settings", Settings)
TOPICS = web.AppKey("topics", Topics)
PING_LOG = web.AppKey("ping_log", structlog.typing.FilteringBoundLogger)
"""The module's logger resolved once configured: every ping logs (at debug), and a call on
the lazy proxy costs about 1 µs even when the level drops it (0.2 µs resolved)."""

Handler = Callable[[web.Request], Awaitable[web.Response]]
_HEADERS = {"Cache-Control": "no-store"}
UNAVAILABLE = "unavailable: could not store the ping, retry later"
RETRY_AFTER_S = 5
STARTING = "unavailable: starting up, retry in a moment"
STARTING_RETRY_AFTER_S = 2


def _text(status: int, body: str, **headers) -> web.Response:
    return web.Response(
        status=status, body=(body + "\n").encode(), content_type="text/plain", headers={**_HEADERS, **headers}
    )


def _retry_after(exc: PingRejected) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else {}


class Dialect:
    """How one URL family answers: Pingura's own, plain text with a reason."""

    def ok(self, settings: Settings, created: bool) -> web.Response:
        return _text(200, "OK")

    def refused(self, settings: Settings, exc: PingRejected) -> web.Response:
        return _text(exc.status, exc.reason, **_retry_after(exc))

    def not_found(self, settings: Settings) -> web.Response:
        return _text(404, "not found: unknown ping token")

    def unavailable(
        self, settings: Settings, reason: str = UNAVAILABLE, retry_after_s: int = RETRY_AFTER_S
    ) -> web.Response:
        return _text(503, reason, **{"Retry-After": str(retry_after_s)})


class HealthchecksDialect(Dialect):
    """Healthchecks' answers, to the byte where it has its own: ``OK``, ``Created`` (201,
    the first ping created the heartbeat), ``not found``, ``invalid url format``,
    ``invalid uuid format``, ``ambiguous slug`` (409). ``Ping-Body-Limit`` says how much
    of a body is kept (runitor sizes what it sends by it)."""

    def _answer(self, settings: Settings, status: int, body: str, **headers) -> web.Response:
        return web.Response(
            status=status,
            text=body,
            content_type="text/plain",
            headers={
                **_HEADERS,
                "Access-Control-Allow-Origin": "*",
                "Ping-Body-Limit": str(settings.max_output_bytes),
                **headers,
            },
        )

    def ok(self, settings: Settings, created: bool) -> web.Response:
        return self._answer(settings, 201, "Created") if created else self._answer(settings, 200, "OK")

    def refused(self, settings: Settings, exc: PingRejected) -> web.Response:
        status, body = exc.healthchecks or (exc.status, exc.reason)
        return self._answer(settings, status, body, **_retry_after(exc))

    def not_found(self, settings: Settings) -> web.Response:
        return self._answer(settings, *HC_NOT_FOUND)

    def unavailable(
        self, settings: Settings, reason: str = UNAVAILABLE, retry_after_s: int = RETRY_AFTER_S
    ) -> web.Response:
        return self._answer(settings, 503, reason, **{"Retry-After": str(retry_after_s)})


class KumaDialect(Dialect):
    """Uptime Kuma's push answers: ``{"ok": true}``, or ``{"ok": false, "msg": ...}`` (404
    for an unknown token or a ping out of range, as Kuma answers; other refusals keep
    their status)."""

    def _answer(self, status: int, body: dict, **headers) -> web.Response:
        return web.json_response(body, status=status, headers={**_HEADERS, **headers})

    def ok(self, settings: Settings, created: bool) -> web.Response:
        return self._answer(200, {"ok": True})

    def refused(self, settings: Settings, exc: PingRejected) -> web.Response:
        return self._answer(exc.status, {"ok": False, "msg": exc.reason}, **_retry_after(exc))

    def not_found(self, settings: Settings) -> web.Response:
        return self._answer(404, {"ok": False, "msg": "Monitor not found or not active."})

    def unavailable(
        self, settings: Settings, reason: str = UNAVAILABLE, retry_after_s: int = RETRY_AFTER_S
    ) -> web.Response:
        return self._answer(503, {"ok": False, "msg": reason}, **{"Retry-After": str(retry_after_s)})


PINGURA, HEALTHCHECKS, KUMA = Dialect(), HealthchecksDialect(), KumaDialect()


async def whole_body(request: web.Request, settings: Settings) -> tuple[bytes, int]:
    """The body once all of it has arrived: ``content.read(n)`` would return whatever
    happened to be buffered, and a ping must never be recorded from part of its body.

    Returns what is kept of it (its first ``max_output_bytes``, at least 64 KiB: the rest
    is read and dropped) and its size; over ``max_body_bytes`` it is refused whole."""
    limit = settings.max_body_bytes
    keep = max(settings.max_output_bytes, MIN_KEPT_BYTES)
    if request.content_length is not None and request.content_length > limit:
        raise PingRejected(413, f"body is larger than {limit} bytes")
    if not request.body_exists:  # most pings: nothing to wait for, so no timer to arm
        return b"", 0
    content = request.content
    if content.is_eof() and content.exception() is None:
        # A small body usually arrives with the head: all of it is buffered already, so no
        # timer (arming one was about 3% of a ping's CPU) and no await.
        body = content.read_nowait(-1)
        if len(body) > limit:
            raise PingRejected(413, f"body is larger than {limit} bytes")
        return body[:keep], len(body)
    chunks, size = [], 0
    timeout_s = settings.ping_body_timeout_s
    try:
        async with asyncio.timeout(timeout_s if timeout_s > 0 else None):
            while chunk := await request.content.readany():
                if size < keep:
                    chunks.append(chunk[: keep - size])
                size += len(chunk)
                if size > limit:  # chunked, or more than Content-Length promised
                    raise PingRejected(413, f"body is larger than {limit} bytes")
    except TimeoutError:
        raise PingRejected(408, f"the body did not arrive within {timeout_s:g}s") from None
    except (web.RequestPayloadError, ConnectionError):
        raise PingRejected(400, "the body ended early or is not framed as declared") from None
    return b"".join(chunks), size


async def _record(
    request: web.Request,
    dialect: Dialect,
    *,
    token: str | None = None,
    ping_key: str | None = None,
    slug: str | None = None,
    suffix: str = "",
    create: bool = False,
    cronitor: bool = False,
) -> web.Response:
    """Read the ping, find (or create) its heartbeat, publish it; answer in ``dialect``.
    Either ``token`` or ``ping_key`` and ``slug`` name the heartbeat. ``cronitor``: Cronitor's
    URL, whose ``?host=`` names the instance too."""
    app = request.app
    settings = app[SETTINGS]
    received_ms = now_ms()
    try:
        if slug is not None:
            check_slug(slug)
        exit_code, rid = None, None
        asked: dict[str, str] = {}
        if request.query_string:
            refuse_undecodable_query(
                request.rel_url.raw_query_string, CRONITOR_QUERY_READ if cronitor else QUERY_READ
            )
        if dialect is KUMA:
            kind, asked = parse_kuma_query(request.query)
        elif not request.query_string:  # most pings: no query to read
            kind, exit_code = parse_outcome(suffix)
        else:
            query = request.query
            kind, exit_code = parse_outcome(suffix, query.get("state"))
            rid = parse_run_id(query)
            asked = query_fields(query)
        instance = parse_instance(
            request.query if request.query_string else {},
            request.headers.get(INSTANCE_HEADER),
            cronitor=cronitor,
        )
        refuse_undecodable(request.headers)
        body, size = await whole_body(request, settings)
        declared = request.content_type if hdrs.CONTENT_TYPE in request.headers else ""
        fields = (
            parse_metadata(
                asked,
                body,
                declared,
                size=size,
                max_output_bytes=settings.max_output_bytes,
                body_metadata=dialect is not KUMA,
            )
            if asked or body
            else {}
        )
    except PingRejected as exc:
        log.info("ingest.ping.rejected", status=exc.status, reason=exc.reason)
        return dialect.refused(settings, exc)

    if not app[TOKEN_INDEX].ready:
        return dialect.unavailable(settings, STARTING, STARTING_RETRY_AFTER_S)
    created = False
    if token is not None:
        found = await app[TOKEN_INDEX].resolve(token)
        if found is None:
            return dialect.not_found(settings)
        monitor_id, project_id = found
    else:
        assert ping_key is not None and slug is not None
        found_slug = await _find_slug(request, dialect, ping_key, slug, create)
        if isinstance(found_slug, web.Response):
            return found_slug
        monitor_id, project_id, created = found_slug
    ping = Ping(
        id=new_ping_id(received_ms),
        monitor_id=monitor_id,
        project_id=project_id,
        received_ms=received_ms,
        kind=kind,
        exit_code=exit_code,
        rid=rid,
        source_ip=client_ip(request.remote, request.headers.get("X-Forwarded-For"), settings.trusted_proxies),
        user_agent=header_text(request.headers.get("User-Agent", ""), MAX_USER_AGENT_CHARS),
        method=request.method,
        instance=instance,
        **fields,
    )
    try:
        await app[BUS].publish(app[TOPICS].pings, monitor_id, encode(ping))
    except BusUnavailable as exc:
        log.warning("ingest.ping.unavailable", monitor_id=monitor_id, error=str(exc))
        return dialect.unavailable(settings)
    app[PING_LOG].debug(
        "ingest.ping.accepted", monitor_id=monitor_id, ping_id=ping.id, kind=kind, instance=instance
    )
    return dialect.ok(settings, created)


async def _find_slug(
    request: web.Request, dialect: Dialect, ping_key: str, slug: str, create: bool
) -> tuple[str, str, bool] | web.Response:
    """``(monitor_id, project_id, created)`` of the heartbeat a slug URL names, or the answer."""
    app = request.app
    settings = app[SETTINGS]
    index = app[TOKEN_INDEX]
    project = await index.projects.resolve(ping_key)
    if project is None:
        return dialect.not_found(settings)
    found = await index.resolve_slug(project.id, slug)
    if len(found) > 1:
        return dialect.refused(
            settings, PingRejected(409, "two heartbeats have this slug", (409, "ambiguous slug"))
        )
    if found:
        return found[0], project.id, False
    provisioner = app[PROVISIONER]
    if not (create and project.auto_create and provisioner.enabled):
        return dialect.not_found(settings)
    try:
        monitor_id, created = await provisioner.monitor_for(project.id, slug)
    except PingRejected as exc:
        return dialect.refused(settings, exc)
    except BusUnavailable as exc:
        log.warning("ingest.slug.unavailable", project_id=project.id, error=str(exc))
        return dialect.unavailable(settings)
    return monitor_id, project.id, created


async def handle_ping(request: web.Request) -> web.Response:
    """Pingura's own ``/api/heartbeat/{token}[/{suffix}]``."""
    return await _record(
        request, PINGURA, token=request.match_info["token"], suffix=request.match_info.get("suffix", "")
    )


async def handle_healthchecks_ping(request: web.Request) -> web.Response:
    """``/ping/{token}[/{suffix}]`` and ``/ping/{ping_key}/{slug}[/{suffix}]``, any method.
    A token is 32 characters and a ping key 22, so the first part says which it is."""
    first = request.match_info["first"]  # every route of this handler has it
    second, third = request.match_info.get("second"), request.match_info.get("third")
    if token_key(first) is not None:
        if third is not None:
            return HEALTHCHECKS.not_found(request.app[SETTINGS])
        return await _record(request, HEALTHCHECKS, token=first, suffix=second or "")
    if second is None:
        return HEALTHCHECKS.not_found(request.app[SETTINGS])
    return await _record(
        request,
        HEALTHCHECKS,
        ping_key=first,
        slug=second,
        suffix=third or "",
        create=request.query.get("create") == "1",
    )


async def handle_kuma_push(request: web.Request) -> web.Response:
    """Uptime Kuma's ``/api/push/{token}?status=up|down&msg=...&ping=<ms>``, any method."""
    return await _record(request, KUMA, token=request.match_info["token"])


async def handle_cronitor_telemetry(request: web.Request) -> web.Response:
    """Cronitor's ``/p/{key}/{monitor}?state=run|complete|fail``, any method. Cronitor
    creates a monitor for an unknown key, and so does this (as ``?create=1`` does)."""
    return await _record(
        request,
        HEALTHCHECKS,
        ping_key=request.match_info["ping_key"],
        slug=request.match_info["slug"],
        create=True,
        cronitor=True,
    )


def measured(handler: Handler, fmt: str, metrics: Metrics | None) -> Handler:
    """``handler``, counted and timed in ``metrics`` under the URL family ``fmt``.

    The wrapper runs on the event loop's thread, as the handler does, so the recorder counts
    in plain integers without a lock (shared/metrics/onloop.py). It costs one coroutine frame
    (about 0.1 µs measured; a plain function returning the handler's awaitable would not save
    it: aiohttp wraps a handler that is not a coroutine function in one of its own)."""
    if metrics is None:
        return handler
    record = metrics.ping_recorder(fmt)
    clock = time.perf_counter

    async def measured_handler(request: web.Request) -> web.Response:
        began = clock()
        try:
            response = await handler(request)
        except BaseException:
            record(clock() - began, 500)
            raise
        record(clock() - began, response.status)
        return response

    return measured_handler


def add_ingest_routes(app: web.Application, metrics: Metrics | None = None) -> None:
    """The ping routes; with ``metrics``, each URL family counted and timed there."""
    ping = measured(handle_ping, "pingura", metrics)
    for path in PINGURA_PATHS:
        app.router.add_post(path, ping)
        app.router.add_get(path, ping)  # and HEAD: crontab one-liners use plain curl
    healthchecks = measured(handle_healthchecks_ping, "healthchecks", metrics)
    for path in ("/ping/{first}", "/ping/{first}/{second}", "/ping/{first}/{second}/{third}"):
        app.router.add_route("*", path, healthchecks)
    app.router.add_route("*", "/api/push/{token}", measured(handle_kuma_push, "kuma", metrics))
    app.router.add_route(
        "*", "/p/{ping_key}/{slug}", measured(handle_cronitor_telemetry, "cronitor", metrics)
    )


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
    app[PING_LOG] = log.bind()
    app[PROVISIONER] = Provisioner(
        bus, topics, index, settings.auto_create_per_minute, settings.auto_create_max
    )
