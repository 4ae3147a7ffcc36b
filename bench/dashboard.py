"""Benchmark 8: the dashboard's list and detail pages at scale, and pings while they load (issue 8).

Data, built directly rather than through the API (a child process, ``load``, that owns the data
dir the way ``pingura keys`` does when no server runs):

- the admin project and its key, by the code ``pingura serve`` runs on a first start;
- ``heartbeats`` monitors in that one project, published straight onto the ``monitors`` topic as
  :class:`MonitorConfig` events, with names, tags and statuses spread the way a large fleet has
  them, plus one evaluator snapshot each on ``evaluator-state`` (what the status view and the
  catalog read). Every deadline lies past the end of the run, so the evaluator has nothing to
  change while it is measured;
- ``checkins`` check-ins of one heartbeat over 90 days (about 2% failures, 0.5% misses, most with
  a duration), written into ClickHouse with ``HistoryStore.insert_events`` in batches of 100,000
  rows in time order, and its status changes (an incident every half day).

Then ``pingura serve`` runs on that data dir as a child process. The load comes from this
process on loopback, one call at a time (one connection), each call timed from request to last
byte, round-robin over the calls of a page, after two warm-up rounds:

- list page: the page's HTML, and ``GET /api/v1/heartbeats`` as the list page asks it (50 a
  page): first page, a status filter, a tag filter, a ``q`` search matching ~4% of names, a
  ``q`` matching 10 names (it scans the whole project), a page 90% down the cursor chain; and
  the API's default page (no parameters: 100). Before those, the chain is walked page by page,
  from the first page again until a few seconds passed.
- detail page: the calls its script makes: newest check-ins (the 24h window it sends), a page
  half-way down the history by cursor, uptime with a range, timings over 24h/7d/30d with the
  server's bucket, status changes, the CSV export of 24 hours (read to the end).

Meanwhile a second child process (``pinger``) pings one heartbeat of the same server every
:data:`PING_INTERVAL_MS` on its own connection, the whole time: its answer times are split
into idle (before the first call), during the chain walk (indexed list pages only), during the
list calls (every row, the whole-project scan too) and during the detail calls, with a second's
pause between phases. A call that held the event loop (or the GIL) for N ms shows as a ping
answered up to N ms late.

``python -m bench.dashboard load|pinger SPEC.json`` are the child processes; ``run()`` drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bench.common import Table, admin_project, free_port, percentile, serve_embedded, spawn, stop, wait_ready
from shared.clock import iso_ms, now_ms

if TYPE_CHECKING:
    from shared.events import MonitorStatus

SIZES = {
    # heartbeats in the project; check-ins of the detail heartbeat; timed rounds per page (each
    # round calls every row once), and a time budget per page after which the rounds stop.
    "tiny": {
        "heartbeats": 300,
        "checkins": 5_000,
        "list_rounds": 8,
        "detail_rounds": 6,
        "budget_s": 60,
        "chain_min_s": 1,
        "chain_budget_s": 30,
        "idle_s": 2,
    },
    "quick": {
        "heartbeats": 5_000,
        "checkins": 50_000,
        "list_rounds": 150,
        "detail_rounds": 40,
        "budget_s": 60,
        "chain_min_s": 5,
        "chain_budget_s": 30,
        "idle_s": 10,
    },
    "full": {
        "heartbeats": 100_000,
        "checkins": 1_000_000,
        "list_rounds": 200,
        "detail_rounds": 100,
        "budget_s": 300,
        "chain_min_s": 10,
        "chain_budget_s": 180,
        "idle_s": 30,
    },
}
API_KEY = "pk_bench_" + "d" * 40
PAGE_ROWS = 50  # what list.js and detail.js ask for
PING_INTERVAL_MS = 20
PHASE_GAP_S = 1.0
"""A pause between phases, so that pings sent late in one are answered before the next begins."""
GOAL_LIST_P95_MS = 50.0
GOAL_DETAIL_P95_MS = 200.0
GOAL_PING_P99_MS = 50.0
DAY_MS = 86_400_000
HISTORY_SPAN_MS = 90 * DAY_MS
INSERT_ROWS = 100_000
LOAD_TIMEOUT_S = {"tiny": 300, "quick": 600, "full": 1800}

# Names: service-job-region-number; "backup" is one job of 25 (~4%); "reconcile" only in RARE names.
SERVICES = (
    "billing",
    "search",
    "payments",
    "reports",
    "auth",
    "mailer",
    "etl",
    "cache",
    "orders",
    "inventory",
    "analytics",
    "users",
    "media",
    "shipping",
    "catalog",
    "pricing",
    "fraud",
    "crm",
    "ledger",
    "support",
)
JOBS = (
    "backup",
    "cleanup",
    "sync",
    "export",
    "import",
    "digest",
    "rollup",
    "rotate",
    "vacuum",
    "reindex",
    "refresh",
    "prune",
    "snapshot",
    "notify",
    "compact",
    "archive",
    "warmup",
    "audit",
    "renew",
    "invoice",
    "crawl",
    "resize",
    "purge",
    "scan",
    "report",
)
REGIONS = ("eu-west", "eu-central", "us-east", "us-west", "ap-south")
Q_COMMON, Q_RARE, RARE_NAMES = "backup", "reconcile", 10
TAG_FILTER, STATUS_FILTER = "team-07", "down"
STATUS_SHARES = (("up", 0.70), ("late", 0.05), ("down", 0.10), ("paused", 0.05), ("new", 0.10))


# --- the loader (child process) -----------------------------------------------------------------


def _heartbeats(count: int, project_id: str, now_ms: int) -> list[tuple]:
    """(config, status, last_ping_ms, deadline_ms) of each heartbeat; index 0 is the detail
    heartbeat, index 1 the one the pinger pings."""
    from shared.events import MonitorConfig

    rng = random.Random(8)
    rare = set(range(2, count, max(1, (count - 2) // RARE_NAMES))[:RARE_NAMES])
    out = []
    for i in range(count):
        created = now_ms - HISTORY_SPAN_MS - DAY_MS + i
        if i == 0:
            name, interval_s, status, tags = (
                "checkout-worker (detail bench)",
                10,
                "down",
                ["team-00", "env:prod"],
            )
        elif i == 1:
            name, interval_s, status, tags = "edge-pinger (ping bench)", 3600, "up", ["team-01", "env:prod"]
        else:
            name = f"{rng.choice(SERVICES)}-{rng.choice(JOBS)}-{rng.choice(REGIONS)}-{i:06d}"
            if i in rare:
                name = f"{rng.choice(SERVICES)}-{Q_RARE}-{rng.choice(REGIONS)}-{i:06d}"
            interval_s = rng.choice((3600, 86400, 86400, 86400))
            draw, status = rng.random(), "up"
            for candidate, share in STATUS_SHARES:
                if draw < share:
                    status = candidate
                    break
                draw -= share
            tags = [f"team-{rng.randrange(20):02d}", "env:prod" if rng.random() < 0.7 else "env:staging"]
            if rng.random() < 0.1:
                tags.append("critical")
        grace_ms, interval_ms = (60_000 if i == 0 else 3_600_000), interval_s * 1000
        last_ping = deadline = None
        if status == "up":
            last_ping = now_ms - int(rng.random() * interval_ms / 4)
            deadline = last_ping + interval_ms + grace_ms
        elif status == "late":  # 5 minutes into its hour of grace
            last_ping = now_ms - interval_ms - 300_000
            deadline = last_ping + interval_ms + grace_ms
        elif status == "down":  # missed; the next miss comes after the run
            last_ping = now_ms - 3 * interval_ms - grace_ms
            deadline = now_ms + max(2 * 3_600_000, interval_ms // 2)
        if (
            i == 0
        ):  # its history ends a minute before now (see load); down 70 s later, as its status changes say
            last_ping = now_ms - 60_000
        config = MonitorConfig(
            id=f"hb_{rng.getrandbits(64):016x}",
            project_id=project_id,
            name=name,
            token=_token(rng),
            interval_s=interval_s,
            grace_s=grace_ms // 1000,
            tags=tags,
            paused=status == "paused",
            created_ms=created,
            updated_ms=created,
        )
        out.append((config, status, last_ping, deadline))
    return out


def _token(rng: random.Random) -> str:
    import base64

    return base64.urlsafe_b64encode(rng.getrandbits(192).to_bytes(24, "big")).decode()


def _snapshot(
    config,
    status: MonitorStatus,
    last_ping_ms: int | None,
    deadline_ms: int | None,
    partition: int,
    now_ms: int,
) -> bytes:
    import msgspec

    from shared.events import MonitorSnapshot, encode
    from shared.snapshots import MonitorState

    reasons = {
        "up": "ping received",
        "late": "no ping within the interval; in grace period",
        "down": "1 consecutive problem(s) (limit 1); latest: no ping",
        "paused": "created paused",
        "new": None,
    }
    since = {
        "up": last_ping_ms,
        "late": deadline_ms and deadline_ms - config.grace_s * 1000,
        "down": last_ping_ms and last_ping_ms + config.interval_s * 1000 + config.grace_s * 1000,
        "paused": config.created_ms,
        "new": None,
    }[status]
    state = MonitorState(
        monitor_id=config.id,
        project_id=config.project_id,
        name=config.name,
        interval_ms=config.interval_s * 1000,
        grace_ms=config.grace_s * 1000,
        max_problems=config.max_consecutive_misses,
        channels=(),
        tags=tuple(config.tags),
        revision=config.revision,
        status=status,
        last_ping_ms=last_ping_ms,
        deadline_ms=deadline_ms,
        problems=1 if status == "down" else 0,
        incident=1 if status == "down" else 0,
        status_since_ms=since,
        status_reason=reasons[status],
    )
    return encode(
        MonitorSnapshot(
            monitor_id=config.id,
            partition=partition,
            offset=-1,
            clock_ms=now_ms,
            state=msgspec.Raw(msgspec.json.encode(state)),
        )
    )


def _checkin(i: int, count: int, project_id: str, monitor_id: str, end_ms: int):
    """Check-in ``i`` of ``count``, oldest first, evenly over HISTORY_SPAN_MS up to ``end_ms``."""
    from shared.events import Missed, Ping

    at = end_ms - HISTORY_SPAN_MS + i * HISTORY_SPAN_MS // count
    h = (i * 2654435761) % 2**32
    if h % 1000 < 5:
        return Missed(
            id=f"{monitor_id}:miss:{at}",
            monitor_id=monitor_id,
            project_id=project_id,
            deadline_ms=at,
            expected_ms=at,
            consecutive=1,
        )
    fail = h % 1000 < 25
    return Ping(
        id=f"{at:012x}{i:016x}",
        monitor_id=monitor_id,
        project_id=project_id,
        received_ms=at,
        kind="fail" if fail else "success",
        exit_code=1 if fail else (0 if h % 3 == 0 else None),
        status="completed" if h % 4 == 0 else None,
        message=f"Processed {h % 5000} records" if h % 2 == 0 else None,
        duration_s=(h % 300_000) / 1000 if h % 3 != 2 else None,
        duration_raw=f"{(h % 300_000) / 1000}s" if h % 3 != 2 else None,
        source_ip="10.0.0.7",
        user_agent="curl/8.5.0",
        method="POST",
    )


def _status_changes(project_id: str, monitor_id: str, start_ms: int, end_ms: int) -> list:
    """An incident (late -> down -> up) every 12 hours, then down at the end (as the snapshot says)."""
    from shared.events import StatusChanged

    def change(at: int, status: MonitorStatus, previous: MonitorStatus, reason: str):
        return StatusChanged(
            id=f"{monitor_id}:{at}:{status}",
            monitor_id=monitor_id,
            project_id=project_id,
            status=status,
            previous=previous,
            at_ms=at,
            reason=reason,
        )

    out = [change(start_ms, "up", "new", "first check-in")]
    at = start_ms + DAY_MS // 2
    while at + 3_600_000 < end_ms:
        out += [
            change(at, "late", "up", "no ping within the interval; in grace period"),
            change(at + 300_000, "down", "late", "missed 1 check-in"),
            change(at + 300_000 + (at % 1_800_000), "up", "down", "ping received"),
        ]
        at += DAY_MS // 2
    out += [
        change(end_ms + 10_000, "late", "up", "no ping within the interval; in grace period"),
        change(end_ms + 70_000, "down", "late", "missed 1 check-in"),
    ]
    return out


async def load(spec_path: Path) -> None:
    from services.datadir import owning
    from services.query.store import HistoryStore, encode_cursor
    from shared.bus.base import partition_for
    from shared.bus.open import open_bus
    from shared.clickhouse import open_client
    from shared.events import encode
    from shared.settings import Settings
    from shared.topics import Topics

    spec = json.loads(await asyncio.to_thread(spec_path.read_text))
    settings = Settings(data_dir=Path(spec["data_dir"]), bootstrap_api_key=API_KEY)
    topics = Topics(settings.topic_prefix)
    now = spec["now_ms"]
    timings: dict[str, float] = {}
    with owning(settings.data_dir):
        t = time.perf_counter()
        bus = await open_bus(settings)
        try:
            project_id = await admin_project(settings, bus, topics)
            fleet = _heartbeats(spec["heartbeats"], project_id, now)
            state_partitions = bus.partitions(topics.evaluator_state)
            for lo in range(0, len(fleet), 10_000):
                chunk = fleet[lo : lo + 10_000]
                await bus.publish_many(topics.monitors, [(c.id, encode(c)) for c, *_ in chunk])
                await bus.publish_many(
                    topics.evaluator_state,
                    [
                        (
                            c.id,
                            _snapshot(c, status, last, deadline, partition_for(c.id, state_partitions), now),
                        )
                        for c, status, last, deadline in chunk
                    ],
                )
        finally:
            await bus.close()
        timings["bus_s"] = time.perf_counter() - t

        detail, pinged = fleet[0][0], fleet[1][0]
        count, end_ms = spec["checkins"], now - 60_000
        t = time.perf_counter()
        ch = open_client(settings)
        try:
            store = HistoryStore(ch, settings.history_retention_days)
            await store.migrate()
            for lo in range(0, count, INSERT_ROWS):
                batch = [
                    _checkin(i, count, project_id, detail.id, end_ms)
                    for i in range(lo, min(count, lo + INSERT_ROWS))
                ]
                await store.insert_events(batch, dedup_token=f"bench-dashboard-{lo}")
            changes = _status_changes(project_id, detail.id, end_ms - HISTORY_SPAN_MS, end_ms)
            await store.insert_events(changes, dedup_token="bench-dashboard-changes")
            stored = (await ch.query("SELECT count() FROM checkins"))[0][0]
            parts = (
                await ch.query(
                    "SELECT count() FROM system.parts WHERE active AND database = currentDatabase() "
                    "AND table = 'checkins'"
                )
            )[0][0]
        finally:
            await ch.close()
        timings["clickhouse_s"] = time.perf_counter() - t

    middle = _checkin(count // 2, count, project_id, detail.id, end_ms)
    statuses: dict[str, int] = {}
    for _, status, *_ in fleet:
        statuses[status] = statuses.get(status, 0) + 1
    await asyncio.to_thread(
        Path(spec["out"]).write_text,
        json.dumps(
            {
                "project_id": project_id,
                "detail_id": detail.id,
                "ping_token": pinged.token,
                "statuses": statuses,
                "heartbeats": len(fleet),
                "checkins_stored": stored,
                "status_changes": len(changes),
                "parts": parts,
                "deep_checkin_cursor": encode_cursor(
                    getattr(middle, "received_ms", None) or middle.deadline_ms, middle.id
                ),
                "deep_checkin_age_days": (now - (getattr(middle, "received_ms", None) or middle.deadline_ms))
                / DAY_MS,
                "tagged": sum(TAG_FILTER in c.tags for c, *_ in fleet),
                "q_common": sum(Q_COMMON in c.name.casefold() for c, *_ in fleet),
                "q_rare": sum(Q_RARE in c.name.casefold() for c, *_ in fleet),
                **timings,
            }
        ),
    )


# --- the pinger (child process) -----------------------------------------------------------------


async def pinger(spec_path: Path) -> None:
    """Ping every ``interval_ms`` (the next one at once if one was slow) until SIGTERM; write
    ``[sent wall-clock s, answer ms, HTTP status]`` per ping."""
    spec = json.loads(await asyncio.to_thread(spec_path.read_text))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    url = f"http://127.0.0.1:{spec['port']}/api/heartbeat/{spec['token']}"
    samples: list[list] = []
    interval_s = spec["interval_ms"] / 1000
    deadline = time.monotonic() + spec["max_s"]
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        next_at = time.monotonic()
        while not stopping.is_set() and time.monotonic() < deadline:
            sent = time.time()
            t = time.perf_counter()
            try:
                async with http.post(url) as r:
                    await r.read()
                    code = r.status
            except (TimeoutError, aiohttp.ClientError):
                code = 0
            samples.append([sent, (time.perf_counter() - t) * 1000, code])
            if len(samples) == 1:
                await asyncio.to_thread(Path(spec["ready"]).write_text, "ok")
            next_at += interval_s
            pause = next_at - time.monotonic()
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), pause)
            else:
                next_at = time.monotonic()
    await asyncio.to_thread(Path(spec["out"]).write_text, json.dumps(samples))


# --- the driver -----------------------------------------------------------------------------------


class _Calls:
    """Timed GETs on one connection; per row: answer times (ms), non-200 answers, items seen,
    and when each call was in flight."""

    def __init__(self, http: aiohttp.ClientSession, base: str):
        self.http = http
        self.base = base
        self.times: dict[str, list[float]] = {}
        self.non_200: dict[str, int] = {}
        self.items: dict[str, list[int]] = {}
        self.spans: dict[str, list[tuple[float, float]]] = {}
        """Per row, each call's (start, end) in wall-clock seconds: which pings it overlapped."""

    async def get(self, row: str | None, path: str, params: dict | None = None) -> tuple[int, bytes]:
        wall, t = time.time(), time.perf_counter()
        async with self.http.get(self.base + path, params=params) as r:
            body = await r.read()
            status = r.status
        ms = (time.perf_counter() - t) * 1000
        if row is not None:
            self.spans.setdefault(row, []).append((wall, wall + ms / 1000))
            self.times.setdefault(row, []).append(ms)
            self.non_200[row] = self.non_200.get(row, 0) + (status != 200)
        return status, body

    def count(self, row: str, items: int) -> None:
        self.items.setdefault(row, []).append(items)


