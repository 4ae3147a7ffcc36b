"""Muting, dependencies and flapping as heartbeat fields over real HTTP: what a body sets, what
the answer shows (with ``flapping_since`` and ``held`` from the evaluator's snapshots), each
refusal naming its field, and the dependency cycles the API refuses, by id, by tag, or by a
change of tags, within one project only."""

from __future__ import annotations

import pytest

from services.evaluator.logic import PartitionEvaluator
from services.evaluator.store import StateStore
from shared.events import MUTED_FOREVER_MS, Ping
from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")

S = 1000
HOLDING = ("muted_until", "depends_on", "depends_on_tags", "flap_changes", "flap_window", "flap_stable",
           "flapping_since", "held")  # fmt: skip


async def heartbeat(tenant, name: str, **fields) -> dict:
    return await tenant.ok("POST", "/heartbeats", 201, json={"name": name, "interval": 60, **fields})


async def refused(tenant, method: str, path: str, body: dict) -> tuple[str, str]:
    status, answer = await tenant.call(method, path, json=body)
    assert status == 400, (body, answer)
    return answer["field"], answer["error"]


# the fields ------------------------------------------------------------------------------
async def test_a_new_heartbeat_is_not_muted_depends_on_nothing_and_flaps_by_the_defaults(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant, "plain")
    assert {k: hb[k] for k in HOLDING} == {
        "muted_until": None, "depends_on": [], "depends_on_tags": [], "flap_changes": None, "flap_window": None,
        "flap_stable": None, "flapping_since": None, "held": None,
    }  # fmt: skip


async def test_it_mutes_until_a_time_or_for_ever_and_null_unmutes(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant, "job", muted_until="2030-01-31T06:00:00+01:00")
    assert hb["muted_until"] == "2030-01-31T05:00:00.000Z"
    assert api.ctx.monitors[hb["id"]].muted_until_ms == 1_896_066_000_000
    path = f"/heartbeats/{hb['id']}"
    assert (await tenant.ok("PATCH", path, json={"muted_until": "forever"}))["muted_until"] == "forever"
    assert api.ctx.monitors[hb["id"]].muted_until_ms == MUTED_FOREVER_MS
    assert (await tenant.ok("PATCH", path, json={"name": "renamed"}))["muted_until"] == "forever"
    assert (await tenant.ok("PATCH", path, json={"muted_until": None}))["muted_until"] is None
    assert api.ctx.monitors[hb["id"]].muted_until_ms is None


@pytest.mark.parametrize("value", ["tomorrow", "2030-13-01", "1896066000000", "forever ", 5, True])
async def test_a_mute_that_is_neither_a_time_nor_forever_is_refused(api, value):
    tenant = await new_tenant(api)
    field, error = await refused(
        tenant, "POST", "/heartbeats", {"name": "n", "interval": 60, "muted_until": value}
    )
    assert field == "muted_until" and error


async def test_flapping_settings_take_durations_and_null_restores_the_defaults(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant, "job", flap_changes=0, flap_window="2h", flap_stable=60)
    assert (hb["flap_changes"], hb["flap_window"], hb["flap_stable"]) == (0, 7200, 60)
    cfg = api.ctx.monitors[hb["id"]]
    assert (cfg.flap_changes, cfg.flap_window_s, cfg.flap_stable_s) == (0, 7200, 60)
    back = await tenant.ok(
        "PATCH",
        f"/heartbeats/{hb['id']}",
        json={"flap_changes": None, "flap_window": None, "flap_stable": "7d"},
    )
    assert (back["flap_changes"], back["flap_window"], back["flap_stable"]) == (None, None, 7 * 86400)


@pytest.mark.parametrize(
    ("field", "value"),
    [("flap_changes", -1), ("flap_changes", 101), ("flap_changes", 2.5), ("flap_window", 9),
     ("flap_window", "8d"), ("flap_stable", "5s"), ("flap_stable", "soon"), ("flap_window", 1.5)],
)  # fmt: skip
async def test_flapping_settings_out_of_range_are_refused_naming_the_field(api, field, value):
    tenant = await new_tenant(api)
    assert (await refused(tenant, "POST", "/heartbeats", {"name": "n", "interval": 60, field: value}))[
        0
    ] == field


