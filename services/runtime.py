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
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import structlog
from aiohttp import web

from shared.bus import Bus
from shared.bus.view import ConfigView, cancel_and_wait
from shared.errors import ConfigError
from shared.events import ChannelConfig, MonitorConfig, ProjectConfig, encode
from shared.ids import hash_api_key, new_api_key, new_id, now_ms
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

SERVICES = ("ingest", "evaluator", "notifier", "query")


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


async def ensure_first_project(settings: Settings, bus: Bus, projects: ConfigView[ProjectConfig]) -> None:
    """On a fresh install, create the admin project and hand its key to the operator
    through a 0600 file in the data directory (the key itself is never stored)."""
    key = settings.bootstrap_api_key
    if key and any(hash_api_key(key) in p.api_key_hashes for p in projects.values()):
        return
    if not key and len(projects):
        return
    key = key or new_api_key()
    project = ProjectConfig(
        id=new_id("prj"), name="default", api_key_hashes=[hash_api_key(key)], admin=True, created_ms=now_ms()
    )
    await bus.publish(Topics(settings.topic_prefix).projects, project.id, encode(project))
    projects.put(project)
    if not settings.bootstrap_api_key:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / "admin-api-key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        log.info("serve.api_key.created", project_id=project.id, path=str(path))


def _revision(event) -> int:
    return getattr(event, "revision", 0) or getattr(event, "updated_ms", 0)


async def build(stack: AsyncExitStack, settings: Settings, services: tuple[str, ...]) -> web.Application:
    """Start ``services`` on one bus; returns the HTTP app serving their routes."""
    topics = Topics(settings.topic_prefix)
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
        from services.query.consumer import HistoryWriter
        from services.query.store import HistoryStore
        from shared.clickhouse import open_client

        ch = open_client(settings)
        stack.push_async_callback(ch.close)
        store = HistoryStore(ch, settings.history_retention_days)
        await store.migrate()
        projects = await started(ConfigView(bus, topics.projects, ProjectConfig))
        await ensure_first_project(settings, bus, projects)
        ctx = ApiContext(
            settings=settings,
            bus=bus,
            topics=topics,
            store=store,
            monitors=await started(ConfigView(bus, topics.monitors, MonitorConfig, _revision)),
            channels=await started(ConfigView(bus, topics.channels, ChannelConfig, _revision)),
            projects=projects,
        )
        app.add_subapp("/api/v1", api_app(ctx))
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
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
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
        log.info("serve.started", services=list(services), host=settings.host, port=port,
                 bus="local" if settings.embedded else "kafka", data_dir=str(settings.data_dir))
        if ready is not None:
            await ready(port)
        await stop.wait()
        log.info("serve.stopping")
    log.info("serve.stopped")