def _items(body: bytes, key: str) -> int:
    try:
        return len(json.loads(body)[key])
    except (ValueError, KeyError, TypeError):
        return -1


async def _rounds(calls: _Calls, rows: list[tuple], rounds: int, budget_s: float) -> int:
    """Two warm-up rounds (not counted), then up to ``rounds`` timed ones within ``budget_s``."""
    for _ in range(2):
        for _, path, params, _ in rows:
            await calls.get(None, path, params() if callable(params) else params)
    deadline = time.monotonic() + budget_s
    done = 0
    while done < rounds and time.monotonic() < deadline:
        for name, path, params, count_key in rows:
            _, body = await calls.get(name, path, params() if callable(params) else params)
            if count_key is not None:
                calls.count(name, _items(body, count_key) if count_key != "lines" else body.count(b"\n") - 1)
        done += 1
    return done


async def _walk_chain(
    calls: _Calls, pages: int, min_s: float, budget_s: float
) -> tuple[str | None, int, int]:
    """Every page of the list by name, following ``next``, from the first page again until
    ``min_s`` passed (so a small list still gives the pinger time); the cursor 90% of the way
    down, the pages walked and the walks completed."""
    deep_at = max(1, int(pages * 0.9))
    cursor, deep, walked, walks = None, None, 0, 0
    started = time.monotonic()
    while time.monotonic() < started + budget_s:
        params = {"limit": str(PAGE_ROWS), **({"before": cursor} if cursor else {})}
        status, body = await calls.get("chain", "/api/v1/heartbeats", params)
        if status != 200:
            raise RuntimeError(f"GET /api/v1/heartbeats answered {status}: {body[:300]!r}")
        walked += 1
        cursor = json.loads(body)["next"]
        if not walks and walked <= deep_at and cursor:
            deep = cursor
        if not cursor:
            walks += 1
            if time.monotonic() >= started + min_s:
                break
    return deep, walked, walks


