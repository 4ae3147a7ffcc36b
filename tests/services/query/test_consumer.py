import asyncio
import base64

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from structlog.testing import capture_logs

from services.query.consumer import GROUP, HistoryWriter, batch_token, refused_for_content
from shared.bus import Record
from shared.bus.local import LocalBus
from shared.events import DeadLetter, RunMeasured, Tick, decode, encode
from shared.settings import Settings
from shared.topics import Topics
from tests.polling import eventually
from tests.services.query.factories import a_delivery, a_miss, a_ping, a_status_change

TOPICS = Topics()


@pytest.fixture
async def bus(tmp_path):
    local = LocalBus(tmp_path / "bus.sqlite3")
    await local.start()
    await local.ensure_topics(TOPICS.specs(1))
    yield local
    await local.close()


class FlakyStore:
    """The real store, behind a switch that makes inserts fail until it is turned on."""

    def __init__(self, store):
        self._store = store
        self.working = asyncio.Event()
        self.failed_attempts = 0

    async def insert_events(self, events, dedup_token):
        if not self.working.is_set():
            self.failed_attempts += 1
            raise ConnectionError("clickhouse is down")
        await self._store.insert_events(events, dedup_token)


class FailingFirst:
    """The real store behind a wrapper whose first ``times`` inserts raise ``error`` unsent.

    Stands in for a ClickHouse that is away for a while: the writer only sees the exception,
    so a thin wrapper around the real store is as good as a stopped server here."""

    def __init__(self, store, times: int, error: Exception):
        self._store = store
        self._failures_left = times
        self._error = error

    async def insert_events(self, events, dedup_token):
        if self._failures_left:
            self._failures_left -= 1
            raise self._error
        await self._store.insert_events(events, dedup_token)


async def committed(bus) -> tuple[int | None, int | None]:
    return await bus.committed(GROUP, (TOPICS.pings, 0)), await bus.committed(GROUP, (TOPICS.status, 0))


async def publish_history(bus, project_id, monitor_id, now_ms) -> None:
    await bus.publish(TOPICS.pings, monitor_id, encode(a_ping(project_id, monitor_id, now_ms - 2000)))
    await bus.publish(TOPICS.pings, "", encode(Tick(at_ms=now_ms)))
    await bus.publish(TOPICS.pings, monitor_id, encode(a_ping(project_id, monitor_id, now_ms - 1000)))
    down = a_status_change(project_id, monitor_id, now_ms - 500, "down", "up")
    await bus.publish(TOPICS.status, monitor_id, encode(down))
    await bus.publish(TOPICS.status, monitor_id, encode(a_miss(project_id, monitor_id, now_ms - 600)))


async def test_the_writer_commits_only_after_the_insert(bus, store, project_id, monitor_id, now_ms):
    flaky = FlakyStore(store)
    await publish_history(bus, project_id, monitor_id, now_ms)
    writer = HistoryWriter(Settings(), bus, TOPICS, flaky, retry_backoff_s=0.01, max_backoff_s=0.02)
    await writer.start()
    try:
        await eventually(lambda: flaky.failed_attempts >= 3)
        assert await committed(bus) == (None, None)
        assert (await store.history(project_id, monitor_id))[0] == []

        flaky.working.set()
        await eventually(lambda: writer.events_written == 4)
        await eventually(lambda: _equals(committed(bus), (3, 2)))
    finally:
        await writer.close()
    rows, _ = await store.history(project_id, monitor_id)
    assert [r["kind"] for r in rows] == ["missed", "success", "success"]
    assert (await store.status_changes(project_id, monitor_id, limit=1))[0][0]["status"] == "down"


async def test_a_poison_record_is_counted_and_skipped(bus, store, project_id, monitor_id, now_ms):
    await bus.publish(TOPICS.pings, monitor_id, b"{not json")
    await bus.publish(TOPICS.pings, monitor_id, b'{"type": "ping", "id": 7}')  # valid JSON, wrong shape
    await bus.publish(TOPICS.pings, monitor_id, encode(a_ping(project_id, monitor_id, now_ms)))
    writer = HistoryWriter(Settings(), bus, TOPICS, store)
    await writer.start()
    try:
        await eventually(lambda: _equals(committed(bus), (3, None)))
    finally:
        await writer.close()
    assert writer.poison_records == 2
    assert len((await store.history(project_id, monitor_id))[0]) == 1


