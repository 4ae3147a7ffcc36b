"""Benchmark 9: a million heartbeats in one ``pingura serve``, soaked under their own load (issue 11).

Data, built directly rather than through the API (a child process, ``build``, that owns the data
dir the way ``pingura keys`` does when no server runs): the admin project and its key, a webhook
channel to a receiver on loopback, and ``heartbeats`` monitors in that project, published onto
``monitors`` with :meth:`LocalBus.publish_many` in batches, each with an evaluator snapshot on
``evaluator-state``, as a server that ran before leaves them. Heartbeat ``i``'s role is fixed by
its number (``bench.million_features``, which says what each does): the probe (heartbeat 0,
interval one day, the readiness pings go to it), 1% each ``silent`` (pinged once early in the
load; a short interval and grace, :data:`SIZES`, so it must go ``down`` inside the run) and
``failing`` (``/fail``), 1% each using an earlier issue's feature (a fleet of three instances,
a maintenance window over part of the load, a dependency, a run-time baseline), 1% each held
(pinged once, going down inside a window or behind a dependency down: held, never paged), and the
rest ``healthy``: pinged every :data:`PERIOD_S` (5 minutes), interval 10 minutes, grace
5 minutes (a 5-minute job with room for the start-up gap); snapshot ``up``, last ping one
period before its first ping of the load. None of the healthy, whatever its features, may go
down: neither a page nor a ``down`` in the API at the end.

Every heartbeat has the webhook channel, so a false ``down`` reaches the receiver too. The two
maintenance windows are created through the API once the server is up, just before the load.

Then ``pingura serve`` runs on that data dir as a child process (all four services, embedded bus,
chDB, log level info as shipped, JSON lines), with ``PINGURA_INGEST_PROCESS=1`` (``--one-process``
without: to compare); RSS and CPU are the serving process's and its ingest process's together. Measured:

- readiness: from the spawn until the port accepts, and until a ping to the probe gets 200;
  again on a restart after the soak;
- RSS of the server once every heartbeat is listed, through the load (sampled each second) and at
  the end; per heartbeat, gross and net of an empty server's RSS (same settings, no heartbeats);
- the load, from a separate child process (``load``, ``bench.pinger`` on uvloop, many connections, paced by
  schedule): every periodic heartbeat in a fixed pseudo-random order, one ping each every
  :data:`PERIOD_S` (about ``N/300`` pings/s; a fleet's three instances one each), with status,
  message and duration (and a fleet's instance) in the query string; the once-pinged ones'
  single pings spread over the first part of the run. Answer times are timed
  from send to last byte; every non-200 is counted by status;
- meanwhile, from this process: the dashboard's calls (list pages by cursor, the default page, a
  heartbeat, its check-ins) one at a time at a modest rate in a window of the load, with the
  admin key; ping p99 inside that window;
- the housekeeping compaction (``services/runtime.py`` compacts at start, then 10 minutes after
  each compaction ends): when the full run covers the second one, the pings sent during it, its
  window taken from the server's ``bus.local.compacted`` log lines (start = previous end + 600 s).
  There is no hook to force one, and a second process may not open the bus, so every size also
  reports a micro-benchmark (child ``compact``): :meth:`LocalBus.compact` on the soaked data dir
  after the server stopped, with a publisher and a loop-lag probe beside it;
- detection: each silent heartbeat's ``down`` webhook, from its deadline (the alert's ``at_ms``:
  last ping + interval + grace) to arrival; false ``down`` alerts among the healthy, and the
  heartbeats down in the API at the end by role, listed after the RSS at the end is taken (the
  held ones must be down and held, unpaged); a fleet's instances and a baseline's usual run time
  as the API shows them;
- history: about one ping a second (answered 200) is followed by polling its heartbeat's
  check-ins until its message shows; from the 200 to the answer that holds it.

``python -m bench.million build|load|compact SPEC.json`` are the child processes; ``run()`` drives
them. ``python -m bench.million [--full] [--heartbeats N] [--load-s S]`` runs it alone.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import hashlib
import heapq
import json
import math
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict

import aiohttp

from bench import million_features as features
from bench.common import (
    ROOT,
    Table,
    admin_project,
    free_port,
    percentile,
    serve_embedded,
    spawn,
    stop,
    wait_port,
)
from bench.detection import Receiver
from bench.million_features import role
from bench.pinger import AnswerError, Pinger
from shared.clock import now_ms

if TYPE_CHECKING:
    from shared.events import MonitorStatus


class Size(TypedDict):
    heartbeats: int
    load_s: float
    silent: tuple[int, int]
    """The silent heartbeats' interval and grace (s)."""
    dashboard: tuple[float, float]
    """The window of dashboard calls, as fractions of the load."""
    cover_compaction: bool
    """Stretch the load (up to ``max_load_s``) until the housekeeping's second compaction falls inside it."""
    max_load_s: NotRequired[float]
    build_timeout_s: float
    start_timeout_s: float


SIZES: dict[str, Size] = {
    "tiny": {
        "heartbeats": 2_000,
        "load_s": 10,
        "silent": (2, 1),
        "dashboard": (0.2, 0.6),
        "cover_compaction": False,
        "build_timeout_s": 300,
        "start_timeout_s": 300,
    },
    "quick": {
        "heartbeats": 20_000,
        "load_s": 20,
        "silent": (5, 2),
        "dashboard": (0.3, 0.7),
        "cover_compaction": False,
        "build_timeout_s": 300,
        "start_timeout_s": 300,
    },
    "full": {
        "heartbeats": 1_000_000,
        "load_s": 600,
        "silent": (60, 10),
        "dashboard": (0.1, 0.35),
        "cover_compaction": True,
        "max_load_s": 900,
        "build_timeout_s": 900,
        "start_timeout_s": 900,
    },
}
API_KEY = "pk_bench_" + "m" * 40
CHANNEL_ID = "ch_bench_million"
PERIOD_S = 300
"""Every heartbeat but the silent ones pings once per period: N/300 pings/s."""
HEALTHY_INTERVAL_S, HEALTHY_GRACE_S = 600, 300
PROBE_INTERVAL_S = 86_400
CONNECTIONS = int(os.environ.get("PINGURA_BENCH_CONNECTIONS", "256"))
"""Load connections. A million heartbeats are many clients: 64 kept-alive connections, each
waiting for its answer, capped the offered rate below the 3,333/s to offer (the generator, not
the server, set the pace: measured)."""
BATCH = 10_000
SAMPLES_PER_S = 1.0
TRACKERS, TRACK_POLL_S, TRACK_TIMEOUT_S = 3, 0.1, 30.0
DASHBOARD_PAUSE_S = 0.5
DETECTION_TAIL_S = 20
COMPACT_EVERY_S = 600  # services.runtime._housekeeping
GOAL_READY_S = 5.0
GOAL_BYTES_PER_HEARTBEAT = 1024
GOAL_DETECTION_P99_MS = 2000.0
LATENESS_MS = (
    1000  # Settings.lateness_ms, as the server runs here: a miss is declared this long after its deadline
)
GOAL_HISTORY_P99_S = 2.0
GOAL_PING_P99_MS = 50.0  # section 8's goal for pings while the dashboard calls run
_PERM_A = 2_654_435_761  # prime: j -> (j * A + B) % N is a permutation unless N is a multiple of it
_PERM_B = 12_345
_TOKEN_SALT = b"pingura-bench-million"


