"""Benchmarks 1 and 2: ingest throughput and latency, beside the ceiling of a bare handler.

1. Embedded: the whole `pingura serve` (every service in one process, as users run it), each
   ping durable (fsynced group commit) before its 200.
2. Kafka: `pingura ingest` processes (one, then two on SO_REUSEPORT), `acks=all`, the broker
   on the same machine.

The ceiling is a bare aiohttp handler answering `OK` on the same route (bench/ceiling.py),
under the same load settings in the same run: absolute numbers drift, ratios much less.
Load comes from wrk when it is installed (Debian package `wrk`), else from a Python
generator (bench/load.py); the table says which.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import aiohttp

from bench.broker import kafka_broker
from bench.common import Table, free_port, serve_embedded, spawn, stop, wait_port, wait_ready
from bench.load import LoadResult, run_load

SIZES = {
    "tiny": {"seconds": 2, "connections": 8, "wrk": False},
    "quick": {"seconds": 8, "connections": 16, "wrk": True},
    "full": {"seconds": 20, "connections": 16, "wrk": True},
}
API_KEY = "pk_bench_" + "x" * 40
TARGET_EMBEDDED = 0.5
TARGET_KAFKA = 0.35


MONITORS = 64
"""Pings go to this many monitors in turn: a fleet, spread over the partitions."""


async def _create_paths(api: str) -> list[str]:
    paths = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for i in range(MONITORS):
            async with http.post(
                f"{api}/api/v1/heartbeats", json={"name": f"worker {i}", "interval": 3600}
            ) as r:
                paths.append(f"/api/heartbeat/{(await r.json())['token']}")
    return paths


async def _until_accepted(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            async with http.post(url) as r:
                if r.status == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never accepted a ping")


async def _measure(base: str, paths: list[str], size: dict, close: bool) -> LoadResult:
    return await run_load(
        base,
        paths,
        seconds=size["seconds"],
        connections=size["connections"],
        close=close,
        use_wrk=size["wrk"],
    )


async def _ceiling(workdir: Path, size: dict) -> dict[bool, LoadResult]:
    port = free_port()
    proc = spawn(["-m", "bench.ceiling", str(port)], log=workdir / "ceiling.log")
    try:
        wait_port(port, proc=proc)
        base = f"http://127.0.0.1:{port}"
        paths = [f"/api/heartbeat/{i:032d}" for i in range(MONITORS)]
        return {close: await _measure(base, paths, size, close) for close in (False, True)}
    finally:
        stop(proc)


def _row(table: Table, name: str, result: LoadResult, ceiling: LoadResult, target: float) -> None:
    ratio = result.rps / ceiling.rps if ceiling.rps else float("nan")
    table.add(
        name,
        result.rps,
        result.p50_ms,
        result.p99_ms,
        result.errors,
        ratio,
        f">= {target}",
        "met" if ratio >= target else "missed",
    )


async def run(size_name: str, workdir: Path) -> list[Table]:
    size = SIZES[size_name]
    columns = ["setup", "pings/s", "p50 ms", "p99 ms", "non-200", "ratio to ceiling", "target", ""]
    ceiling = await _ceiling(workdir, size)
    tool = ceiling[False].tool
    embedded = Table(
        f"1. Ingest, embedded `pingura serve`, durable when answered ({tool}, "
        f"{size['connections']} connections, {size['seconds']} s each, {MONITORS} monitors)",
        columns,
    )
    for close in (False, True):
        embedded.add(
            f"ceiling: bare aiohttp{' (Connection: close)' if close else ''}",
            ceiling[close].rps,
            ceiling[close].p50_ms,
            ceiling[close].p99_ms,
            ceiling[close].errors,
            1.0,
            "",
            "",
        )

    port = free_port()
    proc = serve_embedded(
        workdir / "data", port, workdir / "serve.log", {"PINGURA_BOOTSTRAP_API_KEY": API_KEY}
    )
    try:
        wait_ready(port, proc=proc)
        base = f"http://127.0.0.1:{port}"
        paths = await _create_paths(base)
        await _until_accepted(base + paths[-1])
        for close in (False, True):
            label = "pingura serve" + (" (Connection: close)" if close else " (keep-alive)")
            _row(embedded, label, await _measure(base, paths, size, close), ceiling[close], TARGET_EMBEDDED)
    finally:
        stop(proc)
    embedded.notes.append(
        "Every 200 is a ping fsynced to the embedded log (SQLite WAL, synchronous=FULL, "
        "group commit); the evaluator, notifier and history writer run in the same process."
    )

    kafka = Table(f"2. Ingest, Kafka mode, acks=all, broker on this machine ({tool})", columns)
    kafka.add(
        "ceiling: bare aiohttp",
        ceiling[False].rps,
        ceiling[False].p50_ms,
        ceiling[False].p99_ms,
        ceiling[False].errors,
        1.0,
        "",
        "",
    )
    try:
        with kafka_broker(workdir) as bootstrap:
            await _kafka_rows(kafka, bootstrap, workdir, size, ceiling[False])
    except RuntimeError as exc:
        kafka.notes.append(f"not measured: {exc}")
    return [embedded, kafka]


async def _kafka_rows(table: Table, bootstrap: str, workdir: Path, size: dict, ceiling: LoadResult) -> None:
    env = {
        "PINGURA_KAFKA_BOOTSTRAP": bootstrap,
        "PINGURA_TOPIC_PREFIX": f"b{uuid.uuid4().hex[:6]}.",
        "PINGURA_BOOTSTRAP_API_KEY": API_KEY,
        "PINGURA_LOG_LEVEL": "warning",
        "PINGURA_PARTITIONS": "12",
    }
    api_port, ingest_port = free_port(), free_port()
    query = spawn(
        ["-m", "services.cli", "query", "--port", str(api_port), "--data-dir", str(workdir / "q")],
        env=env,
        log=workdir / "query.log",
    )
    ingests: list[subprocess.Popen] = []
    try:
        wait_ready(api_port, proc=query)
        paths = await _create_paths(f"http://127.0.0.1:{api_port}")
        base = f"http://127.0.0.1:{ingest_port}"
        for count in (1, 2):
            while len(ingests) < count:
                ingests.append(
                    spawn(
                        ["-m", "services.cli", "ingest", "--port", str(ingest_port)],
                        env=env,
                        log=workdir / f"ingest{len(ingests)}.log",
                    )
                )
            wait_ready(ingest_port, proc=ingests[0])
            await _until_accepted(base + paths[-1])
            if count == 2:
                await asyncio.sleep(3)  # let the second process finish starting
            result = await _measure(base, paths, size, close=False)
            _row(
                table,
                f"{count} ingest process{'es' if count > 1 else ''} (SO_REUSEPORT)",
                result,
                ceiling,
                TARGET_KAFKA,
            )
    finally:
        for proc in ingests:
            stop(proc)
        stop(query)
    table.notes.append(
        "Each 200 waited for the broker's acknowledgement (idempotent producer, acks=all, "
        "linger 0: batches form while earlier ones are in flight); the broker (JVM) shares the 2 cores."
    )
