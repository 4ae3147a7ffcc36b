"""Evaluator benchmarks: throughput of a drain, and the cost of one partition at scale.

**Throughput.** A ``pings`` topic is pre-filled with pings of N monitors (each pinged about
every 30 s of event time, 1% of them stop after their first ping so misses and alerts are
produced too) and a tick per partition for each second of event time. Then it is drained:

- in memory: ``decode`` alone, the pure core alone (``apply_ping``/``advance`` on pre-decoded
  events) and both, on a sample of the same events: where the time goes;
- a bare consumer (poll + ``decode``, nothing else) reading the topic: the ceiling;
- the real :class:`Evaluator` adapter, from the moment its partitions are assigned (configs
  loaded) to the moment every record has been applied and its outputs published; and to the
  moment the last offset is committed (after the snapshots, on the 1 s checkpoint).

Both on the embedded bus and on a real Kafka broker (``bench.broker.kafka_broker``). Targets
(issue): >= 100,000 events/s per process and >= 0.5 of the bare consumer.

**Scale.** N monitors in one :class:`PartitionEvaluator` (configs decoded as from the bus, one
ping each), built in a fresh ``spawn`` process so the RSS delta is theirs alone: memory per
monitor (target < 500 bytes) with a ``sys.getsizeof`` breakdown, ``advance()`` with nothing due
(target < 1 ms, median of many calls) and with 1% of the monitors due.

Figures are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import structlog

from bench.common import Table, percentile, rss_bytes
from services.evaluator.consumer import Evaluator
from services.evaluator.logic import PartitionEvaluator
from services.evaluator.logic.ingest import WatchRule
from shared.bus import Bus, partition_for
from shared.events import Event, MonitorConfig, Ping, Tick, decode, encode
from shared.settings import Settings
from shared.topics import Topics

SIZES = {
    # monitors/events: the throughput drain (embedded); kafka_events: the same on Kafka;
    # core_events: the in-memory sample; scale_monitors: one PartitionEvaluator.
    "tiny": {
        "monitors": 1_000,
        "events": 20_000,
        "kafka_events": 10_000,
        "core_events": 20_000,
        "scale_monitors": 2_000,
        "advance_calls": 2_000,
        "timeout_s": 60,
    },
    "quick": {
        "monitors": 10_000,
        "events": 200_000,
        "kafka_events": 100_000,
        "core_events": 200_000,
        "scale_monitors": 100_000,
        "advance_calls": 20_000,
        "timeout_s": 180,
    },
    "full": {
        "monitors": 100_000,
        "events": 1_000_000,
        "kafka_events": 300_000,
        "core_events": 300_000,
        "scale_monitors": 1_000_000,
        "advance_calls": 100_000,
        "timeout_s": 600,
    },
}

TARGET_RATE = 100_000
TARGET_RATIO = 0.5
TARGET_ADVANCE_IDLE_MS = 1.0
TARGET_BYTES_PER_MONITOR = 500

BASE_MS = 1_700_000_000_000
PROJECT = "prj_0123456789abcdef"
INTERVAL_S = 60
GRACE_S = 10
CYCLE_MS = 30_000  # each live monitor is pinged once per 30 s of event time
DEAD_EVERY = 100  # 1 monitor in 100 pings once, then never again
POLL_MAX = 5000  # what the Evaluator polls; the bare consumer polls the same


def monitor_id(i: int) -> str:
    return f"hb_{i:016x}"


def monitor_config(
    i: int,
    *,
    interval_s: int = INTERVAL_S,
    grace_s: int = GRACE_S,
    misses: int = 2,
    channels: list[str] | None = None,
) -> MonitorConfig:
    return MonitorConfig(
        id=monitor_id(i),
        project_id=PROJECT,
        name=f"nightly backup {i}",
        token=f"{i:032d}",
        interval_s=interval_s,
        grace_s=grace_s,
        max_consecutive_misses=misses,
        channels=["ch_0123456789abcdef"] if channels is None else channels,
        tags=["cron"],
        created_ms=BASE_MS,
        updated_ms=BASE_MS,
    )


def ping(i: int, at_ms: int, n: int = 0, message: str | None = None) -> Ping:
    return Ping(
        id=f"{at_ms:012x}{n:016x}",
        monitor_id=monitor_id(i),
        project_id=PROJECT,
        received_ms=at_ms,
        kind="success",
        source_ip="127.0.0.1",
        user_agent="curl/8.5.0",
        method="POST",
        message=message,
    )


def workload(monitors: int, events: int, partitions: int) -> Iterator[tuple[str, int, bytes]]:
    """(key, partition, value) of the throughput topic, in append order.

    Pings cycle over the monitors (dead ones only in the first cycle); event time moves
    CYCLE_MS per cycle; every second of event time a tick goes into every partition.
    """
    live = [i for i in range(monitors) if i % DEAD_EVERY]
    step_ms = CYCLE_MS / len(live)
    sent = 0
    now = float(BASE_MS)
    next_tick = BASE_MS + 1000
    order = list(range(monitors))  # the first cycle pings every monitor
    n = 0
    while sent < events:
        for i in order:
            if sent >= events:
                return
            now += step_ms
            at = int(now)
            if at >= next_tick:
                value = encode(Tick(at_ms=next_tick))
                for p in range(partitions):
                    if sent >= events:
                        return
                    yield "", p, value
                    sent += 1
                next_tick += 1000
                if sent >= events:
                    return
            key = monitor_id(i)
            yield key, partition_for(key, partitions), encode(ping(i, at, n))
            n += 1
            sent += 1
        order = live


@contextlib.contextmanager
def service_logging():
    """The services log at info as they do by default (console renderer), so that cost is
    kept, but into /dev/null so the tables stay readable. Restored afterwards."""
    saved = structlog.get_config()
    # aiokafka's own retries (NotLeaderForPartition right after topic creation) are not news here.
    kafka_logger = logging.getLogger("aiokafka")
    kafka_level = kafka_logger.level
    with open(os.devnull, "w") as sink:
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.PrintLoggerFactory(file=sink),
            cache_logger_on_first_use=False,
        )
        kafka_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            structlog.configure(**saved)
            kafka_logger.setLevel(kafka_level)


# --- throughput ------------------------------------------------------------------------


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def core_rates(monitors: int, events: int, partitions: int) -> dict:
    """decode alone, core alone, decode + core: events/s on an in-memory sample."""
    sample = list(workload(monitors, events, partitions))
    values = [v for _, _, v in sample]
    gc.collect()
    started = time.perf_counter()
    for value in values:
        decode(value)  # discarded at once, as a consumer does
    t_decode = time.perf_counter() - started
    decoded = [decode(v) for v in values]

    def fresh() -> dict[int, PartitionEvaluator]:
        evaluators = {p: PartitionEvaluator(p) for p in range(partitions)}
        for i in range(monitors):
            cfg = monitor_config(i)
            evaluators[partition_for(cfg.id, partitions)].apply_config(cfg)
        return evaluators

    offsets = [0] * partitions
    items = []
    for (_, p, _), event in zip(sample, decoded, strict=True):
        items.append((p, offsets[p], event))
        offsets[p] += 1

    evaluators = fresh()
    outputs = 0
    gc.collect()
    started = time.perf_counter()
    for p, offset, event in items:
        e = evaluators[p]
        if type(event) is Tick:
            outputs += len(e.advance(event.at_ms))
        elif type(event) is Ping:  # the workload holds nothing else
            outputs += len(e.apply_ping(event, offset))
    t_core = time.perf_counter() - started

    evaluators = fresh()
    gc.collect()
    started = time.perf_counter()
    for (p, offset, _), value in zip(items, values, strict=True):
        e = evaluators[p]
        event = decode(value)
        if type(event) is Tick:
            e.advance(event.at_ms)
        elif type(event) is Ping:
            e.apply_ping(event, offset)
    t_both = time.perf_counter() - started
    return {
        "events": len(values),
        "decode_s": t_decode,
        "core_s": t_core,
        "both_s": t_both,
        "outputs": outputs,
    }


async def prefill(bus: Bus, topics: Topics, monitors: int, events: int, producer=None) -> dict[int, int]:
    """Configs on ``monitors``, the workload on ``pings``; returns records per pings partition.

    On Kafka (``producer`` given) a plain aiokafka producer fills the topics (faster than the
    service's acks=all path, and not what is measured)."""
    partitions = bus.partitions(topics.pings)
    counts = dict.fromkeys(range(partitions), 0)

    async def send(topic: str, items: list[tuple[str, int, bytes]]) -> None:
        if producer is None:
            await asyncio.gather(*(bus.publish(topic, k, v, partition=p) for k, p, v in items))
        else:
            futures = [await producer.send(topic, v, key=k.encode(), partition=p) for k, p, v in items]
            await asyncio.gather(*futures)

    chunk: list = []
    for i in range(monitors):
        cfg = monitor_config(i)
        chunk.append((cfg.id, partition_for(cfg.id, partitions), encode(cfg)))
        if len(chunk) >= 10_000:
            await send(topics.monitors, chunk)
            chunk = []
    await send(topics.monitors, chunk)
    chunk = []
    for key, p, value in workload(monitors, events, partitions):
        chunk.append((key, p, value))
        counts[p] += 1
        if len(chunk) >= 10_000:
            await send(topics.pings, chunk)
            chunk = []
    await send(topics.pings, chunk)
    return counts


async def bare_consumer(
    bus: Bus, topics: Topics, counts: dict[int, int], timeout_s: float
) -> tuple[int, float]:
    """Poll + decode every record of ``pings``, nothing else. Returns (records, seconds)."""
    total = sum(counts.values())
    reader = bus.reader([(topics.pings, p) for p in counts])
    await reader.start()
    seen = 0
    try:
        started = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while seen < total and time.monotonic() < deadline:
            for record in await reader.poll(max_records=POLL_MAX, timeout_ms=200):
                decode(record.value)
                seen += 1
        elapsed = time.perf_counter() - started
    finally:
        await reader.close()
    return seen, elapsed


async def _output_ends(bus: Bus, topics: Topics, partitions) -> int:
    """Records on ``status`` + ``alerts`` now (their end offsets summed)."""
    total = 0
    for topic in (topics.status, topics.alerts):
        reader = bus.reader([(topic, p) for p in partitions])
        await reader.start()
        total += sum((await reader.end_offsets(reader.assignment())).values())
        await reader.close()
    return total


async def drain_with_evaluator(
    settings: Settings,
    bus: Bus,
    topics: Topics,
    counts: dict[int, int],
    timeout_s: float,
    checkpoints: bool = True,
) -> dict:
    """Run the real Evaluator over the pre-filled topic; time assignment, last apply, last commit.

    Instrumented by wrapping three of its methods on the instance (the loop calls them through
    ``self``): nothing polls from outside, so each mark is within one batch of the truth.

    ``checkpoints=False`` is a diagnostic: no snapshot or commit during the drain (and none
    written at close, so a later run on the same topics starts from scratch)."""
    group = f"{topics.prefix}bench-evaluator" + ("" if checkpoints else "-no-checkpoints")
    if not checkpoints:
        settings = settings.replace(checkpoint_interval_ms=10**9)
    evaluator = Evaluator(settings, bus, topics, group=group)
    ends = {p: n - 1 for p, n in counts.items() if n}
    outputs_before = await _output_ends(bus, topics, counts)
    marks: dict[str, float] = {}
    applied, committed = asyncio.Event(), asyncio.Event()
    checkpoint_count = 0
    original_assigned, original_process, original_checkpoint = (
        evaluator._assigned,
        evaluator._process,
        evaluator._checkpoint,
    )

    def reached() -> bool:
        last = evaluator._last_offset
        return all(last.get(p, -1) >= end for p, end in ends.items())

    async def assigned(tps):
        await original_assigned(tps)
        if len(evaluator.partitions) == len(counts):
            marks.setdefault("assigned", time.perf_counter())

    async def process(records):
        await original_process(records)
        if not applied.is_set() and reached():
            marks["applied"] = time.perf_counter()
            applied.set()

    async def checkpoint():
        nonlocal checkpoint_count
        if not checkpoints:
            for partition in evaluator.partitions.values():
                partition.dirty.clear()
        done = applied.is_set() and reached()
        await original_checkpoint()
        checkpoint_count += 1
        if done and not committed.is_set():
            marks["committed"] = time.perf_counter()
            committed.set()

    async def rewind():
        # The loop caught an exception (logged as evaluator.loop.failed) and starts over from the
        # last commit. The service would retry forever; the bench stops and reports it.
        error = sys.exc_info()[1]
        failures.append(f"{type(error).__name__}: {error}" if error else "unknown error")
        failed.set()
        await original_rewind()

    failures: list[str] = []
    failed = asyncio.Event()
    original_rewind = evaluator._rewind
    evaluator._assigned, evaluator._process, evaluator._checkpoint = assigned, process, checkpoint  # type: ignore[method-assign]  # instrumented on purpose (docstring)
    evaluator._rewind = rewind  # type: ignore[method-assign]  # instrumented on purpose (see the docstring)
    started = time.perf_counter()
    await evaluator.start()
    waiters = [
        asyncio.create_task((committed if checkpoints else applied).wait()),
        asyncio.create_task(failed.wait()),
    ]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        if failed.is_set():
            for partition in evaluator.partitions.values():
                partition.dirty.clear()  # the failed write would only fail again at close
        try:
            await evaluator.close()
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the figures so far still count
            failures.append(f"at close: {type(exc).__name__}: {exc}")
    if not failures and ("committed" if checkpoints else "applied") not in marks:
        failures.append(f"not done within {timeout_s:g} s")
    since = marks.get("assigned", float("nan"))
    return {
        "failure": "; ".join(failures),
        "start_s": since - started,
        "applied_s": marks.get("applied", float("nan")) - since,
        "committed_s": marks.get("committed", float("nan")) - since,
        "checkpoints": checkpoint_count,
        "outputs": await _output_ends(bus, topics, counts) - outputs_before,
        "unknown": evaluator.unknown_monitor_count,
    }


def _met(rate: float, ratio: float | None) -> str:
    problems = []
    if not rate >= TARGET_RATE:
        problems.append("rate")
    if ratio is not None and not ratio >= TARGET_RATIO:
        problems.append("ratio")
    return "met" if not problems else "missed (" + ", ".join(problems) + ")"


def _failed(run: dict, mark: str = "applied_s") -> str:
    """Why a figure is missing, if it is."""
    if run["failure"] and math.isnan(run[mark]):
        return f"FAILED: {run['failure'][:160]}"
    return ""


def _add_bus_rows(
    table: Table, bus_name: str, total: int, bare: tuple[int, float], diagnostic: dict, run: dict
) -> None:
    bare_rate = _rate(bare[0], bare[1])

    def ratio(rate: float) -> float:
        return rate / bare_rate if bare_rate else float("nan")

    table.add(bus_name, "bare consumer: poll + decode", bare[0], bare[1], bare_rate, 1.0, "ceiling", "")
    rate = _rate(total, diagnostic["applied_s"])
    table.add(
        bus_name,
        "diagnostic: Evaluator with no checkpoint during the drain",
        total,
        diagnostic["applied_s"],
        rate,
        ratio(rate),
        "",
        _failed(diagnostic),
    )
    rate = _rate(total, run["applied_s"])
    table.add(
        bus_name,
        "Evaluator: all records applied, outputs published",
        total,
        run["applied_s"],
        rate,
        ratio(rate),
        f">= {TARGET_RATE:,}/s, >= {TARGET_RATIO}x",
        _failed(run) or _met(rate, ratio(rate)),
    )
    rate = _rate(total, run["committed_s"])
    table.add(
        bus_name,
        "Evaluator: + snapshots written, last offset committed",
        total,
        run["committed_s"],
        rate,
        ratio(rate),
        "",
        _failed(run, "committed_s"),
    )


async def throughput(size: str, workdir: Path) -> Table:
    cfg = SIZES[size]
    table = Table(
        "Evaluator throughput (one process)",
        ["bus", "what", "events", "seconds", "events/s", "x bare consumer", "target", "met"],
    )
    monitors, events = cfg["monitors"], cfg["events"]

    core = core_rates(monitors, min(cfg["core_events"], events), 1)
    n = core["events"]
    table.add("memory", "decode only", n, core["decode_s"], _rate(n, core["decode_s"]), "", "", "")
    table.add(
        "memory",
        "core only: apply_ping/advance on decoded events",
        n,
        core["core_s"],
        _rate(n, core["core_s"]),
        "",
        "",
        "",
    )
    table.add("memory", "decode + core", n, core["both_s"], _rate(n, core["both_s"]), "", "", "")

    with service_logging():
        from shared.bus.local import LocalBus

        topics = Topics("bench.")
        settings = Settings(data_dir=workdir)
        bus = LocalBus(workdir / "throughput.sqlite3", default_partitions=settings.partition_count)
        await bus.start()
        try:
            await bus.ensure_topics(topics.specs(settings.partition_count))
            fill_started = time.perf_counter()
            counts = await prefill(bus, topics, monitors, events)
            fill_s = time.perf_counter() - fill_started
            total = sum(counts.values())
            bare = await bare_consumer(bus, topics, counts, cfg["timeout_s"])
            diagnostic = await drain_with_evaluator(
                settings, bus, topics, counts, cfg["timeout_s"], checkpoints=False
            )
            run = await drain_with_evaluator(settings, bus, topics, counts, cfg["timeout_s"])
        finally:
            await bus.close()
        _add_bus_rows(table, f"embedded ({len(counts)} partition)", total, bare, diagnostic, run)
        table.notes.append(
            f"Embedded: {monitors:,} monitors, {total:,} records ({fill_s:.1f} s to pre-fill), "
            f"{run['start_s']:.2f} s to load configs before the drain, {run['checkpoints']} checkpoints, "
            f"{run['outputs']:,} status events and alerts written."
        )

        kafka_events = cfg["kafka_events"]
        if kafka_events:
            try:
                await _kafka_part(table, workdir, monitors, kafka_events, cfg["timeout_s"])
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                # No broker could be had (bench.broker raises these): say so rather than fail the pass.
                table.add(
                    "kafka",
                    f"not run: {type(exc).__name__}: {str(exc)[:120]}",
                    0,
                    float("nan"),
                    float("nan"),
                    "",
                    "",
                    "",
                )
    table.notes.append(
        "Sample in memory: the first events of the same workload, 1 partition. 'x bare consumer': the "
        "Evaluator's rate over a consumer that only polls and decodes the same topic. Seconds count from "
        "partitions assigned (configs loaded) to the last record applied (its outputs durable), and to the "
        "commit of the last offset (checkpoint every 1 s: snapshots of changed monitors, then commit). "
        "Diagnostic row: the same adapter with its checkpoints held off for the drain (its own group, no "
        "snapshot written): the gap to the next row is what the 1 s snapshots cost during a drain."
    )
    return table


async def _kafka_part(table: Table, workdir: Path, monitors: int, events: int, timeout_s: float) -> None:
    from aiokafka import AIOKafkaProducer

    from bench.broker import kafka_broker
    from shared.bus.kafka import KafkaBus

    with kafka_broker(workdir) as bootstrap:
        prefix = f"bench{uuid.uuid4().hex[:8]}."
        topics = Topics(prefix)
        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, data_dir=workdir)
        bus = KafkaBus(settings)
        await bus.start()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1)
        await producer.start()
        try:
            await bus.ensure_topics(topics.specs(settings.partition_count))
            fill_started = time.perf_counter()
            counts = await prefill(bus, topics, monitors, events, producer=producer)
            fill_s = time.perf_counter() - fill_started
            await producer.stop()
            producer = None
            total = sum(counts.values())
            bare = await bare_consumer(bus, topics, counts, timeout_s)
            diagnostic = await drain_with_evaluator(
                settings, bus, topics, counts, timeout_s, checkpoints=False
            )
            run = await drain_with_evaluator(settings, bus, topics, counts, timeout_s)
        finally:
            if producer is not None:
                await producer.stop()
            await bus.close()
    _add_bus_rows(table, f"kafka ({len(counts)} partitions)", total, bare, diagnostic, run)
    table.notes.append(
        f"Kafka: {monitors:,} monitors, {total:,} records ({fill_s:.1f} s to pre-fill), "
        f"{run['start_s']:.2f} s from start to partitions assigned and configs loaded (group join included), "
        f"{run['checkpoints']} checkpoints, {run['outputs']:,} status events and alerts written. "
        "The broker runs on the same 2 cores."
    )