# --- the fleet, by number -------------------------------------------------------------------------


def monitor_id(i: int) -> str:
    return f"hb_{i:016x}"


def monitor_number(monitor: str) -> int:
    return int(monitor[3:], 16)


def token(i: int) -> str:
    """Deterministic, and spelled as :func:`shared.ids.new_token` spells one (24 bytes, urlsafe)."""
    digest = hashlib.blake2b(i.to_bytes(8, "big"), digest_size=24, key=_TOKEN_SALT).digest()
    return base64.urlsafe_b64encode(digest).decode()


def slot_heartbeat(slot: int, n: int) -> int:
    """The heartbeat pinged in ``slot`` of each period (slot s is due s * PERIOD_S / n into it)."""
    return (slot * _PERM_A + _PERM_B) % n


def heartbeat_slot(i: int, n: int, a_inverse: int) -> int:
    return ((i - _PERM_B) * a_inverse) % n


def silent_count(n: int) -> int:
    return features.count(n, "silent")


# --- the builder (child process) ------------------------------------------------------------------


async def build(spec_path: Path) -> None:
    from services.datadir import owning
    from shared.bus.base import partition_for
    from shared.bus.open import open_bus
    from shared.events import ChannelConfig, MonitorConfig, MonitorSnapshot, encode
    from shared.settings import Settings
    from shared.snapshots import STATE_VERSION, MonitorState, encode_state
    from shared.topics import Topics

    spec = json.loads(await asyncio.to_thread(spec_path.read_text))
    n, now = spec["heartbeats"], spec["now_ms"]
    silent_interval_s, silent_grace_s = spec["silent"]
    settings = Settings(data_dir=Path(spec["data_dir"]), bootstrap_api_key=API_KEY)
    topics = Topics(settings.topic_prefix)
    a_inverse = pow(_PERM_A, -1, n)
    channels, plain_tags = (CHANNEL_ID,), ["bench", "soak"]
    t = time.perf_counter()
    with owning(settings.data_dir):
        bus = await open_bus(settings)
        try:
            project_id = await admin_project(settings, bus, topics)
            channel = ChannelConfig(
                id=CHANNEL_ID,
                project_id=project_id,
                kind="webhook",
                name="bench receiver",
                config={"url": spec["webhook_url"]},
                created_ms=now,
                updated_ms=now,
            )
            await bus.publish(topics.channels, channel.id, encode(channel))
            state_partitions = bus.partitions(topics.evaluator_state)
            for lo in range(0, n, BATCH):
                configs, snapshots = [], []
                for i in range(lo, min(n, lo + BATCH)):
                    kind = role(i)
                    interval_s, grace_s = {
                        "probe": (PROBE_INTERVAL_S, 3600),
                        "silent": (silent_interval_s, silent_grace_s),
                        # a deadline a few seconds after the silent ones' (their dependency's)
                        "held_dependency": (silent_interval_s, silent_grace_s + features.HOLD_MARGIN_S),
                        "held_window": (silent_interval_s, silent_grace_s + features.HOLD_MARGIN_S),
                    }.get(kind, (HEALTHY_INTERVAL_S, HEALTHY_GRACE_S))
                    mid = monitor_id(i)
                    status: MonitorStatus
                    created = now - 86_400_000
                    config = MonitorConfig(
                        id=mid,
                        project_id=project_id,
                        name=f"{kind}-job-{i:07d}",
                        token=token(i),
                        interval_s=interval_s,
                        grace_s=grace_s,
                        channels=list(channels),
                        created_ms=created,
                        updated_ms=created,
                        **({"tags": plain_tags} | features.config_fields(i, monitor_id)),
                    )
                    configs.append((mid, encode(config)))
                    if kind in features.ONCE:
                        last, status, deadline, since, reason = None, "new", None, None, None
                    else:
                        # one period before its first ping of the load (slot s is due s/n of a period in)
                        last = (
                            now
                            if kind == "probe"
                            else now
                            - PERIOD_S * 1000
                            + heartbeat_slot(i, n, a_inverse) * (PERIOD_S * 1000) // n
                        )
                        status, since, reason = "up", last, "ping received"
                        deadline = last + (interval_s + grace_s) * 1000
                    state = MonitorState(
                        monitor_id=mid,
                        project_id=project_id,
                        name=config.name,
                        interval_ms=interval_s * 1000,
                        grace_ms=grace_s * 1000,
                        max_problems=1,
                        channels=channels,
                        tags=tuple(config.tags),
                        revision=1,
                        status=status,
                        last_ping_ms=last,
                        deadline_ms=deadline,
                        status_since_ms=since,
                        status_reason=reason,
                        extra=features.extra(config, last),
                    )
                    snapshots.append(
                        (
                            mid,
                            encode(
                                MonitorSnapshot(
                                    monitor_id=mid,
                                    partition=partition_for(mid, state_partitions),
                                    offset=-1,
                                    clock_ms=now,
                                    state=encode_state(state),
                                    state_v=STATE_VERSION,
                                )
                            ),
                        )
                    )
                await bus.publish_many(topics.monitors, configs)
                await bus.publish_many(topics.evaluator_state, snapshots)
        finally:
            await bus.close()
    await asyncio.to_thread(
        Path(spec["out"]).write_text,
        json.dumps(
            {
                "project_id": project_id,
                "build_s": time.perf_counter() - t,
                "built_ms": now_ms(),
                "bus_bytes": _bus_bytes(settings.data_dir),
            }
        ),
    )


