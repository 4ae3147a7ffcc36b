"""The embedded bus, shared with a second process of the same ``pingura serve``.

Why: one interpreter that answers pings *and* runs the consumers saturates its core near
3,300 pings/s, and half of that core goes to HTTP (docs/PERFORMANCE.md, section 9). With
``PINGURA_INGEST_PROCESS=N``, ingest runs in N processes of their own beside the one that
owns the log, each linked to it on its own.

One process owns the log (:class:`~shared.bus.local.LocalBus` numbers every offset and is
its only writer). In the other, a :class:`LinkedBus`:

- reads the SQLite file itself, through a read-only connection (WAL lets a reader in another
  process see every committed record), polling for new records;
- publishes through the owner, over a Unix socket served by
  :class:`~shared.bus.link_owner.BusLink`. The owner
  answers only once its own ``publish`` returned, so a record is durable (fsynced) when the
  linked ``publish`` returns, as on the owner; a full backlog is a :class:`BusUnavailable`,
  as on the owner.

Wire format: frames of a 4-byte big-endian length and a msgpack array of requests (or
answers), several per frame (everything published during one turn of the loop goes in one).
A request is ``[id, topic, partition or None, items, many]``: ``items`` a list of
``[key, value]``, ``many`` true for :meth:`publish_many` (which waits for room instead of
refusing). An answer is ``[id, None, offsets]`` or ``[id, error kind, message]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import struct
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import structlog

from shared.bus.base import (
    Bus,
    BusUnavailable,
    Consumer,
    PartitionsCallback,
    PositionedConsumer,
    Record,
    TopicPartition,
    TopicSpec,
)

log = structlog.get_logger()

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024
POLL_EVERY_S = 0.02
"""How often a linked reader looks for new records while it has none to return."""
UNAVAILABLE, FAILED = "unavailable", "failed"


async def read_frame(reader: asyncio.StreamReader) -> list:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {size} bytes is more than the link takes")
    return msgspec.msgpack.decode(await reader.readexactly(size))


def frame(items: list) -> bytes:
    body = msgspec.msgpack.encode(items)
    return HEADER.pack(len(body)) + body


class LinkedBus(Bus):
    """A bus whose log another process owns: reads from the file, publishes through the owner."""

    kind = "linked"

    def __init__(self, path: Path, link: Path):
        self._path = path
        self._link = link
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="linked-reader")
        self._topics: dict[str, TopicSpec] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._answers: asyncio.Task | None = None
        self._waiting: dict[int, asyncio.Future] = {}
        self._outbox: list = []
        self._flush_scheduled = False
        self._next_id = 0
        self.log_id = ""
        self.link_lost = asyncio.Event()
        """Set once the owner's side of the link is gone (it stopped or died)."""

    async def start(self) -> None:
        self._conn = await self._read(
            lambda _: sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, check_same_thread=False)
        )
        self.log_id = (
            await self._read(lambda c: c.execute("SELECT value FROM meta WHERE name='log_id'").fetchone())
        )[0]
        await self._load_topics()
        self._reader, self._writer = await asyncio.open_unix_connection(str(self._link))
        self._answers = asyncio.create_task(self._take_answers(), name="bus-link-answers")

    async def _load_topics(self) -> None:
        rows = await self._read(
            lambda c: c.execute("SELECT name, partitions, compacted, retention_ms FROM topics").fetchall()
        )
        for name, partitions, compacted, retention_ms in rows:
            self._topics[name] = TopicSpec(name, partitions, bool(compacted), retention_ms)

    async def close(self) -> None:
        if self._writer is not None:
            self._flush()
            self._writer.close()
        if self._answers is not None:
            self._answers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._answers
        self._fail_waiting("the bus is closed")
        if self._conn is not None:
            await self._read(lambda c: c.close())
        self._thread.shutdown(wait=True)

    async def _read(self, fn):
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, self._conn)

    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        """The owner made them; this only checks that they are there."""
        await self._load_topics()
        missing = [spec.name for spec in specs if spec.name not in self._topics]
        if missing:
            raise BusUnavailable(f"topics not made by the owner yet: {missing}")

    def partitions(self, topic: str) -> int:
        spec = self._topics.get(topic)
        if spec is None:
            raise KeyError(f"unknown topic {topic!r}")
        return spec.partitions

    # publishing through the owner ---------------------------------------------
    async def publish(self, topic: str, key: str, value: bytes, partition: int | None = None) -> int:
        began = time.perf_counter()
        offsets = await self._request(topic, partition, [(key, value)], many=False)
        if self._append_seconds is not None:  # loop thread only: counted without a lock (metrics/onloop.py)
            self._append_seconds.observe(time.perf_counter() - began)
        return offsets[0]

    async def publish_many(
        self, topic: str, items: list[tuple[str, bytes]], partition: int | None = None
    ) -> None:
        if items:
            await self._request(topic, partition, items, many=True)

    async def _request(self, topic: str, partition: int | None, items, many: bool) -> list[int]:
        if self._writer is None or self._writer.is_closing():
            raise BusUnavailable("the link to the bus owner is closed")
        self._next_id += 1
        future = asyncio.get_running_loop().create_future()
        self._waiting[self._next_id] = future
        self._outbox.append([self._next_id, topic, partition, items, many])
        if not self._flush_scheduled:  # one frame for everything published in this turn
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._outbox and self._writer is not None and not self._writer.is_closing():
            self._writer.write(frame(self._outbox))
        self._outbox = []

    async def _take_answers(self) -> None:
        assert self._reader is not None
        try:
            while True:
                for request_id, error, result in await read_frame(self._reader):
                    future = self._waiting.pop(request_id, None)
                    if future is None or future.done():
                        continue
                    if error is None:
                        future.set_result(result)
                    else:
                        future.set_exception(
                            BusUnavailable(result) if error == UNAVAILABLE else RuntimeError(result)
                        )
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            log.warning("bus.link.lost", error=str(exc) or type(exc).__name__)
        finally:
            self._fail_waiting("the link to the bus owner was lost")
            self.link_lost.set()

    def _fail_waiting(self, why: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(BusUnavailable(why))
        if self._writer is not None:
            self._writer.close()

    # reading the file ------------------------------------------------------------
    async def read(self, tp: TopicPartition, start: int, limit: int) -> list[Record]:
        topic, partition = tp
        rows = await self._read(
            lambda c: c.execute(
                "SELECT offset, key, value, ts FROM records WHERE topic=? AND partition=? AND offset>=?"
                " ORDER BY offset LIMIT ?",
                (topic, partition, start, limit),
            ).fetchall()
        )
        return [Record(topic, partition, off, key, value, ts) for off, key, value, ts in rows]

    async def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """One past the last durable record: the owner writes a partition's end in the
        transaction that appends to it, so nothing below it is still to come."""
        tps = list(tps)

        def query(c: sqlite3.Connection) -> dict[TopicPartition, int]:
            return {
                tp: (
                    c.execute(
                        "SELECT end_offset FROM partition_ends WHERE topic=? AND partition=?", tp
                    ).fetchone()
                    or (0,)
                )[0]
                for tp in tps
            }

        return await self._read(query)

    async def first_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        tps = list(tps)
        ends = await self.end_offsets(tps)

        def query(c: sqlite3.Connection) -> dict[TopicPartition, int]:
            firsts = {}
            for tp in tps:
                row = c.execute(
                    "SELECT MIN(offset) FROM records WHERE topic=? AND partition=?", tp
                ).fetchone()
                firsts[tp] = row[0] if row and row[0] is not None else ends[tp]
            return firsts

        return await self._read(query)

    def reader(self, partitions: list[TopicPartition]) -> Consumer:
        return LinkedReader(self, list(partitions))

    def consumer(
        self,
        topics: list[str],
        group: str | None = None,
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> Consumer:
        raise NotImplementedError("consumer groups run in the process that owns the bus")


class LinkedReader(PositionedConsumer):
    """Reads fixed partitions of a linked bus from their oldest stored record (a view)."""

    def __init__(self, bus: LinkedBus, partitions: list[TopicPartition]):
        self._bus = bus
        self._partitions = partitions
        self._positions: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        self._positions = await self._bus.first_offsets(self._partitions)

    async def close(self) -> None:
        self._positions = {}

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return await self._bus.end_offsets(partitions)

    async def poll(self, max_records: int = 1000, timeout_ms: int = 1000) -> list[Record]:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            ends = await self._bus.end_offsets(self._positions)  # before the reads: all below is on disk
            records: list[Record] = []
            for tp, pos in self._positions.items():
                if pos >= ends[tp] or len(records) >= max_records:
                    continue
                batch = await self._bus.read(tp, pos, max_records - len(records))
                # Nothing between here and the end: compaction or retention removed it.
                self._positions[tp] = batch[-1].offset + 1 if batch else ends[tp]
                records.extend(batch)
            if records:
                return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await asyncio.sleep(min(POLL_EVERY_S, remaining))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        raise RuntimeError("a reader commits nothing")