# --- scale ----------------------------------------------------------------------------

_SMALL_INTS = range(-5, 257)


def _int_bytes(value) -> int:
    if (isinstance(value, int) and value in _SMALL_INTS) or value is None or value == sys.maxsize:
        return 0  # cached or shared objects
    return sys.getsizeof(value)


def breakdown(evaluator: PartitionEvaluator, sample: int = 1000) -> list[tuple[str, float]]:
    """Bytes per monitor, by part: getsizeof of what each state owns, and its share of the
    evaluator's containers. Shared objects (interned project id, cached ints) count 0."""
    states = list(evaluator.monitors.values())[:sample]
    n = len(evaluator.monitors)
    if not states:
        return []
    parts = {
        "MonitorState struct": 0,
        "int fields (times, offsets)": 0,
        "monitor_id str": 0,
        "name str": 0,
        "channels tuple + its str": 0,
        "tags tuple + its str": 0,
        "last_problem str": 0,
    }
    for s in states:
        parts["MonitorState struct"] += sys.getsizeof(s)
        parts["int fields (times, offsets)"] += sum(
            _int_bytes(getattr(s, f))
            for f in (
                "interval_ms",
                "grace_ms",
                "max_problems",
                "revision",
                "last_ping_ms",
                "deadline_ms",
                "problems",
                "incident",
                "applied_offset",
                "queued_slot",
            )
        )
        parts["monitor_id str"] += sys.getsizeof(s.monitor_id)
        parts["name str"] += sys.getsizeof(s.name)
        parts["channels tuple + its str"] += sys.getsizeof(s.channels) + sum(
            sys.getsizeof(c) for c in s.channels
        )
        parts["tags tuple + its str"] += sys.getsizeof(s.tags) + sum(sys.getsizeof(t) for t in s.tags)
        parts["last_problem str"] += sys.getsizeof(s.last_problem) if s.last_problem else 0
    rows = [(name, total / len(states)) for name, total in parts.items()]
    rows.append(("monitors dict (share of its table)", sys.getsizeof(evaluator.monitors) / n))
    entries = wheel_entries(evaluator)
    buckets = evaluator._wheel.buckets()
    wheel_bytes = sum(sys.getsizeof(b) for b in buckets.values()) + sys.getsizeof(buckets)
    rows.append((f"timer wheel: list slots, x {entries / n:.2f} entries", wheel_bytes / n))
    rows.append(("dirty set (share of its table)", sys.getsizeof(evaluator.dirty) / n))
    return rows