def _bus_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("bus.sqlite3*") if p.is_file())


# --- the load (child process) ---------------------------------------------------------------------


def _schedule(n: int, load_s: float, silent_window_s: float, t0: float):
    """(due, heartbeat, sequence) in due order: the period's slots, and the once-pinged heartbeats'
    single pings spread over ``silent_window_s`` (each silent one with the held ones of its hundred,
    at the same moment)."""

    def periodic():
        slot_s = PERIOD_S / n
        for seq in range(int(load_s / slot_s)):
            i = slot_heartbeat(seq % n, n)
            if role(i) in features.PERIODIC:
                yield t0 + seq * slot_s, i, seq

    def silent():
        groups = features.once_pinged(n)
        step = silent_window_s / max(1, len(groups))
        for k, group in groups:
            for j, i in enumerate(group):
                yield t0 + k * step, i, -1 - 3 * k - j

    return heapq.merge(periodic(), silent())


async def load(spec_path: Path) -> None:
    """Ping as scheduled for ``load_s``; a line on stdout per sampled ping (for the history
    tracker), the timings in binary arrays at the end."""
    spec = json.loads(await asyncio.to_thread(spec_path.read_text))
    n, load_s = spec["heartbeats"], spec["load_s"]
    loop = asyncio.get_running_loop()
    sent_at, answer_ms, lag_ms = array.array("d"), array.array("d"), array.array("d")
    codes, kinds, beats = array.array("h"), array.array("b"), array.array("q")
    sample_every = max(1, round(n / PERIOD_S / SAMPLES_PER_S))
    start_wall = time.time() + 0.2
    t0 = loop.time() + 0.2
    schedule = _schedule(n, load_s, spec["silent_window_s"], t0)
    kind_code = features.KIND_CODE

    async def sender(pinger: Pinger) -> None:
        for due, i, seq in schedule:  # shared by every sender: each takes the next ping due
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            kind = role(i)
            for query in features.ping_queries(i, seq):  # one, or one per instance of a fleet
                target = f"/api/heartbeat/{token(i)}{query}"
                sent = time.time()
                lag = (loop.time() - due) * 1000
                t = time.perf_counter()
                try:
                    code = await pinger.post(target)
                except AnswerError:
                    code = 0
                ms = (time.perf_counter() - t) * 1000
                sent_at.append(sent)
                answer_ms.append(ms)
                lag_ms.append(lag)
                codes.append(code)
                kinds.append(kind_code[kind])
                beats.append(i)
            if code == 200 and kind == "healthy" and seq % sample_every == 0:
                print(
                    json.dumps(
                        {"id": monitor_id(i), "message": features.message(seq), "answered": time.time()}
                    ),
                    flush=True,
                )

    pingers = [Pinger("127.0.0.1", spec["port"]) for _ in range(CONNECTIONS)]
    try:
        await asyncio.gather(*(sender(pinger) for pinger in pingers))
    finally:
        for pinger in pingers:
            pinger.close()
    elapsed = time.time() - start_wall
    usage = resource.getrusage(resource.RUSAGE_SELF)
    columns: dict[str, array.array] = {
        "sent": sent_at,
        "ms": answer_ms,
        "lag": lag_ms,
        "code": codes,
        "kind": kinds,
        "beat": beats,
    }
    summary = {
        "start": start_wall,
        "elapsed_s": elapsed,
        "count": len(codes),
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }
    await asyncio.to_thread(_write_load, Path(spec["out"]), columns, summary)


def _write_load(out: Path, columns: dict[str, array.array], summary: dict) -> None:
    """The load's columns, a binary file each beside ``out``, and its summary in ``out``."""
    for name, values in columns.items():
        with open(out.with_suffix(f".{name}"), "wb") as f:
            values.tofile(f)
    out.write_text(json.dumps(summary))


def _read_load(out: Path) -> dict:
    meta = json.loads(out.read_text())
    arrays = {}
    for name, code in (("sent", "d"), ("ms", "d"), ("lag", "d"), ("code", "h"), ("kind", "b"), ("beat", "q")):
        values = array.array(code)
        with open(out.with_suffix(f".{name}"), "rb") as f:
            values.frombytes(f.read())
        arrays[name] = values
    return {**meta, **arrays}


# --- the compaction micro-benchmark (child process) -----------------------------------------------


async def compact(spec_path: Path) -> None:
    """:meth:`LocalBus.compact` on the data dir (no server running), while a publisher appends a
    record every 5 ms to a scratch topic and a probe sleeps 1 ms on the loop: how long a durable
    append waits behind compaction, and how long the loop is held."""
    from services.datadir import BUS_FILE, owning
    from shared.bus import TopicSpec
    from shared.bus.local import LocalBus
    from shared.settings import Settings

    spec = json.loads(await asyncio.to_thread(spec_path.read_text))
    settings = Settings(data_dir=Path(spec["data_dir"]))
    out: dict = {}
    with owning(settings.data_dir):
        t = time.perf_counter()
        bus = LocalBus(settings.data_dir / BUS_FILE, default_partitions=settings.partition_count)
        await bus.start()
        out["open_s"] = time.perf_counter() - t
        try:
            await bus.ensure_topics([TopicSpec("bench.scratch", 1, retention_ms=60_000)])
            rows = await bus._read(
                lambda c: c.execute("SELECT topic, count(*) FROM records GROUP BY topic").fetchall()
            )
            out["records"] = dict(rows)
            phase = {"now": "before"}
            publishes: dict[str, list[float]] = {"before": [], "during": [], "after": []}
            lags: dict[str, list[float]] = {"before": [], "during": [], "after": []}
            stopping = asyncio.Event()

            async def publisher() -> None:
                while not stopping.is_set():
                    which, t = phase["now"], time.perf_counter()
                    await bus.publish("bench.scratch", "k", b"x" * 100)
                    publishes[which].append((time.perf_counter() - t) * 1000)
                    await asyncio.sleep(0.005)

            async def probe() -> None:
                while not stopping.is_set():
                    which, t = phase["now"], time.perf_counter()
                    await asyncio.sleep(0.001)
                    lags[which].append((time.perf_counter() - t) * 1000 - 1)

            tasks = [asyncio.create_task(publisher()), asyncio.create_task(probe())]
            await asyncio.sleep(2)
            phase["now"] = "during"
            t = time.perf_counter()
            out["removed"] = await bus.compact()
            out["compact_s"] = time.perf_counter() - t
            phase["now"] = "after"
            await asyncio.sleep(1)
            stopping.set()
            await asyncio.gather(*tasks)
            for name, values in (("publish", publishes), ("loop_lag", lags)):
                out[name] = {
                    which: {
                        "count": len(v),
                        "p50": percentile(v, 50),
                        "p99": percentile(v, 99),
                        "max": max(v, default=float("nan")),
                    }
                    for which, v in values.items()
                }
        finally:
            await bus.close()
    await asyncio.to_thread(Path(spec["out"]).write_text, json.dumps(out))


