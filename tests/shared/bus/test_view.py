"""Views of config topics: following, read-your-writes, and bounded catch-up checks."""

import asyncio
import sys

import pytest

from shared.bus import TopicSpec
from shared.bus.local import LocalBus
from shared.bus.view import ConfigView, PackedConfigView, TopicFollower
from shared.events import ChannelConfig, MonitorConfig, encode


def channel(cid, name="n", at=1, deleted=False):
    return ChannelConfig(
        id=cid, project_id="p", kind="webhook", name=name, created_ms=0, updated_ms=at, deleted=deleted
    )


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
        await asyncio.sleep(0.005)  # let it follow a moment, records arriving, before the close under test
        async with asyncio.timeout(5):
            await follower.close()
    publishing = False
    await producer
    await bus.close()


@pytest.mark.parametrize("kind", [ConfigView, PackedConfigView])
async def test_a_writers_own_delete_is_not_undone_by_the_older_record_arriving_later(tmp_path, kind):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics([TopicSpec("c", 1, compacted=True)])
    view = kind(bus, "c", ChannelConfig, lambda c: c.updated_ms)
    await view.start()
    view.put(channel("a", at=2, deleted=True))  # read-your-writes, before the topic is read
    await bus.publish("c", "a", encode(channel("a", at=1)))
    assert await view.sync(2)
    assert "a" not in view
    view.put(channel("a", at=3))  # a later revision brings it back
    assert "a" in view
    await view.close()
    await bus.close()


def heartbeat(hid, revision=1, name=None, **fields):
    return MonitorConfig(
        id=hid,
        project_id="prj_a",
        name=name or f"job {hid}",
        token="t" * 32,
        interval_s=60,
        grace_s=10,
        created_ms=5,
        updated_ms=7,
        revision=revision,
        **fields,
    )


async def test_a_packed_view_gives_back_what_it_was_given(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics([TopicSpec("m", 2, compacted=True)])
    odd = heartbeat(
        "hb_b",
        channels=["c1", "c2"],
        tags=["x", "x"],
        paused=True,
        schedule="0 3 * * *",
        timezone="Europe/Berlin",
        max_runtime_s=90,
        recovery_threshold=3,
        reminder_interval_s=600,
        slug="nightly-b",
    )  # every optional field set
    await bus.publish("m", "hb_a", encode(heartbeat("hb_a")))
    await bus.publish("m", "hb_b", encode(odd))
    view = PackedConfigView(bus, "m", MonitorConfig, lambda m: m.revision)
    await view.start()
    assert view["hb_a"] == heartbeat("hb_a") and view.get("hb_b") == odd
    assert view.get("hb_c") is None and "hb_b" in view and "hb_c" not in view
    assert sorted(view) == ["hb_a", "hb_b"] and sorted(m.id for m in view.values()) == ["hb_a", "hb_b"]
    assert dict(view.select("tags", "slug")) == {"hb_a": [[], None], "hb_b": [["x", "x"], "nightly-b"]}
    assert next(k for k in view if k == "hb_a") is sys.intern(
        "".join(["hb_", "a"])
    )  # shared with other indexes
    await view.close()
    await bus.close()


async def test_a_packed_view_keeps_the_newest_revision_and_forgets_deleted_ones(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics([TopicSpec("m", 1, compacted=True)])
    view = PackedConfigView(bus, "m", MonitorConfig, lambda m: m.revision)
    await view.start()
    assert view.put(heartbeat("hb_a", revision=2, name="new"))  # read-your-writes, before the topic has it
    assert view["hb_a"].name == "new"
    await bus.publish("m", "hb_a", encode(heartbeat("hb_a", revision=1, name="old")))
    await bus.publish("m", "hb_a", encode(heartbeat("hb_a", revision=2, name="new")))
    assert await view.sync(2)
    assert view["hb_a"].name == "new" and view["hb_a"].revision == 2
    assert not view.put(heartbeat("hb_a", revision=1, name="old"))  # stale: nothing changed
    assert view.put(heartbeat("hb_a", revision=3, deleted=True))
    assert "hb_a" not in view and len(view) == 0
    assert not view.put(heartbeat("hb_a", revision=3, deleted=True))  # nothing left to delete
    await view.close()
    await bus.close()
