import asyncio

import pytest

from shared.bus import BusUnavailable, TopicSpec
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
    await asyncio.sleep(0.05)
    await bus.publish("t", "k", b"late")
    records = await asyncio.wait_for(waiter, 2)
    assert [r.value for r in records] == [b"late"]
