"""HTTP load on loopback, bounded in time: wrk when installed, else a Python generator."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from bench.common import percentile


def _wrk_script(paths: list[str]) -> str:
    """POST to each path in turn (a fleet pings many monitors, not one)."""
    quoted = ", ".join(f'"{p}"' for p in paths)
    return (
        f"local paths = {{{quoted}}}\nlocal n = 0\n"
        'request = function()\n  n = n + 1\n  return wrk.format("POST", paths[(n % #paths) + 1])\nend\n'
    )


@dataclass
class LoadResult:
    tool: str
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


async def run_load(
    base: str, paths: list[str], seconds: float, connections: int, close: bool = False, use_wrk: bool = True
) -> LoadResult:
    """POSTs to ``base`` + each of ``paths`` in turn from ``connections`` connections."""
    host = urlsplit(base).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("load goes to loopback only")
    if use_wrk and shutil.which("wrk"):
        return await asyncio.to_thread(_wrk, base, paths, seconds, connections, close)
    return await _python_load(base, paths, seconds, connections, close)


def _wrk(url: str, paths: list[str], seconds: float, connections: int, close: bool) -> LoadResult:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_wrk_script(paths))
    args = ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", script.name]
    if close:
        args += ["-H", "Connection: close"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    requests = int(_found(r"(\d+) requests in", out).group(1))
    rps = float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    return LoadResult("wrk -t2", requests, errors, rps, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"))


def _found(pattern: str, out: str) -> re.Match[str]:
    """What ``pattern`` finds in wrk's output, which always has it (else wrk failed: say so)."""
    match = re.search(pattern, out)
    if match is None:
        raise RuntimeError(f"wrk's output has no {pattern!r}: {out[-2000:]!r}")
    return match


def _wrk_ms(out: str, label: str) -> float:
    match = _found(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", out)
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


async def _python_load(
    base: str, paths: list[str], seconds: float, connections: int, close: bool
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections, force_close=close)

    async def worker(http: aiohttp.ClientSession, start: int) -> None:
        nonlocal errors
        n = start
        while time.monotonic() < deadline:
            n += 1
            started = time.perf_counter()
            try:
                async with http.post(base + paths[n % len(paths)]) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(worker(http, i) for i in range(connections)))
    elapsed = time.monotonic() - started
    return LoadResult(
        "python (aiohttp)",
        len(latencies),
        errors,
        len(latencies) / elapsed,
        percentile(latencies, 50),
        percentile(latencies, 99),
    )