async def _until_listed(calls: _Calls, expected: int, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = await calls.get(None, "/api/v1/heartbeats", {"limit": "1"})
        if status == 200:
            counts = json.loads(body)["counts"]
            if sum(counts.values()) >= expected:
                return counts
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server lists {body[:300]!r}, expected {expected} heartbeats")
        await asyncio.sleep(0.2)


def _child(kind: str, workdir: Path, spec: dict):
    spec_path = workdir / f"{kind}.json"
    spec_path.write_text(json.dumps(spec))
    return spawn(
        ["-m", "bench.dashboard", kind, str(spec_path)],
        env={"PINGURA_LOG_LEVEL": "warning"},
        log=workdir / f"{kind}.log",
    )


def _list_rows(deep_cursor: str | None) -> list[tuple]:
    page = {"limit": str(PAGE_ROWS)}
    rows = [
        ("list page HTML: GET /", "/", None, None),
        ("heartbeats: no parameters (API default, 100)", "/api/v1/heartbeats", None, "heartbeats"),
        ("heartbeats: first page", "/api/v1/heartbeats", page, "heartbeats"),
        (
            f"heartbeats: status={STATUS_FILTER}",
            "/api/v1/heartbeats",
            {**page, "status": STATUS_FILTER},
            "heartbeats",
        ),
        (f"heartbeats: tag={TAG_FILTER}", "/api/v1/heartbeats", {**page, "tag": TAG_FILTER}, "heartbeats"),
        (
            f"heartbeats: q={Q_COMMON} (~4% match)",
            "/api/v1/heartbeats",
            {**page, "q": Q_COMMON},
            "heartbeats",
        ),
        (
            f"heartbeats: q={Q_RARE} ({RARE_NAMES} match: whole scan)",
            "/api/v1/heartbeats",
            {**page, "q": Q_RARE},
            "heartbeats",
        ),
    ]
    if deep_cursor:
        rows.append(
            (
                "heartbeats: page 90% down the cursor chain",
                "/api/v1/heartbeats",
                {**page, "before": deep_cursor},
                "heartbeats",
            )
        )
    return rows


def _detail_rows(detail_id: str, deep_cursor: str) -> list[tuple]:
    base = f"/api/v1/heartbeats/{detail_id}"

    def window(span_ms: int, **extra) -> Callable[[], dict]:
        def params() -> dict:
            now = now_ms()
            return {"from": iso_ms(now - span_ms), "to": iso_ms(now), **extra}

        return params

    def export_24h() -> dict:  # the page's link: "to" left out, the server takes now
        return {"format": "csv", "from": iso_ms(now_ms() - DAY_MS)}

    return [
        (
            "checkins: newest page (24h window)",
            base + "/checkins",
            window(DAY_MS, limit=str(PAGE_ROWS)),
            "checkins",
        ),
        (
            "checkins: page by cursor half-way down",
            base + "/checkins",
            {"limit": str(PAGE_ROWS), "before": deep_cursor},
            "checkins",
        ),
        ("uptime with a range (7d)", base + "/uptime", window(7 * DAY_MS), None),
        ("timings 24h (server bucket)", base + "/timings", window(DAY_MS), "points"),
        ("timings 7d (server bucket)", base + "/timings", window(7 * DAY_MS), "points"),
        ("timings 30d (server bucket)", base + "/timings", window(30 * DAY_MS), "points"),
        ("status-changes: newest page", base + "/status-changes", {"limit": str(PAGE_ROWS)}, "changes"),
        ("export: 24h as CSV (to the last byte)", base + "/export", export_24h, "lines"),
    ]


def _serve(workdir: Path, data_dir: Path, port: int):
    return serve_embedded(data_dir, port, workdir / "serve.log", {"PINGURA_BOOTSTRAP_API_KEY": API_KEY})


async def _measure(workdir: Path, port: int, loaded: dict, size: dict, proc) -> dict:
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=120)
    out: dict = {"phases": {}}
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as http:
        calls = _Calls(http, base)
        t = time.perf_counter()
        out["counts"] = await _until_listed(calls, loaded["heartbeats"])
        out["listed_s"] = time.perf_counter() - t
        ready = workdir / "pinger.ready"
        pinger_proc = _child(
            "pinger",
            workdir,
            {
                "port": port,
                "token": loaded["ping_token"],
                "interval_ms": PING_INTERVAL_MS,
                "ready": str(ready),
                "out": str(workdir / "pings.json"),
                "max_s": 3 * size["budget_s"] + size["chain_budget_s"] + 600,
            },
        )
        try:
            for _ in range(600):
                if ready.exists() or pinger_proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            if not ready.exists():
                raise RuntimeError(f"the pinger never pinged: {(workdir / 'pinger.log').read_text()[-2000:]}")
            await asyncio.sleep(1)  # its connection and the server's first pings settle
            started = time.time()
            await asyncio.sleep(size["idle_s"])
            out["phases"]["idle"] = (started, time.time())

            pages = math.ceil(loaded["heartbeats"] / PAGE_ROWS)
            pids = [os.getpid(), proc.pid, pinger_proc.pid]
            cpu_before, cpu_wall = _cpu_ticks(pids), time.monotonic()
            started = time.time()
            deep, out["chain_pages"], out["chain_walks"] = await _walk_chain(
                calls, pages, size["chain_min_s"], size["chain_budget_s"]
            )
            out["phases"]["chain"] = (started, time.time())
            out["chain_expected"] = pages
            await asyncio.sleep(PHASE_GAP_S)
            list_rows = _list_rows(deep)
            started = time.time()
            out["list_rounds"] = await _rounds(calls, list_rows, size["list_rounds"], size["budget_s"])
            out["phases"]["list"] = (started, time.time())
            await asyncio.sleep(PHASE_GAP_S)

            detail_rows = _detail_rows(loaded["detail_id"], loaded["deep_checkin_cursor"])
            started = time.time()
            out["detail_rounds"] = await _rounds(calls, detail_rows, size["detail_rounds"], size["budget_s"])
            out["phases"]["detail"] = (started, time.time())
            cpu_after = _cpu_ticks(pids)
            ticks_s = os.sysconf("SC_CLK_TCK") * (time.monotonic() - cpu_wall)
            out["cpu_cores_all"] = (cpu_after[0] - cpu_before[0]) / ticks_s
            out["cpu_cores_others"] = (
                (cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1])
            ) / ticks_s
            out["loadavg"] = os.getloadavg()
        finally:
            pinger_proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(pinger_proc.wait, 30)
        out["list_rows"] = [r[0] for r in list_rows]
        out["detail_rows"] = [r[0] for r in detail_rows]
        out["times"], out["non_200"], out["items"], out["spans"] = (
            calls.times,
            calls.non_200,
            calls.items,
            calls.spans,
        )
        out["pings"] = json.loads((workdir / "pings.json").read_text())
    out["server_rss_mib"] = _proc_rss(proc.pid) / 2**20
    return out


