import asyncio
import os
import sqlite3
import stat
import threading
import time

import pytest

from shared.bus import BusUnavailable, TopicSpec, partition_for
from shared.bus.local import LocalBus


@pytest.fixture
async def bus(tmp_path):
    b = LocalBus(tmp_path / "bus.sqlite3")
    await b.start()
    await b.ensure_topics([TopicSpec("t", 3), TopicSpec("c", 2, compacted=True)])
    yield b
    await b.close()


async def test_it_keeps_each_key_in_order_within_its_partition(bus):
    await asyncio.gather(*(bus.publish("t", f"k{i % 5}", str(i).encode()) for i in range(200)))
    consumer = bus.consumer(["t"], group="g")
    await consumer.start()
    seen: dict[str, list[int]] = {}
    while sum(len(v) for v in seen.values()) < 200:
        for r in await consumer.poll(timeout_ms=500):
            seen.setdefault(r.key, []).append(int(r.value))
    assert all(vals == sorted(vals) for vals in seen.values())
    assert sorted(x for v in seen.values() for x in v) == list(range(200))


async def test_it_resumes_from_the_committed_offset_after_a_restart(tmp_path):
    path = tmp_path / "bus.sqlite3"
    bus = LocalBus(path)
    await bus.start()
    await bus.ensure_topics([TopicSpec("t", 1)])
    for i in range(10):
        await bus.publish("t", "k", str(i).encode())
    consumer = bus.consumer(["t"], group="g")
    await consumer.start()
    records = await consumer.poll(max_records=4)
    await consumer.commit({("t", 0): records[-1].offset + 1})
    await bus.close()

    bus = LocalBus(path)
    await bus.start()
    consumer = bus.consumer(["t"], group="g")
    await consumer.start()
    rest = await consumer.poll()
    assert [int(r.value) for r in rest] == list(range(4, 10))
    assert await bus.publish("t", "k", b"10") == 10
    await bus.close()


async def test_concurrent_appends_share_commits(bus):
    # Group commit: many concurrent publishes, all durable, offsets dense and unique.
    offsets = await asyncio.gather(*(bus.publish("t", "same", b"x") for _ in range(500)))
    assert sorted(offsets) == list(range(500))


async def test_compaction_keeps_the_newest_record_per_key(bus):
    for i in range(5):
        await bus.publish("c", "a", f"a{i}".encode())
        await bus.publish("c", "b", f"b{i}".encode())
    removed = await bus.compact()
    assert removed == 8
    view = bus.consumer(["c"])
    await view.start()
    values = sorted(r.value for r in await view.poll(timeout_ms=100))
    assert values == [b"a4", b"b4"]
    assert await view.caught_up()