async def test_dependencies_are_kept_once_each(api):
    tenant = await new_tenant(api)
    db = await heartbeat(tenant, "db", tags=["db"])
    job = await heartbeat(
        tenant, "job", depends_on=[db["id"], db["id"]], depends_on_tags=["db", "db", "queue"]
    )
    assert (job["depends_on"], job["depends_on_tags"]) == ([db["id"]], ["db", "queue"])
    assert api.ctx.monitors[job["id"]].depends_on == [db["id"]]


async def test_a_dependency_must_be_a_heartbeat_of_the_same_project_and_not_itself(api):
    tenant, other = await new_tenant(api), await new_tenant(api)
    theirs = await heartbeat(other, "theirs")
    mine = await heartbeat(tenant, "mine")
    for body in ({"depends_on": ["hb_0000000000000000"]}, {"depends_on": [theirs["id"]]}):
        field, error = await refused(tenant, "PATCH", f"/heartbeats/{mine['id']}", body)
        assert field == "depends_on" and "unknown heartbeat id" in error
    field, error = await refused(tenant, "PATCH", f"/heartbeats/{mine['id']}", {"depends_on": [mine["id"]]})
    assert (field, error) == ("depends_on", "depends_on: a heartbeat cannot depend on itself")


async def test_too_many_dependencies_or_unsafe_tags_are_refused(api):
    tenant = await new_tenant(api)
    base = {"name": "n", "interval": 60}
    assert (await refused(tenant, "POST", "/heartbeats", {**base, "depends_on": ["x"] * 51}))[
        0
    ] == "depends_on"
    many = [f"t{n}" for n in range(21)]
    assert (await refused(tenant, "POST", "/heartbeats", {**base, "depends_on_tags": many}))[
        0
    ] == "depends_on_tags"
    bad = {**base, "depends_on_tags": ["a\u202eb"]}
    assert (await refused(tenant, "POST", "/heartbeats", bad))[0] == "depends_on_tags"


async def test_a_dependency_deleted_since_it_was_given_does_not_block_saving_the_rest(api):
    tenant = await new_tenant(api)
    db = await heartbeat(tenant, "db")
    job = await heartbeat(tenant, "job", depends_on=[db["id"]])
    await tenant.ok("DELETE", f"/heartbeats/{db['id']}", 204)
    saved = await tenant.ok(
        "PATCH", f"/heartbeats/{job['id']}", json={"name": "job 2", "depends_on": [db["id"]]}
    )
    assert saved["depends_on"] == [db["id"]]


# cycles ----------------------------------------------------------------------------------
async def test_a_cycle_by_id_is_refused_naming_depends_on_and_the_heartbeats_on_it(api):
    tenant = await new_tenant(api)
    a = await heartbeat(tenant, "a")
    b = await heartbeat(tenant, "b", depends_on=[a["id"]])
    c = await heartbeat(tenant, "c", depends_on=[b["id"]])
    field, error = await refused(tenant, "PATCH", f"/heartbeats/{a['id']}", {"depends_on": [c["id"]]})
    assert (field, error) == (
        "depends_on",
        "depends_on: would make a cycle of dependencies: 'a' -> 'c' -> 'b' -> 'a'",
    )
    assert (await tenant.ok("GET", f"/heartbeats/{a['id']}"))["depends_on"] == []  # nothing saved


async def test_a_cycle_through_a_tag_is_refused_naming_depends_on_tags(api):
    tenant = await new_tenant(api)
    db = await heartbeat(tenant, "db", tags=["db"])
    app = await heartbeat(tenant, "app", depends_on_tags=["db"])
    field, error = await refused(tenant, "PATCH", f"/heartbeats/{db['id']}", {"depends_on": [app["id"]]})
    assert (field, error) == (
        "depends_on",
        "depends_on: would make a cycle of dependencies: 'db' -> 'app' -> (by tag 'db') 'db'",
    )
    job = await heartbeat(tenant, "job", tags=["jobs"], depends_on=[db["id"]])
    field, error = await refused(tenant, "PATCH", f"/heartbeats/{db['id']}", {"depends_on_tags": ["jobs"]})
    assert field == "depends_on_tags" and f"'db' -> (by tag 'jobs') '{job['name']}' -> 'db'" in error


