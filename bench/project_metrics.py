"""Benchmark: a project's Prometheus scrape (``GET /api/v1/metrics/{key}``) at 100,000 heartbeats.

The views are built in memory as the query service holds them (a packed monitors view, the
status view, the catalog over both), every heartbeat in one project, in every status, most
pinged; then the scrape's two halves are timed as the handler runs them: gathering the rows on
the event loop (a page at a time) and writing the text in a worker thread. While each scrape
runs, a ticker on the loop records its longest pause: what a ping arriving meanwhile would
wait at most (the scrape must not stall pings). No HTTP: the route adds a key lookup (a hash)
and the copy of the body. Reported: ms per scrape (median and worst), bytes, series, pause.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from pathlib import Path

from bench.common import Table
from services.query.api.project_metrics import project_rows, render
from services.query.catalog import Catalog, WatchedConfigView
from services.query.status_view import CurrentStatus, StatusView
from shared.bus.local import LocalBus
from shared.events import STATUSES, MonitorConfig
from shared.topics import Topics

SIZES = {"tiny": (200, 2), "quick": (20_000, 3), "full": (100_000, 5)}
"""heartbeats in the project, scrapes timed."""
PROJECT = "prj_bench"
NOW_MS = 1_800_000_000_000
TICK_S = 0.001


def views(workdir: Path, heartbeats: int) -> tuple[Catalog, StatusView]:
    """The catalog and status view of one project of ``heartbeats``, never started (filled by hand)."""
    bus = LocalBus(workdir / "bus.sqlite3")  # named, never opened: the views are filled directly
    topics = Topics()
    monitors: WatchedConfigView[MonitorConfig] = WatchedConfigView(
        bus, topics.monitors, MonitorConfig, lambda m: m.revision
    )
    statuses = StatusView(bus, topics)
    for i in range(heartbeats):
        monitor_id = f"mon_{i:08d}"
        monitors.put(
            MonitorConfig(
                id=monitor_id, project_id=PROJECT, name=f"nightly job {i} \"quoted\" 🐧", token=f"t{i}",
                interval_s=3600, grace_s=300, tags=["db", f"team-{i % 10}"], created_ms=NOW_MS, updated_ms=NOW_MS,
            )
        )  # fmt: skip
        status = STATUSES[i % len(STATUSES)]
        if status != "new":  # a new heartbeat has no snapshot yet
            last = None if i % 50 == 0 else NOW_MS - (i % 3600) * 1000
            statuses.put(monitor_id, CurrentStatus(status, NOW_MS, None, last, None))
    return Catalog(monitors, statuses), statuses


async def _longest_pause(stop: asyncio.Event) -> float:
    longest, last = 0.0, time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(TICK_S)
        now = time.perf_counter()
        longest, last = max(longest, now - last - TICK_S), now
    return longest


async def scrape_once(catalog: Catalog, statuses: StatusView) -> dict:
    stop = asyncio.Event()
    ticker = asyncio.create_task(_longest_pause(stop))
    await asyncio.sleep(0)
    started = time.perf_counter()
    rows = await project_rows(catalog, statuses, PROJECT)
    gathered = time.perf_counter()
    body = await asyncio.to_thread(render, rows, NOW_MS)
    done = time.perf_counter()
    stop.set()
    pause = await ticker
    return {
        "rows_ms": (gathered - started) * 1000,
        "render_ms": (done - gathered) * 1000,
        "total_ms": (done - started) * 1000,
        "pause_ms": pause * 1000,
        "bytes": len(body),
        "series": sum(1 for line in body.splitlines() if not line.startswith(b"#")),
    }


async def run(size: str, workdir: Path) -> list[Table]:
    heartbeats, scrapes = SIZES[size]
    catalog, statuses = views(workdir, heartbeats)
    # As `pingura serve` does once started: what lives as long as the process leaves the GC's scans.
    gc.collect()
    gc.freeze()
    try:
        runs = [await scrape_once(catalog, statuses) for _ in range(scrapes)]
    finally:
        gc.unfreeze()
    table = Table(
        f"Per-project Prometheus scrape at {heartbeats:,} heartbeats",
        ["heartbeats", "scrapes", "median ms", "max ms", "rows ms (loop)", "render ms (thread)",
         "longest loop pause ms", "bytes", "series"],
    )  # fmt: skip
    table.add(
        heartbeats, scrapes, statistics.median(r["total_ms"] for r in runs), max(r["total_ms"] for r in runs),
        statistics.median(r["rows_ms"] for r in runs), statistics.median(r["render_ms"] for r in runs),
        max(r["pause_ms"] for r in runs), runs[-1]["bytes"], runs[-1]["series"],
    )  # fmt: skip
    table.notes.append(
        "In memory, no HTTP. Rows are gathered on the event loop in pages of 500 (it gives way between "
        "pages); the text is written in a worker thread. The pause is the longest the loop went without "
        "running a 1 ms ticker during a scrape: what a ping would wait at most. The views are "
        "frozen out of the GC's scans first, as `pingura serve` does once started."
    )
    return [table]


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        for result in asyncio.run(run(sys.argv[1] if len(sys.argv) > 1 else "full", Path(directory))):
            print(result.render())
