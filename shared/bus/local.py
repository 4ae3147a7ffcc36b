"""The embedded bus: a durable, partitioned log in one SQLite file.

Why SQLite: it is in the standard library, survives crashes (WAL + ``synchronous=FULL``
fsyncs every commit) and one process owns it. Why it is still fast: appends made while a
commit is in flight go in the next one together (group commit), and the single publishes of
one turn of the loop reach the writer together (:mod:`shared.bus.local_publish`).

Offsets are assigned under one lock, in the order of ``publish`` calls. As in Kafka, a
partition's end offset is kept apart from its records (``partition_ends``), so it never goes
back when retention or compaction removes records. Consumers near the head are served from an
in-memory tail of each partition; older reads go through a second connection on its own thread.

Compaction and retention (:meth:`LocalBus.compact`) work a bounded step at a time, each
step one call on the writer thread, so appends queued meanwhile go in between two steps
(measured at a million records, 1,000 a step: 1-3 ms a step, 10 ms the longest). They remove
records from the file only: a tail may still hold one they removed, and hands it out as a
read a moment earlier would have, in order and with nothing after it missing.

Beside it: :mod:`shared.bus.local_file` (tables and SQL), :mod:`shared.bus.local_writer`
(the writer thread), :mod:`shared.bus.local_consumer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from shared import clock
from shared.bus import local_file
from shared.bus.base import (
    Bus,
    BusUnavailable,
    Consumer,
    PartitionsCallback,
    Record,
    TopicPartition,
    TopicSpec,
    partition_for,
)
from shared.bus.local_consumer import LocalConsumer
from shared.bus.local_publish import EachRow, PublishBatch
from shared.bus.local_writer import LogWriter, WhenWritten, in_transaction

log = structlog.get_logger()
COMPACTION_CHECKPOINT_EVERY_S = 0.1

PUBLISH_CHUNK_ROWS = 1_000
"""Rows ``publish_many`` queues at a time, so pings interleave with a large batch."""


class LocalBus(Bus):
    def __init__(
        self,
        path: Path,
        default_partitions: int = 1,
        max_pending: int = 50_000,
        tail_records: int = 20_000,
        compaction_step_records: int = 1_000,
        fast_topics: frozenset[str] = frozenset(),
    ):
        self._path = path
        self._default_partitions = default_partitions
        self._max_pending = max_pending
        # fast_topics: what clients wait on (pings), committed ahead of bulk writes (local_writer.py).
        self._writer = LogWriter(lambda: local_file.connect(path), self._on_appended, frozenset(fast_topics))
        self._reader_thread = ThreadPoolExecutor(1, thread_name_prefix="bus-reader")
        self._reader: sqlite3.Connection | None = None
        self._topics: dict[str, TopicSpec] = {}
        self._next_offset: dict[TopicPartition, int] = {}
        # What readers may see: only records already committed to disk.
        self._durable_end: dict[TopicPartition, int] = {}
        self._tail_records = tail_records
        self._tails: dict[TopicPartition, list[Record]] = {}
        self._pending_rows = 0
        self._appending = threading.Lock()  # numbering and queueing: the loop's and the link's thread
        self._batch = PublishBatch(self._queue_rows, frozenset(fast_topics))  # one hand-off a loop turn
        self._room = asyncio.Event()
        # Consumers wait on an event each, by topic: a flush wakes only those reading what it appended to.
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._checkpointer: asyncio.Task | None = None
        self._closed = False
        self._compaction_step_records = compaction_step_records
        self._compacting = asyncio.Lock()  # one pass at a time: a pass keeps its key map on the writer
        self._compaction_checkpointed = 0.0
        self.log_id = ""
        """This log's identity, made when its file was: a copy of state saved beside it (an
        index snapshot with the offsets it reflects) is only valid for the same log."""

    # lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # The owner's alone whatever the umask: it holds every secret; SQLite's -wal and -shm get its mode.
        os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        loop = asyncio.get_running_loop()
        await self._writer.start()
        self._reader = await loop.run_in_executor(self._reader_thread, local_file.connect, self._path)
        await self._write(lambda c: c.executescript(local_file.SCHEMA))
        self.log_id = await self._write(local_file.log_id)
        rows = await self._read(
            lambda c: c.execute("SELECT name, partitions, compacted, retention_ms FROM topics").fetchall()
        )
        for name, partitions, compacted, retention_ms in rows:
            self._topics[name] = TopicSpec(name, partitions, bool(compacted), retention_ms)
        self._next_offset = await self._write(lambda c: in_transaction(c, lambda: local_file.recover_ends(c)))
        self._durable_end = dict(self._next_offset)
        self._checkpointer = asyncio.create_task(self._checkpoints(), name="bus-checkpoints")

    async def _checkpoints(self, interval_s: float = 1.0) -> None:
        """Copy the WAL into the database every second from the reader (PASSIVE: never blocks the writer)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self._read(lambda c: c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
            except sqlite3.Error as exc:
                log.warning("bus.local.checkpoint_failed", error=str(exc))

    async def close(self) -> None:
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
        await self._writer.stop()  # writes everything queued first
        loop = asyncio.get_running_loop()
        if self._reader is not None:
            await loop.run_in_executor(self._reader_thread, self._reader.close)
        self._reader_thread.shutdown(wait=True)

    async def _write(self, fn):
        return await self._writer.call(fn)

    async def _read(self, fn):
        return await asyncio.get_running_loop().run_in_executor(self._reader_thread, fn, self._reader)

    # topics ------------------------------------------------------------------
    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        for spec in specs:
            known = self._topics.get(spec.name)
            if known is not None:
                # Like Kafka, a topic keeps its partition count: keys must not move.
                continue
            self._topics[spec.name] = spec
            await self._write(
                lambda c, s=spec: c.execute(
                    "INSERT OR IGNORE INTO topics VALUES (?, ?, ?, ?)",
                    (s.name, s.partitions, int(s.compacted), s.retention_ms),
                )
            )

    def partitions(self, topic: str) -> int:
        return self._spec(topic).partitions

    def is_compacted(self, topic: str) -> bool:
        return self._spec(topic).compacted

    def _spec(self, topic: str) -> TopicSpec:
        spec = self._topics.get(topic)
        if spec is None:
            raise KeyError(f"unknown topic {topic!r}")
        return spec

    # producing ---------------------------------------------------------------
    async def publish(self, topic: str, key: str, value: bytes, partition: int | None = None) -> int:
        """One record; with a full backlog this refuses at once (ingest answers 503)."""
        if self._pending_rows + len(self._batch) >= self._max_pending:
            raise BusUnavailable("too many records waiting for the disk")
        self._spec(topic)  # an unknown topic is the caller's mistake: raised here, at once
        began = time.perf_counter()
        offset = await self._batch.add(topic, key, value, partition)
        if self._append_seconds is not None:  # loop thread only: counted without a lock (metrics/onloop.py)
            self._append_seconds.observe(time.perf_counter() - began)
        return offset

    def use_metrics(self, metrics) -> None:
        super().use_metrics(metrics)
        self._writer.commit_seconds = metrics.bus_fsync_seconds

    def append_from_thread(
        self,
        topic: str,
        items: list[tuple[str, bytes]],
        partition: int | None,
        done: Callable[[list[list], BaseException | None], None],
    ) -> None:
        """``publish`` of each item, together, from another thread (the link of an ingest process):
        ``done(rows, error)`` runs on the writer thread once they are durable or failed. Raises
        :class:`BusUnavailable` at once when the backlog is full."""
        if self._pending_rows >= self._max_pending:
            raise BusUnavailable("too many records waiting for the disk")
        self._append(topic, items, partition, WhenWritten(done))

    async def publish_many(
        self, topic: str, items: list[tuple[str, bytes]], partition: int | None = None
    ) -> None:
        """Many records (evaluator outputs, snapshots) wait for room instead of failing on a full
        backlog, a chunk at a time, filling at most half of it: the rest stays for pings. In order,
        after the single publishes made before; a disk failure midway may leave earlier chunks
        durable (producers retry with the same ids, readers dedupe)."""
        if not items:
            return
        self._batch.flush()  # single publishes made before this one go first
        room = max(1, self._max_pending // 2)
        chunk = max(1, min(PUBLISH_CHUNK_ROWS, room // 2))  # so that the last one cannot overfill
        futures = []
        for first in range(0, len(items), chunk):
            while self._pending_rows and self._pending_rows + chunk > room:
                self._room.clear()
                await self._room.wait()
            future = asyncio.get_running_loop().create_future()
            self._append(topic, items[first : first + chunk], partition, future)
            futures.append(future)
        await asyncio.gather(*futures)

    def _append(self, topic: str, items: list[tuple[str, bytes]], partition: int | None, token) -> list[list]:
        return self._queue_rows([(topic, k, v, partition) for k, v in items], token)

    def _queue_rows(self, entries: Iterable[tuple], token) -> list[list]:
        """Number ``(topic, key, value, partition, ...)`` entries and queue them for the writer,
        as one step under a lock: the link's thread appends too, and a partition's rows must
        reach the writer in offset order."""
        with self._appending:
            if self._closed:
                raise BusUnavailable("bus is closed")
            now = clock.now_ms()
            rows = []
            for topic, key, value, partition, *_ in entries:
                count = self._spec(topic).partitions  # an unknown topic: KeyError, nothing queued
                p = partition_for(key, count) if partition is None else partition
                offset = self._next_offset.get((topic, p), 0)
                self._next_offset[(topic, p)] = offset + 1
                rows.append([topic, p, offset, key, value, now])
            self._pending_rows += len(rows)
            self._writer.append(rows, token)
        return rows

    def _on_appended(
        self, batches: list[tuple[list[list], asyncio.Future]], error: BaseException | None
    ) -> None:
        """On the loop, once the writer committed (or failed) these batches, in order."""
        appended: set[str] = set()
        with self._appending:
            self._pending_rows -= sum(len(rows) for rows, _ in batches)
        for rows, future in batches:
            if isinstance(future, WhenWritten):
                future = None  # the writer thread told its caller already
            elif isinstance(future, EachRow):  # single publishes, each told its offset
                future.settle(rows, error and BusUnavailable(f"could not write to the local log: {error}"))
                future = None
            if error is not None:
                # The offsets of lost rows are not reused: readers see a gap, as Kafka allows.
                for topic, partition, *_ in rows:
                    self._tails.pop((topic, partition), None)  # a tail must stay contiguous
                if future is not None and not future.done():
                    future.set_exception(BusUnavailable(f"could not write to the local log: {error}"))
                continue
            for topic, partition, offset, key, value, ts in rows:
                tp = (topic, partition)
                self._durable_end[tp] = offset + 1
                tail = self._tails.setdefault(tp, [])
                if tail and tail[-1].offset != offset - 1:
                    tail.clear()  # after a gap
                tail.append(Record(topic, partition, offset, key, value, ts))
                if len(tail) > 2 * self._tail_records:
                    del tail[: self._tail_records]  # amortized: a list indexes in O(1)
                appended.add(topic)
            if future is not None and not future.done():
                future.set_result(None)
        if error is not None:
            log.error("bus.local.append_failed", error=str(error), batches=len(batches))
        for topic in appended:
            for event in self._waiters.get(topic, ()):
                event.set()
        self._room.set()  # waiters check the room they need themselves

    def watch(self, topics: Iterable[str], event: asyncio.Event) -> None:
        for topic in topics:
            self._waiters.setdefault(topic, set()).add(event)

    def unwatch(self, event: asyncio.Event) -> None:
        for events in self._waiters.values():
            events.discard(event)

    # consuming ---------------------------------------------------------------
    async def read(self, tp: TopicPartition, start: int, limit: int) -> list[Record]:
        tail = self._tails.get(tp)
        if tail and tail[0].offset <= start:
            # Offsets in a tail are contiguous (appended in order, one flush at a time).
            first = start - tail[0].offset
            return tail[first : first + limit]
        topic, partition = tp
        rows = await self._read(
            lambda c: c.execute(
                "SELECT offset, key, value, ts FROM records WHERE topic=? AND partition=? AND offset>=?"
                " ORDER BY offset LIMIT ?",
                (topic, partition, start, limit),
            ).fetchall()
        )
        return [Record(topic, partition, off, key, value, ts) for off, key, value, ts in rows]

    def end_offset(self, tp: TopicPartition) -> int:
        """One past the last durable record ever appended, whether or not it is still stored."""
        return self._durable_end.get(tp, 0)

    async def first_offset(self, tp: TopicPartition) -> int:
        """The oldest stored record's offset; the end when none is (Kafka's log start offset)."""
        row = await self._read(
            lambda c: c.execute(
                "SELECT MIN(offset) FROM records WHERE topic=? AND partition=?", tp
            ).fetchone()
        )
        return row[0] if row and row[0] is not None else self.end_offset(tp)

    async def committed(self, group: str, tp: TopicPartition) -> int | None:
        row = await self._read(
            lambda c: c.execute(
                "SELECT offset FROM group_offsets WHERE group_id=? AND topic=? AND partition=?", (group, *tp)
            ).fetchone()
        )
        return row[0] if row else None

    async def commit(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        rows = [(group, t, p, o) for (t, p), o in offsets.items()]
        await self._write(
            lambda c: in_transaction(
                c, lambda: c.executemany("INSERT OR REPLACE INTO group_offsets VALUES (?, ?, ?, ?)", rows)
            )
        )

    def reader(self, partitions: list[TopicPartition]) -> Consumer:
        return LocalConsumer(self, [], None, None, None, fixed=list(partitions))

    def consumer(
        self,
        topics: list[str],
        group: str | None = None,
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> Consumer:
        return self._watch(group, LocalConsumer(self, topics, group, on_assign, on_revoke))

    # housekeeping ------------------------------------------------------------
    async def compact(self, now_ms: int | None = None) -> int:
        """Drop superseded records of compacted topics and expired ones of the others;
        returns how many. Each partition is worked through a bounded step at a time (at most
        ``compaction_step_records`` records, one writer call each), so appends wait for one
        step at most, never for the pass. Only records below the durable ends as they were
        when this call began are looked at."""
        now_ms = clock.now_ms() if now_ms is None else now_ms
        removed, steps, longest_s = 0, 0, 0.0
        started = time.perf_counter()
        async with self._compacting:
            ends = dict(self._durable_end)
            for spec in list(self._topics.values()):
                if not (spec.compacted or spec.retention_ms):
                    continue
                for partition in range(spec.partitions):
                    tp = (spec.name, partition)
                    end = ends.get(tp, 0)
                    if end == 0:
                        continue  # nothing was ever appended here
                    if spec.compacted:
                        passed = await self._compact_partition(tp, end)
                    else:
                        assert (
                            spec.retention_ms is not None
                        )  # only compacted topics or those with a retention get here
                        passed = await self._expire_partition(tp, end, now_ms - spec.retention_ms)
                    removed += passed[0]
                    steps += passed[1]
                    longest_s = max(longest_s, passed[2])
        log.info(
            "bus.local.compacted",
            removed=removed,
            steps=steps,
            longest_step_ms=round(longest_s * 1000, 2),
            took_s=round(time.perf_counter() - started, 3),
        )
        return removed

    async def _compact_partition(self, tp: TopicPartition, end: int) -> tuple[int, int, float]:
        """Keep only the newest record of each key below ``end``, walking from ``end`` back
        to the partition's start a window at a time. A map on the writer's connection (a
        temporary table: key -> newest offset seen so far) says which records a later one
        superseded; nothing on the append path maintains it."""
        topic, partition = tp
        limit = self._compaction_step_records
        await self._write(local_file.start_newest_map)
        removed, steps, longest_s = 0, 0, 0.0
        try:
            upper: int | None = end
            while upper is not None:
                count, upper, took_s = await self._write(
                    lambda c, upper=upper: local_file.timed(
                        local_file.compact_window, c, topic, partition, upper, limit
                    )
                )
                removed += count
                steps += 1
                longest_s = max(longest_s, took_s)
                await self._pause_after(took_s)
        except BaseException:  # stopping, or a failed step: no time to spare on the map
            await self._write(lambda c: c.execute("DROP TABLE IF EXISTS temp.compaction_newest"))
            raise
        # Emptied a step at a time too: dropping a million keys at once holds the writer ~50 ms.
        while await self._write(lambda c: local_file.shrink_newest_map(c, limit)):
            pass
        return removed, steps, longest_s

    async def _pause_after(self, step_s: float) -> None:
        """Between two steps: copy the WAL into the database (from the reader's connection:
        a PASSIVE checkpoint never blocks the writer), and leave the writer to appends for as
        long again as the step held it. Unpaced, a pass over a million records writes the WAL
        faster than the once-a-second checkpoint copies it back, until the writer itself has
        to checkpoint, for tens of milliseconds."""
        now = time.monotonic()
        if now - self._compaction_checkpointed >= COMPACTION_CHECKPOINT_EVERY_S:
            # Not after every step: handing each one to the reader thread cost the event loop
            # more than the step did (py-spy, a million records: ~2% of the loop during a pass).
            self._compaction_checkpointed = now
            await self._read(lambda c: c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
        await asyncio.sleep(step_s)

    async def _expire_partition(self, tp: TopicPartition, end: int, cutoff_ms: int) -> tuple[int, int, float]:
        """Remove the partition's expired records from its oldest on, a window at a time,
        until a window holds one that is not expired (as Kafka stops at the first segment
        that is not: a record after a step back of the clock waits for the ones before it)."""
        topic, partition = tp
        limit = self._compaction_step_records
        removed, steps, longest_s = 0, 0, 0.0
        while True:
            count, took_s = await self._write(
                lambda c: local_file.timed(
                    local_file.expire_window, c, topic, partition, end, cutoff_ms, limit
                )
            )
            removed += count
            steps += 1
            longest_s = max(longest_s, took_s)
            if count < limit:
                return removed, steps, longest_s
            await self._pause_after(took_s)