async def test_a_change_of_tags_that_closes_a_cycle_is_refused_naming_tags(api):
    tenant = await new_tenant(api)
    b = await heartbeat(tenant, "b", depends_on_tags=["db"])
    a = await heartbeat(tenant, "a", depends_on=[b["id"]])
    field, error = await refused(tenant, "PATCH", f"/heartbeats/{a['id']}", {"tags": ["web", "db"]})
    assert (field, error) == (
        "tags",
        "tags: would make a cycle of dependencies: 'a' -> 'b' -> (by tag 'db') 'a'",
    )
    # Created so, it is the dependency that is named (both are new).
    field, _ = await refused(tenant, "POST", "/heartbeats",
                             {"name": "c", "interval": 60, "tags": ["db"], "depends_on": [b["id"]]})  # fmt: skip
    assert field == "depends_on"


async def test_depending_on_a_tag_it_carries_itself_is_no_cycle(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant, "replica", tags=["db"], depends_on_tags=["db"])
    assert hb["depends_on_tags"] == ["db"]


async def test_tags_of_another_project_make_no_cycle(api):
    tenant, other = await new_tenant(api), await new_tenant(api)
    await heartbeat(other, "theirs", tags=["db"], depends_on_tags=["db", "app"])
    mine = await heartbeat(tenant, "mine", tags=["app"], depends_on_tags=["db"])
    assert mine["depends_on_tags"] == ["db"]


async def test_two_changes_at_once_cannot_close_a_cycle_together(api):
    import asyncio

    tenant = await new_tenant(api)
    a, b = await heartbeat(tenant, "a"), await heartbeat(tenant, "b")
    results = await asyncio.gather(
        tenant.call("PATCH", f"/heartbeats/{a['id']}", json={"depends_on": [b["id"]]}),
        tenant.call("PATCH", f"/heartbeats/{b['id']}", json={"depends_on": [a["id"]]}),
    )
    assert sorted(status for status, _ in results) == [200, 400]


# from the evaluator's snapshots ---------------------------------------------------------
async def snapshot(api, *monitor_ids: str, steps=()) -> None:
    """Run a real evaluator core over the heartbeats and publish its snapshots, as the service does."""
    ev = PartitionEvaluator(0)
    for monitor_id in monitor_ids:
        ev.apply_config(api.ctx.monitors[monitor_id])
    for offset, step in enumerate(steps, 1):
        ev.apply_ping(step, offset) if isinstance(step, Ping) else ev.advance(step)
    await StateStore(api.ctx.bus, api.ctx.topics).save(ev, len(steps))
    assert await api.ctx.statuses.sync()


def ping(tenant, hb: dict, at_ms: int) -> Ping:
    return Ping(id=f"{hb['id']}{at_ms}", monitor_id=hb["id"], project_id=tenant.project_id, received_ms=at_ms,
                kind="success")  # fmt: skip


async def test_it_says_why_an_alert_of_it_is_held_and_since_when_it_flaps(api):
    tenant = await new_tenant(api)
    muted = await heartbeat(tenant, "muted", grace=0, muted_until="forever")
    flappy = await heartbeat(tenant, "flappy", grace=0, flap_changes=1)
    steps: list = [ping(tenant, muted, 0), ping(tenant, flappy, 0), 61 * S]  # both down at 60 s
    steps += [ping(tenant, flappy, 70 * S), 200 * S]  # flappy up again: its second change
    await snapshot(api, muted["id"], flappy["id"], steps=steps)
    shown = await tenant.ok("GET", f"/heartbeats/{muted['id']}")
    assert (shown["status"], shown["held"]) == ("down", "muted until 9999-12-31T23:59:59.999Z")
    shown = await tenant.ok("GET", f"/heartbeats/{flappy['id']}")
    assert (shown["flapping_since"], shown["held"]) == ("1970-01-01T00:01:10.000Z", None)
