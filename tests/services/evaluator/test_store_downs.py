"""The heartbeats down that dependencies hold on are kept one record each (``DownSnapshot``):
a checkpoint writes those that changed, not the whole set. Before, every partition snapshot
held all of them, rewritten whenever one changed (4.7 MB a second at a million heartbeats)."""

import pytest

from services.evaluator.logic import PartitionEvaluator
from services.evaluator.store import StateStore
from shared.bus.local import LocalBus
from shared.events import (
    DOWN_KEY_PREFIX,
    DownSnapshot,
    PartitionSnapshot,
    StatusRelayed,
    decode,
    encode,
)
from shared.snapshots import (
    PARTITION_STATE_VERSION,
    DownElsewhere,
    PartitionState,
    decode_down,
    decode_partition_state,
    encode_partition_state,
)
from shared.topics import Topics
from tests.services.evaluator.buses import either_bus

TOPICS = Topics()


def relay(monitor_id: str, down: bool, at_ms: int = 1000, incident: int = 1) -> StatusRelayed:
    return StatusRelayed(monitor_id=monitor_id, project_id="p", name=monitor_id, tags=["db"], down=down,
                         at_ms=at_ms, incident=incident)  # fmt: skip


async def written(bus, after: int = 0) -> list:
    """Every record of ``evaluator-state`` from offset ``after``, decoded, with its key."""
    reader = bus.reader([(TOPICS.evaluator_state, 0)])
    await reader.start()
    try:
        reader.seek((TOPICS.evaluator_state, 0), after)
        records = []
        while not await reader.caught_up():
            records += await reader.poll(timeout_ms=100)
        return [(r.key, decode(r.value)) for r in records]
    finally:
        await reader.close()


async def open_bus(tmp_path) -> LocalBus:
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(1))
    return bus


def downs_of(evaluator: PartitionEvaluator) -> set[str]:
    return {entry.monitor_id for entry in evaluator.holds.downs.snapshot()}


async def test_a_checkpoint_writes_only_the_downs_that_changed(tmp_path):
    bus = await open_bus(tmp_path)
    try:
        store, evaluator = StateStore(bus, TOPICS), PartitionEvaluator(0)
        for n in range(500):
            evaluator.apply_relay(relay(f"hb_{n}", down=True))
        await store.save(evaluator, 10)
        first = await written(bus)
        assert sorted(key for key, _ in first) == sorted(DOWN_KEY_PREFIX + f"hb_{n}" for n in range(500))

        evaluator.apply_relay(relay("hb_7", down=False, at_ms=2000))
        evaluator.apply_relay(relay("hb_900", down=True, at_ms=2000))
        await store.save(evaluator, 20)
        second = await written(bus, after=len(first))
        # Two records, and no partition snapshot: nothing else of the partition changed.
        assert sorted((key, decode_down(event)) for key, event in second) == [
            ("down:hb_7", None),
            ("down:hb_900", DownElsewhere("hb_900", "p", "hb_900", ("db",), 2000, (), 1)),
        ]
        await store.save(evaluator, 30)
        assert await written(bus, after=len(first) + 2) == []  # nothing changed, nothing written

        again = PartitionEvaluator(0)
        await store.restore({0: again})
        assert downs_of(again) == {f"hb_{n}" for n in range(500)} - {"hb_7"} | {"hb_900"}
        assert again.holds.downs.changes() == []  # restored as saved: nothing to write again
    finally:
        await bus.close()


async def test_an_older_snapshot_holding_the_downs_is_rewritten_as_records_and_survives_compaction(tmp_path):
    bus = await open_bus(tmp_path)
    try:
        older = PartitionState(
            outages=((100, 200),),
            downs=(DownElsewhere("hb_a", "p", "a", ("db",), 1000), DownElsewhere("hb_b", "p", "b", (), 1000)),
        )  # as an evaluator before DownSnapshot wrote it: no downs_apart
        await bus.publish(TOPICS.evaluator_state, "", encode(PartitionSnapshot(
            partition=0, offset=5, state=encode_partition_state(older), state_v=PARTITION_STATE_VERSION,
        )), partition=0)  # fmt: skip
        store, upgraded = StateStore(bus, TOPICS), PartitionEvaluator(0)
        await store.restore({0: upgraded})
        assert downs_of(upgraded) == {"hb_a", "hb_b"}

        await store.save(upgraded, 6)
        rewritten = await written(bus, after=1)
        partitions = [event for _, event in rewritten if isinstance(event, PartitionSnapshot)]
        assert [(p.downs, p.downs_apart, p.outages) for p in map(decode_partition_state, partitions)] == [
            ((), True, ((100, 200),))
        ]
        assert sorted(key for key, event in rewritten if isinstance(event, DownSnapshot)) == [
            "down:hb_a", "down:hb_b",
        ]  # fmt: skip

        assert await bus.compact() == 1  # the older partition snapshot: superseded
        restored = PartitionEvaluator(0)
        await store.restore({0: restored})
        assert downs_of(restored) == {"hb_a", "hb_b"} and restored.outages == [(100, 200)]
    finally:
        await bus.close()


@pytest.fixture(params=["local", pytest.param("kafka", marks=pytest.mark.kafka)])
async def bus(request, tmp_path, topic_prefix):
    async with either_bus(request, tmp_path, topic_prefix, partitions=2) as (_, bus, topics):
        yield bus, topics


async def test_fifteen_thousand_heartbeats_down_are_saved_and_restored_on_either_bus(bus):
    """All of them in one record (ids and names as Pingura makes them) came to 1.8 MB: more than
    Kafka takes in one message (1 MB by default). The checkpoint failed with
    MessageSizeTooLargeError (checked against the code before), and so did every retry."""
    bus, topics = bus
    store, evaluator = StateStore(bus, topics), PartitionEvaluator(1)
    ids = [f"hb_{n:016x}" for n in range(15_000)]
    for n, monitor_id in enumerate(ids):
        evaluator.apply_relay(StatusRelayed(
            monitor_id=monitor_id, project_id="prj_0123456789abcdef", name=f"nightly backup {n:05d}",
            tags=["db"], down=True, at_ms=1000, incident=1,
        ))  # fmt: skip
    await store.save(evaluator, 7)
    again = PartitionEvaluator(1)
    await store.restore({1: again})
    assert downs_of(again) == set(ids)
