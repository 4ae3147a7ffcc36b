"""An async face for clickhouse-connect: a ClickHouse server, or chDB embedded in the process.

clickhouse-connect is synchronous, so every call of a :class:`ClickHouse` runs on one
dedicated thread (a ``ThreadPoolExecutor(1)``): the event loop never blocks on the
database, and calls reach the client in the order they were made.

chDB allows ONE engine per process, and it stays bound to the first data path for the
life of the process (a second path fails even after the first client is closed). So
:func:`open_client` shares one chDB engine (client + thread) between all its callers in
a process, counted so the last ``close()`` releases it; asking for a different path
raises :class:`~shared.errors.ConfigError` instead of chDB's low-level error. That
shared engine is the only module-level state here. Embedded Pingura runs every service
in one process, so the query API and the history writer both call ``open_client`` with
the same settings and get the same engine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
import structlog

from shared.errors import ConfigError
from shared.private_files import make_private, private_umask
from shared.settings import Settings

log = structlog.get_logger()


class ClickHouse:
    """A clickhouse-connect client whose calls run on its own single thread."""

    def __init__(self, client: Any, thread: ThreadPoolExecutor, release: Callable[[], None]):
        self._client = client
        self._thread = thread
        self._release = release
        self._closed = False
        self.observe: Callable[[str, float], None] | None = None
        """``observe(op, seconds)`` after each call (``query``, ``command``, ``insert``), when set."""

    async def _run(self, fn: Callable[..., Any], *args: Any, op: str = "query", **kwargs: Any) -> Any:
        if self._closed:
            raise RuntimeError("ClickHouse client is closed")
        observe = self.observe

        def call() -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if observe is not None:
                    observe(op, time.perf_counter() - began)

        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple]:
        """Rows as tuples. Bind user input as ``{name:Type}`` placeholders in ``parameters``."""
        result = await self._run(self._client.query, sql, parameters=parameters)
        return [tuple(row) for row in result.result_rows]

    async def query_dicts(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        result = await self._run(self._client.query, sql, parameters=parameters)
        return list(result.named_results())

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        return await self._run(self._client.command, sql, op="command", parameters=parameters)

    async def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert rows (DateTime64 values as tz-aware ``datetime``, not numbers)."""
        await self._run(
            self._client.insert, table, rows, op="insert", column_names=list(column_names),
            settings=dict(settings or {}),
        )  # fmt: skip

    async def insert_raw(
        self,
        table: str,
        column_names: Sequence[str],
        payload: bytes,
        fmt: str,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert rows already encoded in a ClickHouse input format (e.g. ``JSONEachRow``).

        The bytes are built in C (msgspec) and parsed by ClickHouse, so the insert holds the
        GIL far less than :meth:`insert`, which converts row by row in Python: in one process
        with the ping path, that is what keeps the event loop responsive under load.
        """
        await self._run(
            self._client.raw_insert,
            table,
            list(column_names),
            op="insert",
            insert_block=payload,
            fmt=fmt,
            settings=dict(settings or {}),
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._release)


def server_options(url: str) -> dict[str, Any]:
    """``http(s)://user:pass@host:port/database`` -> keyword arguments of ``clickhouse_connect.get_client``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"clickhouse_url: expected http(s)://user:pass@host:port/database, got {parts.scheme}://…"
        )
    secure = parts.scheme == "https"
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("clickhouse_url: the port is not a number") from None
    database = parts.path.strip("/")
    return {
        "host": parts.hostname,
        "port": port or (8443 if secure else 8123),
        "username": unquote(parts.username) if parts.username else "default",
        "password": unquote(parts.password) if parts.password else "",
        "database": unquote(database) if database else None,
        "secure": secure,
    }


def open_client(settings: Settings) -> ClickHouse:
    """A server client when ``settings.clickhouse_url`` is set, else the process's chDB engine
    at ``settings.data_dir / "clickhouse"``.

    Blocks while it connects (a handshake, or starting chDB: ~0.2 s): call it at start-up.
    """
    if settings.clickhouse_url:
        return _open_server(settings.clickhouse_url)
    return _open_chdb(str((settings.data_dir / "clickhouse").resolve()))


def _open_server(url: str) -> ClickHouse:
    options = server_options(url)
    thread = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")
    try:
        client = thread.submit(clickhouse_connect.get_client, **options).result()
    except BaseException:
        thread.shutdown(wait=False)
        raise
    log.info(
        "clickhouse.opened",
        mode="server",
        host=options["host"],
        port=options["port"],
        database=options["database"],
    )

    def release() -> None:
        thread.submit(client.close).result()
        thread.shutdown(wait=True)

    return ClickHouse(client, thread, release)


# --- the one chDB engine of this process -------------------------------------------------


@dataclass
class _ChdbEngine:
    path: str
    thread: ThreadPoolExecutor
    client: Any
    users: int = 0


_engine_lock = threading.Lock()
_engine: _ChdbEngine | None = None
# chDB keeps the first path for the whole process, even once every client is closed.
_engine_path: str | None = None


def _open_chdb(path: str) -> ClickHouse:
    global _engine, _engine_path
    # Job output lives there: the owner's alone, and what chDB makes is 0600 whatever the
    # process's umask (it creates its files itself). ``pingura serve`` made the whole data dir
    # private already; a query service on Kafka with chDB has only this.
    make_private(Path(path))
    with _engine_lock, private_umask():
        if _engine_path is not None and _engine_path != path:
            raise ConfigError(
                f"data_dir: chDB allows one engine per process; it is bound to {_engine_path}, cannot open {path}"
            )
        if _engine is None:
            thread = ThreadPoolExecutor(1, thread_name_prefix="chdb")
            try:
                client = thread.submit(_connect_chdb, path).result()
            except BaseException:
                thread.shutdown(wait=False)
                raise
            _engine = _ChdbEngine(path, thread, client)
            _engine_path = path
        engine = _engine
        engine.users += 1
    log.info("clickhouse.opened", mode="chdb", path=path, users=engine.users)
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            _release_chdb(engine)

    return ClickHouse(engine.client, engine.thread, release)


def _connect_chdb(path: str) -> Any:
    return clickhouse_connect.get_client(interface="chdb", path=path)


def _release_chdb(engine: _ChdbEngine) -> None:
    global _engine
    with _engine_lock:
        engine.users -= 1
        if engine.users > 0:
            return
        if _engine is engine:
            _engine = None
    engine.thread.submit(engine.client.close).result()
    engine.thread.shutdown(wait=True)
