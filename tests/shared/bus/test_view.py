"""Views of config topics: following, read-your-writes, and bounded catch-up checks."""

import asyncio

from shared.bus import TopicSpec
from shared.bus.local import LocalBus
from shared.bus.view import ConfigView, TopicFollower
from shared.events import ChannelConfig, encode


def channel(cid, name="n", at=1, deleted=False):
    return ChannelConfig(id=cid, project_id="p", kind="webhook", name=name, created_ms=0, updated_ms=at,
                         deleted=deleted)


async def test_a_view_follows_its_topic_and_forgets_deleted_items(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics([TopicSpec("c", 2, compacted=True)])
    await bus.publish("c", "a", encode(channel("a")))
    view = ConfigView(bus, "c", ChannelConfig, lambda c: c.updated_ms)
    await view.start()
    assert set(view) == {"a"}
    await bus.publish("c", "b", encode(channel("b")))
    await bus.publish("c", "a", encode(channel("a", at=2, deleted=True)))
    assert await view.sync(2)
    assert set(view) == {"b"}
    await view.close()
    await bus.close()


async def test_a_flood_of_syncs_shares_end_offset_requests(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics([TopicSpec("c", 1, compacted=True)])
    follower = TopicFollower(bus, "c", lambda records: None)
    await follower.start()
    calls = 0
    original = follower._reader.end_offsets

    async def counting(partitions):
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)  # a broker round trip
        return await original(partitions)

    follower._reader.end_offsets = counting
    results = await asyncio.gather(*(follower.sync(2) for _ in range(200)))
    assert all(results)
    assert calls <= 2  # one in flight, one for everyone who arrived meanwhile
    await follower.close()
    await bus.close()


async def test_a_follower_closes_promptly_while_records_keep_arriving(tmp_path):
    # A close() that lands as a new record wakes the follower must not be swallowed
    # (asyncio.wait_for on 3.11 could lose it, and close() then hung for good).
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics([TopicSpec("c", 1, compacted=True)])
    publishing = True

    async def publish_forever():
        n = 0
        while publishing:
            n += 1
            await bus.publish("c", f"k{n % 10}", encode(channel(f"k{n % 10}", at=n)))

    producer = asyncio.create_task(publish_forever())
    for _ in range(30):
        follower = TopicFollower(bus, "c", lambda records: None, poll_timeout_ms=50)
        await follower.start()
        await asyncio.sleep(0.005)
        async with asyncio.timeout(5):
            await follower.close()
    publishing = False
    await producer
    await bus.close()


async def test_a_writers_own_delete_is_not_undone_by_the_older_record_arriving_later(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics([TopicSpec("c", 1, compacted=True)])
    view = ConfigView(bus, "c", ChannelConfig, lambda c: c.updated_ms)
    await view.start()
    view.put(channel("a", at=2, deleted=True))  # read-your-writes, before the topic is read
    await bus.publish("c", "a", encode(channel("a", at=1)))
    assert await view.sync(2)
    assert "a" not in view
    view.put(channel("a", at=3))  # a later revision brings it back
    assert "a" in view
    await view.close()
    await bus.close()
