"""A partition handed to another evaluator (a restart, or a rebalance on Kafka) carries the
outages of Pingura it saw, through its own snapshot on ``evaluator-state``: the new owner skips
the windows they overlapped, as the old one would have. Run on both buses."""

from __future__ import annotations

import pytest

from services.evaluator.consumer import Evaluator
from shared.events import (
    Alert,
    Missed,
    MonitorConfig,
    PartitionSnapshot,
    Ping,
    StatusChanged,
    Tick,
    decode,
    encode,
)
from shared.snapshots import Reason, decode_partition_state
from shared.topics import Topics
from tests.polling import eventually
from tests.services.evaluator.buses import either_bus

S = 1000
PARTITIONS = 2


@pytest.fixture(params=["local", pytest.param("kafka", marks=pytest.mark.kafka)])
async def setup(request, tmp_path, topic_prefix):
    async with either_bus(
        request,
        tmp_path,
        topic_prefix,
        PARTITIONS,
        lateness_ms=0,
        checkpoint_interval_ms=0,
        outage_gap_ms=30 * S,
    ) as setup:
        yield setup


async def read(bus, topic: str, kind: type) -> list:
    """Every ``kind`` event on ``topic`` so far (read up to the end offsets taken first)."""
    tps = [(topic, p) for p in range(bus.partitions(topic))]
    reader = bus.reader(tps)
    await reader.start()
    try:
        ends, records = await reader.end_offsets(tps), []
        while any([await reader.position(tp) < ends[tp] for tp in tps]):
            records += await reader.poll(timeout_ms=200)
    finally:
        await reader.close()
    return [e for e in (decode(r.value) for r in records) if isinstance(e, kind)]


async def tick(bus, topics: Topics, at_ms: int) -> None:
    for p in range(PARTITIONS):
        await bus.publish(topics.pings, "", encode(Tick(at_ms=at_ms)), partition=p)


async def owning_all(settings, bus, topics: Topics) -> Evaluator:
    evaluator = Evaluator(settings, bus, topics)
    await evaluator.start()
    await eventually(lambda: len(evaluator.partitions) == PARTITIONS, timeout_s=30)  # a group join on Kafka
    return evaluator


async def test_a_partition_taken_over_just_after_an_outage_still_skips_the_windows_it_overlapped(setup):
    settings, bus, topics = setup
    cfg = MonitorConfig(id="hb_a", project_id="p", name="a", token="t" * 32, interval_s=60, grace_s=45,
                        created_ms=0, updated_ms=0)  # fmt: skip
    await bus.publish(topics.monitors, cfg.id, encode(cfg))
    first = await owning_all(settings, bus, topics)
    await bus.publish(topics.pings, "hb_a", encode(Ping(id="1", monitor_id="hb_a", project_id="p",
                                                        received_ms=1 * S, kind="success")))  # fmt: skip
    # Expected at 61 s, missed at 106 s; Pingura stopped from 50 s to 100 s.
    await tick(bus, topics, 50 * S)
    await tick(bus, topics, 100 * S)
    await eventually(lambda: all(e.outages == [(50 * S, 100 * S)] for e in first.partitions.values()))
    await first.close()  # its last checkpoint: the partition's own snapshot holds the outage

    snapshots = await read(bus, topics.evaluator_state, PartitionSnapshot)
    assert {(s.partition, decode_partition_state(s).outages) for s in snapshots} == {
        (p, ((50 * S, 100 * S),)) for p in range(PARTITIONS)}  # fmt: skip

    second = await owning_all(settings, bus, topics)  # a restart, or the new owner after a rebalance
    assert all(e.outages == [(50 * S, 100 * S)] for e in second.partitions.values())
    await tick(bus, topics, 110 * S)
    changes = await eventually(lambda: _up_again(bus, topics), timeout_s=15)
    assert [(c.status, c.at_ms) for c in changes] == [("up", 110 * S)]
    assert await read(bus, topics.status, Missed) == [] and await read(bus, topics.alerts, Alert) == []
    await second.close()


async def _up_again(bus, topics: Topics) -> list[StatusChanged]:
    return [c for c in await read(bus, topics.status, StatusChanged) if c.reason == Reason.OUTAGE]