async def test_a_batch_read_again_after_a_crash_is_not_written_twice(
    bus, store, project_id, monitor_id, now_ms
):
    await publish_history(bus, project_id, monitor_id, now_ms)
    for _ in range(2):  # the second run starts from offset 0 again, as after a crash before the commit
        writer = HistoryWriter(Settings(), bus, TOPICS, store)
        await writer.start()
        await eventually(lambda: _equals(committed(bus), (3, 2)))
        await writer.close()
        await bus.commit(GROUP, {(TOPICS.pings, 0): 0, (TOPICS.status, 0): 0})

    rows, _ = await store.history(project_id, monitor_id)
    assert len(rows) == 3


async def test_the_writer_records_the_deliveries_the_notifier_publishes(
    bus, store, project_id, monitor_id, now_ms
):
    delivered = a_delivery(project_id, monitor_id, now_ms - 1000, kind="down", channel_id="ch_a")
    given_up = a_delivery(project_id, monitor_id, now_ms, kind="up", channel_id="ch_a", ok=False, attempts=4,
                          error="timed out after 10 s")  # fmt: skip
    for delivery in (delivered, given_up, delivered):  # the last one: a replay
        await bus.publish(TOPICS.deliveries, monitor_id, encode(delivery))
    writer = HistoryWriter(Settings(), bus, TOPICS, store)
    await writer.start()
    try:
        await eventually(lambda: _equals(bus.committed(GROUP, (TOPICS.deliveries, 0)), 3))
    finally:
        await writer.close()

    rows, _ = await store.deliveries(project_id, monitor_id)
    assert [(r["kind"], r["ok"], r["attempts"], r["error"]) for r in rows] == [
        ("up", False, 4, "timed out after 10 s"), ("down", True, 1, ""),
    ]  # fmt: skip


async def test_the_writer_keeps_the_runs_the_evaluator_measured(bus, store, project_id, monitor_id, now_ms):
    start = a_ping(project_id, monitor_id, now_ms - 90_000, kind="start", rid="r1")
    end = a_ping(project_id, monitor_id, now_ms, kind="success", rid="r1")
    run = RunMeasured(id=f"{monitor_id}:run:{end.id}", monitor_id=monitor_id, project_id=project_id, ping_id=end.id,
                      rid="r1", started_ms=start.received_ms, ended_ms=end.received_ms, duration_s=90.0)  # fmt: skip
    for topic, event in (
        (TOPICS.pings, start),
        (TOPICS.pings, end),
        (TOPICS.status, run),
        (TOPICS.status, run),
    ):
        await bus.publish(topic, monitor_id, encode(event))  # the run twice: a replay
    writer = HistoryWriter(Settings(), bus, TOPICS, store)
    await writer.start()
    try:
        await eventually(lambda: _equals(bus.committed(GROUP, (TOPICS.status, 0)), 2))
    finally:
        await writer.close()

    rows, _ = await store.history(project_id, monitor_id)
    assert [(r["kind"], r["measured_duration"]) for r in rows] == [("success", 90.0), ("start", None)]


def test_the_dedup_token_names_each_partitions_offset_range_and_its_content():
    records = [Record("b", 1, 7, "", b"x", 0), Record("a", 0, 3, "", b"y", 0), Record("b", 1, 9, "", b"z", 0)]
    token = batch_token(records)
    assert token.startswith("a/0:3-3,b/1:7-9#")
    assert batch_token(list(records)) == token
    # Same offsets, other records (a bus that started over): another token, so no silent drop.
    assert batch_token([Record("b", 1, 7, "", b"x2", 0), *records[1:]]) != token


async def _equals(awaitable, expected) -> bool:
    return await awaitable == expected


async def dead_letters(bus) -> list[DeadLetter]:
    letters = []
    for record in await bus.read((TOPICS.dead_letters, 0), 0, 100):
        letter = decode(record.value)
        assert isinstance(letter, DeadLetter), letter
        letters.append(letter)
    return letters


