"""Compaction and retention of the embedded log, a bounded step at a time, while appends go on."""

import asyncio
import sqlite3
import time

import pytest

from shared.bus import TopicSpec
from shared.bus.local import LocalBus
from tests.polling import eventually

DAY_MS = 24 * 3600 * 1000
STEP = 7  # records per step: every pass below takes many steps


@pytest.fixture
async def bus(tmp_path):
    b = LocalBus(tmp_path / "bus.sqlite3", compaction_step_records=STEP)
    await b.start()
    await b.ensure_topics(
        [TopicSpec("c", 2, compacted=True), TopicSpec("pings", 2), TopicSpec("old", 1, retention_ms=DAY_MS)]
    )
    yield b
    await b.close()


def stored(path, topic: str) -> list[tuple[int, int, str, bytes]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT partition, offset, key, value FROM records WHERE topic=? ORDER BY partition, offset",
            (topic,),
        ).fetchall()
    finally:
        conn.close()


def removed_some(tmp_path, appended: int) -> bool:
    """Whether a compaction pass has removed records yet (its first steps are done)."""
    return len(stored(tmp_path / "bus.sqlite3", "c")) < appended


async def read_all(consumer, until: dict, timeout_s: float = 10) -> list:
    """Poll until every partition reached ``until`` (partition -> end offset)."""
    records = []

    async def caught_up() -> bool:
        if await consumer.reached(until):
            return True
        records.extend(await consumer.poll(max_records=50, timeout_ms=100))
        return False

    await eventually(caught_up, timeout_s=timeout_s, interval_s=0)
    return records


async def test_compaction_during_continuous_appends_loses_nothing_and_never_reorders(bus, tmp_path):
    for i in range(600):
        await bus.publish_many("c", [(f"k{i % 40}", f"{i}".encode())])
    newest = {f"k{i % 40}": f"{i}".encode() for i in range(600)}
    ends_before = {("c", p): bus.end_offset(("c", p)) for p in range(2)}
    follower = bus.reader([("c", 0), ("c", 1)])  # reading from the start while the pass removes records
    await follower.start()
    publishing = True

    async def publish_meanwhile():
        i = 600
        while publishing:
            key = f"k{i % 40}"
            await bus.publish("c", key, f"{i}".encode())
            await bus.publish("pings", key, f"{i}".encode())
            newest[key] = f"{i}".encode()
            i += 1
            await asyncio.sleep(0)

    publisher = asyncio.create_task(publish_meanwhile())
    compaction = asyncio.create_task(bus.compact())
    seen = []
    while not compaction.done():
        seen.extend(await follower.poll(max_records=20, timeout_ms=50))
    removed = await compaction
    publishing = False
    await publisher
    ends = {("c", p): bus.end_offset(("c", p)) for p in range(2)}
    seen.extend(await read_all(follower, ends))

    assert removed > 0
    for partition in range(2):
        offsets = [r.offset for r in seen if r.partition == partition]
        assert offsets == sorted(set(offsets))  # in order, none twice
        values = {}
        for r in seen:
            if r.partition == partition:
                assert int(r.value) > int(values.get(r.key, b"-1")), "a key's records came out of order"
                values[r.key] = r.value
    assert {r.key: r.value for r in seen} == newest  # the follower ends on the newest of every key
    # Every record appended while the pass ran is still stored: it looked only below the ends it began with.
    after = [(p, o) for p, o, _, _ in stored(tmp_path / "bus.sqlite3", "c") if o >= ends_before[("c", p)]]
    assert after == [(p, o) for p in range(2) for o in range(ends_before[("c", p)], ends[("c", p)])]
    # The non-compacted topic written meanwhile: every record, in order, no gap.
    pings = bus.reader([("pings", 0), ("pings", 1)])
    await pings.start()
    got = await read_all(pings, {("pings", p): bus.end_offset(("pings", p)) for p in range(2)})
    for partition in range(2):
        assert [r.offset for r in got if r.partition == partition] == list(
            range(bus.end_offset(("pings", partition)))
        )


async def test_a_second_pass_leaves_exactly_the_newest_record_of_every_key(bus, tmp_path):
    for i in range(300):
        await bus.publish("c", f"k{i % 13}", f"{i}".encode())
    await bus.publish("c", "gone", b"tombstone")  # a tombstone is a key's newest record too
    await bus.compact()
    await bus.compact()
    rows = stored(tmp_path / "bus.sqlite3", "c")
    assert sorted(key for _, _, key, _ in rows) == sorted([f"k{i}" for i in range(13)] + ["gone"])
    assert {key: int(value) for _, _, key, value in rows if key != "gone"} == {
        f"k{i % 13}": i for i in range(300)
    }
    # Offsets never go back: the ends stay where they were, and numbering carries on.
    assert sum(bus.end_offset(("c", p)) for p in range(2)) == 301


