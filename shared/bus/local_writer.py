"""The one thread that writes the embedded log's SQLite file.

Appends that queue up while it is busy go in together, in one transaction and one fsync
(group commit); other writes (offset commits, housekeeping) run in order between them.
It never waits for the event loop: as soon as a commit is done it takes whatever queued
meanwhile, so the commit rate is set by the disk, not by how busy the loop is.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

_STOP = ("stop",)
AppendDone = Callable[[list[tuple[list[list], Any]], BaseException | None], None]


class LogWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection], on_appended: AppendDone):
        self._connect = connect
        self._on_appended = on_appended
        # A SimpleQueue, not a Condition: ``put`` is one C call, where ``Condition.notify`` on
        # every append cost the event loop ~4% of its time at 3,300 pings/s (py-spy).
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="bus-writer", daemon=True)
        self._ready = threading.Event()
        self._conn: sqlite3.Connection | None = None
        self._start_error: BaseException | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._start_error is not None:
            raise self._start_error

    async def stop(self) -> None:
        self._queue.put(_STOP)  # after whatever is queued: that is written first
        await asyncio.to_thread(self._thread.join)

    def append(self, rows: list[list], token: Any) -> None:
        """Queue rows for the next transaction; ``on_appended`` later receives ``token``."""
        self._queue.put(("append", rows, token))

    def call(self, fn: Callable[[sqlite3.Connection], Any]) -> asyncio.Future:
        """Run ``fn(connection)`` on the writer thread, in order with the appends."""
        assert self._loop is not None
        future = self._loop.create_future()
        self._queue.put(("call", fn, future))
        return future

    def _run(self) -> None:
        try:
            self._conn = self._connect()
        except BaseException as exc:  # reported by start()
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                items = [self._queue.get()]  # blocks until there is work
                while True:  # and takes everything queued meanwhile: one transaction for it all
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if _STOP in items:
                    stopping = True
                    items = [item for item in items if item is not _STOP]
                self._process(items)
        finally:
            self._conn.close()

    def _process(self, items: list) -> None:
        i = 0
        while i < len(items):
            if items[i][0] == "call":
                _, fn, future = items[i]
                try:
                    result, error = fn(self._conn), None
                except BaseException as exc:
                    result, error = None, exc
                self._loop.call_soon_threadsafe(_settle, future, result, error)
                i += 1
                continue
            batches = []
            while i < len(items) and items[i][0] == "append":
                batches.append((items[i][1], items[i][2]))
                i += 1
            rows = [row for batch_rows, _ in batches for row in batch_rows]
            try:
                _insert(self._conn, rows)
                error = None
            except BaseException as exc:  # disk full, I/O error: none of these rows is durable
                error = exc
            self._loop.call_soon_threadsafe(self._on_appended, batches, error)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def in_transaction(conn: sqlite3.Connection, fn):
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


# A partition's end only ever grows (a failed batch may leave a gap, never a step back).
RAISE_END = (
    "INSERT INTO partition_ends VALUES (?, ?, ?)"
    " ON CONFLICT (topic, partition) DO UPDATE SET end_offset = max(end_offset, excluded.end_offset)"
)


def _insert(conn: sqlite3.Connection, rows: list[list]) -> None:
    """The rows and their partitions' new ends in one transaction: once a record is
    durable, so is the end past it, and retention deleting the record later cannot move
    the end back (offsets would be reused and consumer groups would skip the new ones)."""
    ends: dict[tuple[str, int], int] = {}
    for topic, partition, offset, *_ in rows:
        ends[(topic, partition)] = max(ends.get((topic, partition), 0), offset + 1)

    def write() -> None:
        conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.executemany(RAISE_END, [(topic, partition, end) for (topic, partition), end in ends.items()])

    in_transaction(conn, write)
