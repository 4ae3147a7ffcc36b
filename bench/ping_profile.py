"""What each part of the ping path costs: interpreter time per ping, by part (issue 21).

``python -m bench.ping_profile [--base COMMIT ...] [--seconds 20]``

``pingura serve`` (default settings, one process) under the load of :mod:`bench.versus`
(wrk, one thread, 16 connections, a small JSON body to 64 heartbeats), sampled by py-spy with
``--gil``: only the thread holding the interpreter lock is sampled, so a sample is the
interpreter's time, which is what a single ``pingura serve`` runs out of. Each sample goes to
the innermost frame that names a part (:data:`PARTS`); samples over the pings answered give
microseconds per ping. With ``--base``, the same for older commits (checked out beside this
tree, as :mod:`bench.versus` does), one after the other, so the table shows what moved.

Time outside the interpreter (SQLite's fsync, chDB's threads, the kernel) is not in it: the
CPU per ping of :mod:`bench.versus` covers all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, free_port, stop, wait_ready
from bench.ingest import _create_paths, _until_accepted
from bench.versus import _remove_worktree, _spawn, _worktree, _wrk, serve_env

RATE_HZ = 250
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("metrics (counting, histograms)", ("metrics", "prometheus_client", "measured_handler")),
    ("logging", ("structlog",)),
    ("token lookup", ("TokenIndex.resolve", "token_key")),
    ("ping parsing and validation (formats, metadata, instance)", (
        "parse_metadata", "parse_instance", "_validate", "parse_outcome", "refuse_undecodable",
        "query_fields", "client_ip", "header_text", "whole_body", "check_slug",
    )),
    ("event build and encode", ("new_ping_id", "PingIds", "encode (", "Ping(")),
    ("bus append on the loop (numbering, queue, wake-up)", (
        "LocalBus.publish", "LocalBus._append", "_queue_rows", "PublishBatch", "EachRow", "LogWriter.append",
        "_on_appended",
    )),
    ("bus writer thread (SQLite transactions)", ("LogWriter._run",)),
    ("evaluator (consume, apply, checkpoint, outputs)", ("Evaluator.", "PartitionEvaluator", "evaluator/")),
    ("history writer (decode, rows, chDB insert)", ("HistoryWriter", "history_tables", "chdb", "clickhouse")),
    ("status view and other views", ("status_view", "Follower", "view.py", "catalog")),
    ("notifier", ("notifier/",)),
    ("consumer polling", ("LocalConsumer",)),
    ("ticks and timers", ("Ticker", "publish_ticks")),
    ("ping handler (own code)", ("_record", "handle_ping", "handle_with_shortcut", "Dialect", "_text (")),
    ("aiohttp: parse request", ("data_received", "feed_data")),
    ("aiohttp: respond (headers, socket write)", (
        "_writelines", "write_eof", "_write_headers", "prepare", "finish_response", "Response.__init__",
        "Response._start",
    )),
    ("aiohttp: routing and dispatch", (
        "_handle_request", "Application._handle", "UrlDispatcher", "RequestHandler.start", "_make_request",
        "BaseRequest.__init__", "_GuardedServer",
    )),
    ("event loop (epoll, callbacks)", ("Runner.run", "run_until_complete", "_run_once")),
]  # fmt: skip


def part_of(frames: list[str]) -> str:
    """The part a sample belongs to: the innermost frame that names one."""
    for frame in reversed(frames):
        for name, keys in PARTS:
            if any(key in frame for key in keys):
                return name
    return "other"


def tally(raw: str) -> collections.Counter[str]:
    """Samples per part, from py-spy's ``--format raw`` (folded stacks, a count at the end)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        if line.strip():
            stack, n = line.rsplit(" ", 1)
            counts[part_of(stack.split(";")[1:])] += int(n)
    return counts


async def profile(code: Path, seconds: int, workdir: Path) -> tuple[collections.Counter[str], int]:
    port = free_port()
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    proc = _spawn(code, serve_env(code), port, run_dir)
    out = run_dir / "profile.txt"
    try:
        wait_ready(port, proc=proc)
        base = f"http://127.0.0.1:{port}"
        paths = await _create_paths(base)
        await _until_accepted(base + paths[-1])
        await asyncio.sleep(1)
        spy = _py_spy(proc.pid, seconds, out)
        requests, *_ = await asyncio.to_thread(_wrk, base, paths, seconds)
        await asyncio.to_thread(spy.wait, seconds + 60)
        return tally(out.read_text()), requests
    finally:
        stop(proc)


def _py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args = [
        exe,
        "record",
        "-p",
        str(pid),
        "-r",
        str(RATE_HZ),
        "-d",
        str(seconds),
        "-f",
        "raw",
        "-o",
        str(out),
    ]
    return subprocess.Popen(
        [*args, "--nonblocking", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def table(runs: dict[str, tuple[collections.Counter[str], int]]) -> str:
    us = {
        name: {part: n * 1e6 / RATE_HZ / pings for part, n in c.items()} for name, (c, pings) in runs.items()
    }
    names = list(runs)
    parts = sorted({p for u in us.values() for p in u}, key=lambda p: -us[names[-1]].get(p, 0.0))
    lines = ["| part | " + " | ".join(f"{n} µs/ping" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for part in parts:
        lines.append(f"| {part} | " + " | ".join(f"{us[n].get(part, 0.0):.1f}" for n in names) + " |")
    lines.append(
        "| **all, interpreter time** | " + " | ".join(f"**{sum(us[n].values()):.1f}**" for n in names) + " |"
    )
    return "\n".join(lines)


async def run(bases: list[str], seconds: int) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="pingura-ping-profile-"))
    trees = {base: _worktree(base, workdir) for base in bases}
    try:
        runs = {f"base {b}": await profile(t, seconds, workdir) for b, t in trees.items()}
        runs["head"] = await profile(ROOT, seconds, workdir)
    finally:
        for tree in trees.values():
            _remove_worktree(tree)
        shutil.rmtree(workdir, ignore_errors=True)
    return table(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ping_profile")
    parser.add_argument(
        "--base", action="append", default=[], help="an older commit to profile too (repeatable)"
    )
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.base, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