async def test_appends_made_while_a_pass_runs_are_durable_before_it_ends(bus, tmp_path):
    # Each step is its own writer call, so an append waits for one step, not for the pass.
    for i in range(2000):
        await bus.publish_many("c", [(f"k{i % 10}", b"v")])
    compaction = asyncio.create_task(bus.compact())
    await eventually(lambda: removed_some(tmp_path, 2000))  # the pass is under way
    assert not compaction.done()
    started = time.perf_counter()
    await bus.publish("pings", "m", b"ping")
    waited_s = time.perf_counter() - started
    assert not compaction.done(), f"the append waited for the whole pass ({waited_s:.3f}s)"
    assert await compaction == 1990


async def test_only_a_later_durable_record_supersedes_one(bus, tmp_path):
    await bus.publish("c", "a", b"a0", partition=0)
    await bus.publish("c", "b", b"b0", partition=0)
    assert await bus.compact() == 0
    await bus.publish("c", "a", b"a1", partition=0)
    assert await bus.compact() == 1
    assert [(key, value) for _, _, key, value in stored(tmp_path / "bus.sqlite3", "c")] == [
        ("b", b"b0"),
        ("a", b"a1"),
    ]


async def test_retention_removes_the_expired_records_a_step_at_a_time(bus, tmp_path):
    for i in range(100):
        await bus.publish("old", "m", f"{i}".encode())
    assert await bus.compact(now_ms=int(time.time() * 1000) + 2 * DAY_MS) == 100
    assert stored(tmp_path / "bus.sqlite3", "old") == []
    assert await bus.publish("old", "m", b"after") == 100
    consumer = bus.consumer(["old"], group="g")
    await consumer.start()
    assert [r.value for r in await consumer.poll(timeout_ms=500)] == [b"after"]


async def test_retention_stops_at_the_first_record_that_has_not_expired(bus, tmp_path):
    path = tmp_path / "bus.sqlite3"
    for i in range(30):
        await bus.publish("old", "m", f"{i}".encode())
    now_ms = int(time.time() * 1000)
    conn = sqlite3.connect(path)
    with conn:  # offsets 0-19 two days old, 20-29 fresh, but 25 two days old (the clock stepped back)
        conn.execute(
            "UPDATE records SET ts = ? WHERE topic = 'old' AND (offset < 20 OR offset = 25)",
            (now_ms - 2 * DAY_MS,),
        )
    conn.close()
    assert await bus.compact(now_ms=now_ms) == 20
    assert [offset for _, offset, _, _ in stored(path, "old")] == list(range(20, 30))


async def test_a_reader_in_the_tail_carries_on_in_order_across_a_pass(bus):
    for i in range(50):
        await bus.publish("c", "k", f"{i}".encode(), partition=0)
    reader = bus.reader([("c", 0)])
    await reader.start()
    first = await reader.poll(max_records=10, timeout_ms=100)
    await bus.compact()
    await bus.publish("c", "k", b"50", partition=0)
    rest = await read_all(reader, {("c", 0): 51})
    assert [int(r.value) for r in first + rest] == list(range(51))


async def test_the_log_keeps_its_identity_across_restarts_and_a_new_file_gets_another(tmp_path):
    bus = LocalBus(tmp_path / "a.sqlite3")
    await bus.start()
    first = bus.log_id
    await bus.close()
    bus = LocalBus(tmp_path / "a.sqlite3")
    await bus.start()
    again = bus.log_id
    await bus.close()
    other = LocalBus(tmp_path / "b.sqlite3")
    await other.start()
    await other.close()
    assert first and first == again != other.log_id


async def test_a_pass_cancelled_half_way_leaves_the_log_whole_and_the_next_one_finishes_it(bus, tmp_path):
    for i in range(1500):
        await bus.publish_many("c", [(f"k{i % 30}", f"{i}".encode())])
    compaction = asyncio.create_task(bus.compact())
    await eventually(lambda: removed_some(tmp_path, 1500))  # the pass is under way
    compaction.cancel()  # as at shutdown
    with pytest.raises(asyncio.CancelledError):
        await compaction
    rows = stored(tmp_path / "bus.sqlite3", "c")
    assert 30 < len(rows) < 1500  # half-way, and every key's newest is still there
    newest = {key: int(value) for _, _, key, value in rows if int(value) >= 1470}
    assert newest == {f"k{i % 30}": i for i in range(1470, 1500)}
    await bus.compact()
    assert len(stored(tmp_path / "bus.sqlite3", "c")) == 30
