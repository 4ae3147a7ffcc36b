"""Ingest in a process of its own, beside the ``pingura serve`` process that owns the bus.

With ``PINGURA_INGEST_PROCESS=N`` the serving process starts N of these
(``python -m services.ingest.worker``). They hold the public HTTP port, shared
(``SO_REUSEPORT``: the kernel hands each connection to one of them):

- pings are answered here, from a token index of its own (read from the bus file, started
  from the same snapshot), and published through the owner (:mod:`shared.bus.linked`): a
  ``200`` still means the ping is fsynced;
- every other request (the API, the dashboard, sign-in, ``/healthz``) is passed to the
  serving process over a Unix socket in the data dir, streamed both ways, with the client's
  address in ``X-Pingura-Peer`` (only this process can reach that socket).

It tells the serving process its port through ``--ready-fd``, and stops on SIGTERM or when
the link to the owner is lost (the owner is gone: nothing here could be made durable). With
more than one, each has its own token index and its own link to the owner, and answers the
others on a socket of its own (:mod:`services.ingest.worker_peers`).

A wrong method on a ping URL (``DELETE /api/heartbeat/<token>``) is answered here, ``405``
with ``Allow``, as the one-process layout answers it: the serving process behind has no
ping routes and would answer ``404``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from services.datadir import BUS_FILE
from services.ingest.app import SETTINGS, TOKEN_INDEX, add_ingest_routes, attach
from services.ingest.server import BodyGate, GuardedAppRunner
from services.ingest.store import TokenIndex
from services.ingest.token_snapshot import SnapshotFile
from services.ingest.worker_metrics import worker_metrics_handler
from services.ingest.worker_peers import Peers, own_app, process_label, snapshot_path
from shared.bus.linked import LinkedBus
from shared.logging import configure_logging
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

PEER_HEADER = "X-Pingura-Peer"
"""The client's address, as the ingest process saw it; trusted on the serving process's
Unix socket only (nobody else can connect to it)."""
_NOT_FORWARDED = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Content-Length", PEER_HEADER,
))  # fmt: skip
_NOT_RETURNED = _NOT_FORWARDED | {"date", "server"}  # this server writes its own
_NOT_FORWARDED |= {"content-encoding"}  # the body is passed on as read: decoded
UPSTREAM = web.AppKey("upstream", aiohttp.ClientSession)
BODIES = web.AppKey("bodies", BodyGate)
PING_RESOURCES = web.AppKey("ping_resources", tuple[web.AbstractResource, ...])
PEERS = web.AppKey("peers", Peers)
RETRY_AFTER_S = 2


async def forward(request: web.Request) -> web.StreamResponse:
    """Pass a request that is not a ping to the serving process, and its answer back."""
    allowed: set[str] = set()
    for resource in request.app[PING_RESOURCES]:  # none took this method, or it would not be here
        allowed |= (await resource.resolve(request))[1]
    if allowed:  # a ping URL: 405 as aiohttp's router answers it in the one-process layout
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    # Read here, whole, within the deadline and the gate's bound, and at most as large as the
    # serving process takes (not the 1 MiB of a ping): a trickled body never holds it.
    request = request.clone(client_max_size=request.app[SETTINGS].max_api_body_bytes)
    refused = await request.app[BODIES].read(request)
    if refused is not None:
        return refused
    body = await request.read()  # decoded: its Content-Encoding is not passed on
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED)
    headers[PEER_HEADER] = request.remote or ""
    # As the client spelled them (``query_string`` is decoded: a %00 in it would be a raw NUL);
    # rel_url: the path of an absolute-form target too.
    url = URL.build(
        scheme="http",
        host="pingura",
        encoded=True,
        path=request.rel_url.raw_path,
        query_string=request.rel_url.raw_query_string,
    )
    try:
        upstream = await request.app[UPSTREAM].request(
            request.method, url, headers=headers, data=body, allow_redirects=False
        )
    except (aiohttp.ClientConnectionError, OSError):
        return web.json_response(
            {"error": "starting: the API is not up yet, retry in a moment"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    async with upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in upstream.headers.items():  # every Set-Cookie, not just the first
            if name.lower() not in _NOT_RETURNED:
                response.headers.add(name, value)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def healthz(request: web.Request) -> web.Response:
    """The serving process's readiness, with ingest's (this process's, and every other ingest
    process's) in it."""
    ready = request.app[TOKEN_INDEX].ready
    peers = request.app.get(PEERS)
    if ready and peers is not None:
        ready = await peers.ready()
    services: dict[str, bool] = {}
    try:
        async with request.app[UPSTREAM].get(URL("http://pingura/healthz")) as upstream:
            services = (await upstream.json(content_type=None)).get("services", {})
    except (aiohttp.ClientError, OSError, ValueError):
        pass  # the serving process is not answering yet: nothing but ingest is ready
    services = {"ingest": ready, **services} if services else {"ingest": ready, "query": False}
    complete = all(services.values())
    body = {"ok": complete, "ready": complete, "services": services}
    if complete:
        return web.json_response(body)
    return web.json_response(body, status=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def worker_app(
    settings: Settings,
    bus: LinkedBus,
    index: TokenIndex,
    upstream: aiohttp.ClientSession,
    metrics: Metrics | None = None,
    peers: Peers | None = None,
) -> web.Application:
    app = web.Application(client_max_size=max(settings.max_api_body_bytes, settings.max_body_bytes))
    attach(app, settings, bus, Topics(settings.topic_prefix), index)
    app[UPSTREAM] = upstream
    app[BODIES] = BodyGate(settings.ping_body_timeout_s, settings.max_body_reads)
    if peers is not None:
        app[PEERS] = peers
    app.router.add_get("/healthz", healthz)
    if metrics is not None:  # both processes' metrics in one scrape (services/ingest/worker_metrics.py)
        handler = worker_metrics_handler(metrics, settings.metrics_token, upstream, PEER_HEADER, peers)
        app.router.add_get("/metrics", handler, allow_head=False)
    before = len(app.router.resources())
    add_ingest_routes(app, metrics)
    app[PING_RESOURCES] = tuple(app.router.resources())[before:]
    app.router.add_route("*", "/{anything:.*}", forward)  # last: the ping routes match first
    return app


async def serve(
    settings: Settings,
    link: Path,
    api_socket: Path,
    ready_fd: int | None,
    index: int = 0,
    count: int = 1,
    when_ready: bool = False,
) -> None:
    """Answer pings until SIGTERM or until the link is lost. It listens at once (its pings
    answer 503 until the token index is loaded), or ``when_ready``: once it is loaded (the
    port is shared with other ingest processes, which answer meanwhile)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics(process_label(index, count))  # this process's own registry
    bus = LinkedBus(settings.data_dir / BUS_FILE, link)
    bus.use_metrics(metrics)
    await bus.start()
    token_index = TokenIndex(
        bus,
        Topics(settings.topic_prefix),
        snapshot=SnapshotFile(snapshot_path(settings.data_dir, index), bus.log_id),
    )
    peers = Peers(settings.data_dir, index, count) if count > 1 else None
    upstream = aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=str(api_socket)),
        cookie_jar=aiohttp.DummyCookieJar(),  # never one client's cookie for another
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
    )
    runner = GuardedAppRunner(
        worker_app(settings, bus, token_index, upstream, metrics, peers),
        header_timeout_s=settings.header_timeout_s,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=75,
    )
    try:
        await runner.setup()
        if peers is not None:
            await peers.start(own_app(metrics, token_index))

        async def listen() -> None:
            await web.TCPSite(runner, settings.host, settings.port, reuse_port=True).start()
            port = runner.addresses[0][1]
            if ready_fd is not None:
                os.write(ready_fd, f"{port}\n".encode())
                os.close(ready_fd)
            log.info("ingest.worker.listening", host=settings.host, port=port, process=metrics.process)

        if not when_ready:
            await listen()
        # The same switch interval as the serving process: the reader thread gets its turn.
        sys.setswitchinterval(0.001)
        starting = asyncio.create_task(token_index.start(), name="token-index")
        lost = asyncio.create_task(bus.link_lost.wait(), name="link-lost")
        stopped = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait([starting, lost, stopped], return_when=asyncio.FIRST_COMPLETED)
        if starting.done() and not lost.done() and not stopped.done():
            starting.result()
            # The index lives as long as the process: out of the cyclic GC's full scans, which
            # otherwise walked its million entries every few seconds under load (50-100 ms each,
            # every ping waiting: measured), as the serving process does with its own.
            gc.collect()
            gc.freeze()
            log.info("ingest.worker.ready", heartbeats=len(token_index), process=metrics.process)
            if when_ready:
                await listen()
            await asyncio.wait([lost, stopped], return_when=asyncio.FIRST_COMPLETED)
        if lost.done():
            log.error("ingest.worker.link_lost")
        for task in (starting, lost, stopped):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    finally:
        await runner.cleanup()  # in-flight pings get their answers first
        if peers is not None:
            await peers.close()
        await upstream.close()
        if token_index.ready:
            await token_index.close()  # saves its snapshot
        await bus.close()
    log.info("ingest.worker.stopped", process=metrics.process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.ingest.worker")
    parser.add_argument("--link", type=Path, required=True, help="the bus owner's link socket")
    parser.add_argument("--api-socket", type=Path, required=True, help="the serving process's HTTP socket")
    parser.add_argument("--ready-fd", type=int, help="write the bound port here once listening")
    parser.add_argument("--index", type=int, default=0, help="which of the ingest processes this is")
    parser.add_argument("--count", type=int, default=1, help="how many ingest processes share the port")
    parser.add_argument(
        "--listen-when-ready", action="store_true", help="listen once the token index is loaded"
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                settings,
                args.link,
                args.api_socket,
                args.ready_fd,
                args.index,
                args.count,
                args.listen_when_ready,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
