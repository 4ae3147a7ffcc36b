"""Assembling services into a running process: the only place that does; only the command line
(:mod:`services.cli`) imports it.

``pingura serve`` runs all four on the embedded bus and chDB; ``pingura <service>``
runs one (on Kafka). Each service is built from the settings and the bus by its own
module (``services/<service>/service.py``); they start in order and close in reverse, so
nothing outlives what it depends on.

The HTTP port opens as soon as the bus is open; the services start behind it, ingest's first
(pings are what must not wait). Until what a route needs is built, it answers ``503`` with
``Retry-After`` (:class:`~services.parts.Readiness`; ``/healthz`` says which services are ready).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from pathlib import Path

import structlog
from aiohttp import web

from services.datadir import HTTP_SOCKET, LINK_SOCKET, DataDirBusy, owning
from services.ingest.worker import PEER_HEADER
from services.parts import READINESS, Readiness, Service, healthz
from shared.bus import Bus
from shared.bus.local import LocalBus
from shared.bus.open import open_bus
from shared.bus.view import cancel_and_wait
from shared.errors import ConfigError
from shared.metrics import Metrics
from shared.metrics.route import mount_metrics
from shared.settings import Settings

log = structlog.get_logger()

SERVICES = ("ingest", "evaluator", "notifier", "query")
StartServices = Callable[[asyncio.Event], Coroutine[None, None, None]]


def build_service(name: str, settings: Settings, bus: Bus, metrics: Metrics) -> Service:
    """The service called ``name``. Each is imported only by a process that runs it."""
    if name == "ingest":
        from services.ingest.service import build_ingest

        return build_ingest(settings, bus, metrics)
    if name == "query":
        from services.query.service import build_query

        return build_query(settings, bus, metrics)
    if name == "evaluator":
        from services.evaluator.service import build_evaluator

        return build_evaluator(settings, bus, metrics)
    if name == "notifier":
        from services.notifier.service import build_notifier

        return build_notifier(settings, bus, metrics)
    raise ConfigError(f"no service called {name!r} (known: {', '.join(SERVICES)})")


async def build(
    stack: AsyncExitStack, settings: Settings, names: tuple[str, ...]
) -> tuple[web.Application, list[Service], StartServices]:
    """Open the bus, build the services called ``names`` and lay out the HTTP app with their
    routes. Returns it, the services, and ``start_services(stop)``, which starts them in order
    and marks each ready once started; it gives up between two once ``stop`` is set. They
    close in reverse, after the HTTP server is gone (``run`` cleans it up first).

    The process's :class:`Metrics` is made here, once, and handed to the bus and the
    services; ``/metrics`` serves it (shared/metrics/route.py)."""
    if settings.embedded:
        try:  # `pingura keys` may hold it for a moment when it found no server
            stack.enter_context(owning(settings.data_dir, wait_s=10))
        except DataDirBusy as exc:
            raise ConfigError(f"{exc} (is another `pingura serve` running there?)") from None
    metrics = Metrics(process_name(names))
    bus = await open_bus(settings, metrics)
    stack.push_async_callback(bus.close)
    started = AsyncExitStack()
    stack.push_async_callback(started.aclose)

    app = web.Application(client_max_size=settings.max_api_body_bytes)
    if ingest_elsewhere(settings, names):
        # Pings are answered by the ingest process (``run`` starts it); it publishes them
        # through this link, and passes every other request here with the client's address.
        from shared.bus.link_owner import BusLink

        link = BusLink(bus, settings.data_dir / LINK_SOCKET)
        await link.start()
        stack.push_async_callback(link.close)
        app.middlewares.append(_peer_from_ingest_process)
        names = tuple(name for name in names if name != "ingest")
    readiness = Readiness(names)
    app[READINESS] = readiness
    app.router.add_get("/healthz", healthz)
    mount_metrics(app, metrics, settings.metrics_token)
    services = [build_service(name, settings, bus, metrics) for name in names]
    for service in services:
        service.mount(app, readiness)

    async def start_services(stop: asyncio.Event) -> None:
        for service in services:
            if stop.is_set():
                return
            began = time.perf_counter()
            started.push_async_callback(service.close)  # closes what started, also half way
            await service.start()
            readiness.services[service.name] = True
            # What is built lives as long as the process: keep it out of the cyclic GC's scans
            # now, so the collections while the next service builds stay short on the ping path.
            gc.freeze()
            log.info("serve.ready", service=service.name, took_s=round(time.perf_counter() - began, 3))
        if isinstance(bus, LocalBus):
            started.push_async_callback(cancel_and_wait, asyncio.create_task(_housekeeping(bus)))

    return app, services, start_services


def process_name(names: tuple[str, ...]) -> str:
    """The ``process`` label of this process's metrics: ``serve``, or the one service it runs."""
    return names[0] if len(names) == 1 else "serve"


def ingest_elsewhere(settings: Settings, services: tuple[str, ...]) -> bool:
    """Whether ingest runs in processes of its own (``PINGURA_INGEST_PROCESS=N``, embedded only)."""
    return bool(settings.ingest_process) and settings.embedded and "ingest" in services