async def test_a_record_clickhouse_refuses_is_dead_lettered_and_the_records_around_it_are_written(
    bus, store, project_id, monitor_id, now_ms
):
    # The decoder takes any int, but exit_code is UInt8: ClickHouse refuses -1 (CANNOT_PARSE_NUMBER).
    refused = a_ping(project_id, monitor_id, now_ms - 2000, kind="fail", exit_code=-1)
    before, after = (
        a_ping(project_id, monitor_id, now_ms - 3000),
        a_ping(project_id, monitor_id, now_ms - 1000),
    )
    for ping in (before, refused, after):
        await bus.publish(TOPICS.pings, monitor_id, encode(ping))
    await bus.publish(
        TOPICS.status, monitor_id, encode(a_status_change(project_id, monitor_id, now_ms, "up", "new"))
    )
    writer = HistoryWriter(Settings(), bus, TOPICS, store)
    await writer.start()
    try:
        await eventually(lambda: _equals(committed(bus), (3, 1)))
        # The partition moves on: what comes next is written too.
        later = a_ping(project_id, monitor_id, now_ms)
        await bus.publish(TOPICS.pings, monitor_id, encode(later))
        await eventually(lambda: _equals(committed(bus), (4, 1)))
    finally:
        await writer.close()

    rows, _ = await store.history(project_id, monitor_id)
    assert [r["id"] for r in rows] == [later.id, after.id, before.id]
    assert (await store.status_changes(project_id, monitor_id, limit=1))[0][0]["status"] == "up"
    [letter] = await dead_letters(bus)
    assert (letter.service, letter.topic, letter.offset) == ("query.writer", TOPICS.pings, 1)
    assert letter.error.startswith("clickhouse refused the record: ") and "exit_code" in letter.error
    assert base64.b64decode(letter.value_b64) == encode(refused)  # kept whole, to be replayed once fixed
    assert writer.refused_records == 1 and writer.poison_records == 0


async def test_an_insert_that_fails_for_a_while_is_retried_loudly_and_nothing_is_set_aside(
    bus, store, project_id, monitor_id, now_ms
):
    await publish_history(bus, project_id, monitor_id, now_ms)
    away = FailingFirst(store, times=3, error=ConnectionError("Connection refused"))
    writer = HistoryWriter(Settings(), bus, TOPICS, away, retry_backoff_s=0.01, max_backoff_s=0.02)
    with capture_logs() as logs:
        await writer.start()
        try:
            await eventually(lambda: _equals(committed(bus), (3, 2)))
        finally:
            await writer.close()

    failed = [e for e in logs if e["event"].startswith("query.writer.insert_")]
    assert [e["event"] for e in failed] == [
        "query.writer.insert_failed", "query.writer.insert_retry_failed", "query.writer.insert_retry_failed",
        "query.writer.insert_recovered",
    ]  # fmt: skip
    assert failed[0]["exc_info"] is True  # the traceback, once
    assert [e["attempt"] for e in failed[1:3]] == [2, 3] and "Connection refused" in failed[1]["error"]
    assert failed[3]["failed_attempts"] == 3
    assert len((await store.history(project_id, monitor_id))[0]) == 3
    assert await dead_letters(bus) == [] and writer.refused_records == 0


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (DatabaseError("Code: 72. DB::Exception: Unsigned type must not contain '-' symbol", code=72), True),
        (DatabaseError("Code: 53. DB::Exception: Type mismatch", code=53), True),
        (ValueError("a value the row mapping cannot take"), True),
        (DatabaseError("Code: 241. DB::Exception: Memory limit exceeded", code=241), False),
        (DatabaseError("Code: 252. DB::Exception: Too many parts", code=252), False),
        (DatabaseError("Code: 60. DB::Exception: Unknown table", code=60), False),
        (DatabaseError("HTTP driver received HTTP status 503"), False),
        (OperationalError("Network Error"), False),
        (ConnectionError("Connection refused"), False),
        (TimeoutError(), False),
    ],
)
def test_only_errors_about_the_rows_themselves_count_as_refused_content(error, refused):
    assert refused_for_content(error) is refused
