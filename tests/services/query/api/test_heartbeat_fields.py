"""Schedules, runs, recovery and reminders over real HTTP: the heartbeat fields (validated,
each error naming its field), ``next_expected_at`` for both kinds of heartbeat, the
``running`` status, and measured run durations in the check-ins, the export and the timings."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from services.evaluator.logic import PartitionEvaluator
from services.evaluator.schedule import next_run_ms
from services.evaluator.store import StateStore
from shared.events import Ping, RunMeasured
from tests.services.query.api.tenants import new_tenant
from tests.services.query.factories import a_ping

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = 1_750_000_000_000  # 2025-06-15T15:06:40Z
S, H = 1000, 3600_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def evaluate(api, monitor_id: str, *steps) -> None:
    """Steps through a real evaluator core; its snapshots published as the service does."""
    ev = PartitionEvaluator(0)
    ev.apply_config(api.ctx.monitors.get(monitor_id))
    for offset, step in enumerate(steps, 1):
        if isinstance(step, Ping):
            ev.apply_ping(step, offset)
        else:
            ev.advance(step)
    await StateStore(api.ctx.bus, api.ctx.topics).save(ev, len(steps))
    assert await api.ctx.statuses.sync()


def ping(tenant, hb: dict, at_ms: int, kind="success", rid=None) -> Ping:
    return Ping(id=f"{kind}{at_ms}", monitor_id=hb["id"], project_id=tenant.project_id, received_ms=at_ms,
                kind=kind, rid=rid)  # fmt: skip


# the fields ------------------------------------------------------------------------------
async def test_a_heartbeat_defaults_to_interval_mode_without_runs_rules_or_reminders(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "plain", "interval": "1d"})
    assert {k: hb[k] for k in ("interval", "schedule", "timezone", "max_runtime", "recovery_threshold",
                               "reminder_interval")} == {
        "interval": 86400, "schedule": None, "timezone": "UTC", "max_runtime": None, "recovery_threshold": 1,
        "reminder_interval": None,
    }  # fmt: skip


async def test_a_heartbeat_on_a_schedule_shows_its_fields_and_no_interval(api):
    tenant = await new_tenant(api)
    body = {"name": "nightly", "schedule": "30 2 * * *", "timezone": "Europe/Berlin", "grace": "30m",
            "max_runtime": "2h", "recovery_threshold": 2, "reminder_interval": "4h"}  # fmt: skip
    hb = await tenant.ok("POST", "/heartbeats", 201, json=body)
    assert (hb["schedule"], hb["timezone"], hb["interval"]) == ("30 2 * * *", "Europe/Berlin", None)
    assert (hb["max_runtime"], hb["recovery_threshold"], hb["reminder_interval"]) == (7200, 2, 14400)
    assert await tenant.ok("GET", f"/heartbeats/{hb['id']}") == hb


async def test_an_update_switches_between_schedule_and_interval_mode(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "job", "interval": "1h"})
    on_schedule = await tenant.ok("PATCH", f"/heartbeats/{hb['id']}", json={"schedule": "@hourly"})
    assert (on_schedule["schedule"], on_schedule["interval"]) == ("@hourly", None)
    on_interval = await tenant.ok("PATCH", f"/heartbeats/{hb['id']}", json={"interval": "15m"})
    assert (on_interval["schedule"], on_interval["interval"]) == (None, 900)
    cleared = await tenant.ok(
        "PATCH", f"/heartbeats/{hb['id']}", json={"max_runtime": "5m", "reminder_interval": None}
    )
    assert (cleared["max_runtime"], cleared["reminder_interval"]) == (300, None)


@pytest.mark.parametrize(("body", "field"), [
    ({"schedule": "0 2 * * *", "interval": 3600}, "schedule"),  # one or the other
    ({"schedule": "0 0 30 2 *"}, "schedule"),  # never runs
    ({"schedule": "*/5 * * *"}, "schedule"),
    ({"schedule": "0 0 * * * *"}, "schedule"),
    ({"schedule": "@reboot"}, "schedule"),
    ({"schedule": 5}, "schedule"),
    ({"schedule": "@daily", "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": None}, "timezone"),
    ({"max_runtime": 0}, "max_runtime"),
    ({"max_runtime": "soon"}, "max_runtime"),
    ({"recovery_threshold": 0}, "recovery_threshold"),
    ({"recovery_threshold": 11}, "recovery_threshold"),
    ({"recovery_threshold": True}, "recovery_threshold"),
    ({"reminder_interval": "30s"}, "reminder_interval"),
    ({"reminder_interval": "400d"}, "reminder_interval"),
])  # fmt: skip
async def test_a_bad_field_is_refused_naming_it(api, body, field):
    tenant = await new_tenant(api)
    period = {} if "schedule" in body else {"interval": "1h"}
    status, answer = await tenant.call("POST", "/heartbeats", json={"name": "x", **period, **body})
    assert (status, answer["field"]) == (400, field), answer
    assert answer["error"].startswith(f"{field}: ")
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "y", "interval": "1h"})
    status, answer = await tenant.call("PATCH", f"/heartbeats/{hb['id']}", json=body)
    assert (status, answer["field"]) == (400, field), answer


@pytest.mark.parametrize("body", [
    {"name": "x"}, {"name": "x", "interval": None}, {"name": "x", "interval": ""}, {"name": "x", "interval": "  "},
    {"name": "x", "schedule": None}, {"name": "x", "grace": "5m"},
])  # fmt: skip
async def test_a_new_heartbeat_needs_an_interval_or_a_schedule_and_is_told_what_to_type(api, body):
    tenant = await new_tenant(api)

    status, answer = await tenant.call("POST", "/heartbeats", json=body)

    assert (status, answer["field"]) == (400, "interval"), answer
    assert answer["error"] == 'interval: required (e.g. "5m", "1h" or seconds), unless a schedule is given'
    listed = await tenant.ok("GET", "/heartbeats")
    assert listed["heartbeats"] == []  # nothing made with a default period


@pytest.mark.parametrize("field", ["grace", "max_runtime", "reminder_interval"])
async def test_an_empty_duration_is_refused_saying_what_to_type(api, field):
    tenant = await new_tenant(api)

    status, answer = await tenant.call(
        "POST", "/heartbeats", json={"name": "x", "interval": "1h", field: " "}
    )

    assert (status, answer["field"]) == (400, field), answer
    assert "empty" in answer["error"] and "5m" in answer["error"] and "1h" in answer["error"]


async def test_a_new_heartbeat_on_a_schedule_needs_no_interval_and_an_update_none_either(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "nightly", "schedule": "@daily"})
    renamed = await tenant.ok("PATCH", f"/heartbeats/{hb['id']}", json={"name": "nightly db"})
    assert (renamed["name"], renamed["schedule"], renamed["interval"]) == ("nightly db", "@daily", None)
    status, answer = await tenant.call("PATCH", f"/heartbeats/{hb['id']}", json={"interval": ""})
    assert (status, answer["field"]) == (400, "interval") and "5m" in answer["error"]


# next expected, running ------------------------------------------------------------------
async def test_a_new_heartbeat_on_a_schedule_shows_its_next_run(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "n", "schedule": "0 9 * * *",
                                                             "timezone": "America/New_York"})  # fmt: skip
    shown = datetime.fromisoformat(hb["next_expected_at"].replace("Z", "+00:00"))
    assert hb["next_expected_at"].endswith("Z") and shown.minute == 0
    assert shown.hour in (13, 14)  # 09:00 in New York: 13:00 UTC in summer, 14:00 in winter
    assert hb["next_expected_at"] == iso(
        next_run_ms("0 9 * * *", "America/New_York", int(time.time() * 1000))
    )


async def test_a_heartbeat_on_a_schedule_expects_the_next_run_after_its_last_check_in(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "n", "schedule": "30 2 * * *",
                                                             "timezone": "Europe/Berlin", "grace": 600})  # fmt: skip
    await evaluate(api, hb["id"], ping(tenant, hb, T0))  # 2025-06-15 17:06 in Berlin
    shown = await tenant.ok("GET", f"/heartbeats/{hb['id']}")
    assert shown["next_expected_at"] == "2025-06-16T00:30:00.000Z"  # 02:30 summer time
    assert shown["last_checkin_at"] == iso(T0) and shown["status"] == "up"


async def test_a_heartbeat_on_an_interval_expects_one_interval_after_its_last_check_in(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "n", "interval": "1h", "grace": 60})
    await evaluate(api, hb["id"], ping(tenant, hb, T0))
    assert (await tenant.ok("GET", f"/heartbeats/{hb['id']}"))["next_expected_at"] == iso(T0 + H)


async def test_a_run_in_progress_shows_as_running_and_is_counted_and_filtered(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "n", "interval": "1h"})
    await evaluate(api, hb["id"], ping(tenant, hb, T0), ping(tenant, hb, T0 + H, "start"))
    shown = await tenant.ok("GET", f"/heartbeats/{hb['id']}")
    assert (shown["status"], shown["status_reason"], shown["status_since"]) == (
        "running",
        "run started",
        iso(T0 + H),
    )
    assert shown["next_expected_at"] == iso(T0 + 2 * H)  # a start opens the next window
    listed = await tenant.ok("GET", "/heartbeats", params={"status": "running"})
    assert [h["id"] for h in listed["heartbeats"]] == [hb["id"]] and listed["counts"]["running"] == 1


# measured durations in history -------------------------------------------------------------
def measured(tenant, hb: str, start: Ping, end: Ping) -> RunMeasured:
    return RunMeasured(id=f"{hb}:run:{end.id}", monitor_id=hb, project_id=tenant.project_id, ping_id=end.id,
                       rid=end.rid or "", started_ms=start.received_ms, ended_ms=end.received_ms,
                       duration_s=(end.received_ms - start.received_ms) / 1000)  # fmt: skip


async def a_measured_history(api):
    """Three runs an hour apart, each started then ended: 60 s, 120 s (a failure), and one
    whose job reported 5 s itself (so nothing measured); then a success without a start."""
    tenant = await new_tenant(api)
    hb = (await tenant.ok("POST", "/heartbeats", 201, json={"name": "timed", "interval": "1d"}))["id"]
    day = 24 * H
    t = int(time.time() * 1000) // day * day - day + H  # 01:00 yesterday (UTC): the runs fill one day
    events = []
    for i, (seconds, kind, reported) in enumerate(
        ((60, "success", None), (120, "fail", None), (9, "success", 5.0))
    ):
        start = a_ping(tenant.project_id, hb, t + i * H, kind="start", rid=f"r{i}")
        end = a_ping(
            tenant.project_id, hb, t + i * H + seconds * S, kind=kind, rid=f"r{i}", duration_s=reported
        )
        events += [start, end] + ([measured(tenant, hb, start, end)] if reported is None else [])
    events.append(a_ping(tenant.project_id, hb, t + 3 * H))
    await api.ctx.store.insert_events(events, f"t-measured-{time.monotonic_ns()}")
    await api.ctx.store.insert_events(
        events, f"t-measured-again-{time.monotonic_ns()}"
    )  # a replay, batched anew
    return tenant, hb, t


async def test_each_end_of_a_run_carries_its_measured_duration(api):
    tenant, hb, _ = await a_measured_history(api)
    page = await tenant.ok("GET", f"/heartbeats/{hb}/checkins")
    shown = [(c["kind"], c["duration"], c["measured_duration"]) for c in page["checkins"]]
    assert shown == [
        ("success", None, None),  # no start: just a success
        ("success", 5.0, None), ("start", None, None),  # the job's own duration stands
        ("fail", None, 120.0), ("start", None, None),
        ("success", None, 60.0), ("start", None, None),
    ]  # fmt: skip
    # every page on its own finds its measurements
    first = await tenant.ok("GET", f"/heartbeats/{hb}/checkins", params={"limit": "4"})
    rest = await tenant.ok(
        "GET", f"/heartbeats/{hb}/checkins", params={"limit": "4", "before": first["next"]}
    )
    assert [c["measured_duration"] for c in first["checkins"] + rest["checkins"]] == [s[2] for s in shown]


async def test_the_export_carries_measured_durations(api):
    tenant, hb, _ = await a_measured_history(api)
    status, text = await tenant.call("GET", f"/heartbeats/{hb}/export", params={"format": "jsonl"})
    assert status == 200
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["measured_duration"] for r in rows] == [None, 60.0, None, 120.0, None, None, None]


async def test_the_timings_use_measured_durations_else_reported_ones(api):
    tenant, hb, t = await a_measured_history(api)
    body = await tenant.ok("GET", f"/heartbeats/{hb}/timings",
                           params={"from": str(t - H), "to": str(t + 4 * H), "bucket": "1d"})  # fmt: skip
    [day] = body["points"]
    assert (day["max_duration_s"], day["avg_duration_s"]) == (120.0, pytest.approx((60 + 120 + 5) / 3))
    assert day["fails"] == 1
