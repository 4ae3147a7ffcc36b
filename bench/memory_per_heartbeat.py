"""Memory per heartbeat of each per-heartbeat structure of ``pingura serve`` (issue 21):
``python -m bench.memory_per_heartbeat [--heartbeats 200000] [--no-rss]``.

Heartbeats are made as ``bench.million`` builds them (its ids, names, tokens, channel, tags and
evaluator states), then fed to the real structures one after the other, each measured with
tracemalloc as what it holds once built (after a collection), divided by the heartbeats:

- ``monitors view``: the query's packed configs (:class:`WatchedConfigView`);
- ``token index``: ingest's (:class:`TokenIndex`); with ``PINGURA_INGEST_PROCESS=1`` the ingest
  process holds one more;
- ``evaluator``: the states restored at start (:meth:`StateStore.restore`) from snapshots written
  beforehand on an embedded bus as the evaluator writes them, a checkpoint's offset shared by
  :data:`CHECKPOINT` of them;
- ``status view``: the query's :class:`StatusView`;
- ``catalog``: the query's sorted lists (:class:`Catalog`);
- ``channel users``: the channels' "used by" index (:class:`ChannelUsers`), built as the first
  ``GET /channels`` builds it;
- with ``--period``: what the evaluator and the status view gain when every heartbeat checks in
  once, as in the first period of the million soak (:func:`check_in_once`).

The ids are made (and interned) before any of them, as the views share one copy; their cost is
its own row. Without ``--no-rss``, a child process builds the same structures without
tracemalloc and reports its RSS net of what it had before building, per heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from bench.million import role, token
from services.evaluator.logic.partition import PartitionEvaluator
from services.evaluator.store import StateStore
from services.ingest.store import TokenIndex
from services.query.api.channel_users import ChannelUsers
from services.query.catalog import Catalog, WatchedConfigView
from services.query.status_view import StatusView, status_of
from shared.bus.local import LocalBus
from shared.events import MonitorConfig, MonitorSnapshot, Ping, encode
from shared.snapshots import STATE_VERSION, MonitorState, encode_state
from shared.topics import Topics

PROJECT_ID = "prj_bench000000000000"
CHANNEL_ID = "ch_bench0000000000000"
NOW_MS = 1_800_000_000_000


def configs(ids: list[str]) -> Iterator[MonitorConfig]:
    channels, tags, created = [CHANNEL_ID], ["bench", "soak"], NOW_MS - 86_400_000
    for i, mid in enumerate(ids):
        yield MonitorConfig(
            id=mid,
            project_id=PROJECT_ID,
            name=f"{role(i)}-job-{i:07d}",
            token=token(i),
            interval_s=600,
            grace_s=300,
            channels=channels,
            tags=tags,
            created_ms=created,
            updated_ms=created,
        )


def states(ids: list[str]) -> Iterator[MonitorState]:
    """Decoded from JSON, as a restore reads them: fresh copies of every string."""
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder(MonitorState)
    for i, mid in enumerate(ids):
        last = NOW_MS - 300_000 + (i * 7919) % 300_000
        silent = role(i) == "silent"
        state = MonitorState(
            monitor_id=mid,
            project_id=PROJECT_ID,
            name=f"{role(i)}-job-{i:07d}",
            interval_ms=600_000,
            grace_ms=300_000,
            max_problems=1,
            channels=(CHANNEL_ID,),
            tags=("bench", "soak"),
            revision=1,
            status="new" if silent else "up",
            last_ping_ms=None if silent else last,
            deadline_ms=None if silent else last + 900_000,
            status_since_ms=None if silent else last,
            status_reason=None if silent else "ping received",
        )
        yield decoder.decode(encoder.encode(state))


CHECKPOINT = 3_300
"""Monitors a snapshot offset is shared by: the evaluator saves once a second, and the million
soak's 3,300 pings a second change that many."""


