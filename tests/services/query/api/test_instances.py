"""A fleet's instances over real HTTP: the list (by name, paged, filtered by status, with the
fleet's figures as the evaluator last judged them), taking one out (an ``InstanceRemoved`` on the
``pings`` topic, keyed by the heartbeat), and the figures the heartbeat's answer shows of its
rules (``instances_summary``, ``usual_run_time``, ``failure_rate_now``), all from the evaluator's
snapshots on the real bus."""

from __future__ import annotations

import struct

import pytest

from shared.events import InstanceRemoved, MonitorSnapshot, decode, encode
from shared.rules import BASELINE_MIN_RUNS
from shared.snapshots import DURATION_FORMAT, STATE_VERSION, Extra, Fleet, MonitorState, encode_state
from tests.services.query.api.tenants import new_tenant
from tests.services.query.api.test_openapi import assert_declared

pytestmark = pytest.mark.asyncio(loop_scope="session")

S = 1000
JUDGED = 600 * S


async def fleet_heartbeat(tenant, **fleet) -> dict:
    body = {"name": "fleet", "interval": 60, "fleet": {"min_instances": 2, **fleet}}
    return await tenant.ok("POST", "/heartbeats", 201, json=body)


async def saved(api, tenant, hb: dict, **extra) -> None:
    """The heartbeat's snapshot as the evaluator writes it, with these ``Extra`` fields."""
    state = MonitorState(
        monitor_id=hb["id"], project_id=tenant.project_id, name=hb["name"], interval_ms=60 * S, grace_ms=0,
        max_problems=1, channels=(), tags=(), revision=1, status="up", last_ping_ms=JUDGED, extra=Extra(**extra),
    )  # fmt: skip
    snapshot = MonitorSnapshot(monitor_id=hb["id"], partition=0, offset=1, state=encode_state(state),
                               state_v=STATE_VERSION)  # fmt: skip
    await api.ctx.bus.publish(api.ctx.topics.evaluator_state, hb["id"], encode(snapshot))
    assert await api.ctx.statuses.sync()


def fleet(seen: dict[str, int], missing: tuple[str, ...] = (), members: int | None = None, required: int = 2):
    """A fleet whose last window judged (at ``JUDGED``) found ``missing`` away: it opened at the
    newest of their check-ins before then (those that pinged after it was judged are back)."""
    opened = max((seen[name] for name in missing if seen[name] <= JUDGED), default=0)
    assert all(last > opened for name, last in seen.items() if name not in missing and last)
    members = len(seen) if members is None else members
    return Fleet(seen=seen, judged_ms=JUDGED, members=members, required=required, opened_ms=opened,
                 reported=members - len(missing))  # fmt: skip


