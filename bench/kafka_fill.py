"""What bench/kafka_scale.py writes onto the topics before it measures: heartbeat configs,
a backlog of check-ins (and ticks) for the evaluators, a backlog of alerts for the notifiers.

A plain aiokafka producer (acks=1, large batches) fills them: fast, and not what is measured.
Check-ins are stamped from now on (see :func:`checkins`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

from bench.evaluator import PROJECT, monitor_config, monitor_id, ping
from shared.bus.base import partition_for
from shared.clock import now_ms
from shared.events import Alert, ChannelConfig, Tick, encode
from shared.topics import Topics

CYCLE_MS = 30_000
"""Each heartbeat checks in once per 30 s of event time (interval 60 s, grace 10 s)."""
TICK_MS = 250
"""A tick into every partition per 250 ms of event time, as the ticker writes them."""
CHANNELS = 64
"""Webhook channels the alerts are spread over: a fleet of teams, not one receiver (each
channel's lane allows 4 tries in flight, ``PINGURA_DELIVERY_CHANNEL_CONCURRENCY``)."""


def producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1)


async def send(prod: AIOKafkaProducer, topic: str, items: Iterator[tuple[str, int, bytes]]) -> int:
    """Every (key, partition, value) of ``items`` onto ``topic`` in order, acknowledged; returns
    how many. Whole batches per partition (``send_batch``): a send per record would be slower
    than the evaluators read them."""
    sent = 0
    batches: dict[int, BatchBuilder] = {}
    pending = []
    for key, partition, value in items:
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = prod.create_batch()
        if batch.append(key=key.encode() if key else None, value=value, timestamp=None) is None:
            batch.close()
            pending.append(await prod.send_batch(batch, topic, partition=partition))
            batch = batches[partition] = prod.create_batch()
            batch.append(key=key.encode() if key else None, value=value, timestamp=None)
        sent += 1
    for partition, batch in batches.items():
        batch.close()
        pending.append(await prod.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*pending)
    return sent


def configs(monitors: int, partitions: int, channels: bool = False) -> Iterator[tuple[str, int, bytes]]:
    for i in range(monitors):
        cfg = monitor_config(i, channels=[channel_id(i % CHANNELS)] if channels else [])
        yield cfg.id, partition_for(cfg.id, partitions), encode(cfg)


def token(i: int) -> str:
    """Heartbeat ``i``'s ping token (bench.evaluator.monitor_config's)."""
    return f"{i:032d}"


def checkins(monitors: int, events: int, partitions: int) -> Iterator[tuple[str, int, bytes]]:
    """``events`` records for ``pings``: check-ins cycling over the heartbeats, a tick into
    every partition per TICK_MS, event time from now on. Ahead of the wall clock, so the
    ticker's own ticks, appended behind them, are no-ops; a backlog of the past would be
    late to them and page every heartbeat, which is not the steady state measured."""
    step_ms = CYCLE_MS / monitors
    at = float(now_ms())
    next_tick = int(at) + TICK_MS
    sent = 0
    n = 0
    while True:
        for i in range(monitors):
            if sent >= events:
                return
            at += step_ms
            if at >= next_tick:
                value = encode(Tick(at_ms=next_tick))
                for p in range(partitions):
                    yield "", p, value
                sent += partitions
                next_tick += TICK_MS
            key = monitor_id(i)
            yield key, partition_for(key, partitions), encode(ping(i, int(at), n))
            n += 1
            sent += 1


def channel_id(c: int) -> str:
    return f"ch_bench{c:010d}"


def webhook_channels(url: str) -> Iterator[tuple[str, int, bytes]]:
    at = now_ms()
    for c in range(CHANNELS):
        channel = ChannelConfig(
            id=channel_id(c),
            project_id=PROJECT,
            kind="webhook",
            name=f"bench {c}",
            config={"url": url},
            created_ms=at,
            updated_ms=at,
        )
        yield channel.id, 0, encode(channel)


def alerts(monitors: int, first: int, count: int, partitions: int) -> Iterator[tuple[str, int, bytes]]:
    """``count`` down alerts from the ``first``-th, heartbeat by heartbeat in turn (incident n on
    round n), each to its heartbeat's one webhook channel."""
    at = now_ms() - 60_000
    for n in range(first, first + count):
        i = n % monitors
        incident = n // monitors + 1
        key = monitor_id(i)
        alert = Alert(
            id=f"{key}:{incident}:down",
            kind="down",
            monitor_id=key,
            project_id=PROJECT,
            monitor_name=f"nightly backup {i}",
            incident=incident,
            reason="no check-in within 70 s",
            at_ms=at,
            channels=[channel_id(i % CHANNELS)],
            tags=["cron"],
            consecutive_problems=1,
            last_ping_ms=at - 70_000,
        )
        yield key, partition_for(key, partitions), encode(alert)


async def fill_configs(bootstrap: str, topics: Topics, monitors: int, partitions: int) -> None:
    prod = producer(bootstrap)
    await prod.start()
    try:
        await send(prod, topics.monitors, configs(monitors, partitions))
    finally:
        await prod.stop()
