"""Benchmark: what Pingura's own ``/metrics`` costs the ping path.

Three setups of ``pingura serve`` (one process, default settings, a fresh data dir each),
taken in turn round after round so that drift falls on all of them alike:

- ``base``: the code before the metrics (a worktree named by ``PINGURA_BENCH_BASE``; left out
  when that is unset), so the cost of counting every ping is seen;
- ``metrics, no scrape``: this code, nobody scraping;
- ``metrics, scraped every 1 s``: this code while a scraper reads ``/metrics`` every second
  (and times each scrape).

Load: wrk (when installed) POSTing to 64 heartbeats from 16 connections for the round's
seconds, on loopback. Reported per setup: median pings/s and p99 over the rounds, and the
scrapes' median time and size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bench.common import ROOT, Table, free_port, stop, wait_ready
from bench.ingest import MONITORS, _create_paths, _until_accepted
from bench.load import LoadResult, run_load
from bench.versus import serve_env

SIZES = {
    "tiny": {"seconds": 2, "rounds": 1, "connections": 8, "wrk": False},
    "quick": {"seconds": 8, "rounds": 2, "connections": 16, "wrk": True},
    "full": {"seconds": 15, "rounds": 4, "connections": 16, "wrk": True},
}
SCRAPE_EVERY_S = 1.0


def _serve(code: Path, data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    """``pingura serve`` from the source tree ``code`` (this one or the base worktree)."""
    env = serve_env(code)
    args = [sys.executable, "-m", "services.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=code)


async def _scraper(base: str, stop_at: asyncio.Event, times_ms: list[float], sizes: list[int]) -> None:
    async with aiohttp.ClientSession() as http:
        while not stop_at.is_set():
            started = time.perf_counter()
            async with http.get(f"{base}/metrics") as r:
                body = await r.read()
                if r.status != 200:
                    raise RuntimeError(f"/metrics answered {r.status}")
            times_ms.append((time.perf_counter() - started) * 1000)
            sizes.append(len(body))
            with contextlib.suppress(TimeoutError):  # the next scrape is due
                await asyncio.wait_for(stop_at.wait(), SCRAPE_EVERY_S)


async def _one(code: Path, scrape: bool, workdir: Path, size: dict, scrapes: tuple[list, list]) -> LoadResult:
    port = free_port()
    run_dir = workdir / f"run-{port}"
    run_dir.mkdir()
    proc = _serve(code, run_dir / "data", port, run_dir / "serve.log")
    try:
        wait_ready(port, proc=proc)
        base = f"http://127.0.0.1:{port}"
        paths = await _create_paths(base)
        await _until_accepted(base + paths[-1])
        stop_at = asyncio.Event()
        scraper = asyncio.create_task(_scraper(base, stop_at, *scrapes)) if scrape else None
        try:
            return await run_load(base, paths, size["seconds"], size["connections"], use_wrk=size["wrk"])
        finally:
            stop_at.set()
            if scraper is not None:
                await scraper
    finally:
        stop(proc)


async def run(size_name: str, workdir: Path) -> list[Table]:
    size = SIZES[size_name]
    base_code = os.environ.get("PINGURA_BENCH_BASE")
    setups: list[tuple[str, Path, bool]] = []
    if base_code:
        setups.append((f"base ({Path(base_code).name})", Path(base_code), False))
    setups += [
        ("metrics, no scrape", ROOT, False),
        (f"metrics, scraped every {SCRAPE_EVERY_S:g} s", ROOT, True),
    ]
    results: dict[str, list[LoadResult]] = {name: [] for name, _, _ in setups}
    scrape_ms: list[float] = []
    scrape_bytes: list[int] = []
    for _ in range(size["rounds"]):
        for name, code, scrape in setups:
            results[name].append(await _one(code, scrape, workdir, size, (scrape_ms, scrape_bytes)))
    tool = next(iter(results.values()))[0].tool
    table = Table(
        f"15. The ping path with /metrics: `pingura serve`, {MONITORS} heartbeats, {tool}, "
        f"{size['connections']} connections, {size['rounds']} rounds of {size['seconds']} s, setups alternating",
        ["setup", "pings/s (median)", "p50 ms (median)", "p99 ms (median)", "p99 ms (worst)", "non-200"],
    )
    for name, runs in results.items():
        table.add(
            name,
            statistics.median(r.rps for r in runs),
            statistics.median(r.p50_ms for r in runs),
            statistics.median(r.p99_ms for r in runs),
            max(r.p99_ms for r in runs),
            sum(r.errors for r in runs),
        )
    if scrape_ms:
        table.notes.append(
            f"{len(scrape_ms)} scrapes under load: median {statistics.median(scrape_ms):.1f} ms, "
            f"worst {max(scrape_ms):.1f} ms, {statistics.median(scrape_bytes):,.0f} bytes"
        )
    if not base_code:
        table.notes.append("no base row: set PINGURA_BENCH_BASE to a worktree of the code before the metrics")
    return [table]
