"""A group of ``pingura`` service processes on Kafka, measured by bench/kafka_scale.py: the
topics made as ``pingura`` makes them, the processes started, their consumer group formed,
then a backlog written and the rate at which they get through it.

Progress comes from the processes' own ``/metrics`` (``pingura_consumer_lag_records``: what
the group has not read, against the end each process last fetched) and from the broker's end
offsets.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import kafka_fill as fill
from bench.common import free_port, spawn, stop, wait_ready
from bench.proc_cpu import CpuWindow
from shared.topics import Topics

LAG = re.compile(r"^pingura_consumer_lag_records\{([^}]*)\} (\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


# --- the group's progress ----------------------------------------------------------------------


async def lags(http: aiohttp.ClientSession, ports: list[int], topic: str) -> dict[int, tuple[int, int]]:
    """partition -> (process index, records not read) from each process's /metrics."""
    found: dict[int, tuple[int, int]] = {}
    for index, port in enumerate(ports):
        try:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
        except aiohttp.ClientError:
            continue
        for line in text.splitlines():
            match = LAG.match(line)
            if match:
                labels = dict(LABEL.findall(match.group(1)))
                if labels.get("topic") == topic:
                    found[int(labels["partition"])] = (index, int(float(match.group(2))))
    return found


class Ends:
    """End offsets of a topic's partitions, from a consumer of no group."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._tps = [TopicPartition(topic, p) for p in range(partitions)]

    async def __aenter__(self) -> Ends:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._consumer.stop()

    async def get(self) -> dict[int, int]:
        ends = await self._consumer.end_offsets(self._tps)
        return {tp.partition: offset for tp, offset in ends.items()}


@dataclass
class Run:
    """What one stage measured at one process count."""

    rate: float
    seconds: float
    cpu: dict[str, float]
    owned: list[int]
    note: str = ""
    filled_s: float = 0.0


# --- the group ----------------------------------------------------------------------------------


class Group:
    def __init__(self, bootstrap: str, workdir: Path, size: dict, partitions: int, broker: int | None):
        self.bootstrap, self.workdir, self.size, self.partitions = bootstrap, workdir, size, partitions
        self.broker = broker
        self.receiver: int | None = None

    def env(self, prefix: str, extra: dict | None = None) -> dict:
        return {
            "PINGURA_KAFKA_BOOTSTRAP": self.bootstrap,
            "PINGURA_TOPIC_PREFIX": prefix,
            "PINGURA_PARTITIONS": str(self.partitions),
            "PINGURA_LOG_LEVEL": "warning",
            "PINGURA_CLICKHOUSE_URL": "",
            **(extra or {}),
        }

    def pids(self, procs: list[subprocess.Popen]) -> dict[str, int]:
        named = {f"p{i}": p.pid for i, p in enumerate(procs)}
        if self.broker:
            named["broker"] = self.broker
        if self.receiver:
            named["receiver"] = self.receiver
        return named

    async def topics(self, prefix: str) -> Topics:
        """The topics as ``pingura`` makes them, with the heartbeats' configs on ``monitors``."""
        from shared.bus.kafka import KafkaBus
        from shared.settings import Settings

        topics = Topics(prefix)
        bus = KafkaBus(Settings(kafka_bootstrap=self.bootstrap, topic_prefix=prefix, data_dir=self.workdir))
        await bus.start()
        try:
            await bus.ensure_topics(topics.specs(self.partitions))
        finally:
            await bus.close()
        await fill.fill_configs(self.bootstrap, topics, self.size["monitors"], self.partitions)
        return topics

    async def consumers(
        self,
        service: str,
        count: int,
        topics: Topics,
        read: str,
        counted: str,
        backlog,
        env: dict,
        nudge=None,
        prime=None,
        pause: bool = False,
    ) -> Run:
        """P ``pingura <service>`` processes in one group on ``read``: started, the group formed
        (every partition owned and read once; ``nudge()`` meanwhile writes a few records, as a
        process reports a partition's lag once it has read from it), then ``backlog()`` fills
        ``read``; the rate at
        which ``counted`` grows (records read, or records appended) once it is in place."""
        ports = [free_port() for _ in range(count)]
        procs = [
            spawn(
                ["-m", "services.cli", service, "--port", str(port)],
                env=self.env(topics.prefix, env),
                log=self.workdir / f"{service}{count}-{i}.log",
            )
            for i, port in enumerate(ports)
        ]
        try:
            for proc, port in zip(procs, ports, strict=True):
                wait_ready(port, proc=proc, timeout_s=120)
            async with (
                aiohttp.ClientSession() as http,
                Ends(self.bootstrap, counted, self.partitions) as ends,
            ):
                deadline = time.monotonic() + 120
                while not self._formed(await lags(http, ports, read), count):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the {service} group never owned every partition of {read}")
                    if nudge is not None:
                        await nudge()
                    await asyncio.sleep(0.2)
                if prime is not None:  # read before the backlog: the steady state is measured
                    await prime()
                    await self._read_all(http, ports, read)
                began = time.monotonic()
                if pause:
                    run = await self._drain(http, ends, ports, procs, read, backlog)
                else:
                    await backlog()
                    filled_s = time.monotonic() - began
                    run = await self._measure(http, ends, ports, procs, read, counted)
                    run.filled_s = filled_s
                filled_s = run.filled_s
                run.note = f"backlog written in {filled_s:.1f} s" + (f"; {run.note}" if run.note else "")
                return run
        finally:
            for proc in procs:
                stop(proc)

    async def _drain(self, http, ends: Ends, ports, procs, read: str, backlog) -> Run:
        """Pause the processes (SIGSTOP), write the backlog, resume them all at once: the time
        until the group has read it all. A process reports lag against the end it last fetched,
        which is stale for a moment after it resumes: a second passes before "read" counts."""
        before = sum((await ends.get()).values())
        for proc in procs:
            os.kill(proc.pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            await backlog()
            filled_s = time.monotonic() - began
            total = sum((await ends.get()).values()) - before
        finally:
            for proc in procs:
                os.kill(proc.pid, signal.SIGCONT)
        window = CpuWindow(self.pids(procs))
        began = time.monotonic()
        owned: dict[int, tuple[int, int]] = {}
        while True:
            await asyncio.sleep(0.1)
            took = time.monotonic() - began
            owned = await lags(http, ports, read)
            behind = sum(lag for _, lag in owned.values())
            if took >= 1 and self._formed(owned, len(ports)) and behind <= 8 * self.partitions:
                break
            if took > 300:
                raise RuntimeError(f"{read}: the backlog was not read in 300 s")
        cpu = window.end()
        processes: dict[int, int] = {}
        for index, _ in owned.values():
            processes[index] = processes.get(index, 0) + 1
        note = f"{total:,} records read in {took:.1f} s after resuming"
        run = Run(total / took, took, cpu, [n for _, n in sorted(processes.items())], note)
        run.filled_s = filled_s
        return run

    async def _read_all(self, http: aiohttp.ClientSession, ports: list[int], read: str) -> None:
        """Until the group has read what was written (twice so, a second apart: a lag is only as
        fresh as the process's last fetch)."""
        await asyncio.sleep(1)
        deadline = time.monotonic() + 120
        quiet = 0
        while time.monotonic() < deadline:
            owned = await lags(http, ports, read)
            if (
                self._formed(owned, len(ports))
                and sum(lag for _, lag in owned.values()) <= 8 * self.partitions
            ):
                quiet += 1
                if quiet >= 2:
                    return
            else:
                quiet = 0
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{read}: the first records were not read in 120 s")

    def _formed(self, owned: dict[int, tuple[int, int]], count: int) -> bool:
        return len(owned) == self.partitions and len({i for i, _ in owned.values()}) == min(
            count, self.partitions
        )

    async def _measure(self, http, ends, ports, procs, read_topic: str, counted: str) -> Run:
        async def progress() -> tuple[int, dict[int, tuple[int, int]]] | None:
            owned = await lags(http, ports, read_topic)
            if not self._formed(owned, len(ports)):
                return None  # a rebalance
            end = await ends.get()
            if counted == read_topic:  # records read by the group
                return sum(end[p] - owned[p][1] for p in owned), owned
            return sum(end.values()), owned  # records the group appended

        first = await progress()
        while first is None:
            await asyncio.sleep(0.2)
            first = await progress()
        window = CpuWindow(self.pids(procs))
        began = time.monotonic()
        done, owned = first
        note = ""
        last_done, last_t = done, began
        while time.monotonic() - began < self.size["seconds"]:
            await asyncio.sleep(0.25)
            now = await progress()
            if now is None:
                note = "a rebalance during the window"
                continue
            current, owned = now
            if current > last_done:
                last_done, last_t = current, time.monotonic()
            if counted == read_topic and sum(lag for _, lag in owned.values()) <= self.partitions * 8:
                note = "backlog read before the window ended (rate over the time it took)"
                break
            if counted != read_topic and time.monotonic() - last_t > 2:
                note = "backlog delivered before the window ended (rate over the time it took)"
                break
        cpu = window.end()
        seconds = max(1e-3, last_t - began)
        processes: dict[int, list[int]] = {}
        for partition, (index, _) in owned.items():
            processes.setdefault(index, []).append(partition)
        owned_counts = [len(v) for _, v in sorted(processes.items())]
        return Run((last_done - done) / seconds, seconds, cpu, owned_counts, note)

    async def _send(self, topic: str, items) -> None:
        prod = fill.producer(self.bootstrap)
        await prod.start()
        try:
            await fill.send(prod, topic, items)
        finally:
            await prod.stop()