async def test_it_refuses_appends_when_the_backlog_is_full(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3", max_pending=0)
    await bus.start()
    await bus.ensure_topics([TopicSpec("t", 1)])
    with pytest.raises(BusUnavailable):
        await bus.publish("t", "k", b"v")
    await bus.close()


async def test_a_poll_waits_for_new_records(bus):
    consumer = bus.consumer(["t"], group="g")
    await consumer.start()
    waiter = asyncio.create_task(consumer.poll(timeout_ms=5000))
    await asyncio.sleep(0.05)  # the poll is parked, waiting, before the record exists: what is under test
    assert not waiter.done()
    await bus.publish("t", "k", b"late")
    records = await asyncio.wait_for(waiter, 2)
    assert [r.value for r in records] == [b"late"]


DAY_MS = 24 * 3600 * 1000


async def test_it_never_reuses_offsets_after_retention_emptied_a_partition_and_a_restart(tmp_path):
    path = tmp_path / "bus.sqlite3"
    bus = LocalBus(path)
    await bus.start()
    await bus.ensure_topics([TopicSpec("alerts", 1, retention_ms=30 * DAY_MS)])
    for i in range(5):
        await bus.publish("alerts", "m", f"a{i}".encode())
    await bus.commit("notifier", {("alerts", 0): 5})
    assert await bus.compact(now_ms=int(time.time() * 1000) + 31 * DAY_MS) == 5
    await bus.close()

    bus = LocalBus(path)
    await bus.start()
    assert await bus.publish("alerts", "m", b"after") == 5
    consumer = bus.consumer(["alerts"], group="notifier")
    await consumer.start()
    records = await consumer.poll(timeout_ms=500)
    await bus.close()
    assert [(r.offset, r.value) for r in records] == [(5, b"after")]


async def test_a_view_without_a_group_starts_at_the_end_of_a_partition_retention_emptied(tmp_path):
    path = tmp_path / "bus.sqlite3"
    bus = LocalBus(path)
    await bus.start()
    await bus.ensure_topics([TopicSpec("status", 1, retention_ms=7 * DAY_MS)])
    for i in range(3):
        await bus.publish("status", "m", f"s{i}".encode())
    await bus.compact(now_ms=int(time.time() * 1000) + 8 * DAY_MS)
    await bus.close()

    bus = LocalBus(path)
    await bus.start()
    view = bus.consumer(["status"])
    await view.start()
    assert await view.position(("status", 0)) == 3
    assert await view.caught_up()
    await bus.publish("status", "m", b"s3")
    assert [r.offset for r in await view.poll(timeout_ms=500)] == [3]
    await bus.close()


async def test_a_compacted_topic_keeps_its_offsets_across_compaction_and_a_restart(tmp_path):
    path = tmp_path / "bus.sqlite3"
    bus = LocalBus(path)
    await bus.start()
    await bus.ensure_topics([TopicSpec("c", 1, compacted=True)])
    for i in range(3):
        await bus.publish("c", "a", f"a{i}".encode())
    await bus.publish("c", "b", b"b0")
    await bus.publish("c", "a", b"a3")  # the newest record of "a" is also the partition's last
    assert await bus.compact() == 3
    await bus.close()

    bus = LocalBus(path)
    await bus.start()
    assert await bus.publish("c", "b", b"b1") == 5
    view = bus.consumer(["c"])
    await view.start()
    records = await view.poll(timeout_ms=500)
    await bus.close()
    assert [(r.offset, r.value) for r in records] == [(3, b"b0"), (4, b"a3"), (5, b"b1")]


async def test_it_recovers_ends_lost_by_a_file_from_before_ends_were_kept(tmp_path):
    # Such a file may already have been emptied by retention: the committed offsets are
    # what is left to say where the end was.
    path = tmp_path / "bus.sqlite3"
    bus = LocalBus(path)
    await bus.start()
    await bus.ensure_topics([TopicSpec("alerts", 1, retention_ms=30 * DAY_MS)])
    for i in range(5):
        await bus.publish("alerts", "m", f"a{i}".encode())
    await bus.commit("notifier", {("alerts", 0): 4})
    await bus.compact(now_ms=int(time.time() * 1000) + 31 * DAY_MS)
    await bus.close()
    _edit(path, "DELETE FROM partition_ends")

    bus = LocalBus(path)
    await bus.start()
    assert await bus.publish("alerts", "m", b"after") == 4
    consumer = bus.consumer(["alerts"], group="notifier")
    await consumer.start()
    records = await consumer.poll(timeout_ms=500)
    await bus.close()
    assert [r.value for r in records] == [b"after"]


async def test_a_committed_offset_beyond_the_end_is_read_from_the_end(bus):
    # Starting past the end would skip the records about to be appended there.
    await bus.commit("g", {("t", 0): 7})
    consumer = bus.consumer(["t"], group="g")
    await consumer.start()
    assert await consumer.position(("t", 0)) == 0
    offset = await bus.publish("t", "k", b"x", partition=0)
    assert [r.offset for r in await consumer.poll(timeout_ms=500)] == [offset]


async def test_a_reader_passes_a_gap_that_reaches_the_end_of_a_partition(tmp_path):
    # Records below the gap are still stored, so "the oldest stored" is no way past it.
    path = tmp_path / "bus.sqlite3"
    bus = LocalBus(path)
    await bus.start()
    await bus.ensure_topics([TopicSpec("t", 1)])
    for i in range(5):
        await bus.publish("t", "k", str(i).encode())
    await bus.commit("g", {("t", 0): 3})
    await bus.close()
    _edit(path, "DELETE FROM records WHERE offset >= 3")

    bus = LocalBus(path)
    await bus.start()
    consumer = bus.consumer(["t"], group="g")
    await consumer.start()
    assert await consumer.poll(timeout_ms=100) == []
    assert await consumer.caught_up()
    await bus.publish("t", "k", b"5")
    assert [r.offset for r in await consumer.poll(timeout_ms=500)] == [5]
    await bus.close()


def _edit(path, sql: str) -> None:
    """Change a closed bus's file behind its back."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(sql)
    finally:
        conn.close()


async def test_a_huge_internal_batch_leaves_room_for_pings(tmp_path):
    # A million misses declared at once after a long stop must not make ingest answer 503.
    bus = LocalBus(tmp_path / "bus.sqlite3", max_pending=2_000)
    await bus.start()
    await bus.ensure_topics([TopicSpec("status", 2), TopicSpec("pings", 2)])
    outputs = [(f"m{i}", b"x" * 20) for i in range(60_000)]
    flood = asyncio.create_task(bus.publish_many("status", outputs))
    pings = 0
    while not flood.done():
        await bus.publish("pings", f"m{pings}", b"ping")  # raises BusUnavailable on a full backlog
        pings += 1
    await flood
    assert pings > 0
    reader = bus.reader([("status", 0), ("status", 1)])
    await reader.start()
    seen = []
    while len(seen) < len(outputs):
        seen += await reader.poll(max_records=10_000, timeout_ms=100)
    by_partition = {}
    for record in seen:
        by_partition.setdefault(record.partition, []).append(record.key)
    for partition, keys in by_partition.items():  # every output, in the order published
        assert keys == [k for k, _ in outputs if partition_for(k, 2) == partition]
    await reader.close()
    await bus.close()


async def test_a_ping_is_committed_ahead_of_a_large_bulk_batch_queued_before_it(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3", fast_topics=frozenset({"pings"}))
    await bus.start()
    await bus.ensure_topics([TopicSpec("pings", 1), TopicSpec("snapshots", 1)])
    bulk = asyncio.ensure_future(
        bus.publish_many("snapshots", [(f"k{i}", b"v" * 300) for i in range(20_000)])
    )
    await asyncio.sleep(0)  # the bulk batch is queued first
    offset = await bus.publish("pings", "m", b"ping")
    assert offset == 0 and not bulk.done()  # durable after one bulk transaction at most, not twenty
    await bulk
    assert bus.end_offset(("snapshots", 0)) == 20_000  # and the bulk, in order, all of it
    reader = bus.reader([("snapshots", 0)])
    await reader.start()
    keys = []
    while len(keys) < 20_000:
        keys += [r.key for r in await reader.poll(max_records=5_000, timeout_ms=500)]
    assert keys == [f"k{i}" for i in range(20_000)]
    await bus.close()


async def test_a_few_bulk_rows_queued_beside_pings_share_their_commit(tmp_path, monkeypatch):
    # At a steady rate the bulk lane holds a few rows (evaluator outputs, status); each of them
    # costing a commit and an fsync of its own was most of the writer's time per ping.
    from shared.bus import local_file

    commits: list[str] = []
    connect = local_file.connect

    def traced(path):
        conn = connect(path)
        conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        return conn

    monkeypatch.setattr(local_file, "connect", traced)
    bus = LocalBus(tmp_path / "bus.sqlite3", fast_topics=frozenset({"pings"}))
    await bus.start()
    await bus.ensure_topics([TopicSpec("pings", 1), TopicSpec("snapshots", 1)])
    release = threading.Event()
    held = asyncio.ensure_future(bus._write(lambda conn: release.wait(5)))  # the writer is busy
    await asyncio.sleep(0.05)
    bulk = asyncio.ensure_future(bus.publish_many("snapshots", [(f"k{i}", b"v") for i in range(3)]))
    await asyncio.sleep(0)
    ping = asyncio.ensure_future(bus.publish("pings", "m", b"ping"))
    await asyncio.sleep(0.05)  # queued too (a publish reaches the writer at the end of a loop turn)
    commits.clear()
    release.set()
    await asyncio.gather(held, bulk, ping)
    assert len(commits) == 1  # one transaction for the ping and the three rows queued before it
    assert bus.end_offset(("snapshots", 0)) == 3 and bus.end_offset(("pings", 0)) == 1
    await bus.close()


async def test_publishes_of_one_loop_turn_are_numbered_in_the_order_they_were_made(bus):
    tp = ("t", partition_for("k", 3))
    offsets = await asyncio.gather(*(bus.publish("t", "k", f"v{i}".encode()) for i in range(50)))
    assert offsets == list(range(50))
    assert [r.value for r in await bus.read(tp, 0, 100)] == [f"v{i}".encode() for i in range(50)]


async def test_a_publish_then_a_publish_many_of_the_same_key_keep_their_order(bus):
    # A view keeps the newest record of a key: the single publish, kept until the end of the
    # loop's turn, must not land after a batch published after it.
    tp = ("t", partition_for("k", 3))
    first = asyncio.ensure_future(bus.publish("t", "k", b"older"))
    await asyncio.sleep(0)  # it is kept, not yet queued
    await bus.publish_many("t", [("k", b"newer")])
    assert await first == 0
    assert [r.value for r in await bus.read(tp, 0, 10)] == [b"older", b"newer"]


async def test_a_publish_to_an_unknown_topic_fails_at_once(bus):
    with pytest.raises(KeyError, match="unknown topic"):
        await bus.publish("nope", "k", b"v")


async def test_a_reader_that_found_nothing_still_sees_the_next_append_and_a_seek_back(bus):
    tp = ("t", partition_for("k", 3))
    reader = bus.reader([tp])
    await reader.start()
    assert await reader.poll(timeout_ms=0) == []
    assert await reader.poll(timeout_ms=0) == []  # nothing appended since: answered without looking
    await bus.publish("t", "k", b"v1")
    assert [r.value for r in await reader.poll(timeout_ms=0)] == [b"v1"]
    assert await reader.poll(timeout_ms=0) == []
    reader.seek(tp, 0)  # a moved position is looked at again
    assert [r.value for r in await reader.poll(timeout_ms=0)] == [b"v1"]
    await reader.close()


async def test_the_records_it_keeps_in_memory_are_left_out_of_the_cyclic_gc(bus):
    import gc

    await bus.publish("t", "k", b"v")
    [record] = await bus.read(("t", partition_for("k", 3)), 0, 10)  # from the in-memory tail
    assert not gc.is_tracked(record)  # a full collection does not walk the tails


async def test_its_file_and_sqlites_wal_and_shm_files_are_the_owners_alone_whatever_the_umask(tmp_path):
    # They hold every ping token and webhook secret; SQLite gives its -wal and -shm files the
    # database file's mode, so that one is made 0600 before SQLite opens it.
    old = os.umask(0o022)
    try:
        bus = LocalBus(tmp_path / "bus.sqlite3")
        await bus.start()
        await bus.ensure_topics([TopicSpec("t", 1)])
        await bus.publish("t", "k", b"secret")
        made = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in tmp_path.iterdir()}
        await bus.close()
    finally:
        os.umask(old)
    assert made == {name: oct(0o600) for name in ("bus.sqlite3", "bus.sqlite3-wal", "bus.sqlite3-shm")}
