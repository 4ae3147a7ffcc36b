"""What every benchmark shares: sizes, tables, percentiles, machine facts, process handling."""

from __future__ import annotations

import os
import platform
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

SIZES = ("tiny", "quick", "full")
"""tiny: seconds, run by the test suite to keep the scripts working; quick: `make bench`,
under 5 minutes in all; full: the figures in docs/PERFORMANCE.md."""

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *values) -> None:
        self.rows.append(list(values))

    def render(self) -> str:
        cells = [[_fmt(v) for v in row] for row in self.rows]
        widths = [
            max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(self.columns)
        ]
        line = "| " + " | ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=False)) + " |"
        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        body = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=False)) + " |" for r in cells]
        return "\n".join(
            [f"### {self.title}", "", line, sep, *body, *(["", *self.notes] if self.notes else [])]
        )

    def as_dict(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "notes": self.notes}


def _fmt(value) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 60, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def wait_ready(port: int, timeout_s: float = 60, proc: subprocess.Popen | None = None) -> None:
    """Until a pingura HTTP port says every service in its process is ready: it listens
    before the views are built, and answers ``/healthz`` with 503 until they are."""
    deadline = time.monotonic() + timeout_s
    wait_port(port, timeout_s, proc)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                return
        except OSError:  # 503 (HTTPError) while starting
            time.sleep(0.05)
    raise TimeoutError(f"the server on {port} did not get ready")


def spawn(args: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child writes to it for its whole life
    return subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def serve_embedded(data_dir: Path, port: int, log: Path, env: dict | None = None) -> subprocess.Popen:
    """``pingura serve`` on the embedded bus and chDB (whatever the caller's environment names
    for Kafka or a ClickHouse server), logging at warning unless ``env`` says otherwise."""
    embedded = {"PINGURA_KAFKA_BOOTSTRAP": "", "PINGURA_CLICKHOUSE_URL": "", "PINGURA_LOG_LEVEL": "warning"}
    return spawn(
        ["-m", "services.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env={**embedded, **(env or {})},
        log=log,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_bytes() -> int:
    """This process's resident set size now (not the peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


async def admin_project(settings, bus, topics) -> str:
    """Make the admin project with ``settings.bootstrap_api_key`` on ``bus``, as a first
    ``pingura serve`` would, and return its id (for benchmarks that build data directly)."""
    from services.query.auth.accounts import Accounts
    from services.query.auth.keys import KeyIndex, ProjectsView
    from services.query.service import ensure_first_project

    projects = ProjectsView(bus, topics.projects)
    await projects.start()
    keys = KeyIndex(bus, topics.keys, projects)
    await keys.start()
    try:
        await ensure_first_project(settings, Accounts(bus, topics, projects, keys))
        key = keys.find(settings.bootstrap_api_key)
        assert key is not None  # ensure_first_project made it, if it was not there
        return key.project_id
    finally:
        await keys.close()
        await projects.close()
