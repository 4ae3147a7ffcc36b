"""Assembling services into a running process.

``pingura serve`` runs all four on the embedded bus and chDB; ``pingura <service>``
runs one (on Kafka). Each service is a list of parts with ``start``/``close``; they
start in order and close in reverse, so nothing outlives what it depends on.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import structlog
from aiohttp import web

from services.datadir import DataDirBusy, owning
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
FIRST_START_KEY_FILE = web.AppKey("first_start_key_file", Path)
"""Set on the app when this start made the admin key: ``run`` then tells the operator where it is."""


async def open_bus(settings: Settings) -> Bus:
    if settings.embedded:
        from shared.bus.local import LocalBus

        bus: Bus = LocalBus(settings.data_dir / "bus.sqlite3", default_partitions=settings.partition_count)
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


async def build(stack: AsyncExitStack, settings: Settings, services: tuple[str, ...]) -> web.Application:
    """Start ``services`` on one bus; returns the HTTP app serving their routes."""
    topics = Topics(settings.topic_prefix)
    if settings.embedded:
        try:  # `pingura keys` may hold it for a moment when it found no server
            stack.enter_context(owning(settings.data_dir, wait_s=10))
        except DataDirBusy as exc:
            raise ConfigError(f"{exc} (is another `pingura serve` running there?)") from None
    bus = await open_bus(settings)
    stack.push_async_callback(bus.close)

    async def started(part):
        await part.start()
        stack.push_async_callback(part.close)
        return part

    app = web.Application(client_max_size=settings.max_api_body_bytes)
    app.router.add_get("/healthz", healthz)

    if "ingest" in services:
        from services.ingest.app import add_ingest_routes, attach
        from services.ingest.store import TokenIndex

        index = await started(TokenIndex(bus, topics))
        attach(app, settings, bus, topics, index)
        add_ingest_routes(app)

    if "query" in services:
        from services.query.app import ApiContext, api_app
        from services.query.auth.keys import KeyIndex, ProjectsView
        from services.query.auth.routes import add_session_routes
        from services.query.auth.sessions import Sessions, load_secret
        from services.query.catalog import Catalog, WatchedConfigView
        from services.query.consumer import HistoryWriter
        from services.query.status_view import StatusView
        from services.query.store import HistoryStore
        from services.query.web.pages import add_page_routes
        from shared.clickhouse import open_client

        ch = open_client(settings)
        stack.push_async_callback(ch.close)
        store = HistoryStore(ch, settings.history_retention_days)
        await store.migrate()
        projects = await started(ProjectsView(bus, topics.projects))
        keys = await started(KeyIndex(bus, topics.keys, projects))
        accounts = Accounts(bus, topics, projects, keys)
        key_file = await ensure_first_project(settings, accounts)
        if key_file is not None:
            app[FIRST_START_KEY_FILE] = key_file
        monitors = await started(WatchedConfigView(bus, topics.monitors, MonitorConfig, _revision))
        statuses = await started(StatusView(bus, topics))
        ctx = ApiContext(
            settings=settings,
            bus=bus,
            topics=topics,
            store=store,
            monitors=monitors,
            channels=await started(ConfigView(bus, topics.channels, ChannelConfig, _revision)),
            projects=projects,
            statuses=statuses,
            catalog=Catalog(monitors, statuses),  # indexes both views as they are, then follows them
            keys=keys,
            sessions=Sessions(load_secret(settings), settings.session_ttl_s),
        )
        app.add_subapp("/api/v1", api_app(ctx))
        add_session_routes(app, ctx)
        add_page_routes(app)
        if settings.embedded:  # on Kafka, `pingura keys` publishes there itself
            from services.query.control import ControlSocket

            await started(ControlSocket(settings.data_dir, accounts))
        await started(HistoryWriter(settings, bus, topics, store))

    if "evaluator" in services:
        from services.evaluator.consumer import Evaluator
        from services.evaluator.ticker import Ticker

        await started(Evaluator(settings, bus, topics))
        await started(Ticker(settings, bus, topics))

    if "notifier" in services:
        from services.notifier.consumer import Notifier

        await started(Notifier(settings, bus, topics))

    if settings.embedded:
        stack.push_async_callback(cancel_and_wait, asyncio.create_task(_housekeeping(bus)))
    return app


def _welcome(settings: Settings, port: int, key_file: Path) -> None:
    """Printed on the first start only (the start that wrote the key file), for a person:
    plain text on stdout, not a log line they would have to dig out."""
    host = "localhost" if settings.host in ("", "0.0.0.0", "::") else settings.host
    host = f"[{host}]" if ":" in host else host
    print(f"\nPingura is running: http://{host}:{port}/\n"
          f"Sign in with the admin API key, which is in {key_file.absolute()}\n", flush=True)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _housekeeping(bus: Bus) -> None:
    """Compaction and retention of the embedded log, every ten minutes."""
    while True:
        try:
            removed = await bus.compact()  # type: ignore[attr-defined]
            log.info("bus.local.compacted", removed=removed)
        except Exception:
            log.exception("bus.local.compaction_failed")
        await asyncio.sleep(600)


async def run(settings: Settings, services: tuple[str, ...], ready: Callable[[int], Awaitable[None]] | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        app = await build(stack, settings, services)
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
            site = web.TCPSite(runner, settings.host, settings.port, reuse_port=True)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        else:
            port = 0
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # GC's scans, so its collections stay short on the ping path.
        gc.collect()
        gc.freeze()
        # The bus writer thread commits pings; while the loop runs a long pure-Python step
        # (an API page, an export) it waits for the GIL up to the switch interval each time.
        # 1 ms instead of 5 ms: measured ping p99 during list calls went from 371 ms to 28 ms
        # in a profiling harness (docs/PERFORMANCE.md, section 8).
        sys.setswitchinterval(0.001)
        log.info("serve.started", services=list(services), host=settings.host, port=port,
                 bus="local" if settings.embedded else "kafka", data_dir=str(settings.data_dir))
        if FIRST_START_KEY_FILE in app and serves_http:
            _welcome(settings, port, app[FIRST_START_KEY_FILE])
        if ready is not None:
            await ready(port)
        await stop.wait()
        log.info("serve.stopping")
    log.info("serve.stopped")
