"""Kafka mode, per process and per partition (issue 21): ``python -m bench.kafka_scale
[--processes 1,2,4] [--seconds S] [--partitions N] [--quick]``.

A real broker (bench/broker.py), topics made as ``pingura`` makes them (shared/topics.py,
``PINGURA_PARTITIONS`` keyed topics), and for each process count P, measured apart:

- **ingest**: P ``pingura ingest`` processes on one port (``SO_REUSEPORT``), wrk (else aiohttp)
  on loopback; each 200 is a ping the broker acknowledged (acks=all). pings/s, p50, p99.
- **evaluator**: P ``pingura evaluator`` processes, one consumer group, on a pre-filled ``pings``
  topic (check-ins of every heartbeat plus ticks, spread over the partitions). Events/s read
  from the processes' own ``/metrics`` (``pingura_consumer_lag_records``: what the group has
  not read) against the partitions' end offsets, once every partition is owned and read.
- **notifier**: P ``pingura notifier`` processes on a pre-filled ``alerts`` topic, each alert to
  one of 64 webhook channels on a loopback receiver (bench/ceiling.py, a process of its own).
  Alerts/s delivered = growth of the ``deliveries`` topic (one record per try; all succeed).

Per partition = rate / partitions (each process owns partitions / P of them). CPU per
process (and the broker's, the load's, the whole machine's) from /proc over the same window,
so it shows when the machine's cores, not Pingura, are the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from bench import checkin_bytes
from bench import kafka_fill as fill
from bench.broker import kafka_broker
from bench.common import Table, free_port, machine, spawn, stop, wait_port, wait_ready
from bench.kafka_group import Group, Run
from bench.load import run_load
from bench.proc_cpu import CpuWindow, broker_pid

SIZES = {
    # seconds: each ingest/notifier window; monitors: heartbeats (more than an evaluator reads in
    # a second, so each checkpoint snapshots about as many as it read, as when live);
    # events/alerts: backlog per process.
    "tiny": {"seconds": 2, "monitors": 5_000, "events": 150_000, "alerts": 4_000, "connections": 8},
    "quick": {"seconds": 5, "monitors": 100_000, "events": 250_000, "alerts": 10_000, "connections": 32},
    "full": {"seconds": 20, "monitors": 400_000, "events": 400_000, "alerts": 60_000, "connections": 32},
}


class Stage(Group):
    async def ingest(self, counts: list[int]) -> dict[int, tuple[Run, object]]:
        prefix = f"k{uuid.uuid4().hex[:6]}."
        await self.topics(prefix)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        paths = [f"/api/heartbeat/{fill.token(i)}" for i in range(min(self.size["monitors"], 256))]
        procs: list[subprocess.Popen] = []
        results: dict[int, tuple[Run, object]] = {}
        try:
            for count in counts:
                while len(procs) < count:
                    procs.append(
                        spawn(
                            ["-m", "services.cli", "ingest", "--port", str(port)],
                            env=self.env(prefix),
                            log=self.workdir / f"ingest{len(procs)}.log",
                        )
                    )
                    wait_ready(port, proc=procs[-1])
                await _listening(port, count)
                await _until_accepted(base + paths[-1])
                window = CpuWindow(self.pids(procs))
                result = await run_load(
                    base, paths, seconds=self.size["seconds"], connections=self.size["connections"]
                )
                cpu = window.end()
                note = f"{result.tool}, {self.size['connections']} connections"
                if result.errors:
                    note += f", {result.errors} non-200"
                run = Run(result.rps, self.size["seconds"], cpu, list(range(self.partitions)), note)
                results[count] = (run, result)
        finally:
            for proc in procs:
                stop(proc)
        return results

    async def evaluator(self, count: int) -> Run:
        """The group forms on the ticks its own ticker writes; every heartbeat checks in once
        (its first status), then the backlog of check-ins arrives."""
        topics = await self.topics(f"k{uuid.uuid4().hex[:6]}.")
        events = self.size["events"] * count
        monitors = self.size["monitors"]
        checkins = fill.checkins(monitors, monitors + events, self.partitions)
        first_cycle = itertools.islice(checkins, monitors)  # every heartbeat's first check-in: its "up"
        return await self.consumers(
            "evaluator",
            count,
            topics,
            topics.pings,
            topics.pings,
            lambda: self._send(topics.pings, checkins),
            # Every heartbeat alike is no ingest collapse: the watch stays out of the way.
            # Paused while the backlog is written: the session (30 s) outlives the pause. Its
            # heartbeats come every 10 s then, so the group takes longer to form.
            # Checkpoints every second, as a live evaluator makes them (a backlog alone would
            # make them every 10 s): each snapshots every heartbeat that checked in since.
            {
                "PINGURA_INGEST_WATCH_MIN_OVERDUE": "0",
                "PINGURA_KAFKA_SESSION_TIMEOUT_MS": "30000",
                "PINGURA_CHECKPOINT_BACKLOG_INTERVAL_MS": "1000",
            },
            prime=lambda: self._send(topics.pings, first_cycle),
            pause=True,
        )

    async def notifier(self, count: int, hook_port: int) -> Run:
        """The group forms on a first alert or so per partition, then the backlog arrives."""
        topics = await self.topics(f"k{uuid.uuid4().hex[:6]}.")
        url = f"http://127.0.0.1:{hook_port}/api/heartbeat/{fill.token(0)}"
        await self._send(topics.channels, fill.webhook_channels(url))
        primer = itertools.count(10**8, 4 * self.partitions)  # alert numbers apart from the backlog's

        async def nudge() -> None:
            alerts = fill.alerts(self.size["monitors"], next(primer), 4 * self.partitions, self.partitions)
            await self._send(topics.alerts, alerts)

        backlog = fill.alerts(self.size["monitors"], 0, self.size["alerts"] * count, self.partitions)
        return await self.consumers(
            "notifier",
            count,
            topics,
            topics.alerts,
            topics.deliveries,
            lambda: self._send(topics.alerts, backlog),
            {"PINGURA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"},
            nudge,
        )


def _listeners(port: int) -> int:
    """Sockets listening on ``port`` (/proc/net/tcp, tcp6)."""
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found += 1
    return found


async def _listening(port: int, count: int) -> None:
    """Until ``count`` sockets listen on ``port`` (one per process sharing it): a process that
    has not bound it yet would get no share of the load."""
    for _ in range(600):
        if _listeners(port) >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"fewer than {count} processes listen on {port}")


async def _until_accepted(url: str, in_a_row: int = 40) -> None:
    """Until ``in_a_row`` pings, each on a new connection (which the kernel hands to any of the
    processes sharing the port), are all answered 200: every process is ready."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        accepted = 0
        for _ in range(2000):
            async with http.post(url) as r:
                accepted = accepted + 1 if r.status == 200 else 0
            if accepted >= in_a_row:
                return
            if not accepted:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} was not accepted {in_a_row} times in a row")


