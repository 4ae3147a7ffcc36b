"""Assembling services into a running process.

``pingura serve`` runs all four on the embedded bus and chDB; ``pingura <service>``
runs one (on Kafka). Each service is a list of parts with ``start``/``close``; they
start in order and close in reverse, so nothing outlives what it depends on.

The HTTP port opens as soon as the bus is open; the parts start behind it, ingest's first
(pings are what must not wait). Until what a route needs is built, it answers ``503`` with
``Retry-After`` (:class:`Readiness`; ``/healthz`` says which services are ready).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import structlog
from aiohttp import web

from services.datadir import DataDirBusy, owning
from services.ingest.worker import PEER_HEADER
from services.query.auth.accounts import Accounts
from shared.bus import Bus
from shared.bus.view import ConfigView, cancel_and_wait
from shared.errors import ConfigError
from shared.events import ChannelConfig, MonitorConfig
from shared.ids import new_api_key, new_id
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

SERVICES = ("ingest", "evaluator", "notifier", "query")
ADMIN_KEY_FILE = "admin-api-key"
TOKEN_SNAPSHOT_FILE = "ingest-tokens.snapshot"
LINK_SOCKET = "bus.sock"
HTTP_SOCKET = "http.sock"
STARTING_RETRY_AFTER_S = 2


class Readiness:
    """Which services of this process are started. A route of one that is not answers
    ``503`` with ``Retry-After``; nothing is answered from a view not built yet."""

    def __init__(self, services: tuple[str, ...]):
        self.services = {name: False for name in services}
        self.key_file: Path | None = None
        """Set when this start made the admin key: ``run`` then tells the operator where it is."""

    @property
    def complete(self) -> bool:
        return all(self.services.values())


READINESS = web.AppKey("readiness", Readiness)
StartParts = Callable[[asyncio.Event], Awaitable[None]]


async def open_bus(settings: Settings) -> Bus:
    if settings.embedded:
        from shared.bus.local import LocalBus

        bus: Bus = LocalBus(settings.data_dir / "bus.sqlite3", default_partitions=settings.partition_count,
                            fast_topics=frozenset({Topics(settings.topic_prefix).pings}))
    else:
        try:
            from shared.bus.kafka import KafkaBus
        except ImportError as exc:  # pragma: no cover - until the Kafka adapter lands
            raise ConfigError(f"PINGURA_KAFKA_BOOTSTRAP is set but the Kafka adapter is unavailable: {exc}") from None
        bus = KafkaBus(settings)
    await bus.start()
    await bus.ensure_topics(Topics(settings.topic_prefix).specs(settings.partition_count))
    return bus


async def ensure_first_project(settings: Settings, accounts: Accounts) -> Path | None:
    """On a fresh install, create the admin project and its key, and hand the key to the
    operator through a 0600 file in the data directory (only its hash is stored).

    Returns that file when this call wrote it (the first start). The file comes first and
    the project last: a crash in between leaves no project, so the next start begins again.
    """
    key = settings.bootstrap_api_key
    if key and accounts.keys.find(key) is not None:
        return None
    if not key and len(accounts.projects):
        return None
    path = None
    if not key:
        key = new_api_key()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / ADMIN_KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    project_id = new_id("prj")
    await accounts.create_key(project_id, "admin", secret=key)
    await accounts.create_project("default", admin=True, project_id=project_id)
    log.info("serve.api_key.created", project_id=project_id, path=str(path) if path else None)
    return path


def _revision(event) -> int:
    return getattr(event, "revision", 0) or getattr(event, "updated_ms", 0)


async def build(stack: AsyncExitStack, settings: Settings,
                services: tuple[str, ...]) -> tuple[web.Application, StartParts]:
    """Open the bus and lay out the HTTP app with every route of ``services``. Returns it
    and ``start_parts(stop)``, which starts the parts in order and marks each service
    ready once its parts are; it gives up between two parts once ``stop`` is set. The
    parts close in reverse, after the HTTP server is gone (``run`` cleans it up first)."""
    topics = Topics(settings.topic_prefix)
    if settings.embedded:
        try:  # `pingura keys` may hold it for a moment when it found no server
            stack.enter_context(owning(settings.data_dir, wait_s=10))
        except DataDirBusy as exc:
            raise ConfigError(f"{exc} (is another `pingura serve` running there?)") from None
    bus = await open_bus(settings)
    stack.push_async_callback(bus.close)
    parts = AsyncExitStack()
    stack.push_async_callback(parts.aclose)

    async def started(part):
        await part.start()
        parts.push_async_callback(part.close)
        return part

    app = web.Application(client_max_size=settings.max_api_body_bytes)
    if ingest_elsewhere(settings, services):
        # Pings are answered by the ingest process (``run`` starts it); it publishes them
        # through this link, and passes every other request here with the client's address.
        from shared.bus.linked import BusLink

        link = BusLink(bus, settings.data_dir / LINK_SOCKET)
        await link.start()
        stack.push_async_callback(link.close)
        app.middlewares.append(_peer_from_ingest_process)
        services = tuple(name for name in services if name != "ingest")
    readiness = Readiness(services)
    app[READINESS] = readiness
    app.router.add_get("/healthz", healthz)
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    if "ingest" in services:
        from services.ingest.app import add_ingest_routes, attach
        from services.ingest.store import TokenIndex
        from services.ingest.token_snapshot import SnapshotFile

        snapshot = None
        if settings.embedded:
            snapshot = SnapshotFile(settings.data_dir / TOKEN_SNAPSHOT_FILE, bus.log_id)  # type: ignore[attr-defined]
        index = TokenIndex(bus, topics, snapshot=snapshot)
        attach(app, settings, bus, topics, index)  # pings answer 503 until the index is ready
        add_ingest_routes(app)

        async def start_ingest() -> None:
            await started(index)

        steps.append(("ingest", start_ingest))

    if "query" in services:
        from services.ingest.server import BodyGate
        from services.query.api.errors import error
        from services.query.app import ApiContext, api_app
        from services.query.auth.keys import KeyIndex, ProjectsView
        from services.query.auth.revocations import RevokedSessions
        from services.query.auth.routes import add_session_routes
        from services.query.auth.sessions import Sessions, load_secret
        from services.query.catalog import Catalog, WatchedConfigView
        from services.query.consumer import HistoryWriter
        from services.query.status_view import StatusView
        from services.query.store import HistoryStore
        from services.query.web.pages import add_page_routes
        from shared.clickhouse import open_client

        projects = ProjectsView(bus, topics.projects)
        keys = KeyIndex(bus, topics.keys, projects, failures_per_minute=settings.auth_failures_per_minute)
        accounts = Accounts(bus, topics, projects, keys)
        monitors = WatchedConfigView(bus, topics.monitors, MonitorConfig, _revision)
        statuses = StatusView(bus, topics)
        channels = ConfigView(bus, topics.channels, ChannelConfig, _revision)
        ctx = ApiContext(
            settings=settings,
            bus=bus,
            topics=topics,
            store=None,  # type: ignore[arg-type]  # set by start_query, before the API is ready
            monitors=monitors,
            channels=channels,
            projects=projects,
            statuses=statuses,
            catalog=None,  # type: ignore[arg-type]  # likewise, once the views it indexes are built
            keys=keys,
            sessions=Sessions(load_secret(settings), settings.session_ttl_s,
                              RevokedSessions(bus, topics.revoked_sessions)),
        )

        def starting(request: web.Request) -> web.Response:
            return error(503, "starting: the views are being built, retry in a moment",
                         headers={"Retry-After": str(STARTING_RETRY_AFTER_S)})

        api = api_app(ctx)
        api.middlewares.insert(0, _until_ready(readiness, "query", starting))
        # Outermost: every API body is read whole within the deadline before anything else.
        bodies = BodyGate(settings.ping_body_timeout_s, settings.max_body_reads)
        api.middlewares.insert(0, bodies.middleware)
        app.add_subapp("/api/v1", api)
        _add_routes_until_ready(app, lambda root: add_session_routes(root, ctx), readiness, "query", starting,
                                guard=bodies.guard_form)
        add_page_routes(app)  # files only: nothing to wait for

        async def start_query() -> None:
            ch = open_client(settings)
            parts.push_async_callback(ch.close)
            ctx.store = HistoryStore(ch, settings.history_retention_days)
            await ctx.store.migrate()
            await started(projects)
            await started(keys)
            await started(ctx.sessions.revoked)  # before any cookie is read: a signed-out one stays out
            readiness.key_file = await ensure_first_project(settings, accounts)
            await started(monitors)
            await started(statuses)
            await started(channels)
            ctx.catalog = Catalog(monitors, statuses)  # indexes both views as they are, then follows them
            if settings.embedded:  # on Kafka, `pingura keys` publishes there itself
                from services.query.control import ControlSocket

                await started(ControlSocket(settings.data_dir, accounts))
            await started(HistoryWriter(settings, bus, topics, ctx.store))

        steps.append(("query", start_query))

    if "evaluator" in services:
        from services.evaluator.consumer import Evaluator
        from services.evaluator.ticker import Ticker

        async def start_evaluator() -> None:
            await started(Evaluator(settings, bus, topics))
            await started(Ticker(settings, bus, topics))

        steps.append(("evaluator", start_evaluator))

    if "notifier" in services:
        from services.notifier.consumer import Notifier

        async def start_notifier() -> None:
            await started(Notifier(settings, bus, topics))

        steps.append(("notifier", start_notifier))

    async def start_parts(stop: asyncio.Event) -> None:
        for service, start in steps:
            if stop.is_set():
                return
            began = time.perf_counter()
            await start()
            readiness.services[service] = True
            # What is built lives as long as the process: keep it out of the cyclic GC's scans
            # now, so the collections while the next part builds stay short on the ping path.
            gc.freeze()
            log.info("serve.ready", service=service, took_s=round(time.perf_counter() - began, 3))
        if settings.embedded:
            parts.push_async_callback(cancel_and_wait, asyncio.create_task(_housekeeping(bus)))

    return app, start_parts


def ingest_elsewhere(settings: Settings, services: tuple[str, ...]) -> bool:
    """Whether ingest runs in a process of its own (``PINGURA_INGEST_PROCESS=1``, embedded only)."""
    return bool(settings.ingest_process) and settings.embedded and "ingest" in services


@web.middleware
async def _peer_from_ingest_process(request: web.Request, handler):
    """Requests come from the ingest process, over a socket only it can reach: the client
    is the one it names."""
    peer = request.headers.get(PEER_HEADER)
    return await handler(request.clone(remote=peer) if peer is not None else request)


def _until_ready(readiness: Readiness, service: str, starting: Callable[[web.Request], web.Response]):
    """Middleware for a sub-app: ``starting`` answers until ``service`` is ready."""

    @web.middleware
    async def until_ready(request: web.Request, handler):
        if not readiness.services[service]:
            return starting(request)
        return await handler(request)

    return until_ready


def _add_routes_until_ready(app: web.Application, add_routes: Callable[[web.Application], None],
                            readiness: Readiness, service: str,
                            starting: Callable[[web.Request], web.Response], guard=lambda handler: handler) -> None:
    """``add_routes(app)``, with ``starting`` answering for each handler until ``service`` is
    ready, then ``guard(handler)``. For routes on the root app, where a middleware would also
    run on every ping."""
    scratch = web.Application()
    add_routes(scratch)
    for key in scratch:
        app[key] = scratch[key]
    for route in scratch.router.routes():
        app.router.add_route(route.method, route.resource.canonical,  # type: ignore[union-attr]
                             _handler_until_ready(guard(route.handler), readiness, service, starting))


def _handler_until_ready(handler, readiness: Readiness, service: str, starting):
    async def until_ready(request: web.Request) -> web.StreamResponse:
        if not readiness.services[service]:
            return starting(request)
        return await handler(request)

    return until_ready


def _welcome(settings: Settings, port: int, key_file: Path) -> None:
    """Printed on the first start only (the start that wrote the key file), for a person:
    plain text on stdout, not a log line they would have to dig out."""
    host = "localhost" if settings.host in ("", "0.0.0.0", "::") else settings.host
    host = f"[{host}]" if ":" in host else host
    print(f"\nPingura is running: http://{host}:{port}/\n"
          f"Sign in with the admin API key, which is in {key_file.absolute()}\n", flush=True)


async def healthz(request: web.Request) -> web.Response:
    """200 once every service of the process is ready; until then 503 with ``Retry-After``
    (probes and load balancers wait), both saying which services are."""
    readiness = request.app[READINESS]
    body = {"ok": readiness.complete, "ready": readiness.complete, "services": readiness.services}
    if readiness.complete:
        return web.json_response(body)
    return web.json_response(body, status=503, headers={"Retry-After": str(STARTING_RETRY_AFTER_S)})


async def _housekeeping(bus: Bus) -> None:
    """Compaction and retention of the embedded log, every ten minutes (it logs what it did)."""
    while True:
        try:
            await bus.compact()  # type: ignore[attr-defined]
        except Exception:
            log.exception("bus.local.compaction_failed")
        await asyncio.sleep(600)


async def _start_ingest_process(stack: AsyncExitStack, settings: Settings, runner: web.AppRunner) -> int:
    """Serve this process's routes on a Unix socket in the data dir, and start the ingest
    process on the public port in front of it; returns that port. It stops first on the way
    out (its in-flight pings still need this process's bus)."""
    from services.ingest.supervisor import IngestProcess

    socket_path = settings.data_dir / HTTP_SOCKET
    socket_path.unlink(missing_ok=True)  # left by a process that died
    site = web.UnixSite(runner, str(socket_path))
    await site.start()
    socket_path.chmod(0o600)
    stack.callback(socket_path.unlink, missing_ok=True)
    ingest = IngestProcess(settings, settings.data_dir / LINK_SOCKET, socket_path)
    port = await ingest.start()
    stack.push_async_callback(ingest.close)
    return port


async def run(settings: Settings, services: tuple[str, ...], ready: Callable[[int], Awaitable[None]] | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down in order. ``ready(port)`` once every part started."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        app, start_parts = await build(stack, settings, services)
        readiness = app[READINESS]
        serves_http = "ingest" in services or "query" in services
        if serves_http:
            from services.ingest.server import GuardedAppRunner

            # Also for the API alone: every HTTP port must shed half-sent requests.
            # keepalive_timeout: an idle kept-alive connection may hold a descriptor for 75 s
            # (nginx's default), not aiohttp's hour.
            runner = GuardedAppRunner(app, header_timeout_s=settings.header_timeout_s, access_log=None,
                                      handle_signals=False, keepalive_timeout=75)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            if ingest_elsewhere(settings, services):
                port = await _start_ingest_process(stack, settings, runner)
            else:
                site = web.TCPSite(runner, settings.host, settings.port, reuse_port=True)
                await site.start()
                port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        else:
            port = 0
        # The bus writer thread commits pings; while the loop runs a long pure-Python step
        # (an API page, an export) it waits for the GIL up to the switch interval each time.
        # 1 ms instead of 5 ms: measured ping p99 during list calls went from 371 ms to 28 ms
        # in a profiling harness (docs/PERFORMANCE.md, section 8).
        sys.setswitchinterval(0.001)
        log.info("serve.listening", services=list(services), host=settings.host, port=port)
        starting = asyncio.create_task(start_parts(stop), name="start-parts")
        stopped = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
            await starting  # when stopped first: the part under way, then no more (or its error)
        finally:
            stopped.cancel()
        if readiness.complete:
            gc.collect()  # only what is not frozen yet
            gc.freeze()
            log.info("serve.started", services=list(services), host=settings.host, port=port,
                     bus="local" if settings.embedded else "kafka", data_dir=str(settings.data_dir))
            if readiness.key_file is not None and serves_http:
                _welcome(settings, port, readiness.key_file)
            if ready is not None:
                await ready(port)
            await stop.wait()
        log.info("serve.stopping")
    log.info("serve.stopped")