# --- the driver -----------------------------------------------------------------------------------


class History:
    """Follows sampled pings until each shows in its heartbeat's check-ins, at most
    :data:`TRACKERS` at once (a sample arriving when all are busy is skipped and counted)."""

    def __init__(self, http: aiohttp.ClientSession, base: str):
        self._http, self._base = http, base
        self._active: set[asyncio.Task] = set()
        self.delays_s: list[float] = []
        self.unseen = self.skipped = self.polls = self.poll_errors = 0

    def offer(self, sample: dict) -> None:
        if len(self._active) >= TRACKERS:
            self.skipped += 1
            return
        task = asyncio.create_task(self._follow(sample))
        self._active.add(task)
        task.add_done_callback(self._active.discard)

    async def drain(self) -> None:
        if self._active:
            await asyncio.gather(*list(self._active), return_exceptions=True)

    async def _follow(self, sample: dict) -> None:
        url = f"{self._base}/api/v1/heartbeats/{sample['id']}/checkins"
        while True:
            started = time.time()
            try:
                async with self._http.get(url, params={"limit": "5"}) as r:
                    body = await r.json() if r.status == 200 else None
            except (TimeoutError, aiohttp.ClientError):
                body = None
            now = time.time()
            self.polls += 1
            if body is None:
                self.poll_errors += 1
            elif any(c.get("message") == sample["message"] for c in body["checkins"]):
                self.delays_s.append(now - sample["answered"])
                return
            if now - sample["answered"] > TRACK_TIMEOUT_S:
                self.unseen += 1
                return
            await asyncio.sleep(max(0.0, started + TRACK_POLL_S - time.time()))


class Dashboard:
    """The dashboard's list and detail calls, one at a time, a pause between calls."""

    def __init__(self, http: aiohttp.ClientSession, base: str, n: int):
        self._http, self._base, self._n = http, base, n
        self.times: dict[str, list[float]] = {}
        self.non_200: dict[str, int] = {}

    async def _get(self, name: str, path: str, params: dict | None = None) -> dict | None:
        t = time.perf_counter()
        try:
            async with self._http.get(self._base + path, params=params) as r:
                body = await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError):
            body, status = b"", 0
        self.times.setdefault(name, []).append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(DASHBOARD_PAUSE_S)
        if status != 200:
            self.non_200[name] = self.non_200.get(name, 0) + 1
            return None
        return json.loads(body)

    async def run(self, until: float) -> None:
        k = 0
        cursor = None
        while time.time() < until:
            page = await self._get(
                "list: a page of 50 by cursor",
                "/api/v1/heartbeats",
                {"limit": "50", **({"before": cursor} if cursor else {})},
            )
            cursor = page.get("next") if page else None
            await self._get("list: default page (100)", "/api/v1/heartbeats")
            i = slot_heartbeat((k * 7_919) % self._n, self._n)  # a pinged one, usually
            k += 1
            await self._get("detail: the heartbeat", f"/api/v1/heartbeats/{monitor_id(i)}")
            await self._get(
                "detail: its check-ins (50)", f"/api/v1/heartbeats/{monitor_id(i)}/checkins", {"limit": "50"}
            )


ONE_PROCESS = False
"""``--one-process``: run ``pingura serve`` without ``PINGURA_INGEST_PROCESS`` (to compare)."""


def _serve_env(log_level: str = "info") -> dict:
    return {
        "PINGURA_BOOTSTRAP_API_KEY": API_KEY,
        "PINGURA_KAFKA_BOOTSTRAP": "",
        "PINGURA_CLICKHOUSE_URL": "",
        "PINGURA_LOG_LEVEL": log_level,
        "PINGURA_LOG_FORMAT": "json",
        "PINGURA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PINGURA_INGEST_PROCESS": "0" if ONE_PROCESS else "1",
    }


def _serve(workdir: Path, data_dir: Path, port: int, name: str):
    return serve_embedded(data_dir, port, workdir / f"{name}.log", _serve_env())


def _child(kind: str, workdir: Path, spec: dict):
    spec_path = workdir / f"{kind}.json"
    spec_path.write_text(json.dumps(spec))
    return spawn(
        ["-m", "bench.million", kind, str(spec_path)],
        env={"PINGURA_LOG_LEVEL": "warning"},
        log=workdir / f"{kind}.log",
    )


async def _wait_child(proc, workdir: Path, kind: str, timeout_s: float) -> None:
    try:
        code = await asyncio.to_thread(proc.wait, timeout_s)
    except BaseException:
        stop(proc)
        raise
    if code != 0:
        raise RuntimeError(
            f"bench.million {kind} exited with {code}: {(workdir / f'{kind}.log').read_text()[-3000:]}"
        )


def _tree(pid: int) -> list[int]:
    """``pid`` and its children: the server's RSS and CPU include its ingest process."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return [pid, *children]


def _proc_rss(pid: int) -> int:
    """RSS of ``pid`` and its children (the ingest process)."""
    total = 0
    for member in _tree(pid):
        try:
            with open(f"/proc/{member}/statm") as f:
                total += int(f.read().split()[1]) * resource.getpagesize()
        except OSError:
            pass
    return total


def _cpu_ticks(pids: list[int]) -> tuple[int, list[int]]:
    """Busy ticks of the whole machine so far, and utime + stime of each of ``pids``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    own = []
    for i, pid in enumerate(pids):
        ticks = 0
        for member in _tree(pid) if i == 0 else [pid]:  # the first is the server: with its ingest process
            try:
                stat = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(stat[11]) + int(stat[12])
            except (OSError, IndexError, ValueError):
                pass
        own.append(ticks)
    return busy, own