def instances_path(hb: dict, **query) -> str:
    return f"/heartbeats/{hb['id']}/instances" + (
        "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    )


# the list --------------------------------------------------------------------------------
async def test_it_lists_each_instance_by_name_with_its_last_ping_its_status_and_whether_declared(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant, instances=["db-1", "web-9"])
    seen = {"web-2": 590 * S, "web-1": 700 * S, "web-3": 100 * S, "db-1": 0}
    await saved(api, tenant, hb, fleet=fleet(seen, missing=("db-1", "web-3"), required=3))
    page = await tenant.ok("GET", instances_path(hb))
    assert page["items"] == [
        {"name": "db-1", "last_ping": None, "status": "never_reported", "declared": True},
        {"name": "web-1", "last_ping": "1970-01-01T00:11:40.000Z", "status": "reporting", "declared": False},
        {"name": "web-2", "last_ping": "1970-01-01T00:09:50.000Z", "status": "reporting", "declared": False},
        {"name": "web-3", "last_ping": "1970-01-01T00:01:40.000Z", "status": "missing", "declared": False},
        {"name": "web-9", "last_ping": None, "status": "never_reported", "declared": True},  # not saved yet
    ]
    assert (page["reported"], page["members"], page["required"]) == (2, 4, 3)
    assert (page["judged_at"], page["next_cursor"]) == ("1970-01-01T00:10:00.000Z", None)
    assert_declared("GET", "/heartbeats/{id}/instances", 200, page)


async def test_a_missing_instance_that_pinged_after_the_window_was_judged_is_reporting_again(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    await saved(api, tenant, hb, fleet=fleet({"a": JUDGED + 5 * S, "b": 10 * S}, missing=("a", "b")))
    page = await tenant.ok("GET", instances_path(hb))
    assert [item["status"] for item in page["items"]] == ["reporting", "missing"]


async def test_ten_thousand_instances_come_in_pages_by_name_none_twice_none_left_out(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    names = [f"pod-{n:05}" for n in range(10_000)]
    await saved(api, tenant, hb, fleet=fleet({name: JUDGED for name in reversed(names)}))
    listed, cursor, pages = [], None, 0
    while True:
        page = await tenant.ok(
            "GET", instances_path(hb, limit=1000, **({"cursor": cursor} if cursor else {}))
        )
        listed += [item["name"] for item in page["items"]]
        pages, cursor = pages + 1, page["next_cursor"]
        if cursor is None:
            break
    assert listed == names and pages == 10


async def test_the_status_filter_pages_through_only_the_instances_in_that_status(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    seen = {f"h{n:02}": (10 * S if n % 3 == 0 else JUDGED) for n in range(30)}
    missing = tuple(name for name, last in seen.items() if last < JUDGED)
    await saved(api, tenant, hb, fleet=fleet(seen, missing=missing))
    first = await tenant.ok("GET", instances_path(hb, status="missing", limit=6))
    assert [i["name"] for i in first["items"]] == ["h00", "h03", "h06", "h09", "h12", "h15"]
    rest = await tenant.ok("GET", instances_path(hb, status="missing", limit=6, cursor=first["next_cursor"]))
    assert [i["name"] for i in rest["items"]] == ["h18", "h21", "h24", "h27"] and rest["next_cursor"] is None
    assert rest["reported"] == 20


async def test_a_heartbeat_whose_fleet_was_never_judged_lists_its_declared_instances_and_no_figures(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant, instances=["b", "a"])
    page = await tenant.ok("GET", instances_path(hb))
    assert [(i["name"], i["status"]) for i in page["items"]] == [
        ("a", "never_reported"),
        ("b", "never_reported"),
    ]
    assert (page["reported"], page["members"], page["required"], page["judged_at"]) == (0, 0, 0, None)
    assert (await tenant.ok("GET", f"/heartbeats/{hb['id']}"))["instances_summary"] is None


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"),
                                              ("status=gone", "status")])  # fmt: skip
async def test_a_bad_query_is_refused_naming_the_parameter(api, query, field):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    status, answer = await tenant.call("GET", f"/heartbeats/{hb['id']}/instances?{query}")
    assert (status, answer["field"]) == (400, field)


# taking one out --------------------------------------------------------------------------
async def published_removals(api, monitor_id: str) -> list[InstanceRemoved]:
    records = await api.ctx.bus.read((api.ctx.topics.pings, 0), 0, 1_000_000)
    return [
        event for record in records if record.key == monitor_id
        and isinstance(event := decode(record.value), InstanceRemoved)
    ]  # fmt: skip


async def test_taking_an_instance_out_tells_the_evaluator_on_the_pings_topic_keyed_by_the_heartbeat(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    await saved(api, tenant, hb, fleet=fleet({"web 1/a": JUDGED, "web-2": JUDGED}))
    status, body = await tenant.call("DELETE", f"/heartbeats/{hb['id']}/instances/web%201%2Fa")
    assert status == 202, body
    [removed] = await published_removals(api, hb["id"])
    assert (removed.monitor_id, removed.project_id, removed.instance) == (
        hb["id"],
        tenant.project_id,
        "web 1/a",
    )
    assert removed.at_ms > 0


async def test_an_unknown_instance_is_404_and_a_declared_one_is_taken_out_of_the_fleet_field_instead(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant, instances=["db-1"])
    await saved(api, tenant, hb, fleet=fleet({"db-1": JUDGED, "web-1": JUDGED}))
    status, body = await tenant.call("DELETE", f"/heartbeats/{hb['id']}/instances/web-7")
    assert (status, body["error"]) == (404, "instance not found")
    status, body = await tenant.call("DELETE", f"/heartbeats/{hb['id']}/instances/db-1")
    assert (status, body["field"]) == (400, "name") and "fleet.instances" in body["error"]
    assert await published_removals(api, hb["id"]) == []


async def test_a_read_only_key_may_list_instances_but_not_take_one_out(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    await saved(api, tenant, hb, fleet=fleet({"web-1": JUDGED}))
    key, _ = await tenant.new_key(read_only=True)
    reader = tenant.with_key(key)
    assert [i["name"] for i in (await reader.ok("GET", instances_path(hb)))["items"]] == ["web-1"]
    status, _ = await reader.call("DELETE", f"/heartbeats/{hb['id']}/instances/web-1")
    assert status == 403
    assert await published_removals(api, hb["id"]) == []


async def test_another_projects_heartbeat_is_404_for_both_routes(api):
    tenant, other = await new_tenant(api), await new_tenant(api)
    theirs = await fleet_heartbeat(other)
    await saved(api, other, theirs, fleet=fleet({"web-1": JUDGED}))
    assert (await tenant.call("GET", instances_path(theirs)))[0] == 404
    assert (await tenant.call("DELETE", f"/heartbeats/{theirs['id']}/instances/web-1"))[0] == 404
    assert await published_removals(api, theirs["id"]) == []


# what the heartbeat's answer shows -------------------------------------------------------
async def test_the_heartbeat_shows_its_fleet_as_last_judged_naming_at_most_twenty_missing(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant, min_percent=90)
    seen = {f"pod-{n:02}": (JUDGED if n >= 25 else 0) for n in range(40)}
    missing = tuple(sorted(name for name, last in seen.items() if not last))
    await saved(api, tenant, hb, fleet=fleet(seen, missing=missing, required=36))
    shown = await tenant.ok("GET", f"/heartbeats/{hb['id']}")
    assert shown["instances_summary"] == {
        "reported": 15, "members": 40, "required": 36, "missing": [f"pod-{n:02}" for n in range(20)],
        "judged_at": "1970-01-01T00:10:00.000Z",
    }  # fmt: skip
    assert_declared("GET", "/heartbeats/{id}", 200, shown)


def packed(*durations_ms: int) -> bytes:
    return b"".join(struct.pack(DURATION_FORMAT, d) for d in durations_ms)


async def test_the_usual_run_time_shows_once_enough_runs_were_measured(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "backup", "interval": 60,
                                                             "run_time": {"baseline": "alert"}})  # fmt: skip
    await saved(api, tenant, hb, durations=packed(*[40 * S] * (BASELINE_MIN_RUNS - 1)))
    assert (await tenant.ok("GET", f"/heartbeats/{hb['id']}"))["usual_run_time"] is None
    await saved(api, tenant, hb, durations=packed(*[40 * S] * BASELINE_MIN_RUNS))
    shown = await tenant.ok("GET", f"/heartbeats/{hb['id']}")
    assert shown["usual_run_time"] == {
        "median_s": 40.0,
        "low_s": 20.0,
        "high_s": 80.0,
        "runs": BASELINE_MIN_RUNS,
    }
    assert_declared("GET", "/heartbeats/{id}", 200, shown)


async def test_the_failure_rate_now_counts_the_last_runs_within_the_window(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "job", "interval": 60,
                                                             "failure_rate": {"percent": 30, "runs": 4}})  # fmt: skip
    await saved(api, tenant, hb, outcomes=(-60 * S, 120 * S, -180 * S, 240 * S, -300 * S))
    assert (await tenant.ok("GET", f"/heartbeats/{hb['id']}"))["failure_rate_now"] == {
        "failed": 2, "runs": 4, "percent": 50,
    }  # fmt: skip
    await tenant.ok(
        "PATCH", f"/heartbeats/{hb['id']}", json={"failure_rate": {"percent": 30, "window": "2m"}}
    )
    assert (await tenant.ok("GET", f"/heartbeats/{hb['id']}"))["failure_rate_now"] == {
        "failed": 2, "runs": 3, "percent": 66,
    }  # fmt: skip


async def test_what_a_rule_learned_is_not_shown_once_the_rule_is_off(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    await saved(api, tenant, hb, fleet=fleet({"a": JUDGED}), outcomes=(-60 * S,))
    shown = await tenant.ok("PATCH", f"/heartbeats/{hb['id']}", json={"fleet": None})
    assert (shown["instances_summary"], shown["failure_rate_now"]) == (None, None)


async def test_the_list_of_heartbeats_shows_the_figures_too(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    await saved(api, tenant, hb, fleet=fleet({"a": JUDGED, "b": 0}, missing=("b",)))
    [listed] = (await tenant.ok("GET", "/heartbeats"))["heartbeats"]
    assert listed["instances_summary"]["missing"] == ["b"]
