"""The one thread that writes the embedded log's SQLite file.

Appends that queue up while it is busy go in together, in one transaction and one fsync
(group commit); other writes (offset commits, housekeeping) run in order between them.
It never waits for the event loop: as soon as a commit is done it takes whatever queued
meanwhile, so the commit rate is set by the disk, not by how busy the loop is.

Two lanes. Appends to the *fast* topics (``pings``: what a client is waiting on) are
committed first, each time the writer looks, in a transaction that takes along at most
:data:`BULK_WITH_PINGS_ROWS` rows from the front of the bulk lane; everything else follows in order, at most :data:`BULK_TXN_ROWS` rows a transaction, and the writer looks
for fast appends again between two. A ping then waits for one bounded bulk transaction at
most, not for a whole evaluator checkpoint (3,300 snapshots a second at a million heartbeats:
transactions of 27-130 ms, measured). A topic is in one lane only, so each partition's
records are still committed in the order they were numbered.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

_STOP = ("stop",)
BULK_TXN_ROWS = 1_000
"""Rows of the bulk lane in one transaction (one item alone may be more): about 8 ms."""
BULK_WITH_PINGS_ROWS = 64
"""Bulk rows that may ride in the pings' transaction (about 0.5 ms more): at a steady rate the
bulk lane holds a few rows (evaluator outputs, snapshots, status) and each of them cost a
commit and an fsync of its own; a burst still goes in transactions of its own after the pings."""
AppendDone = Callable[[list[tuple[list[list], Any]], BaseException | None], None]


class LogWriter:
    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        on_appended: AppendDone,
        fast_topics: frozenset[str] = frozenset(),
    ):
        self._connect = connect
        self._fast_topics = fast_topics
        self._on_appended = on_appended
        # A SimpleQueue, not a Condition: ``put`` is one C call, where ``Condition.notify`` on
        # every append cost the event loop ~4% of its time at 3,300 pings/s (py-spy).
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="bus-writer", daemon=True)
        self._ready = threading.Event()
        self._conn: sqlite3.Connection | None = None
        self._start_error: BaseException | None = None
        self.commit_seconds: Any = None
        """A histogram observing each append transaction (its fsync included), when set."""

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
        except BaseException as exc:  # noqa: BLE001 - whatever it is, start() reports it
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            fast: list = []
            bulk: deque = deque()
            stopping = False
            while True:
                # Block for work only when none is in hand; either way take all that queued.
                if not stopping and not fast and not bulk:
                    stopping = self._sort(self._queue.get(), fast, bulk)
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    stopping = self._sort(item, fast, bulk) or stopping
                if fast:
                    if bulk and _rows(bulk[0]) <= BULK_WITH_PINGS_ROWS:
                        fast += _take_rows(bulk, BULK_WITH_PINGS_ROWS)
                    self._process(fast)
                    fast = []
                if bulk:
                    self._process(_take_rows(bulk, BULK_TXN_ROWS))
                elif stopping:
                    return  # everything queued before the stop is written
        finally:
            self._conn.close()

    def _sort(self, item, fast: list, bulk: deque) -> bool:
        """Put ``item`` in its lane; True for the stop marker."""
        if item is _STOP:
            return True
        if item[0] == "append" and item[1] and item[1][0][0] in self._fast_topics:
            fast.append(item)
        else:
            bulk.append(item)
        return False

    def _process(self, items: list) -> None:
        assert self._loop is not None and self._conn is not None  # start() set both before the thread ran
        i = 0
        while i < len(items):
            if items[i][0] == "call":
                _, fn, future = items[i]
                try:
                    result, error = fn(self._conn), None
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's future, which raises it
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
                began = time.perf_counter()
                _insert(self._conn, rows)
                error = None
                if self.commit_seconds is not None:
                    self.commit_seconds.observe(time.perf_counter() - began)
            except BaseException as exc:  # noqa: BLE001 - disk full, I/O error: none of these rows is durable; each waiter gets it
                error = exc
            for batch_rows, token in batches:
                if isinstance(token, WhenWritten):
                    with contextlib.suppress(Exception):  # the caller's to handle; the writer must go on
                        token.done(batch_rows, error)
            self._loop.call_soon_threadsafe(self._on_appended, batches, error)


class WhenWritten:
    """A token for rows appended from a thread other than the loop's: ``done(rows, error)``
    runs on the writer thread right after their transaction, without waiting for the loop."""

    __slots__ = ("done",)

    def __init__(self, done: Callable[[list[list], BaseException | None], None]):
        self.done = done


def _take_rows(items: deque, limit: int) -> list:
    """Items from the front of ``items`` holding about ``limit`` rows (at least one item)."""
    taken: list = []
    rows = 0
    while items and (not taken or rows + _rows(items[0]) <= limit):
        item = items.popleft()
        taken.append(item)
        rows += _rows(item)
    return taken


def _rows(item) -> int:
    return len(item[1]) if item[0] == "append" else 1


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