async def _ready(proc, port: int, probe: str, timeout_s: float, started: float) -> dict:
    """Seconds from ``started`` until the port accepts, and until a ping to ``probe`` gets 200."""
    await asyncio.to_thread(wait_port, port, timeout_s, proc)
    before_200: dict[int, int] = {}
    out: dict[str, float | dict[int, int]] = {
        "port_s": time.perf_counter() - started,
        "before_200": before_200,
    }
    url = f"http://127.0.0.1:{port}/api/heartbeat/{probe}"
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        while time.monotonic() < deadline:
            try:
                async with http.post(url) as r:
                    status = r.status
            except (TimeoutError, aiohttp.ClientError):
                status = 0
            if status == 200:
                out["ping_s"] = time.perf_counter() - started
                out["rss"] = _proc_rss(proc.pid)
                return out
            before_200[status] = before_200.get(status, 0) + 1
            await asyncio.sleep(0.02)
    raise RuntimeError(f"no ping to an existing heartbeat got 200 within {timeout_s} s")


async def _counts(http: aiohttp.ClientSession, base: str) -> dict | None:
    try:
        async with http.get(base + "/api/v1/heartbeats", params={"limit": "1"}) as r:
            return (await r.json())["counts"] if r.status == 200 else None
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None


async def _until_listed(http: aiohttp.ClientSession, base: str, expected: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = await _counts(http, base)
        if counts and sum(counts.values()) >= expected:
            return counts
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the API never listed {expected} heartbeats")


def _compactions(log_path: Path) -> list[tuple[float, int]]:
    """(end, removed) of each housekeeping compaction logged by the server, wall-clock seconds."""
    from datetime import datetime

    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        if "bus.local.compacted" not in line:
            continue
        try:
            entry = json.loads(line)
            at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError):
            continue
        found.append((at, int(entry.get("removed", 0))))
    return found


def _log_problems(log_path: Path) -> dict[str, int]:
    problems: dict[str, int] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("warning", "error", "critical"):
            problems[entry.get("event", "?")] = problems.get(entry.get("event", "?"), 0) + 1
    return problems


async def _empty_rss(workdir: Path, timeout_s: float) -> int:
    """RSS of a server with no heartbeats (same settings), 3 s after it answers the API."""
    port = free_port()
    proc = _serve(workdir, workdir / "empty", port, "serve-empty")
    try:
        await asyncio.to_thread(wait_port, port, timeout_s, proc)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            await _until_listed(http, f"http://127.0.0.1:{port}", 0, timeout_s)
        await asyncio.sleep(3)
        return _proc_rss(proc.pid)
    finally:
        stop(proc)


async def measure(
    size_name: str, workdir: Path, heartbeats: int | None = None, load_s: float | None = None
) -> dict:
    size = SIZES[size_name].copy()
    n = heartbeats or size["heartbeats"]
    if load_s:
        size["load_s"], size["cover_compaction"] = load_s, False
    m: dict = {"heartbeats": n, "size": size_name}
    data_dir = workdir / "data"
    receiver = Receiver()
    await receiver.start()
    try:
        builder = _child(
            "build",
            workdir,
            {
                "data_dir": str(data_dir),
                "heartbeats": n,
                "now_ms": now_ms(),
                "silent": size["silent"],
                "out": str(workdir / "built.json"),
                "webhook_url": f"http://127.0.0.1:{receiver.port}/hook",
            },
        )
        await _wait_child(builder, workdir, "build", size["build_timeout_s"])
        m["build"] = json.loads(await asyncio.to_thread((workdir / "built.json").read_text))
        m["empty_rss"] = await _empty_rss(workdir, size["start_timeout_s"])

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        t = time.perf_counter()
        proc = _serve(workdir, data_dir, port, "serve")
        try:
            m["start"] = await _ready(proc, port, token(0), size["start_timeout_s"], t)
            async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {API_KEY}"}, timeout=aiohttp.ClientTimeout(total=60)
            ) as http:
                m["start"]["counts"] = await _until_listed(http, base, n, size["start_timeout_s"])
                m["start"]["listed_s"] = time.perf_counter() - t
                m["start"]["listed_rss"] = _proc_rss(proc.pid)
                await _soak(m, size, workdir, proc, port, http, receiver)
                m["end_counts"] = await _counts(http, base)
        finally:
            stop(proc)
        m["compactions"] = _compactions(workdir / "serve.log")
        m["log_problems"] = _log_problems(workdir / "serve.log")
    finally:
        await receiver.close()

    compactor = _child(
        "compact", workdir, {"data_dir": str(data_dir), "out": str(workdir / "compact.out.json")}
    )
    await _wait_child(compactor, workdir, "compact", size["start_timeout_s"])
    m["micro_compact"] = json.loads(await asyncio.to_thread((workdir / "compact.out.json").read_text))
    m["bus_bytes_end"] = _bus_bytes(data_dir)

    port = free_port()
    t = time.perf_counter()
    proc = _serve(workdir, data_dir, port, "serve-restart")
    try:
        m["restart"] = await _ready(proc, port, token(0), size["start_timeout_s"], t)
    finally:
        stop(proc)
    return m


