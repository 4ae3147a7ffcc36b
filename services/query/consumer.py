"""Writes check-ins, status changes and alert deliveries from the bus into the history store.

It reads ``pings`` (Ping), ``status`` (StatusChanged, Missed, and RunMeasured: the
evaluator's measured runs) and ``deliveries`` (DeliveryAttempt, and Delivery from notifiers
of older versions).

At-least-once made exactly-once: offsets are committed only after the batch they cover
is in ClickHouse, and a batch that is read again after a crash carries the same
deduplication token (built from its offset ranges), while the store's FINAL reads
absorb a replay that happens to be batched differently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import msgspec
import structlog

from services.query.store import HistoryStore
from shared.bus.deadletter import DeadLetters
from shared.bus.view import APPLY_SLICE
from shared.bus import Bus, Consumer, Record, TopicPartition
from shared.events import Delivery, DeliveryAttempt, Missed, Ping, RunMeasured, StatusChanged, decode
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

GROUP = "query-writer"
MAX_BATCH_RECORDS = 20_000
POLL_TIMEOUT_MS = 200
LINGER_MS = 200
"""After the first records arrive, gather more for this long: every ClickHouse insert has a
fixed cost (a new part), so a few large inserts beat many small ones under load. It adds at
most this much to the ping-to-history delay."""
HISTORY_EVENTS = (Ping, Missed, StatusChanged, Delivery, DeliveryAttempt, RunMeasured)


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
        self._dead_letters = DeadLetters(bus, topics, "query.writer")
        self.events_written = 0

    async def start(self) -> None:
        # A topic new to the group (deliveries, after an upgrade) is read from its start.
        self._consumer = self._bus.consumer(
            [self._topics.pings, self._topics.status, self._topics.deliveries], group=GROUP
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
            except Exception as exc:  # bus briefly unavailable: try again shortly
                log.warning("query.writer.poll_failed", error=str(exc))
                await self._sleep(self._retry_backoff_s)
                continue
            if records and await self._write(records):
                await self._commit(consumer, records)

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
        """Insert the batch, retrying with backoff until it succeeds; False only when stopping."""
        events = []
        for start in range(0, len(records), APPLY_SLICE):  # up to 20,000 records: a slice a turn
            if start:
                await asyncio.sleep(0)
            events += self._decode(records[start:start + APPLY_SLICE])
        token = batch_token(records)
        backoff_s = self._retry_backoff_s
        while events:
            try:
                await self._store.insert_events(events, token)
                break
            except Exception as exc:
                log.error("query.writer.insert_failed", error=str(exc), events=len(events), retry_in_s=backoff_s)
                if await self._sleep(backoff_s):
                    return False
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
        self.events_written += len(events)
        log.debug("query.writer.batch_written", records=len(records), events=len(events), token=token)
        return True

    def _decode(self, records: list[Record]) -> list:
        events = []
        for record in records:
            try:
                event = decode(record.value)
            except msgspec.DecodeError as exc:
                # A record nobody can read must not stop the partition: count it and move on.
                self.poison_records += 1
                self._dead_letters.set_aside(record, str(exc))
                continue
            if isinstance(event, HISTORY_EVENTS):
                events.append(event)
        return events

    async def _commit(self, consumer: Consumer, records: list[Record]) -> None:
        try:
            await self._dead_letters.flush()
            await consumer.commit(next_offsets(records))
        except Exception as exc:
            # The rows are stored; the next commit covers these offsets too, and a replay is harmless.
            log.warning("query.writer.commit_failed", error=str(exc))

    async def _sleep(self, delay_s: float) -> bool:
        """Wait ``delay_s`` unless asked to stop first; True when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_s)
        return self._stopping.is_set()
