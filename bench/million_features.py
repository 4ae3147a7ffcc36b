"""The roles of benchmark 9's heartbeats (``bench.million``), the earlier issues' features among them.

Heartbeat ``i``'s role is fixed by its number: ``probe`` (heartbeat 0), else by ``i % 100``
(:data:`ROLES`), so each role other than ``healthy`` is 1% of the fleet, the same at every size:

- ``silent``: never pinged before; pinged once early in the load, then not again. Its interval
  and grace are short, so its deadline falls inside the run and it must go ``down`` and page;
- ``failing``: pinged every period at ``/fail``;
- ``fleet`` (issue 18, "Fleets"): a fleet rule (``min_instances`` 3); each period, each of its
  :data:`FLEET_INSTANCES` pings with ``?instance=`` (three pings where a healthy one sends one).
  Its snapshot already knows the three instances, as a server that ran before leaves it;
- ``dependent`` (issue 17, "Dependencies"): healthy, depends on the silent heartbeat ``i - 3``:
  the dependency goes down in the run, the dependent keeps checking in and must not page;
- ``held_dependency``: pinged once, like a silent one, at the same moment as the silent heartbeat
  ``i - 4`` it depends on, with :data:`HOLD_MARGIN_S` more grace (a deadline a few seconds after
  its dependency's, as docs/semantics.md advises): it goes down while its dependency is down, so
  its alert is held. It must be ``down`` and ``held`` in the API, and must not page;
- ``windowed`` (issue 17, "Maintenance windows"): healthy, tagged :data:`WINDOW_TAG`, which a
  one-off window covers for part of the load;
- ``held_window``: pinged once, like a silent one, tagged :data:`HELD_WINDOW_TAG`, which a window
  covers from before the load until long after it: it goes down inside it, held; it must be
  ``down`` and ``held`` in the API, and must not page;
- ``baseline`` (issue 18, "Run times"): a ``run_time`` rule with ``baseline: alert``; its snapshot
  carries 20 learned run times of about 40 s, so the baseline judges every run; its pings send a
  steady ``duration`` of 38-42 s (within the usual range), so it must not page;
- ``healthy`` (the rest): pinged every period; must not page.

The windows are created through the API (``POST /api/v1/maintenance``) once the server is up,
by :func:`windows`. Issues 19 and 20 added nothing per heartbeat to configure.
"""

from __future__ import annotations

import asyncio
import struct
import time
from datetime import UTC, datetime

import aiohttp

from shared.rules import FleetRule, RunTimeRule

ROLES = {
    1: "silent",
    2: "failing",
    3: "fleet",
    4: "dependent",
    5: "held_dependency",
    6: "windowed",
    7: "held_window",
    8: "baseline",
}
KIND_CODE = {"healthy": 0, "failing": 1, "silent": 2, **{name: r for r, name in ROLES.items() if r > 2}}
"""A role as a small number, for the load's arrays."""
ROLE_OF_CODE = {code: name for name, code in KIND_CODE.items()}
PERIODIC = frozenset({"healthy", "failing", "fleet", "dependent", "windowed", "baseline"})
"""Pinged every period by the load."""
ONCE = frozenset({"silent", "held_dependency", "held_window"})
"""Pinged once, early in the load, then not again: each goes down in the run."""
HELD = frozenset({"held_dependency", "held_window"})
"""Go down behind a hold: must be down and held in the API, and must not page."""
MUST_NOT_GO_DOWN = frozenset({"probe", "healthy", "fleet", "dependent", "windowed", "baseline"})
"""Neither a down page nor a down status in the API: "the healthy" of the verdict."""
FEATURE_ROLES = ("fleet", "windowed", "held_window", "dependent", "held_dependency", "baseline")

FLEET_INSTANCES = ("web-1", "web-2", "web-3")
FLEET_RULE = FleetRule(min_instances=len(FLEET_INSTANCES))
BASELINE_RULE = RunTimeRule(baseline="alert")
BASELINE_LEARNED_MS = tuple(40_000 + ((k * 7_919) % 4_001) - 2_000 for k in range(20))
"""The run times a baseline heartbeat's snapshot has learned: 38-42 s (median about 40 s)."""
HOLD_MARGIN_S = 5
"""A held heartbeat's grace beyond the silent ones': its deadline a few seconds after theirs."""
WINDOW_TAG, HELD_WINDOW_TAG, HELD_DEPENDENCY_TAG = (
    "bench-window",
    "bench-held-window",
    "bench-held-dependency",
)
TAGS = {
    "windowed": WINDOW_TAG,
    "held_window": HELD_WINDOW_TAG,
    "held_dependency": HELD_DEPENDENCY_TAG,
}
"""The tag of a role: a window covers it, or the end of the run lists the role by it."""
WINDOW_MIN_S = 60  # the API's shortest window