async def write_snapshots(path: Path, ids: list[str]) -> None:
    """Each heartbeat's evaluator snapshot on ``evaluator-state``, as the evaluator saves them."""
    bus, topics = LocalBus(path), Topics()
    await bus.start()
    try:
        await bus.ensure_topics(topics.specs(1))
        batch: list[tuple[str, bytes]] = []
        for i, state in enumerate(states(ids)):
            offset = 1_000_000 + i // CHECKPOINT * CHECKPOINT
            snapshot = MonitorSnapshot(
                monitor_id=state.monitor_id, partition=0, offset=offset, clock_ms=NOW_MS,
                state=encode_state(state), state_v=STATE_VERSION,
            )  # fmt: skip
            batch.append((state.monitor_id, encode(snapshot)))
            if len(batch) == 5_000:
                await bus.publish_many(topics.evaluator_state, batch)
                batch = []
        await bus.publish_many(topics.evaluator_state, batch)
    finally:
        await bus.close()


async def restore(path: Path, partition: PartitionEvaluator) -> None:
    bus = LocalBus(path)
    await bus.start()
    try:
        await StateStore(bus, Topics()).restore({0: partition})
    finally:
        await bus.close()


def heartbeat_ids(n: int) -> list[str]:
    return [sys.intern(f"hb_{i:016x}") for i in range(n)]


def build(
    n: int, snapshots: Path, measure: Callable[[str, Callable[[], Any]], Any], period: bool = False
) -> None:
    """Every structure in turn, the evaluator restored from ``snapshots`` (the bus
    :func:`write_snapshots` wrote); ``measure(name, make)`` calls ``make`` and returns its result.
    ``period``: then what the evaluator and the status view gain over a period of check-ins."""
    ids = measure("ids (shared)", lambda: heartbeat_ids(n))
    bus = LocalBus(Path(tempfile.mkdtemp()) / "b.sqlite3")
    topics = Topics()

    def monitors_view() -> WatchedConfigView[MonitorConfig]:
        view: WatchedConfigView[MonitorConfig] = WatchedConfigView(
            bus, topics.monitors, MonitorConfig, lambda m: m.revision
        )
        for cfg in configs(ids):
            view.put(cfg)
        return view

    def token_index() -> TokenIndex:
        index = TokenIndex(bus, topics)
        for cfg in configs(ids):
            index.put(cfg)
        return index

    def evaluator() -> PartitionEvaluator:  # restored from the snapshots, as at start
        partition = PartitionEvaluator(0)
        asyncio.run(restore(snapshots, partition))
        return partition

    def status_view() -> StatusView:
        view = StatusView(bus, topics)
        for state in states(ids):
            view.put(state.monitor_id, status_of(state))
        return view

    monitors = measure("monitors view", monitors_view)
    measure("token index", token_index)
    partition = measure("evaluator", evaluator)
    statuses = measure("status view", status_view)
    measure("catalog", lambda: Catalog(monitors, statuses))

    def channel_users() -> ChannelUsers:
        users = ChannelUsers()
        users._index = asyncio.run(users._build(monitors))
        return users

    measure("channel users", channel_users)
    if period:
        measure("+ a period of check-ins", lambda: check_in_once(partition, statuses, ids))


def check_in_once(partition: PartitionEvaluator, statuses: StatusView, ids: list[str]) -> None:
    """Every heartbeat checks in once, in the soak's order and with its kind of message (a count
    in each) and duration, CHECKPOINT a second; each second's changes reach the status view as
    a checkpoint's do. What it adds is what the first period of the soak adds to these two."""
    n, at = len(ids), NOW_MS
    for k in range(n):
        ping = Ping(
            id=f"{at:012x}{k:016x}", monitor_id=ids[(k * 7919) % n], project_id=PROJECT_ID, received_ms=at,
            kind="success", status="ok", message=f"backup {k} done", duration_s=41.2, duration_raw="41.2",
            source_ip="127.0.0.1", user_agent="bench",
        )  # fmt: skip
        partition.apply_ping(ping, 2_000_000 + k)
        if k % CHECKPOINT == CHECKPOINT - 1 or k == n - 1:
            at += 1000
            partition.advance(at)
            changed = partition.changed()
            for state in changed:
                statuses.put(state.monitor_id, status_of(state))
            partition.saved(changed)