E = TypeVar("E", bound=Event)


def _from_bytes(event: E) -> E:
    """``event`` encoded and decoded again, as a consumer gets it from the bus: the copy owns
    its own strings and lists."""
    copy = decode(encode(event))
    if not isinstance(copy, type(event)):
        raise TypeError(f"{type(event).__name__} came back as {type(copy).__name__}")
    return copy


def wheel_entries(evaluator: PartitionEvaluator) -> int:
    return sum(len(bucket) for bucket in evaluator._wheel.buckets().values())


def _scale_worker(n: int, advance_calls: int, with_messages: bool = False) -> dict:
    """Runs in a fresh spawn process: only this evaluator is in its heap. ``with_messages``:
    each ping says something of its own (~28 characters), which alerts then quote."""
    interval_ms = 3_600_000
    lateness_ms = 1000
    # Warm everything (imports, msgspec caches, the first allocations) before the baseline.
    warm = PartitionEvaluator(0, lateness_ms)
    warm.apply_config(_from_bytes(monitor_config(0)))
    warm.apply_ping(ping(0, BASE_MS), 0)
    del warm
    gc.collect()
    rss_before = rss_bytes()

    # Every monitor is silent after its one ping: 1% due at once is, to the ingest watch, ingestion
    # collapsing (it would hold all but the first misses as unknown). Needing more overdue check-ins
    # than there are monitors, it counts as in production but never opens: each due one alerts.
    evaluator = PartitionEvaluator(0, lateness_ms, watch=WatchRule(min_overdue=n + 1))
    started = time.perf_counter()
    for i in range(n):
        # Decoded from bytes, as from the bus: the state owns its own strings and lists.
        evaluator.apply_config(
            _from_bytes(monitor_config(i, interval_s=interval_ms // 1000, grace_s=0, misses=1))
        )
    config_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(n):
        # Last pings spread evenly over one interval: dues spread evenly too.
        message = f"backup done: {i} files copied" if with_messages else None
        evaluator.apply_ping(_from_bytes(ping(i, BASE_MS + i * interval_ms // n, i, message)), i)
    ping_s = time.perf_counter() - started
    evaluator.saved(evaluator.changed())  # steady state: a checkpoint empties the dirty set each second
    gc.collect()
    rss_after = rss_bytes()
    parts = breakdown(evaluator)
    heap_per_monitor = wheel_entries(evaluator) / n

    # advance(), nothing due: the clock moves by 1 ms per call and stays before the first due.
    timings = []
    clock = BASE_MS
    batch_started = time.perf_counter()
    for _ in range(advance_calls):
        clock += 1
        t0 = time.perf_counter_ns()
        evaluator.advance(clock)
        timings.append(time.perf_counter_ns() - t0)
    idle_batch_s = time.perf_counter() - batch_started
    assert clock < BASE_MS + interval_ms

    # advance() with 1% due: each call moves the clock by 1% of the interval; every monitor
    # popped turns late, misses (grace 0) and goes down with an alert (max misses 1).
    slices = []
    for j in range(10):
        clock = BASE_MS + interval_ms + lateness_ms + (j + 1) * interval_ms // 100
        t0 = time.perf_counter_ns()
        outputs = evaluator.advance(clock)
        elapsed = time.perf_counter_ns() - t0
        alerts = sum(1 for o in outputs if type(o).__name__ == "Alert")
        slices.append((elapsed, alerts, len(outputs)))
    del outputs

    # Stale heap entries: a monitor pinged k times within one interval leaves k heap entries.
    small, k = PartitionEvaluator(0, lateness_ms), 10
    for i in range(1000):
        small.apply_config(monitor_config(i, interval_s=3600, grace_s=0, misses=1))
    for r in range(k):
        for i in range(1000):
            small.apply_ping(ping(i, BASE_MS + r * 60_000, r), r * 1000 + i)
    return {
        "n": n,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "config_s": config_s,
        "ping_s": ping_s,
        "parts": parts,
        "heap_per_monitor": heap_per_monitor,
        "idle_ns": timings,
        "idle_batch_s": idle_batch_s,
        "slices": slices,
        "stale_heap_per_monitor": wheel_entries(small) / 1000,
        "stale_pings": k,
    }


async def scale(size: str) -> list[Table]:
    cfg = SIZES[size]
    n = cfg["scale_monitors"]
    loop = asyncio.get_running_loop()
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = await asyncio.wait_for(
            loop.run_in_executor(pool, _scale_worker, n, cfg["advance_calls"]), cfg["timeout_s"]
        )
    # The last check-in's message is kept per monitor for alerts: its cost, measured apart.
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        said = await asyncio.wait_for(loop.run_in_executor(pool, _scale_worker, n, 0, True), cfg["timeout_s"])
    per_monitor_said = (said["rss_after"] - said["rss_before"]) / n
    idle_us = [t / 1000 for t in result["idle_ns"]]
    idle_median_ms = statistics.median(idle_us) / 1000
    per_monitor = (result["rss_after"] - result["rss_before"]) / n
    slice_ms = [e / 1e6 for e, _, _ in result["slices"]]
    due = [a for _, a, _ in result["slices"]]
    per_due_us = [e / 1000 / a for e, a, _ in result["slices"] if a]

    table = Table(
        f"Evaluator scale: {n:,} monitors in one PartitionEvaluator",
        ["measurement", "value", "unit", "target", "met"],
    )
    table.add("apply_config (decode included), per monitor", result["config_s"] / n * 1e6, "us", "", "")
    table.add("first apply_ping (decode included), per monitor", result["ping_s"] / n * 1e6, "us", "", "")
    table.add(
        "advance(), nothing due: median",
        statistics.median(idle_us),
        "us",
        f"< {TARGET_ADVANCE_IDLE_MS:g} ms",
        "met" if idle_median_ms < TARGET_ADVANCE_IDLE_MS else "missed",
    )
    table.add("advance(), nothing due: p99", percentile(idle_us, 99), "us", "", "")
    table.add(
        f"advance(), nothing due: mean over {len(idle_us):,} calls",
        result["idle_batch_s"] / len(idle_us) * 1e6,
        "us",
        "",
        "",
    )
    table.add(
        f"advance(), 1% due ({statistics.median(due):,.0f} monitors): median of {len(slice_ms)}",
        statistics.median(slice_ms),
        "ms",
        "",
        "",
    )
    table.add(
        "advance(), 1% due: per due monitor (late, missed, down + alert)",
        statistics.median(per_due_us) if per_due_us else float("nan"),
        "us",
        "",
        "",
    )
    table.add(
        "memory per monitor (RSS delta / monitors)",
        per_monitor,
        "bytes",
        f"< {TARGET_BYTES_PER_MONITOR}",
        "met" if per_monitor < TARGET_BYTES_PER_MONITOR else "missed",
    )
    table.add(
        "memory per monitor, each last check-in with a message of its own (~28 chars)",
        per_monitor_said,
        "bytes",
        "",
        "",
    )
    table.add("timer-wheel entries per monitor after one ping", result["heap_per_monitor"], "", "", "")
    table.add(
        f"timer-wheel entries per monitor after {result['stale_pings']} pings within one interval",
        result["stale_heap_per_monitor"],
        "",
        "",
        "",
    )
    table.notes.append(
        f"Built in a fresh spawn process: RSS {result['rss_before'] / 2**20:.0f} -> {result['rss_after'] / 2**20:.0f} MiB "
        "after gc.collect(). Each config is decoded from bytes as from the bus (1 channel, 1 tag, ~20-char name); "
        "one ping each, spread over a 1 h interval; grace 0, 1 miss to go down. Nothing-due calls move the clock "
        "1 ms each; 1%-due calls move it by 1% of the interval. Measured after the dirty set was emptied, "
        "as the evaluator's checkpoint does every second."
    )

    parts = Table(
        f"Evaluator memory per monitor, by part (sys.getsizeof, {n:,} monitors)", ["part", "bytes/monitor"]
    )
    for name, value in result["parts"]:
        parts.add(name, value)
    accounted = sum(v for _, v in result["parts"])
    parts.add("sum of the parts", accounted)
    parts.add("RSS delta per monitor", per_monitor)
    parts.notes.append(
        "The gap between the sum and the RSS delta is allocator overhead (pymalloc pools, "
        "free lists) and temporaries not returned to the OS."
    )
    return [table, parts]


async def run(size: str, workdir: Path) -> list[Table]:
    tables = [await throughput(size, workdir)]
    tables += await scale(size)
    return tables
