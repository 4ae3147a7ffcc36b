"""The chDB memory benchmark runs (tiny size, in a process of its own: chDB allows one engine per
process) and reports RSS at each step. No figure is asserted."""

import subprocess
import sys

from bench.common import ROOT


def test_the_chdb_memory_benchmark_reports_rss_before_open_and_after_each_step():
    done = subprocess.run(
        [sys.executable, "-m", "bench.chdb_memory", "6600", "--batch", "3300"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    rows = [line for line in done.stdout.splitlines() if line.startswith("|")][2:]  # past the head
    assert [row.split("|")[1].strip() for row in rows] == [
        "before opening", "opened, tables made", "3,300 rows", "6,600 rows",
    ]  # fmt: skip
