"""Benchmark: this code's ping path against an older commit's, in one alternating run.

``python -m bench.versus [--base d9c1c02 [--base C2 ...]] [--rounds 4] [--seconds 8] [--ingest-process N ...] [--ceiling]``

The base commit is checked out beside this tree (``git worktree add`` into a temporary folder,
removed afterwards) and run from there with the same Python and packages. Setups take turns
round after round, so drift (other load, CPU frequency, the disk) falls on all of them alike:

- ``base``: ``pingura serve`` at the base commit, default settings;
- ``head``: ``pingura serve`` of this tree, default settings;
- ``head, N ingest processes`` (with ``--ingest-process N``, repeatable): ``PINGURA_INGEST_PROCESS=N``.

Each round: a fresh data dir, 64 heartbeats, then wrk (one thread, 16 connections) POSTing a
small JSON body (``{"status": "ok", "duration": 1.5}``) to them in turn for ``--seconds``, on
loopback. Reported per setup: median pings/s, p50 and p99, and the server's CPU per ping (user
plus system time of the server and its child processes over the load, from /proc).
``--ceiling`` adds bench/ceiling.py (a bare aiohttp handler answering ``OK`` on the same route)
as one more setup in the same alternation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, free_port, stop, wait_port, wait_ready
from bench.ingest import API_KEY, MONITORS, _create_paths, _until_accepted

BODY = '{"status": "ok", "duration": 1.5}'
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_ping: float
    errors: int


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every live descendant (from /proc)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(child)
        cpu[child] = (int(fields[11]) + int(fields[12])) / TICKS
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


def _wrk(url: str, paths: list[str], seconds: int) -> tuple[int, float, float, float, int]:
    quoted = ", ".join(f'"{p}"' for p in paths)
    script = (
        f"local paths = {{{quoted}}}\nlocal n = 0\n"
        'wrk.method = "POST"\nwrk.body = \'' + BODY + "'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n  n = n + 1\n  return wrk.format(nil, paths[(n % #paths) + 1])\nend\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", f.name, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    os.unlink(f.name)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return requests, rps, ms("50%"), ms("99%"), int(errors.group(1)) if errors else 0


def serve_env(code: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmarked ``pingura serve`` run from the source tree ``code``:
    embedded bus and chDB, warnings only, the bench's admin key."""
    return {
        **os.environ,
        "PYTHONPATH": str(code),
        "PINGURA_KAFKA_BOOTSTRAP": "",
        "PINGURA_CLICKHOUSE_URL": "",
        "PINGURA_LOG_LEVEL": "warning",
        "PINGURA_BOOTSTRAP_API_KEY": API_KEY,
        **extra,
    }


def _spawn(code: Path, env: dict[str, str], port: int, run_dir: Path) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "services.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(run_dir / "data"),
    ]
    with open(run_dir / "serve.log", "ab") as log:
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=code)


def _spawn_ceiling(port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.ceiling", str(port)], cwd=ROOT)


async def _ceiling_round(seconds: int) -> Round:
    """The bare aiohttp handler of bench/ceiling.py on the same route, under the same load."""
    port = free_port()
    proc = _spawn_ceiling(port)
    try:
        wait_port(port, 30, proc)
        paths = [f"/api/heartbeat/{i:032d}" for i in range(MONITORS)]
        cpu_before = _tree_cpu_s(proc.pid)
        requests, rps, p50, p99, errors = await asyncio.to_thread(
            _wrk, f"http://127.0.0.1:{port}", paths, seconds
        )
        cpu = _tree_cpu_s(proc.pid) - cpu_before
        return Round(rps, p50, p99, cpu * 1000 / max(requests, 1), errors)
    finally:
        stop(proc)


async def _round(code: Path | None, env: dict[str, str], seconds: int, workdir: Path) -> Round:
    if code is None:
        return await _ceiling_round(seconds)
    port = free_port()
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    full_env = serve_env(code, **env)
    proc = _spawn(code, full_env, port, run_dir)
    try:
        wait_ready(port, proc=proc)
        base = f"http://127.0.0.1:{port}"
        paths = await _create_paths(base)
        await _until_accepted(base + paths[-1])
        await asyncio.sleep(1)  # the first tick and views settle before the clock starts
        cpu_before = _tree_cpu_s(proc.pid)
        requests, rps, p50, p99, errors = await asyncio.to_thread(_wrk, base, paths, seconds)
        cpu = _tree_cpu_s(proc.pid) - cpu_before
        return Round(rps, p50, p99, cpu * 1000 / max(requests, 1), errors)
    finally:
        stop(proc)
        shutil.rmtree(run_dir, ignore_errors=True)


def _remove_worktree(tree: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def _worktree(commit: str, into: Path) -> Path:
    path = into / f"base-{commit.replace('/', '-')}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True,
                   capture_output=True)  # fmt: skip
    return path


async def compare(
    bases: list[str], rounds: int, seconds: int, ingest_processes: list[int], ceiling: bool = False
) -> dict[str, list[Round]]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="pingura-versus-"))
    trees = [_worktree(base, workdir) for base in bases]
    setups: list[tuple[str, Path | None, dict[str, str]]] = [
        (f"base {b}", t, {}) for b, t in zip(bases, trees, strict=True)
    ]
    setups.append(("head", ROOT, {}))
    for n in ingest_processes:
        setups.append(
            (f"head, {n} ingest process{'es' if n > 1 else ''}", ROOT, {"PINGURA_INGEST_PROCESS": str(n)})
        )
    if ceiling:
        setups.append(("ceiling: bare aiohttp", None, {}))
    results: dict[str, list[Round]] = {name: [] for name, _, _ in setups}
    try:
        for _ in range(rounds):
            for name, code, env in setups:
                results[name].append(await _round(code, env, seconds, workdir))
                print(f"  {name}: {results[name][-1]}", file=sys.stderr)
    finally:
        for tree in trees:
            _remove_worktree(tree)
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versus")
    parser.add_argument(
        "--base", action="append", help="a commit to compare with (repeatable; d9c1c02 if none)"
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--ingest-process", type=int, action="append", default=[], metavar="N")
    parser.add_argument("--ceiling", action="store_true", help="and bench/ceiling.py's bare handler")
    args = parser.parse_args(argv)
    results = asyncio.run(
        compare(args.base or ["d9c1c02"], args.rounds, args.seconds, args.ingest_process, args.ceiling)
    )
    print(
        f"wrk -t1 -c16, {args.rounds} rounds of {args.seconds} s, {MONITORS} heartbeats, JSON body, alternating"
    )
    print("| setup | pings/s (median) | p50 ms | p99 ms | CPU ms per ping (median) | non-2xx |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        print(
            f"| {name} | {statistics.median(r.rps for r in runs):,.0f} | "
            f"{statistics.median(r.p50_ms for r in runs):.2f} | {statistics.median(r.p99_ms for r in runs):.2f} | "
            f"{statistics.median(r.cpu_ms_per_ping for r in runs):.3f} | {sum(r.errors for r in runs)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
