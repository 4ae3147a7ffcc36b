"""What the ingest processes of one ``pingura serve`` need of each other when there are more
than one (``PINGURA_INGEST_PROCESS=N``, N > 1).

They share the public port (``SO_REUSEPORT``): the kernel hands each connection to one of
them, so a scrape of ``/metrics`` or a ``/healthz`` reaches one process only. Each therefore
also answers on a Unix socket of its own in the data dir (``ingest-<index>.sock``, mode 0600:
nobody else can connect), with its own metrics (labelled ``process="ingest-<index>"``) and
its readiness, and the one a client reached asks the others there (:class:`Peers`).

Each keeps a token snapshot of its own (``ingest-tokens-<index>.snapshot``; the first keeps
the file the one-process layout uses): two processes saving one file would write over each
other. Before it loads, a process whose copy is older than the first one's (or missing)
starts from that one (:func:`snapshot_path`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web
from prometheus_client.metrics_core import Metric
from yarl import URL

from services.datadir import INGEST_SOCKET, INGEST_TOKEN_SNAPSHOT_FILE, TOKEN_SNAPSHOT_FILE
from services.ingest.store import TokenIndex
from shared.metrics import Metrics
from shared.metrics.exposition import CONTENT_TYPE, labelled, parse, render

log = structlog.get_logger()
PEER_TIMEOUT_S = 2


def process_label(index: int, count: int) -> str:
    """The ``process`` label of ingest process ``index`` of ``count``: ``ingest`` when it is
    the only one (as before there could be more), else ``ingest-<index>``."""
    return "ingest" if count == 1 else f"ingest-{index}"


def snapshot_path(data_dir: Path, index: int) -> Path:
    """Where ingest process ``index`` keeps its token snapshot. Another than the first starts
    from the first one's copy when its own is missing or older: a hard link, as the snapshot
    is only ever replaced by a rename (services/ingest/token_snapshot.py), never rewritten."""
    first = data_dir / TOKEN_SNAPSHOT_FILE
    if index == 0:
        return first
    own = data_dir / INGEST_TOKEN_SNAPSHOT_FILE.format(index=index)
    try:
        newest = first.stat().st_mtime_ns
        if not own.exists() or own.stat().st_mtime_ns < newest:
            linking = own.with_name(own.name + ".link")
            linking.unlink(missing_ok=True)
            os.link(first, linking)
            os.replace(linking, own)
    except FileNotFoundError:
        pass  # no first copy yet: its own, or the whole topic
    except OSError as exc:  # the index then reads the topic: slower, never wrong
        log.warning("ingest.worker.snapshot_not_shared", error=str(exc))
    return own


def own_app(metrics: Metrics, index: TokenIndex) -> web.Application:
    """What this process answers the others on its own socket."""

    async def own_metrics(request: web.Request) -> web.Response:
        body = render(list(labelled(metrics.registry.collect(), metrics.process)))
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"ready": index.ready})

    app = web.Application()
    app.router.add_get("/metrics", own_metrics, allow_head=False)
    app.router.add_get("/ready", ready, allow_head=False)
    return app


class Peers:
    """This ingest process's side: its own socket, and the other processes' sockets."""

    def __init__(self, data_dir: Path, index: int, count: int):
        self._path = data_dir / INGEST_SOCKET.format(index=index)
        self._others = [data_dir / INGEST_SOCKET.format(index=j) for j in range(count) if j != index]
        self._sessions: list[aiohttp.ClientSession] = []
        self._runner: web.AppRunner | None = None

    async def start(self, app: web.Application) -> None:
        self._sessions = [
            aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(path)),
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S),
            )
            for path in self._others
        ]
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._path.unlink(missing_ok=True)  # left by a process that died
        await web.UnixSite(self._runner, str(self._path)).start()
        self._path.chmod(0o600)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._path.unlink(missing_ok=True)
        for session in self._sessions:
            await session.close()

    async def metrics(self) -> list[Metric]:
        """The others' metrics, of those that answer (one restarting does not)."""
        answers = await asyncio.gather(*(self._get(s, "/metrics") for s in self._sessions))
        return [family for text in answers if text is not None for family in parse(text)]

    async def ready(self) -> bool:
        """Whether every other ingest process answers that its token index is ready."""
        answers = await asyncio.gather(*(self._get(s, "/ready") for s in self._sessions))
        return all(text is not None and _says_ready(text) for text in answers)

    @staticmethod
    async def _get(session: aiohttp.ClientSession, path: str) -> str | None:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(URL(f"http://pingura{path}")) as answer:
                if answer.status == 200:
                    return await answer.text()
        return None


def _says_ready(text: str) -> bool:
    try:
        return json.loads(text).get("ready") is True
    except (ValueError, AttributeError):
        return False