async def _soak(
    m: dict, size: Size, workdir: Path, proc, port: int, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    n, base = m["heartbeats"], f"http://127.0.0.1:{port}"
    load_s = size["load_s"]
    # Housekeeping compacts once every service is ready, then COMPACT_EVERY_S after each end:
    # wait for the first, so that neither the start-up nor that pass is in the load; with
    # cover_compaction, stretch the load over the second.
    deadline = time.time() + 300
    while not _compactions(workdir / "serve.log") and time.time() < deadline:  # noqa: ASYNC110 - another process writes the log: no event to wait on
        await asyncio.sleep(1)
    if size["cover_compaction"]:
        found = _compactions(workdir / "serve.log")
        if found:
            load_s = min(size["max_load_s"], max(load_s, found[0][0] + COMPACT_EVERY_S + 120 - time.time()))
    await asyncio.sleep(2)
    silent_interval_s, silent_grace_s = size["silent"]
    silent_window_s = max(
        1.0, load_s - silent_interval_s - silent_grace_s - max(3.0, min(30.0, load_s * 0.15))
    )
    m["load_s"], m["silent_window_s"] = load_s, silent_window_s
    m["windows"] = await features.windows(http, base, time.time() + 1, load_s)
    m["rss_before_load"] = _proc_rss(proc.pid)
    spec_path = workdir / "load.json"
    await asyncio.to_thread(
        spec_path.write_text,
        json.dumps(
            {
                "port": port,
                "heartbeats": n,
                "load_s": load_s,
                "silent_window_s": silent_window_s,
                "out": str(workdir / "load.out"),
            }
        ),
    )
    err = await asyncio.to_thread(open, workdir / "load.log", "ab")
    try:
        loader = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.million",
            "load",
            str(spec_path),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PINGURA_LOG_LEVEL": "warning"},
        )
    finally:
        err.close()  # the loader has its own copy
    assert loader.stdout is not None  # stdout=PIPE
    loader_out = loader.stdout
    history = History(http, base)
    dashboard = Dashboard(http, base, n)
    started = time.time()
    rss: list[tuple[float, int]] = []
    pids = [proc.pid, loader.pid, os.getpid()]
    cpu_before, cpu_wall = _cpu_ticks(pids), time.monotonic()

    async def samples() -> None:
        while line := await loader_out.readline():
            with contextlib.suppress(ValueError):
                history.offer(json.loads(line))

    async def sample_rss() -> None:
        while True:
            rss.append((time.time(), _proc_rss(proc.pid)))
            await asyncio.sleep(1)

    async def dashboard_window() -> None:
        lo, hi = size["dashboard"]
        await asyncio.sleep(max(0.0, started + lo * load_s - time.time()))
        m["dashboard_window"] = (time.time(), None)
        await dashboard.run(started + hi * load_s)
        m["dashboard_window"] = (m["dashboard_window"][0], time.time())

    sampler = asyncio.create_task(sample_rss())
    try:
        await asyncio.gather(samples(), dashboard_window())
        code = await asyncio.wait_for(loader.wait(), load_s + 120)
        cpu_after, ticks_s = _cpu_ticks(pids), os.sysconf("SC_CLK_TCK") * (time.monotonic() - cpu_wall)
        if code != 0:
            raise RuntimeError(
                f"bench.million load exited with {code}: {(workdir / 'load.log').read_text()[-3000:]}"
            )
        result = _read_load(workdir / "load.out")
        # Detection: wait until every silent heartbeat pinged is down, or DETECTION_TAIL_S past the last deadline.
        pinged_silent = {
            monitor_id(i)
            for i, k, c in zip(result["beat"], result["kind"], result["code"], strict=True)
            if k == 2 and c == 200
        }
        last_deadline = max(
            (s for s, k in zip(result["sent"], result["kind"], strict=True) if k == 2), default=time.time()
        )
        last_deadline += silent_interval_s + size["silent"][1]
        while time.time() < last_deadline + DETECTION_TAIL_S:
            down = {mid for kind, mid, _, _ in receiver.alerts.values() if kind == "down"}
            if pinged_silent <= down:
                break
            await asyncio.sleep(0.5)
        m["rss_end"] = _proc_rss(proc.pid)  # before the listings below add their own garbage
        m["downs"] = await features.held_down(
            http, base, result, silent_interval_s + size["silent"][1] + LATENESS_MS / 1000, DETECTION_TAIL_S
        )
        m["took_effect"] = await features.took_effect(http, base, result, monitor_id)
        await history.drain()
    finally:
        sampler.cancel()
        if loader.returncode is None:
            loader.terminate()
            await loader.wait()
    m["rss_samples"] = rss
    m["cpu"] = {
        name: (after - before) / ticks_s
        for name, before, after in zip(("server", "load", "bench"), cpu_before[1], cpu_after[1], strict=True)
    }
    m["cpu"]["load"] = result["cpu_s"] * os.sysconf("SC_CLK_TCK") / ticks_s  # it exited: its own count
    m["cpu"]["machine"] = (cpu_after[0] - cpu_before[0]) / ticks_s
    m["loadavg"] = os.getloadavg()
    m["load"] = result
    m["history"] = {
        "delays_s": history.delays_s,
        "unseen": history.unseen,
        "skipped": history.skipped,
        "polls": history.polls,
        "poll_errors": history.poll_errors,
    }
    m["dashboard"] = {"times": dashboard.times, "non_200": dashboard.non_200}
    m["alerts"] = list(receiver.alerts.values())
    m["duplicate_webhooks"] = receiver.duplicates


# --- the table ------------------------------------------------------------------------------------


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else "met" if ok else "missed"


def _pings_in(load: dict, lo: float, hi: float) -> list[float]:
    return [ms for s, ms in zip(load["sent"], load["ms"], strict=True) if lo <= s < hi]


