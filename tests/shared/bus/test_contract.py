"""The bus contract, run against both implementations: the embedded log and a real Kafka broker."""

from __future__ import annotations

import asyncio

import pytest

from shared.bus import TopicSpec
from shared.bus.local import LocalBus
from shared.settings import Settings


@pytest.fixture(params=["local", pytest.param("kafka", marks=pytest.mark.kafka)])
async def make_bus(request, tmp_path, topic_prefix):
    opened = []

    async def make():
        if request.param == "local":
            bus = LocalBus(tmp_path / "bus.sqlite3")
        else:
            from shared.bus.kafka import KafkaBus

            bootstrap = request.getfixturevalue("kafka_bootstrap")
            bus = KafkaBus(Settings(kafka_bootstrap=bootstrap, kafka_session_timeout_ms=6000))
        await bus.start()
        await bus.ensure_topics([TopicSpec(topic_prefix + "t", 3), TopicSpec(topic_prefix + "c", 2, compacted=True)])
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        await bus.close()


async def read_all(consumer, count, timeout_s=20):
    records = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(records) < count and loop.time() < deadline:
        records += await consumer.poll(timeout_ms=500)
    return records


async def test_each_key_stays_in_order_in_one_partition(make_bus, topic_prefix):
    bus = await make_bus()
    topic = topic_prefix + "t"
    await asyncio.gather(*(bus.publish(topic, f"k{i % 7}", str(i).encode()) for i in range(300)))
    consumer = bus.consumer([topic], group="g")
    await consumer.start()
    records = await read_all(consumer, 300)
    await consumer.close()
    by_key: dict[str, list[int]] = {}
    partitions: dict[str, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(int(r.value))
        partitions.setdefault(r.key, set()).add(r.partition)
    assert sorted(int(r.value) for r in records) == list(range(300))
    assert all(values == sorted(values) for values in by_key.values())
    assert all(len(p) == 1 for p in partitions.values())


async def test_a_group_resumes_after_its_committed_offsets(make_bus, topic_prefix):
    bus = await make_bus()
    topic = topic_prefix + "t"
    for i in range(30):
        await bus.publish(topic, "same-key", str(i).encode())
    consumer = bus.consumer([topic], group="g")
    await consumer.start()
    first = await read_all(consumer, 30)
    done = [r for r in first if int(r.value) < 10]
    await consumer.commit({(topic, done[-1].partition): done[-1].offset + 1})
    await consumer.close()

    again = bus.consumer([topic], group="g")
    await again.start()
    rest = await read_all(again, 20)
    await again.close()
    assert [int(r.value) for r in rest] == list(range(10, 30))


async def test_a_reader_sees_every_partition_from_the_beginning_and_knows_when_it_caught_up(make_bus, topic_prefix):
    bus = await make_bus()
    topic = topic_prefix + "c"
    for i in range(10):
        await bus.publish(topic, f"k{i}", b"v")
    reader = bus.reader([(topic, p) for p in range(bus.partitions(topic))])
    await reader.start()
    records = await read_all(reader, 10)
    assert len(records) == 10
    assert await reader.caught_up()
    await reader.close()


async def test_assignment_callbacks_fire_for_a_group(make_bus, topic_prefix):
    bus = await make_bus()
    topic = topic_prefix + "t"
    assigned: list[set] = []
    revoked: list[set] = []

    async def on_assign(tps):
        assigned.append(tps)

    async def on_revoke(tps):
        revoked.append(tps)

    consumer = bus.consumer([topic], group="g", on_assign=on_assign, on_revoke=on_revoke)
    await consumer.start()
    await bus.publish(topic, "k", b"x")
    await read_all(consumer, 1)
    await consumer.close()
    assert assigned and assigned[0] == {(topic, p) for p in range(3)}