def role(i: int) -> str:
    if i == 0:
        return "probe"
    return ROLES.get(i % 100, "healthy")


def count(n: int, name: str) -> int:
    """Heartbeats of role ``name`` among ``0 .. n - 1``."""
    if name == "probe":
        return min(n, 1)
    if name == "healthy":
        return n - min(n, 1) - sum(count(n, other) for other in ROLES.values())
    remainder = next(r for r, other in ROLES.items() if other == name)
    return len(range(remainder, n, 100))


def depends_on(i: int) -> int | None:
    """The heartbeat ``i`` depends on (a silent one), or None."""
    return {"dependent": i - 3, "held_dependency": i - 4}.get(role(i))


def once_pinged(n: int) -> list[tuple[int, list[int]]]:
    """The heartbeats pinged once, in groups pinged at the same moment: each silent heartbeat
    with the held ones of its hundred (a held dependency at the moment its dependency is pinged)."""
    return [(k, [i for i in (base, base + 4, base + 6) if i < n]) for k, base in enumerate(range(1, n, 100))]


def config_fields(i: int, monitor_id) -> dict:
    """The :class:`~shared.events.MonitorConfig` fields of heartbeat ``i``'s features."""
    kind = role(i)
    fields: dict = {}
    if kind in TAGS:
        fields["tags"] = ["bench", "soak", TAGS[kind]]
    if (dependency := depends_on(i)) is not None:
        fields["depends_on"] = [monitor_id(dependency)]
    if kind == "fleet":
        fields["fleet"] = FLEET_RULE
    elif kind == "baseline":
        fields["run_time"] = BASELINE_RULE
    return fields


def extra(cfg, last_ms: int | None):
    """The snapshot's :class:`~shared.snapshots.Extra` of a heartbeat with rules (None: none),
    as the evaluator leaves it: its rules, a fleet's instances seen at its last ping, a baseline's
    learned run times."""
    from services.evaluator.logic.monitor import Shared, rules_from
    from shared.snapshots import DURATION_FORMAT, Extra, Fleet

    rules = rules_from(cfg, Shared())
    if rules is None:
        return None
    fleet = durations = None
    if cfg.fleet is not None and last_ms is not None:
        fleet = Fleet(seen=dict.fromkeys(FLEET_INSTANCES, last_ms))
    if cfg.run_time is not None:
        durations = b"".join(struct.pack(DURATION_FORMAT, ms) for ms in BASELINE_LEARNED_MS)
    return Extra(rules=rules, fleet=fleet, durations=durations or b"")


def ping_queries(i: int, seq: int) -> list[str]:
    """What follows the token in each URL the load sends heartbeat ``i`` for its ping ``seq``:
    one URL, or one per instance of a fleet."""
    kind = role(i)
    ok = kind != "failing"
    message = f"processed%20{(seq * 7919) % 5000}%20records%20(run%20{seq})"
    # a baseline's runs 38-42 s (usual for it); the others' anything up to 5 minutes
    steady = kind == "baseline"
    duration = 38 + (seq * 104_729) % 4_001 / 1000 if steady else (seq * 104_729) % 300_000 / 1000
    query = (
        f"{'' if ok else '/fail'}?status={'ok' if ok else 'error'}&message={message}&duration={duration:.3f}"
    )
    if kind == "fleet":
        return [f"{query}&instance={name}" for name in FLEET_INSTANCES]
    return [query]


def message(seq: int) -> str:
    """The message of ping ``seq`` as the history shows it (decoded)."""
    return f"processed {(seq * 7919) % 5000} records (run {seq})"


def pings_per_period(n: int) -> int:
    """Pings the load sends each period (not counting the once-pinged)."""
    return sum(count(n, name) for name in PERIODIC) + (len(FLEET_INSTANCES) - 1) * count(n, "fleet")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def windows(http: aiohttp.ClientSession, base: str, load_start: float, load_s: float) -> dict:
    """Create the two maintenance windows through the API: one over :data:`WINDOW_TAG` for part
    of the load (from a quarter in, half of it, at least a minute), one over
    :data:`HELD_WINDOW_TAG` from now until an hour after the load. Their times (epoch s)."""
    part = (load_start + load_s / 4, load_start + load_s / 4 + max(WINDOW_MIN_S, load_s / 2))
    whole = (load_start - 1, load_start + load_s + 3600)
    for name, tag, (lo, hi) in (
        ("bench: part of the load", WINDOW_TAG, part),
        ("bench: the whole run", HELD_WINDOW_TAG, whole),
    ):
        body = {"name": name, "covering": {"tags": [tag]}, "starts_at": _iso(lo), "ends_at": _iso(hi)}
        async with http.post(base + "/api/v1/maintenance", json=body) as r:
            if r.status != 201:
                raise RuntimeError(f"creating maintenance window {name!r}: {r.status} {await r.text()}")
    return {"part": part, "whole": whole}