def table(m: dict) -> Table:
    n, load = m["heartbeats"], m["load"]
    layout = "one process" if ONE_PROCESS else "ingest in a process of its own"
    t = Table(
        f"9. A million heartbeats in one `pingura serve` ({layout}): {n:,} heartbeats, {m['load_s']:.0f} s "
        f"of load ({n / PERIOD_S:,.0f} pings/s, every heartbeat every {PERIOD_S // 60} min)",
        ["figure", "measured", "goal", ""],
    )
    mib = 2**20
    t.add(
        "build: configs + snapshots onto the bus (publish_many, 10,000 a batch)",
        f"{m['build']['build_s']:.1f} s ({m['build']['bus_bytes'] / mib:,.0f} MiB)",
        "",
        "",
    )
    t.add(
        "features in use (heartbeats); at the end, in the API",
        f"{features.in_use(n)}; {features.effect(m['took_effect'])}",
        "",
        "",
    )
    # The goal is a restart's: the built data has no token-index snapshot yet (the first start
    # of a server writes one), so the first start reads the whole monitors topic.
    for label, key in (("first start on the built data", "start"), ("restart after the soak", "restart")):
        r = m[key]
        t.add(f"{label}: port accepts", f"{r['port_s']:.2f} s", "", "")
        before = ", ".join(f"{k or 'no answer'} x{v}" for k, v in r["before_200"].items())
        goal = key == "restart"
        t.add(
            f"{label}: first 200 to a ping of an existing heartbeat",
            f"{r['ping_s']:.2f} s" + (f" (before: {before})" if before else ""),
            f"< {GOAL_READY_S:.0f} s" if goal else "",
            _verdict(r["ping_s"] < GOAL_READY_S) if goal else "",
        )
        if key == "start":
            t.add("first start: every heartbeat listed by the API", f"{r['listed_s']:.2f} s", "", "")

    peak = max((r for _, r in m["rss_samples"]), default=0)
    t.add(
        "RSS: empty server / all listed / load start / peak in load / end",
        " / ".join(
            f"{v / mib:,.0f}"
            for v in (m["empty_rss"], m["start"]["listed_rss"], m["rss_before_load"], peak, m["rss_end"])
        )
        + " MiB",
        "",
        "",
    )
    gross, net = m["rss_end"] / n, (m["rss_end"] - m["empty_rss"]) / n
    t.add(
        "RSS at the end per heartbeat (gross: RSS / N)",
        f"{gross:,.0f} B",
        f"< {GOAL_BYTES_PER_HEARTBEAT:,} B",
        _verdict(gross < GOAL_BYTES_PER_HEARTBEAT),
    )
    t.add(
        "RSS at the end per heartbeat (net of the empty server)",
        f"{net:,.0f} B",
        f"< {GOAL_BYTES_PER_HEARTBEAT:,} B",
        _verdict(net < GOAL_BYTES_PER_HEARTBEAT),
    )

    codes = load["code"]
    ok = sum(1 for c in codes if c == 200)
    periodic = features.pings_per_period(n) / PERIOD_S
    once = sum(features.count(n, name) for name in features.ONCE)
    t.add(
        f"pings: {periodic:,.0f}/s periodic + {once:,} once (silent, held) in the first "
        f"{m['silent_window_s']:.0f} s; answered 200",
        f"{ok / load['elapsed_s']:,.0f}/s ({len(codes):,} sent)",
        "",
        "",
    )
    ms = list(load["ms"])
    t.add(
        "ping answer p50 / p99 / max (whole load)",
        f"{_ms(percentile(ms, 50))} / {_ms(percentile(ms, 99))} / {_ms(max(ms, default=math.nan))}",
        "",
        "",
    )
    non_200: dict[int, int] = {}
    for c in codes:
        if c != 200:
            non_200[c] = non_200.get(c, 0) + 1
    t.add(
        "non-200 answers (0 = no answer)",
        ", ".join(f"{k}: {v:,}" for k, v in sorted(non_200.items())) or "0",
        "0",
        _verdict(not non_200),
    )
    lags = list(load["lag"])
    t.add(
        "load generator behind schedule: p99 / max",
        f"{_ms(percentile(lags, 99))} / {_ms(max(lags, default=0))}",
        "",
        "",
    )

    lo, hi = m.get("dashboard_window", (0, 0))
    during = _pings_in(load, lo, hi or lo)
    p99 = percentile(during, 99)
    t.add(
        f"ping p99 / max while the dashboard calls run ({len(during):,} pings, {hi - lo:.0f} s)",
        f"{_ms(p99)} / {_ms(max(during, default=math.nan))}",
        f"< {GOAL_PING_P99_MS:.0f} ms (section 8)",
        _verdict(p99 < GOAL_PING_P99_MS) if during else "no data",
    )
    calls = [x for v in m["dashboard"]["times"].values() for x in v]
    t.add(
        "dashboard calls: count / p50 / p99 / non-200",
        f"{len(calls)} / {_ms(percentile(calls, 50))} / {_ms(percentile(calls, 99))} / "
        f"{sum(m['dashboard']['non_200'].values())}",
        "",
        "",
    )

    start, end = load["start"], load["start"] + load["elapsed_s"]
    ends = [at for at, _ in m["compactions"]]
    inside = [
        (i, at, removed) for i, (at, removed) in enumerate(m["compactions"]) if i and start <= at <= end + 5
    ]
    if inside:
        i, at, removed = inside[0]
        began = ends[i - 1] + COMPACT_EVERY_S
        pings = _pings_in(load, began, at)
        t.add(
            f"housekeeping compaction in the load: {at - began:.1f} s, {removed:,} removed; pings sent in it",
            f"{len(pings):,}: p99 {_ms(percentile(pings, 99))}, max {_ms(max(pings, default=math.nan))}",
            "",
            "",
        )
    elif ends and ends[-1] + COMPACT_EVERY_S < end:
        # The next pass began in the load and ended after it (a pass over millions of records
        # under load can outlast the 120 s the load is stretched by).
        began = ends[-1] + COMPACT_EVERY_S
        pings = _pings_in(load, began, end)
        t.add(
            f"housekeeping compaction in the load: began {began - start:.0f} s in, still running at its end; "
            "pings sent in it",
            f"{len(pings):,}: p99 {_ms(percentile(pings, 99))}, max {_ms(max(pings, default=math.nan))}",
            "",
            "",
        )
    else:
        t.add(
            "housekeeping compaction in the load",
            "none (the load ended first; see the micro-benchmark)",
            "",
            "",
        )
    c = m["micro_compact"]
    t.add(
        "LocalBus.compact on the soaked data (micro-benchmark, no server)",
        f"{c['compact_s']:.2f} s, {c['removed']:,} removed; append p99 {_ms(c['publish']['during']['p99'])}, "
        f"max {_ms(c['publish']['during']['max'])}; loop lag max {_ms(c['loop_lag']['during']['max'])}",
        "",
        "",
    )

    silent = {
        monitor_id(i)
        for i, k, c in zip(load["beat"], load["kind"], load["code"], strict=True)
        if k == 2 and c == 200
    }
    paged = {kind: 0 for kind in features.ROLE_OF_CODE.values()} | {"probe": 0}
    for kind, mid, _, _ in m["alerts"]:
        if kind == "down":
            paged[role(monitor_number(mid))] += 1
    found = m["downs"]["found"]
    healthy_paged = sum(paged[name] for name in features.MUST_NOT_GO_DOWN)
    healthy_down = sum(found.get(name, {}).get("down", 0) for name in features.MUST_NOT_GO_DOWN)
    delays = [arrived - at for kind, mid, at, arrived in m["alerts"] if kind == "down" and mid in silent]
    p99 = percentile(delays, 99)
    t.add(
        "silent heartbeats reported down (webhook)",
        f"{len(delays):,} of {len(silent):,} pinged ({silent_count(n):,} silent)",
        "all",
        _verdict(len(delays) == len(silent)),
    )
    t.add(
        "  from deadline to the down webhook: p50 / p99 / max",
        f"{_ms(percentile(delays, 50))} / {_ms(p99)} / {_ms(max(delays, default=math.nan))}",
        f"p99 < {GOAL_DETECTION_P99_MS / 1000:.0f} s",
        _verdict(p99 < GOAL_DETECTION_P99_MS) if delays else "no data",
    )
    due = [d - LATENESS_MS for d in delays]
    t.add(
        f"  the same from due (deadline + {LATENESS_MS} ms allowed lateness, as section 5)",
        f"{_ms(percentile(due, 50))} / {_ms(percentile(due, 99))} / {_ms(max(due, default=math.nan))}",
        "",
        "",
    )
    t.add(
        "false down among the healthy (features included): paged / down in the API at the end",
        f"{healthy_paged:,} / {healthy_down:,}",
        "0 / 0",
        _verdict(not healthy_paged and not healthy_down),
    )
    pinged = m["downs"]["pinged"]
    held = {name: found.get(name, {}).get("held", 0) for name in features.HELD}
    t.add(
        "held (inside a window / behind a dependency down): down and held in the API of pinged; paged",
        f"{held['held_window']:,} of {pinged.get('held_window', 0):,} / {held['held_dependency']:,} of "
        f"{pinged.get('held_dependency', 0):,}; {sum(paged[name] for name in features.HELD):,} paged",
        "all; 0 paged",
        _verdict(
            all(held[name] >= pinged.get(name, 0) for name in features.HELD)
            and not any(paged[name] for name in features.HELD)
        )
        if pinged
        else "no data",
    )

    h = m["history"]
    lag = h["delays_s"]
    p99 = percentile(lag, 99)
    t.add(
        f"ping to history (check-ins API): p50 / p99 / max ({len(lag)} samples, {h['unseen']} unseen)",
        f"{percentile(lag, 50):.2f} / {p99:.2f} / {max(lag, default=math.nan):.2f} s",
        f"p99 < {GOAL_HISTORY_P99_S:.0f} s",
        _verdict(p99 < GOAL_HISTORY_P99_S and not h["unseen"]) if lag else "no data",
    )

    failing_down = paged["failing"]
    cpu = m["cpu"]
    others = cpu["machine"] - cpu["server"] - cpu["load"] - cpu["bench"]
    t.notes += [
        f"Roles: {silent_count(n):,} silent (interval {_silent_config(m)}), failing 1% (`/fail`; {failing_down:,} down "
        f"alerts), 1% each fleet, windowed, dependent, baseline and two held (bench/million_features.py), the rest "
        f"healthy (interval {HEALTHY_INTERVAL_S} s, grace {HEALTHY_GRACE_S} s, snapshot up). Down in the API at the "
        f"end by role: {_downs(found)}. "
        f"Status counts at the end: {m.get('end_counts')}. Duplicate webhooks: {m['duplicate_webhooks']}.",
        f"Load: {CONNECTIONS} connections from a separate process (bench.pinger on uvloop, {load['cpu_s']:.0f} CPU s), "
        f"paced by schedule; answer times from send to last byte. Silent pings spread over the first "
        f"{m['silent_window_s']:.0f} s. History: {h['skipped']} samples skipped (all {TRACKERS} trackers busy), "
        f"{h['polls']:,} polls every {TRACK_POLL_S * 1000:.0f} ms, {h['poll_errors']} failed.",
        f"CPU during the load (cores of {os.cpu_count()}): server {cpu['server']:.2f}, load generator "
        f"{cpu['load']:.2f}, bench {cpu['bench']:.2f}, other processes {others:.2f}; load average "
        f"{m['loadavg'][0]:.1f} at the end.",
        "Compactions logged by the server (end, removed): "
        + ", ".join(f"+{at - start:.0f} s: {removed:,}" for at, removed in m["compactions"])
        + f" (relative to the load start). Micro-benchmark: {c['records']} records before; bus opened in "
        f"{c['open_s']:.2f} s; append p99 before {_ms(c['publish']['before']['p99'])}.",
        f"Server warnings/errors logged: {m['log_problems'] or 'none'}. Bus file: "
        f"{m['bus_bytes_end'] / mib:,.0f} MiB at the end.",
    ]
    return t