# --- the tables --------------------------------------------------------------------------------

COLUMNS = [
    "stage",
    "processes",
    "rate /s",
    "per process /s",
    "per partition /s",
    "partitions owned",
    "CPU per process (cores)",
    "broker CPU",
    "machine CPU",
    "notes",
]


def _row(table: Table, stage: str, count: int, run: Run, partitions: int, cores: int) -> None:
    own = sorted(v for k, v in run.cpu.items() if k.startswith("p") and k[1:].isdigit())
    machine_used = run.cpu.get("machine", float("nan"))
    note = run.note
    if machine_used >= 0.9 * cores:
        note = (note + "; " if note else "") + f"the {cores} cores are full: the machine is the limit"
    table.add(
        stage,
        count,
        run.rate,
        run.rate / count,
        run.rate / partitions,
        "/".join(str(n) for n in run.owned) if stage != "ingest" else f"all {partitions} (producer)",
        " ".join(f"{c:.2f}" for c in own),
        run.cpu.get("broker", float("nan")),
        f"{machine_used:.2f} of {cores}",
        note,
    )


async def run(
    size_name: str, workdir: Path, processes: tuple[int, ...] = (1, 2, 4), partitions: int = 4
) -> list[Table]:
    size = dict(SIZES[size_name])
    cores = os.cpu_count() or 1
    table = Table(
        f"Kafka mode per process and per partition: {partitions} partitions, broker on this machine, "
        f"{size['seconds']} s windows",
        COLUMNS,
    )
    with kafka_broker(workdir) as bootstrap:
        stage = Stage(bootstrap, workdir, size, partitions, broker_pid(str(workdir / "kafka")))
        for count, (result, load) in (await stage.ingest(list(processes))).items():
            _row(table, "ingest", count, result, partitions, cores)
            table.rows[-1][-1] += f"; p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms"  # type: ignore[attr-defined]
        hook_port = free_port()
        hook = spawn(["-m", "bench.ceiling", str(hook_port)], log=workdir / "receiver.log")
        try:
            wait_port(hook_port, proc=hook)
            for count in processes:
                _row(table, "evaluator", count, await stage.evaluator(count), partitions, cores)
            stage.receiver = hook.pid
            for count in processes:
                result = await stage.notifier(count, hook_port)
                _row(table, "notifier", count, result, partitions, cores)
                table.rows[-1][-1] += f"; receiver {result.cpu.get('receiver', 0):.2f} cores"
        finally:
            stop(hook)
    table.notes += [
        "ingest: pings/s answered 200 (each acknowledged by the broker, acks=all, idempotent producer); "
        "every ingest process writes to every partition, so per partition = rate / partitions.",
        f"evaluator: check-ins and ticks read and evaluated per second: {size['monitors']:,} heartbeats "
        "(one check-in per 30 s of event time, a tick per partition per 250 ms) each checked in once "
        "(their first status); they checkpoint every second, as when live (about one snapshot per "
        f"check-in). Then the processes were paused (SIGSTOP), a backlog of {size['events']:,} "
        "records per process written, and the time taken from resuming them together until the group's "
        "lag (their /metrics) was back to nothing. Steady state: no heartbeat changes state in the backlog.",
        f"notifier: alerts delivered per second (a pre-filled backlog of {size['alerts']:,} down alerts per "
        f"process over {fill.CHANNELS} webhook channels, to one receiver process on loopback), counted as "
        "records on the deliveries topic (one per try; every try succeeds).",
        "CPU: cores used over the window (CPU seconds / wall seconds) from /proc; machine = every process "
        "on the machine (anything else running included: run it on a quiet machine). "
        f"Pingura's services are one Python process each (one core at most each): with {cores} cores, "
        "the broker, the load and P > 2 processes share them, so rates at P=4 show the machine, not Pingura.",
    ]
    rows = {"tiny": 20_000, "quick": 200_000, "full": 1_000_000}[size_name]
    return [table, checkin_bytes.table(await checkin_bytes.measure(workdir / "chdb", rows))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_scale")
    parser.add_argument("--processes", default="1,2,4", help="process counts, comma-separated")
    parser.add_argument(
        "--seconds", type=float, help="each ingest and notifier window (default 20; --quick 5)"
    )
    parser.add_argument("--partitions", type=int, default=4, help="of each keyed topic (default 4)")
    parser.add_argument(
        "--quick", action="store_const", const="quick", dest="size", default="full", help="about 2 minutes"
    )
    parser.add_argument("--tiny", action="store_const", const="tiny", dest="size", help="checks it runs")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (the services' logs)")
    args = parser.parse_args(argv)
    processes = tuple(int(p) for p in args.processes.split(","))
    facts = machine()
    print(f"# Kafka scale ({args.size}) on {facts['cores']} cores, {facts['memory_gib']} GiB, {facts['cpu']}")
    print(f"# command: python -m bench.kafka_scale {' '.join(argv if argv is not None else sys.argv[1:])}\n")
    if args.seconds:
        SIZES[args.size]["seconds"] = args.seconds
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pingura-bench-kafka-scale-") as temporary:
        workdir = args.keep or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        tables = asyncio.run(run(args.size, workdir, processes, args.partitions))
    for table in tables:
        print(table.render(), end="\n\n")
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
