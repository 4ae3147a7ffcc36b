"""Writes check-ins, status changes and alert deliveries from the bus into the history store.

It reads ``pings`` (Ping), ``status`` (StatusChanged, Missed, RunMeasured: the evaluator's
measured runs, and CheckinJudged: what its rules found in a check-in), ``deliveries`` (DeliveryAttempt, and Delivery from notifiers
of older versions) and ``audit`` (AuditEntry: the audit log).

At-least-once made exactly-once: offsets are committed only after the batch they cover
is in ClickHouse, and a batch that is read again after a crash carries the same
deduplication token (built from its offset ranges), while the store's FINAL reads
absorb a replay that happens to be batched differently.

It never stalls silently. An insert that fails for a reason outside the batch (ClickHouse
away, a timeout, a 5xx, chDB busy, anything not listed below) is retried with capped,
jittered backoff: a traceback at the first failure, one line per retry, one on recovery.
A batch ClickHouse refuses for what it contains (:func:`refused_for_content`) is split in
halves until the refused records stand alone; those go to ``dead-letters`` with the reason
and the rest is written, so the partition moves on. Offsets are committed only once the
batch's rows are written and its dead letters are durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from typing import Any

import msgspec
import structlog
from clickhouse_connect.driver.exceptions import ClickHouseError

from services.query.store import HistoryStore
from shared.bus import Bus, Consumer, Record, TopicPartition
from shared.bus.deadletter import DeadLetters
from shared.bus.view import APPLY_SLICE
from shared.events import (
    AuditEntry,
    CheckinJudged,
    Delivery,
    DeliveryAttempt,
    Missed,
    Ping,
    RunMeasured,
    StatusChanged,
    decode,
)
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()


class _Stopping:
    """What :meth:`HistoryWriter._insert` returns when the writer closes while it waits to retry."""


_STOPPING = _Stopping()

GROUP = "query-writer"
MAX_BATCH_RECORDS = 20_000
POLL_TIMEOUT_MS = 200
LINGER_MS = 200
"""After the first records arrive, gather more for this long: every ClickHouse insert has a
fixed cost (a new part), so a few large inserts beat many small ones under load. It adds at
most this much to the ping-to-history delay."""
HISTORY_EVENTS = (
    Ping,
    Missed,
    StatusChanged,
    Delivery,
    DeliveryAttempt,
    RunMeasured,
    CheckinJudged,
    AuditEntry,
)

REFUSED_CONTENT_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    25,   # CANNOT_PARSE_ESCAPE_SEQUENCE
    26,   # CANNOT_PARSE_QUOTED_STRING
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER (e.g. a negative exit code for UInt8)
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    376,  # CANNOT_PARSE_UUID
    407,  # DECIMAL_OVERFLOW
    469,  # VIOLATED_CONSTRAINT
})  # fmt: skip
"""ClickHouse error codes that say the rows themselves cannot go into the table: the same
rows would be refused again forever. Every other code (a timeout, too many parts, memory,
a missing table, a read-only replica) is about ClickHouse's state, not the data, and is
retried: dropping rows for it would lose history that a later try would have kept."""


def refused_for_content(exc: Exception) -> bool:
    """Whether ``exc`` refused the batch for what it contains, not for ClickHouse's state.

    ClickHouse's own errors count when their code is in :data:`REFUSED_CONTENT_CODES`;
    errors raised in this process while the rows are built (a value the row mapping or
    the JSON encoder cannot take) count too, as they fail the same way on every try.
    Everything else (connection refused, timeouts, HTTP 5xx without a data error code,
    chDB busy or closed) is transient.
    """
    if isinstance(exc, ClickHouseError):
        return getattr(exc, "code", None) in REFUSED_CONTENT_CODES
    return isinstance(exc, TypeError | ValueError | OverflowError | msgspec.EncodeError)


def batch_token(records: list[Record]) -> str:
    """``topic/partition:first-last`` per partition, then a digest of the records' values.

    The same records read again give the same token. The digest matters because offsets
    alone repeat when a bus starts over (a new Kafka cluster, a wiped embedded log)
    while ClickHouse keeps its deduplication window: new rows under an old token would
    be dropped without a word.
    """
    ranges: dict[TopicPartition, tuple[int, int]] = {}
    digest = hashlib.blake2b(digest_size=12)
    for record in records:
        tp = (record.topic, record.partition)
        first, _ = ranges.get(tp, (record.offset, record.offset))
        ranges[tp] = (first, record.offset)
        digest.update(len(record.value).to_bytes(4, "big") + record.value)
    spans = ",".join(f"{t}/{p}:{first}-{last}" for (t, p), (first, last) in sorted(ranges.items()))
    return f"{spans}#{digest.hexdigest()}"


def next_offsets(records: list[Record]) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = (record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


class HistoryWriter:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        topics: Topics,
        store: HistoryStore,
        retry_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ):
        self._settings = settings
        self._bus = bus
        self._topics = topics
        self._store = store
        self._retry_backoff_s = retry_backoff_s
        self._max_backoff_s = max_backoff_s
        self._consumer: Consumer | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self.poison_records = 0
        """Records set aside because nobody can decode them."""
        self.refused_records = 0
        """Records set aside because ClickHouse refused them (or the rows built from them)."""
        self._dead_letters = DeadLetters(bus, topics, "query.writer")
        self.events_written = 0
        self._in_hand = 0
        self.written_through_ms = int(time.time() * 1000)
        """Bus timestamp of the newest record written (the start, until one is)."""

    def progress(self) -> tuple[int, int]:
        """(records not read yet, :attr:`written_through_ms`), for ``/metrics``."""
        consumer = self._consumer
        waiting = sum(consumer.lags().values()) if consumer is not None else 0
        return waiting + self._in_hand, self.written_through_ms

    async def start(self) -> None:
        # A topic new to the group (deliveries, after an upgrade) is read from its start.
        self._consumer = self._bus.consumer(
            [self._topics.pings, self._topics.status, self._topics.deliveries, self._topics.audit],
            group=GROUP,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(self._consumer), name="query-writer")
        log.info("query.writer.started", group=GROUP)

    async def close(self) -> None:
        """Finish the batch in hand (unless its insert keeps failing), then stop."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None

    async def _run(self, consumer: Consumer) -> None:
        while not self._stopping.is_set():
            try:
                records = await self._gather(consumer)
            except Exception as exc:  # noqa: BLE001 (any bus's poll errors: the bus briefly unavailable, try again shortly)
                log.warning("query.writer.poll_failed", error=str(exc))
                await self._sleep(self._retry_backoff_s)
                continue
            self._in_hand = len(records)
            if records and await self._write(records):
                await self._commit(consumer, records)
                self.written_through_ms = max(self.written_through_ms, records[-1].timestamp_ms)
            self._in_hand = 0

    async def _gather(self, consumer: Consumer) -> list[Record]:
        records = await consumer.poll(MAX_BATCH_RECORDS, POLL_TIMEOUT_MS)
        if not records:
            return records
        deadline = asyncio.get_running_loop().time() + LINGER_MS / 1000
        while len(records) < MAX_BATCH_RECORDS and not self._stopping.is_set():
            remaining_ms = int((deadline - asyncio.get_running_loop().time()) * 1000)
            if remaining_ms <= 0:
                break
            records += await consumer.poll(MAX_BATCH_RECORDS - len(records), remaining_ms)
        return records

    async def _write(self, records: list[Record]) -> bool:
        """Write the batch; False only when stopping (then nothing may be committed)."""
        items: list[tuple[Record, Any]] = []
        for start in range(0, len(records), APPLY_SLICE):  # up to 20,000 records: a slice a turn
            if start:
                await asyncio.sleep(0)
            items += self._decode(records[start : start + APPLY_SLICE])
        token = batch_token(records)
        written = await self._insert_splitting(items, token) if items else True
        if written:
            log.debug("query.writer.batch_written", records=len(records), events=len(items), token=token)
        return written

    async def _insert_splitting(self, items: list[tuple[Record, Any]], token: str) -> bool:
        """Insert ``items``; when ClickHouse refuses them for their content, insert each half
        on its own, down to single records, which are dead-lettered. False when stopping.

        A half's token is built from its own records, so a replay after a crash splits the same
        way and the same tokens dedupe it; a part of a refused insert that did land (another
        table's rows) is written again under the half's token, which the tables' FINAL absorbs.
        """
        refusal = await self._insert(items, token)
        if isinstance(refusal, _Stopping):
            return False
        if refusal is None:
            self.events_written += len(items)
            return True
        if len(items) == 1:
            [(record, _)] = items
            self.refused_records += 1
            self._dead_letters.set_aside(record, f"clickhouse refused the record: {refusal}")
            return True
        log.warning("query.writer.batch_refused", events=len(items), error=str(refusal)[:500])
        middle = len(items) // 2
        for half in (items[:middle], items[middle:]):
            if not await self._insert_splitting(half, batch_token([record for record, _ in half])):
                return False
        return True

    async def _insert(self, items: list[tuple[Record, Any]], token: str) -> Exception | _Stopping | None:
        """Insert once it works: None when written, the exception when the content was refused,
        :data:`_STOPPING` when asked to stop while waiting to retry."""
        events = [event for _, event in items]
        backoff_s = self._retry_backoff_s
        failures, first_failed = 0, 0.0
        while True:
            try:
                await self._store.insert_events(events, token)
            except Exception as exc:
                if refused_for_content(exc):
                    return exc
                failures += 1
                delay_s = backoff_s * random.uniform(0.8, 1.2)  # many writers must not retry in step
                if failures == 1:
                    first_failed = time.monotonic()
                    log.exception(
                        "query.writer.insert_failed", events=len(events), retry_in_s=round(delay_s, 3)
                    )
                else:
                    log.warning("query.writer.insert_retry_failed", attempt=failures, error=str(exc)[:300],
                                retry_in_s=round(delay_s, 3))  # fmt: skip
                if await self._sleep(delay_s):
                    return _STOPPING
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
                continue
            if failures:
                log.info("query.writer.insert_recovered", failed_attempts=failures,
                         after_s=round(time.monotonic() - first_failed, 3))  # fmt: skip
            return None

    def _decode(self, records: list[Record]) -> list[tuple[Record, Any]]:
        items = []
        for record in records:
            try:
                event = decode(record.value)
            except msgspec.DecodeError as exc:
                # A record nobody can read must not stop the partition: count it and move on.
                self.poison_records += 1
                self._dead_letters.set_aside(record, str(exc))
                continue
            if isinstance(event, HISTORY_EVENTS):
                items.append((record, event))
        return items

    async def _commit(self, consumer: Consumer, records: list[Record]) -> None:
        try:
            await self._dead_letters.flush()
            await consumer.commit(next_offsets(records))
        except Exception as exc:  # noqa: BLE001 (any bus's publish or commit errors; nothing is lost, see below)
            # The rows are stored; the next commit covers these offsets too, and a replay is harmless.
            log.warning("query.writer.commit_failed", error=str(exc))

    async def _sleep(self, delay_s: float) -> bool:
        """Wait ``delay_s`` unless asked to stop first; True when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_s)
        return self._stopping.is_set()
