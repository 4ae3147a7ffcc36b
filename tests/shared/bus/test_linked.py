"""A second process's view of the embedded bus: reads from the file, publishes through the owner.
Both ends run here on one loop, on a real LocalBus file and a real Unix socket."""

import asyncio

import pytest

from shared.bus import BusUnavailable, TopicSpec, partition_for
from shared.bus.link_owner import BusLink
from shared.bus.linked import LinkedBus
from shared.bus.local import LocalBus


@pytest.fixture
async def owner(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3", max_pending=100)
    await bus.start()
    await bus.ensure_topics([TopicSpec("t", 3), TopicSpec("c", 1, compacted=True)])
    link = BusLink(bus, tmp_path / "bus.sock")
    await link.start()
    yield bus, link
    await link.close()
    await bus.close()


@pytest.fixture
async def linked(owner, tmp_path):
    bus = LinkedBus(tmp_path / "bus.sqlite3", tmp_path / "bus.sock")
    await bus.start()
    yield bus
    await bus.close()


async def read_all(bus, topic):
    reader = bus.reader([(topic, p) for p in range(bus.partitions(topic))])
    await reader.start()
    records = []
    while not await reader.caught_up():
        records += await reader.poll(timeout_ms=200)
    await reader.close()
    return records


async def test_a_publish_through_the_link_is_on_the_owners_log_when_it_returns(owner, linked):
    bus, _ = owner
    offset = await linked.publish("t", "k1", b"hello")
    [record] = await read_all(bus, "t")  # the owner's own reader: already durable there
    assert (record.key, record.value, record.offset) == ("k1", b"hello", offset)
    assert record.partition == partition_for("k1", 3)


async def test_publishes_of_one_turn_keep_their_order_within_a_partition(owner, linked):
    bus, _ = owner
    offsets = await asyncio.gather(*(linked.publish("t", "same-key", str(i).encode()) for i in range(50)))
    assert offsets == sorted(offsets) and len(set(offsets)) == 50
    assert [int(r.value) for r in await read_all(bus, "t")] == list(range(50))


async def test_several_linked_processes_publish_at_once_and_each_partition_stays_in_order(owner, tmp_path):
    """``PINGURA_INGEST_PROCESS=N``: N links to one owner, each served by threads of its own."""
    bus, _ = owner
    clients = [LinkedBus(tmp_path / "bus.sqlite3", tmp_path / "bus.sock") for _ in range(3)]
    for client in clients:
        await client.start()

    async def turns(n: int, client: LinkedBus) -> list[int]:
        offsets: list[int] = []
        for turn in range(5):  # each turn one frame of 30, all three clients' frames at once
            offsets += await asyncio.gather(
                *(client.publish("t", "same-key", f"{n}:{turn * 30 + i}".encode()) for i in range(30))
            )
        return offsets

    try:
        per_client = await asyncio.wait_for(
            asyncio.gather(*(turns(n, client) for n, client in enumerate(clients))), 30
        )  # an owner that served one link at a time would leave the others unanswered
    finally:
        for client in clients:
            await client.close()
    assert all(offsets == sorted(offsets) for offsets in per_client)  # each in the order it published
    assert sorted(o for offsets in per_client for o in offsets) == list(range(450))  # none twice, no gap
    records = await read_all(bus, "t")
    assert [r.offset for r in records] == list(range(450))
    for n, offsets in enumerate(per_client):
        mine = [r for r in records if r.value.startswith(f"{n}:".encode())]
        assert [r.offset for r in mine] == offsets
        assert [int(r.value.split(b":")[1]) for r in mine] == list(range(150))


async def test_publish_many_goes_through_whole(owner, linked):
    bus, _ = owner
    await linked.publish_many(
        "t", [(f"k{i}", b"v") for i in range(250)]
    )  # more than the backlog: waits for room
    assert len(await read_all(bus, "t")) == 250


async def test_publish_many_into_a_named_partition_goes_there(owner, linked):
    bus, _ = owner
    await linked.publish_many("t", [(f"k{i}", b"v") for i in range(20)], partition=1)
    records = await read_all(bus, "t")
    assert [(r.partition, r.key) for r in records] == [(1, f"k{i}") for i in range(20)]


async def test_a_full_backlog_on_the_owner_is_unavailable_on_the_linked_side(owner, linked):
    bus, _ = owner
    bus._pending_rows = bus._max_pending  # as if the disk had fallen behind by the whole backlog
    with pytest.raises(BusUnavailable):
        await linked.publish("t", "k", b"v")
    bus._pending_rows = 0
    assert await linked.publish("t", "k", b"v") >= 0  # and it takes records again once there is room


async def test_an_unknown_topic_fails_the_publish_instead_of_hanging(linked):
    with pytest.raises(RuntimeError, match="unknown topic"):
        await asyncio.wait_for(linked.publish("nope", "k", b"v", partition=0), 5)


async def test_its_reader_sees_records_the_owner_appends_later(owner, linked):
    bus, _ = owner
    await bus.publish("c", "a", b"1")
    reader = linked.reader([("c", 0)])
    await reader.start()
    assert [r.value for r in await reader.poll(timeout_ms=200)] == [b"1"]
    await bus.publish("c", "b", b"2")
    assert [r.value for r in await reader.poll(timeout_ms=2000)] == [b"2"]
    assert await reader.end_offsets([("c", 0)]) == {("c", 0): 2}
    assert await reader.caught_up()
    await reader.close()


async def test_its_reader_starts_at_the_oldest_record_compaction_kept(owner, linked):
    bus, _ = owner
    for value in (b"old", b"new"):
        await bus.publish("c", "a", value)
    await bus.compact()
    assert [r.value for r in await read_all(linked, "c")] == [b"new"]


async def test_when_the_owner_goes_the_link_is_lost_and_publishes_fail(owner, linked):
    _, link = owner
    await link.close()
    await asyncio.wait_for(linked.link_lost.wait(), 5)
    with pytest.raises(BusUnavailable):
        await linked.publish("t", "k", b"v")


async def test_it_knows_the_owners_log_id_and_topics(owner, linked):
    bus, _ = owner
    assert linked.log_id == bus.log_id != ""
    assert linked.partitions("t") == 3
    await linked.ensure_topics([TopicSpec("t", 3)])
    with pytest.raises(BusUnavailable):
        await linked.ensure_topics([TopicSpec("missing", 1)])


async def test_a_ping_is_answered_while_the_owners_event_loop_is_busy(tmp_path):
    """The owner's loop also runs the consumers; a long step there must not hold pings. Here
    the owner runs on a loop of its own, which is blocked until the linked publish returned."""
    import threading

    started, blocked, release = threading.Event(), threading.Event(), threading.Event()
    owner: dict = {}

    def run_owner() -> None:
        async def main() -> None:
            bus = LocalBus(tmp_path / "bus.sqlite3", fast_topics=frozenset({"t"}))
            await bus.start()
            await bus.ensure_topics([TopicSpec("t", 1)])
            link = BusLink(bus, tmp_path / "bus.sock")
            await link.start()
            owner["loop"] = asyncio.get_running_loop()
            started.set()
            await asyncio.to_thread(release.wait)
            await link.close()
            await bus.close()

        asyncio.run(main())

    thread = threading.Thread(target=run_owner)
    thread.start()
    await asyncio.to_thread(started.wait)
    linked = LinkedBus(tmp_path / "bus.sqlite3", tmp_path / "bus.sock")
    await linked.start()

    def hold_the_loop() -> None:  # a consumer's long synchronous step, as long as the test needs
        blocked.set()
        release.wait()

    owner["loop"].call_soon_threadsafe(hold_the_loop)
    await asyncio.to_thread(blocked.wait)
    offset = await asyncio.wait_for(linked.publish("t", "k", b"v"), 10)
    assert offset == 0 and not release.is_set()  # durable and answered, the owner's loop still held
    release.set()
    await linked.close()
    await asyncio.to_thread(thread.join)