@web.middleware
async def _peer_from_ingest_process(request: web.Request, handler):
    """Requests come from the ingest process, over a socket only it can reach: the client
    is the one it names."""
    peer = request.headers.get(PEER_HEADER)
    return await handler(request.clone(remote=peer) if peer is not None else request)


def _welcome(settings: Settings, port: int, key_file: Path | None, setup_link: str | None = None) -> None:
    """Printed on the first start (the start that wrote the key file), and on each start while
    no account exists (with a new setup link), for a person: plain text on stdout, not a log
    line they would have to dig out."""
    host = "localhost" if settings.host in ("", "0.0.0.0", "::") else settings.host
    host = f"[{host}]" if ":" in host else host
    base = f"http://{host}:{port}"
    lines = [f"\nPingura is running: {base}/"]
    if setup_link:
        lines.append(
            f"Create the first account (owner of the admin project) at:\n\n    {base}{setup_link}\n\n"
            "The link works once, for 24 hours; restarting Pingura while no account exists prints a new one."
        )
    if key_file is not None:
        lines.append(f"The admin API key (for scripts and the API) is in {key_file.absolute()}")
    print("\n".join(lines) + "\n", flush=True)


async def _housekeeping(bus: LocalBus) -> None:
    """Compaction and retention of the embedded log, every ten minutes (it logs what it did)."""
    while True:
        try:
            await bus.compact()
        except Exception:
            log.exception("bus.local.compaction_failed")
        await asyncio.sleep(600)


async def _start_ingest_process(stack: AsyncExitStack, settings: Settings, runner: web.AppRunner) -> int:
    """Serve this process's routes on a Unix socket in the data dir, and start the ingest
    processes (``PINGURA_INGEST_PROCESS=N``) on the public port in front of it; returns that
    port. They stop first on the way out (their in-flight pings still need this process's bus)."""
    from services.ingest.supervisor import IngestProcesses

    socket_path = settings.data_dir / HTTP_SOCKET
    socket_path.unlink(missing_ok=True)  # left by a process that died
    site = web.UnixSite(runner, str(socket_path))
    await site.start()
    socket_path.chmod(0o600)
    stack.callback(socket_path.unlink, missing_ok=True)
    ingest = IngestProcesses(settings, settings.data_dir / LINK_SOCKET, socket_path, settings.ingest_process)
    port = await ingest.start()
    stack.push_async_callback(ingest.close)
    return port


async def _listen(runner: web.AppRunner, settings: Settings, shared: bool) -> int:
    """Listen on the public port; returns it. Ingest and query instances may share one
    (``SO_REUSEPORT``); a process with neither (its port is for ``/metrics`` and ``/healthz``)
    must have its own, so a second one on the same host fails here instead of taking a share
    of another's requests."""
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=shared)
    try:
        await site.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}): give each"
            " service on this host its own --port (PINGURA_PORT)"
        ) from None
    return runner.addresses[0][1]


async def run(
    settings: Settings, names: tuple[str, ...], ready: Callable[[int], Awaitable[None]] | None = None
) -> None:
    """Run the services called ``names`` until SIGINT/SIGTERM, then shut down in order.
    ``ready(port)`` once every service started."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        app, _, start_services = await build(stack, settings, names)
        readiness = app[READINESS]
        serves_http = "ingest" in names or "query" in names
        # Every process listens: the evaluator and the notifier (Kafka mode) for ``/healthz``
        # and ``/metrics`` only.
        from services.ingest.server import GuardedAppRunner

        # Also for the API alone: every HTTP port must shed half-sent requests.
        # keepalive_timeout: an idle kept-alive connection may hold a descriptor for 75 s
        # (nginx's default), not aiohttp's hour.
        runner = GuardedAppRunner(
            app,
            header_timeout_s=settings.header_timeout_s,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=75,
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        if ingest_elsewhere(settings, names):
            port = await _start_ingest_process(stack, settings, runner)
        else:
            port = await _listen(runner, settings, shared=serves_http)
        # The bus writer thread commits pings; while the loop runs a long pure-Python step
        # (an API page, an export) it waits for the GIL up to the switch interval each time.
        # 1 ms instead of 5 ms: measured ping p99 during list calls went from 371 ms to 28 ms
        # in a profiling harness (docs/PERFORMANCE.md, section 8).
        sys.setswitchinterval(0.001)
        log.info("serve.listening", services=list(names), host=settings.host, port=port)
        starting = asyncio.create_task(start_services(stop), name="start-services")
        stopped = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
            await starting  # when stopped first: the service under way, then no more (or its error)
        finally:
            stopped.cancel()
        if readiness.complete:
            gc.collect()  # only what is not frozen yet
            gc.freeze()
            log.info(
                "serve.started",
                services=list(names),
                host=settings.host,
                port=port,
                bus="local" if settings.embedded else "kafka",
                data_dir=str(settings.data_dir),
            )
            if (readiness.key_file is not None or readiness.setup_link) and serves_http:
                _welcome(settings, port, readiness.key_file, readiness.setup_link)
            if ready is not None:
                await ready(port)
            await stop.wait()
        log.info("serve.stopping")
    log.info("serve.stopped")