async def downs(http: aiohttp.ClientSession, base: str) -> dict[str, dict[str, int]]:
    """Every heartbeat down in the API at the end, by role: how many, and how many held."""
    found: dict[str, dict[str, int]] = {}
    cursor = None
    while True:
        params = {"status": "down", "limit": "1000", **({"before": cursor} if cursor else {})}
        async with http.get(base + "/api/v1/heartbeats", params=params) as r:
            if r.status != 200:
                raise RuntimeError(f"listing the heartbeats down: {r.status} {await r.text()}")
            page = await r.json()
        for heartbeat in page["heartbeats"]:
            tally = found.setdefault(role(int(heartbeat["id"][3:], 16)), {"down": 0, "held": 0})
            tally["down"] += 1
            tally["held"] += bool(heartbeat.get("held"))
        cursor = page.get("next")
        if not cursor:
            return found


async def held_down(
    http: aiohttp.ClientSession, base: str, load: dict, silent_s: float, tail_s: float
) -> dict:
    """The heartbeats down in the API by role, once every held one pinged is down and held (or
    ``tail_s`` past the last one's deadline: its last ping + ``silent_s`` (a silent heartbeat's
    interval, grace and the allowed lateness) + :data:`HOLD_MARGIN_S`)."""
    held = {KIND_CODE[name]: name for name in HELD}
    pinged: dict[str, int] = {}
    last = 0.0
    for sent, kind, code in zip(load["sent"], load["kind"], load["code"], strict=True):
        if kind in held and code == 200:
            pinged[held[kind]] = pinged.get(held[kind], 0) + 1
            last = max(last, sent)
    if not pinged:
        return {"pinged": pinged, "found": await downs(http, base)}
    deadline = last + silent_s + HOLD_MARGIN_S
    await asyncio.sleep(max(0.0, deadline - time.time()))
    while True:
        found = await downs(http, base)
        if all(found.get(name, {}).get("held", 0) >= k for name, k in pinged.items()):
            break
        if time.time() > deadline + tail_s:
            break
        await asyncio.sleep(1)
    return {"pinged": pinged, "found": found}


def in_use(n: int) -> str:
    """The table's line: how many heartbeats use each feature."""
    fleet, instances = count(n, "fleet"), len(FLEET_INSTANCES)
    return (
        f"fleets {fleet:,} ({instances} instances each: {fleet * instances:,} pings a period); "
        f"windows {count(n, 'windowed'):,} + {count(n, 'held_window'):,} held; "
        f"dependencies {count(n, 'dependent'):,} + {count(n, 'held_dependency'):,} held; "
        f"baselines {count(n, 'baseline'):,}"
    )


async def took_effect(http: aiohttp.ClientSession, base: str, load: dict, monitor_id) -> dict:
    """The first fleet and the first baseline heartbeat the load pinged, as the API shows them at
    the end: how many of the fleet's instances checked in during the load (the instance reached
    the evaluator), and the baseline's usual run time (its rule is in force)."""
    first: dict[str, int] = {}
    wanted = {KIND_CODE["fleet"]: "fleet", KIND_CODE["baseline"]: "baseline"}
    for kind, beat, code in zip(load["kind"], load["beat"], load["code"], strict=True):
        if kind in wanted and code == 200:
            first.setdefault(wanted[kind], beat)
    out: dict = {}
    if "fleet" in first:
        mid = monitor_id(first["fleet"])
        async with http.get(f"{base}/api/v1/heartbeats/{mid}/instances") as r:
            items = (await r.json())["items"] if r.status == 200 else []
        since = _iso(load["start"])
        out["fleet"] = (mid, sum(1 for x in items if (x["last_ping"] or "") >= since), len(items))
    if "baseline" in first:
        mid = monitor_id(first["baseline"])
        async with http.get(f"{base}/api/v1/heartbeats/{mid}") as r:
            usual = (await r.json()).get("usual_run_time") if r.status == 200 else None
        out["baseline"] = (mid, usual)
    return out


def effect(seen: dict) -> str:
    """:func:`took_effect`'s findings, for the table."""
    parts = []
    if "fleet" in seen:
        mid, fresh, members = seen["fleet"]
        parts.append(f"{mid}: {fresh} of {members} instances checked in during the load")
    if "baseline" in seen:
        mid, usual = seen["baseline"]
        parts.append(
            f"{mid}: usual {usual['median_s']:.1f} s ({usual['low_s']:.0f}-{usual['high_s']:.0f} s, "
            f"{usual['runs']} runs)"
            if usual
            else f"{mid}: no usual run time"
        )
    return "; ".join(parts) or "none pinged"
