"""``python -m bench [--full|--tiny] [--only NAME ...]``: run the benchmarks, print one table each,
and keep the figures in bench/results/latest.json."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine

BENCHMARKS = [
    "ingest",
    "evaluator",
    "rules",
    "detection",
    "history_latency",
    "queries",
    "dashboard",
    "million",
    "project_metrics",
    "metrics_cost",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--full", action="store_const", dest="size", const="full", help="the sizes of docs/PERFORMANCE.md"
    )
    size.add_argument(
        "--tiny", action="store_const", dest="size", const="tiny", help="seconds; what the tests run"
    )
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args(argv)
    size_name = args.size or "quick"
    facts = machine()
    print(
        f"# Pingura benchmarks ({size_name}) on {facts['cores']} cores, {facts['memory_gib']} GiB, {facts['cpu']}"
    )
    print(f"# command: python -m bench {shlex.join(argv if argv is not None else sys.argv[1:])}\n")
    tables_of: dict[str, list[dict]] = {}
    results = {
        "size": size_name,
        "machine": facts,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tables": tables_of,
    }
    for name in args.only or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        with tempfile.TemporaryDirectory(prefix=f"pingura-bench-{name}-") as workdir:
            started = time.monotonic()
            tables = asyncio.run(module.run(size_name, Path(workdir)))
            elapsed = time.monotonic() - started
        for table in tables:
            print(table.render(), end="\n\n")
        print(f"({name}: {elapsed:.1f} s)\n", flush=True)
        tables_of[name] = [t.as_dict() for t in tables]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