def _downs(found: dict[str, dict[str, int]]) -> str:
    return (
        ", ".join(f"{name} {v['down']:,} ({v['held']:,} held)" for name, v in sorted(found.items())) or "none"
    )


def _silent_config(m: dict) -> str:
    interval, grace = SIZES[m["size"]]["silent"]
    return f"{interval} s, grace {grace} s"


async def run(
    size_name: str, workdir: Path, heartbeats: int | None = None, load_s: float | None = None
) -> list[Table]:
    m = await measure(size_name, workdir, heartbeats, load_s)
    (workdir / "measured.json").write_text(
        json.dumps({k: v for k, v in m.items() if k != "load"}, default=str)
    )
    return [table(m)]


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] in ("build", "load", "compact"):
        if argv[0] == "load":
            import uvloop

            uvloop.install()
        asyncio.run({"build": build, "load": load, "compact": compact}[argv[0]](Path(argv[1])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.million")
    parser.add_argument("--full", action="store_const", dest="size", const="full", default="quick")
    parser.add_argument("--tiny", action="store_const", dest="size", const="tiny")
    parser.add_argument("--heartbeats", type=int, help="instead of the size's")
    parser.add_argument(
        "--load-s", type=float, help="instead of the size's (no stretching over a compaction)"
    )
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument(
        "--one-process", action="store_true", help="without PINGURA_INGEST_PROCESS (to compare)"
    )
    args = parser.parse_args(argv)
    global ONE_PROCESS
    ONE_PROCESS = args.one_process
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        tables = asyncio.run(run(args.size, args.keep, args.heartbeats, args.load_s))
    else:
        with tempfile.TemporaryDirectory(prefix="pingura-bench-million-") as workdir:
            tables = asyncio.run(run(args.size, Path(workdir), args.heartbeats, args.load_s))
    for t in tables:
        print(t.render(), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main(sys.argv[1:]))