def traced(n: int, snapshots: Path, period: bool = False) -> dict[str, float]:
    """Bytes per heartbeat of each structure, by tracemalloc (tracing from before the first, so
    an object replaced later is counted out as it goes)."""
    found: dict[str, float] = {}
    kept: list[Any] = []

    def measure(name: str, make: Callable[[], Any]) -> Any:
        before = at[0]
        made = make()
        kept.append(made)
        gc.collect()
        at[0] = tracemalloc.get_traced_memory()[0]
        found[name] = (at[0] - before) / n
        print(f"  {name}: {found[name]:.1f} B", file=sys.stderr, flush=True)
        return made

    gc.collect()
    tracemalloc.start()
    at = [tracemalloc.get_traced_memory()[0]]  # traced after the last one measured
    build(n, snapshots, measure, period)
    tracemalloc.stop()
    return found


def lookup_ns(n: int, lookups: int = 200_000) -> float:
    """ns per :meth:`TokenIndex.resolve` of a known token (the ping path's call), stepping the
    coroutine by hand (it never waits for a known one): the best of five rounds."""
    ids = [sys.intern(f"hb_{i:016x}") for i in range(n)]
    index = TokenIndex(LocalBus(Path(tempfile.mkdtemp()) / "b.sqlite3"), Topics())
    for cfg in configs(ids):
        index.put(cfg)
    asked = [token((i * 7919) % n) for i in range(min(n, 10_000))]
    asked = (asked * (lookups // len(asked) + 1))[:lookups]
    resolve, best = index.resolve, float("inf")
    for _ in range(5):
        started = time.perf_counter_ns()
        for t in asked:
            with contextlib.suppress(StopIteration):
                resolve(t).send(None)
        best = min(best, (time.perf_counter_ns() - started) / lookups)
    return best


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def rss_child(n: int, snapshots: Path) -> None:
    gc.collect()
    before = _rss()
    kept: list[Any] = []

    def measure(name: str, make: Callable[[], Any]) -> Any:
        kept.append(made := make())
        return made

    build(n, snapshots, measure)
    gc.collect()
    print(json.dumps({"net_per_heartbeat": (_rss() - before) / n}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_per_heartbeat")
    parser.add_argument("--heartbeats", type=int, default=200_000)
    parser.add_argument("--no-rss", action="store_true", help="skip the child process measuring RSS")
    parser.add_argument("--lookups", action="store_true", help="time token lookups instead")
    parser.add_argument("--period", action="store_true", help="and what a period of check-ins adds")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = args.heartbeats
    if args.lookups:
        print(f"TokenIndex.resolve, {n:,} heartbeats: {lookup_ns(n):.0f} ns a lookup (best of 5)")
        return
    if args.rss_child:
        rss_child(n, args.rss_child)
        return
    with tempfile.TemporaryDirectory() as temporary:
        snapshots = Path(temporary) / "bus.sqlite3"
        asyncio.run(write_snapshots(snapshots, heartbeat_ids(n)))
        print(f"{n:,} heartbeats, tracemalloc, bytes per heartbeat:", file=sys.stderr)
        found = traced(n, snapshots, args.period)
        width = max(map(len, found))
        for name, size in found.items():
            print(f"{name:<{width}}  {size:7.1f} B")
        print(f"{'total':<{width}}  {sum(found.values()):7.1f} B")
        if not args.no_rss:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.memory_per_heartbeat",
                    "--heartbeats",
                    str(n),
                    "--rss-child",
                    str(snapshots),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rss = json.loads(out.splitlines()[-1])["net_per_heartbeat"]
            print(f"{'RSS net (no tracemalloc)':<{width}}  {rss:7.1f} B")


if __name__ == "__main__":
    main()
