"""What the rules of issue 18 cost the evaluator (``shared.rules``): memory per heartbeat with each
rule in use and its state full (a fleet of 3 instances, a baseline of 20 runs, a failure rate over
10 runs, keywords), against a heartbeat using none; one heartbeat with 10,000 instances (memory,
snapshot size, the time to judge its window); and the CPU a check-in costs with each rule.

Each memory figure is measured in a fresh spawn process holding only that evaluator: RSS after
minus RSS before, divided by the heartbeats, with every monitor's state as it is after its runs
(decoded from bytes, as from the bus).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import multiprocessing
import time
from pathlib import Path
from typing import Any

from bench.common import Table, rss_bytes
from bench.evaluator import _from_bytes
from services.evaluator.logic import PartitionEvaluator
from services.evaluator.logic.ingest import WatchRule
from shared.events import Alert, MonitorConfig, Ping
from shared.rules import BASELINE_RUNS, CadenceRule, FailureRateRule, FleetRule, KeywordRule, RunTimeRule
from shared.snapshots import encode_state

SIZES = {"tiny": 500, "quick": 20_000, "full": 200_000}
"""Heartbeats per memory measurement (the fleets: half as many, three instances each)."""
BIG_FLEET = {"tiny": 500, "quick": 10_000, "full": 10_000}
"""Instances of the one big fleet."""
INTERVAL_MS = 3_600_000
BASE_MS = 1_780_000_000_000
RUNS = 20
"""Check-ins each heartbeat gets before it is measured (a full baseline)."""

VARIANTS: dict[str, dict[str, Any]] = {
    "none (plain)": {},
    "fleet, 3 instances": {"fleet": FleetRule(min_instances=3)},
    "run-time baseline (20 runs)": {"run_time": RunTimeRule(baseline="alert", max_s=3600)},
    "cadence (early, too often)": {"cadence": CadenceRule(early_s=600, max_runs=2)},
    "failure rate (10 runs)": {"failure_rate": FailureRateRule(percent=30, runs=10)},
    "keywords": {"keywords": KeywordRule(failure=("error",), success=("done",))},
}


def _config(i: int, rules: dict[str, Any], misses: int = 2) -> MonitorConfig:
    return MonitorConfig(
        id=f"hb_{i:016x}", project_id="prj_bench", name=f"nightly backup {i}", token=f"{i:032d}",
        interval_s=INTERVAL_MS // 1000, grace_s=300, max_consecutive_misses=misses, created_ms=0, updated_ms=0,
        **rules,
    )  # fmt: skip


def _ping(i: int, at_ms: int, n: int, instance: str | None, duration_s: float | None) -> Ping:
    return Ping(
        id=f"{at_ms:012x}{n:016x}", monitor_id=f"hb_{i:016x}", project_id="prj_bench", received_ms=at_ms,
        kind="success", source_ip="127.0.0.1", user_agent="curl/8.5.0", method="POST", instance=instance,
        duration_s=duration_s, output="backup done" if n % 2 else None,
    )  # fmt: skip


def _memory_worker(variant: str, n: int) -> dict:
    """Runs in a fresh spawn process: ``n`` heartbeats of one variant, each after ``RUNS`` runs."""
    rules = VARIANTS[variant]
    fleet = "fleet" in rules
    heartbeats = n // 2 if fleet else n
    warm = PartitionEvaluator(0, 1000)
    warm.apply_config(_from_bytes(_config(0, rules)))
    warm.apply_ping(_ping(0, BASE_MS, 0, "web-1", 40.0), 0)
    del warm
    gc.collect()
    rss_before = rss_bytes()
    evaluator = PartitionEvaluator(0, 1000, watch=WatchRule(min_overdue=n + 1))
    for i in range(heartbeats):
        evaluator.apply_config(_from_bytes(_config(i, rules)))
    offset, cpu_ns = 0, 0
    for run in range(RUNS):
        at = BASE_MS + run * INTERVAL_MS
        for i in range(heartbeats):
            for instance in ("web-1", "web-2", "web-3") if fleet else (None,):
                offset += 1
                ping = _from_bytes(_ping(i, at + i % 1000, offset, instance, 40.0 + (i + run) % 7))
                t0 = time.perf_counter_ns()
                evaluator.apply_ping(ping, offset)
                cpu_ns += time.perf_counter_ns() - t0
        evaluator.advance(at + INTERVAL_MS // 2)
        evaluator.saved(evaluator.changed())
    gc.collect()
    rss_after = rss_bytes()
    sample = next(iter(evaluator.monitors.values()))
    return {
        "heartbeats": heartbeats,
        "bytes_per_heartbeat": (rss_after - rss_before) / heartbeats,
        "us_per_checkin": cpu_ns / offset / 1000,
        "snapshot_bytes": len(encode_state(sample)),
    }


def _big_fleet_worker(instances: int) -> dict:
    """One heartbeat run by ``instances`` instances with 64-character names."""
    names = [f"{'worker-pool-eu-west-1-node':<40}-{n:023d}" for n in range(instances)]
    gc.collect()
    rss_before = rss_bytes()
    evaluator = PartitionEvaluator(0, 1000, watch=WatchRule(min_overdue=instances + 1))
    evaluator.apply_config(_from_bytes(_config(0, {"fleet": FleetRule(min_percent=100)}, misses=1)))
    offset = 0
    for run in range(3):  # (the first window holds the first two runs: it opened with the first check-in)
        at = BASE_MS + run * INTERVAL_MS
        for name in names[: instances - (instances // 20 if run == 2 else 0)]:  # the last run: 5% stop
            offset += 1
            evaluator.apply_ping(_from_bytes(_ping(0, at + offset % 60_000, offset, name, None)), offset)
    gc.collect()
    rss_after = rss_bytes()
    state = evaluator.monitors["hb_0000000000000000"]
    t0 = time.perf_counter_ns()
    outputs = evaluator.advance(BASE_MS + 2 * INTERVAL_MS + 400_000)  # the second window closes: judged
    judge_ms = (time.perf_counter_ns() - t0) / 1e6
    alerts = [o for o in outputs if isinstance(o, Alert)]
    return {
        "bytes": rss_after - rss_before,
        "snapshot_bytes": len(encode_state(state)),
        "judge_ms": judge_ms,
        "missing_named": len(alerts[0].missing_instances) if alerts else 0,
        "alerts": len(alerts),
    }


def _in_fresh_process(fn, *args) -> dict:
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


async def run(size: str, workdir: Path) -> list[Table]:
    n = SIZES[size]
    memory = Table(
        f"Evaluator cost of each rule, {n:,} heartbeats (fleets: {n // 2:,} with 3 instances), {RUNS} runs each",
        [
            "rules in use",
            "heartbeats",
            "bytes / heartbeat (RSS)",
            "vs plain",
            "µs / check-in",
            "snapshot B",
        ],
    )
    plain = None
    for variant in VARIANTS:
        # One fresh process per rule: at 200,000 heartbeats RSS varies by a few bytes between runs.
        run = await asyncio.to_thread(_in_fresh_process, _memory_worker, variant, n)
        per = run["bytes_per_heartbeat"]
        plain = per if plain is None else plain
        memory.add(
            variant, run["heartbeats"], round(per, 1), f"{per - plain:+.1f}",
            round(run["us_per_checkin"], 2), run["snapshot_bytes"],
        )  # fmt: skip
    memory.notes.append(
        f"A baseline keeps the last {BASELINE_RUNS} run times; a failure rate its last `runs` outcomes; a fleet one "
        "entry per instance (interned names). µs / check-in: apply_ping alone, the same process."
    )
    big = BIG_FLEET[size]
    result = await asyncio.to_thread(_in_fresh_process, _big_fleet_worker, big)
    fleet = Table(
        f"One heartbeat run by {big:,} instances (64-character names), 5% of them stopped (all must report)",
        [
            "RSS, whole heartbeat",
            "bytes / instance",
            "snapshot",
            "judging its window",
            "down alerts",
            "named",
        ],
    )
    fleet.add(
        f"{result['bytes'] / 1e6:.2f} MB", round(result["bytes"] / big, 1), f"{result['snapshot_bytes'] / 1e3:.0f} kB",
        f"{result['judge_ms']:.1f} ms", result["alerts"], result["missing_named"],
    )  # fmt: skip
    return [memory, fleet]


__all__ = ["SIZES", "VARIANTS", "run"]