def _cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """(busy ticks of the whole machine, ticks of ``pids``) so far; from /proc."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # minus idle and iowait
    ours = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ours += int(stat[11]) + int(stat[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return busy, ours


def _proc_rss(pid: int) -> int:
    import resource

    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return 0


def _verdict(value: float, goal: float | None) -> str:
    if goal is None:
        return ""
    if math.isnan(value):
        return "no data"
    return "met" if value < goal else "missed"


def _pings_sent_during(spans: list[tuple[float, float]], pings: list[list]) -> list[list]:
    """The pings sent while one of ``spans`` (the calls of one row) was in flight."""
    ordered = sorted(spans)
    found, i = [], 0
    for ping in pings:  # in time order
        while i < len(ordered) and ordered[i][1] < ping[0]:
            i += 1
        if i < len(ordered) and ordered[i][0] <= ping[0]:
            found.append(ping)
    return found


def _call_row(table: Table, page: str, name: str, m: dict, goal: float | None) -> None:
    times = m["times"].get(name, [])
    p95 = percentile(times, 95)
    during = [ms for _, ms, _ in _pings_sent_during(m["spans"].get(name, []), m["pings"])]
    table.add(
        page,
        name,
        len(times),
        m["non_200"].get(name, 0),
        percentile(times, 50),
        p95,
        percentile(times, 99),
        max(times, default=float("nan")),
        f"p95 < {goal:.0f} ms" if goal else "",
        _verdict(p95, goal),
        len(during),
        *((percentile(during, 99), max(during)) if during else ("", "")),
    )


async def run(size_name: str, workdir: Path) -> list[Table]:
    size = SIZES[size_name]
    data_dir = workdir / "data"
    loader = _child(
        "load",
        workdir,
        {
            "data_dir": str(data_dir),
            "heartbeats": size["heartbeats"],
            "checkins": size["checkins"],
            "now_ms": now_ms(),
            "out": str(workdir / "loaded.json"),
        },
    )
    try:
        code = await asyncio.to_thread(loader.wait, LOAD_TIMEOUT_S[size_name])
    except Exception:
        stop(loader)
        raise
    if code != 0:
        raise RuntimeError(
            f"bench.dashboard load exited with {code}: {(workdir / 'load.log').read_text()[-3000:]}"
        )
    loaded = json.loads((workdir / "loaded.json").read_text())

    port = free_port()
    t = time.perf_counter()
    proc = _serve(workdir, data_dir, port)
    try:
        await asyncio.to_thread(wait_ready, port, 300, proc)
        start_s = time.perf_counter() - t
        m = await _measure(workdir, port, loaded, size, proc)
    finally:
        stop(proc)

    table = Table(
        f"8. Dashboard at scale: {loaded['heartbeats']:,} heartbeats in one project (list), "
        f"{loaded['checkins_stored']:,} check-ins of one heartbeat (detail)",
        [
            "page",
            "call",
            "calls",
            "non-200",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "goal",
            "",
            "pings meanwhile",
            "their p99 ms",
            "their max ms",
        ],
    )
    _call_row(table, "list", "chain", m, GOAL_LIST_P95_MS)
    table.rows[-1][1] = (
        f"heartbeats: every page of the chain in turn ({m['chain_expected']:,} pages, "
        f"walked {m['chain_walks']}x)"
    )
    for name in m["list_rows"]:
        _call_row(table, "list", name, m, GOAL_LIST_P95_MS)
    for name in m["detail_rows"]:
        _call_row(table, "detail", name, m, GOAL_DETAIL_P95_MS)
    pings = m["pings"]
    for phase, label, goal in (
        ("idle", "idle (no API calls)", None),
        ("chain", "during the chain walk (indexed pages only)", GOAL_PING_P99_MS),
        ("list", "during the list calls (every row)", GOAL_PING_P99_MS),
        ("detail", "during the detail calls", GOAL_PING_P99_MS),
    ):
        lo, hi = m["phases"][phase]
        chosen = [p for p in pings if lo <= p[0] < hi]
        ms = [p[1] for p in chosen]
        p99 = percentile(ms, 99)
        table.add(
            "ping",
            f"POST /api/heartbeat/{{token}} {label}",
            len(ms),
            sum(p[2] != 200 for p in chosen),
            percentile(ms, 50),
            percentile(ms, 95),
            p99,
            max(ms, default=float("nan")),
            f"p99 < {goal:.0f} ms" if goal else "",
            _verdict(p99, goal),
            "",
            "",
            "",
        )

    def mean_items(name: str) -> str:
        seen = m["items"].get(name, [])
        return f"{sum(seen) / len(seen):.0f}" if seen else "-"

    apart = []
    rare = next(name for name in m["list_rows"] if f"q={Q_RARE}" in name)
    export = next(name for name in m["detail_rows"] if name.startswith("export"))
    for phase, worst in (("list", rare), ("detail", export)):
        lo, hi = m["phases"][phase]
        inside = {id(p) for p in _pings_sent_during(m["spans"].get(worst, []), pings)}
        rest = [p[1] for p in pings if lo <= p[0] < hi and id(p) not in inside]
        apart.append(
            f"during the {phase} calls but not while '{worst}' ran: {len(rest):,} pings, "
            f"p99 {percentile(rest, 99):.1f} ms, max {max(rest, default=float('nan')):.1f} ms"
        )
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(loaded["statuses"].items()))
    table.notes += [
        f"Data (built directly, {loaded['bus_s']:.1f} s onto the bus, {loaded['clickhouse_s']:.1f} s into chDB with "
        f"HistoryStore.insert_events, {INSERT_ROWS:,} rows an insert, {loaded['parts']} active parts after): "
        f"heartbeats by status: {statuses}; tag {TAG_FILTER}: {loaded['tagged']:,}; q={Q_COMMON}: "
        f"{loaded['q_common']:,}; q={Q_RARE}: {loaded['q_rare']}. The detail heartbeat: "
        f"{loaded['checkins_stored']:,} check-ins over 90 days, {loaded['status_changes']} status changes; "
        f"the cursor page starts {loaded['deep_checkin_age_days']:.0f} days back.",
        f"Server: `pingura serve` (embedded bus, chDB, all four services), up in {start_s:.1f} s; every heartbeat "
        f"listed {m['listed_s']:.1f} s after the port opened; RSS {m['server_rss_mib']:.0f} MiB at the end. "
        f"Machine while the calls ran: {m['cpu_cores_all']:.2f} of {os.cpu_count()} cores busy, "
        f"{m['cpu_cores_others']:.2f} of them by processes other than the server, the pinger and this one "
        f"(load average {m['loadavg'][0]:.1f} at the end).",
        f"Calls: one at a time on one keep-alive connection from the bench process, timed to the last byte; "
        f"{m['list_rounds']} list and {m['detail_rounds']} detail rounds (each calls every row once, round-robin) "
        f"after 2 warm-up rounds. Items per answer (mean): "
        + "; ".join(
            f"{name.split(': ', 1)[-1]} {mean_items(name)}"
            for name in m["list_rows"][1:] + m["detail_rows"]
            if m["items"].get(name)
        )
        + f". Chain: {m['chain_pages']:,} pages in {m['chain_walks']} complete walk(s) of {m['chain_expected']:,}.",
        f"Pings: a separate process pings one heartbeat every {PING_INTERVAL_MS} ms (sequential, one connection) "
        f"the whole time; idle = {m['phases']['idle'][1] - m['phases']['idle'][0]:.0f} s before the first list call. "
        "A ping answered late during a phase means the event loop (or the GIL) was held by a call of that phase; "
        "per call row, 'pings meanwhile' are the pings sent while one of its calls was in flight. Pings "
        + "; ".join(apart)
        + ".",
    ]
    return [table]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("load", "pinger"):
        asyncio.run((load if sys.argv[1] == "load" else pinger)(Path(sys.argv[2])))
    else:
        print(
            "usage: python -m bench.dashboard load|pinger SPEC.json (use `python -m bench --only dashboard`)"
        )
        sys.exit(2)
