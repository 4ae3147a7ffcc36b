"""Maintenance windows over the API: create one-off and recurring windows, list them with the
occurrence on now and the next, change, end early and delete them; every refusal a 400 naming
the field; another project's window a 404; a read-only key only reads. Heartbeats say
``maintenance_until`` while a window covers them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared.clock import iso_ms, now_ms
from shared.events import MaintenanceWindow, decode, encode
from tests.polling import eventually
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.api.test_constraints import check_body, served

pytestmark = pytest.mark.asyncio(loop_scope="session")

M = 60_000
H = 60 * M


def at(ms: int) -> str:
    return iso_ms(ms)


def one_off(**fields) -> dict:
    """A window on from a minute ago for an hour, over the whole project."""
    now = now_ms()
    return {"name": "db upgrade", "starts_at": at(now - M), "ends_at": at(now + H),
            "covering": {"whole_project": True}, **fields}  # fmt: skip


async def heartbeat(tenant: Tenant, name: str = "job", **fields) -> dict:
    return await tenant.ok("POST", "/heartbeats", 201, json={"name": name, "interval": 3600, **fields})


async def published(api, window_id: str) -> list[MaintenanceWindow]:
    """Every record of the window on the ``maintenance`` topic, oldest first."""
    reader = api.ctx.bus.reader([(api.ctx.topics.maintenance, 0)])
    await reader.start()
    found = []
    try:
        while not await reader.caught_up():
            for record in await reader.poll(max_records=10_000, timeout_ms=100):
                event = decode(record.value)
                if isinstance(event, MaintenanceWindow) and event.id == window_id:
                    found.append(event)
    finally:
        await reader.close()
    return found


def refused(status: int, body, field: str) -> None:
    assert (status, body.get("field")) == (400, field), body
    assert "\n" not in body["error"]


# creating and listing ------------------------------------------------------------------------
async def test_it_creates_a_one_off_window_that_is_on_now(api):
    tenant = await new_tenant(api)
    body = one_off()
    made = await tenant.ok("POST", "/maintenance", 201, json=body)
    assert made["name"] == "db upgrade" and made["schedule"] is None and made["duration"] is None
    assert made["starts_at"] == body["starts_at"] and made["ends_at"] == body["ends_at"]
    assert made["active_until"] == body["ends_at"] and made["next_start"] is None
    assert made["covering"] == {"heartbeats": [], "tags": [], "whole_project": True}
    listed = await tenant.ok("GET", "/maintenance")
    assert [w["id"] for w in listed["windows"]] == [made["id"]]
    assert await tenant.ok("GET", f"/maintenance/{made['id']}") == listed["windows"][0]
    [record] = await published(api, made["id"])
    assert (record.project_id, record.revision, record.whole_project) == (tenant.project_id, 1, True)


async def test_a_window_to_come_says_when_it_starts(api):
    tenant = await new_tenant(api)
    now = now_ms()
    made = await tenant.ok(
        "POST", "/maintenance", 201, json=one_off(starts_at=at(now + H), ends_at=at(now + 2 * H))
    )
    assert made["active_until"] is None and made["next_start"] == at(now + H)


async def test_a_recurring_window_reads_its_schedule_in_its_time_zone(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/maintenance", 201, json={
        "name": "nightly", "schedule": "30 2 * * *", "duration": "1h", "timezone": "Europe/Berlin",
        "covering": {"tags": ["db"]},
    })  # fmt: skip
    assert (made["schedule"], made["duration"], made["timezone"]) == ("30 2 * * *", 3600, "Europe/Berlin")
    assert made["ends_at"] is None
    start = datetime.fromisoformat(made["next_start"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (start.hour, start.minute) == (2, 30)
    assert datetime.fromisoformat(made["next_start"]).timestamp() * 1000 > now_ms()


async def test_a_recurring_window_on_now_says_until_when(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/maintenance", 201, json={
        "name": "always", "schedule": "* * * * *", "duration": "1m", "starts_at": at(now_ms() - 5 * M),
        "covering": {"whole_project": True},
    })  # fmt: skip
    until = datetime.fromisoformat(made["active_until"]).timestamp() * 1000
    assert 0 < until - now_ms() <= M and made["next_start"] is not None


# refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"covering": {}}, "covering"),
        ({"covering": {"heartbeats": [], "tags": [], "whole_project": False}}, "covering"),
        ({"covering": {"heartbeats": ["hb_nope"]}}, "covering"),
        ({"covering": {"whole_project": True, "extra": 1}}, "covering"),
        ({"covering": {"tags": ["a\u202eb"]}}, "covering"),
        ({"ends_at": None}, "ends_at"),
        ({"starts_at": None}, "starts_at"),
        ({"ends_at": "yesterday"}, "ends_at"),
        ({"starts_at": "0001-01-01T00:00:00Z"}, "starts_at"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"duration": "1h"}, "duration"),
        ({"schedule": "0 2 * * *"}, "duration"),
        ({"schedule": "0 2 * * *", "duration": 59}, "duration"),
        ({"schedule": "0 2 * * *", "duration": "32d"}, "duration"),
        ({"schedule": "0 2 * * *", "duration": "soon"}, "duration"),
        ({"schedule": "61 2 * * *", "duration": "1h"}, "schedule"),
        ({"schedule": "0 0 30 2 *", "duration": "1h"}, "schedule"),
        ({"schedule": "0 2 * * *", "duration": "1h", "timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "  "}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_it_refuses_what_makes_no_window_naming_the_field(api, changes, field):
    tenant = await new_tenant(api)
    body = {**one_off(), **changes}
    status, answer = await tenant.call("POST", "/maintenance", json=body)
    refused(status, answer, field)


@pytest.mark.parametrize(("length_ms", "allowed"), [(59_999, False), (M, True), (31 * 24 * H, True),
                                                    (31 * 24 * H + 1, False)])  # fmt: skip
async def test_a_one_off_window_lasts_a_minute_to_31_days(api, length_ms, allowed):
    tenant = await new_tenant(api)
    start = now_ms()
    status, answer = await tenant.call(
        "POST", "/maintenance", json=one_off(starts_at=at(start), ends_at=at(start + length_ms))
    )
    if allowed:
        assert status == 201, answer
    else:
        refused(status, answer, "ends_at")


async def test_it_refuses_a_heartbeat_of_another_project(api):
    tenant, other = await new_tenant(api), await new_tenant(api)
    theirs = await heartbeat(other)
    ours = await heartbeat(tenant)
    status, answer = await tenant.call(
        "POST", "/maintenance", json=one_off(covering={"heartbeats": [ours["id"], theirs["id"]]})
    )
    refused(status, answer, "covering")
    assert theirs["id"] in answer["error"]
    made = await tenant.ok(
        "POST", "/maintenance", 201, json=one_off(covering={"heartbeats": [ours["id"]] * 2})
    )
    assert made["covering"]["heartbeats"] == [ours["id"]]


# changing, ending, deleting --------------------------------------------------------------------
async def test_a_change_is_a_new_revision_of_the_whole_window(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/maintenance", 201, json=one_off())
    changed = await tenant.ok(
        "PATCH", f"/maintenance/{made['id']}", json={"name": "renamed", "covering": {"tags": ["db"]}}
    )
    assert changed["name"] == "renamed" and changed["covering"]["tags"] == ["db"]
    assert changed["starts_at"] == made["starts_at"]
    records = await published(api, made["id"])
    assert [r.revision for r in records] == [1, 2] and records[-1].tags == ["db"]


async def test_a_change_is_checked_with_what_it_keeps(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/maintenance", 201, json=one_off())
    status, answer = await tenant.call(
        "PATCH", f"/maintenance/{made['id']}", json={"ends_at": made["starts_at"]}
    )
    refused(status, answer, "ends_at")
    status, answer = await tenant.call("PATCH", f"/maintenance/{made['id']}", json={"schedule": "0 3 * * *"})
    refused(status, answer, "duration")
    recurring = await tenant.ok("PATCH", f"/maintenance/{made['id']}", json={
        "schedule": "0 3 * * *", "duration": "30m", "ends_at": None, "timezone": "America/New_York"})  # fmt: skip
    assert (recurring["schedule"], recurring["duration"], recurring["ends_at"]) == ("0 3 * * *", 1800, None)
    back = await tenant.ok("PATCH", f"/maintenance/{made['id']}", json={
        "schedule": None, "ends_at": made["ends_at"]})  # fmt: skip
    assert (back["schedule"], back["duration"], back["active_until"]) == (None, None, made["ends_at"])


async def test_ending_a_one_off_window_early_ends_it(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/maintenance", 201, json=one_off())
    ended = await tenant.ok("POST", f"/maintenance/{made['id']}/end")
    assert ended["ended_at"] is not None and ended["active_until"] is None and ended["next_start"] is None
    assert (await published(api, made["id"]))[-1].ended_ms is not None
    status, answer = await tenant.call("POST", f"/maintenance/{made['id']}/end")
    refused(status, answer, "id")


async def test_ending_a_recurring_window_ends_its_current_occurrence_only(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/maintenance", 201, json={
        "name": "every minute", "schedule": "* * * * *", "duration": "1m", "starts_at": at(now_ms() - 2 * H),
        "covering": {"whole_project": True},
    })  # fmt: skip
    assert made["active_until"] is not None
    ended = await tenant.ok("POST", f"/maintenance/{made['id']}/end")
    assert ended["active_until"] is None
    assert ended["next_start"] is not None and ended["next_start"] > ended["ended_at"]


async def test_a_deleted_window_is_a_tombstone_and_gone(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/maintenance", 201, json=one_off())
    await tenant.ok("DELETE", f"/maintenance/{made['id']}", 204)
    status, _ = await tenant.call("GET", f"/maintenance/{made['id']}")
    assert status == 404
    assert (await tenant.ok("GET", "/maintenance"))["windows"] == []
    last = (await published(api, made["id"]))[-1]
    assert (last.deleted, last.revision) == (True, 2)


# who may -------------------------------------------------------------------------------------
async def test_another_projects_window_is_not_found(api):
    tenant, other = await new_tenant(api), await new_tenant(api)
    theirs = await other.ok("POST", "/maintenance", 201, json=one_off())
    path = f"/maintenance/{theirs['id']}"
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"name": "x"}), ("DELETE", "", None),
                                 ("POST", "/end", None)):  # fmt: skip
        status, _ = await tenant.call(method, path + suffix, json=body)
        assert status == 404, (method, suffix)
    assert (await tenant.ok("GET", "/maintenance"))["windows"] == []
    assert (await other.ok("GET", path))["name"] == "db upgrade"


async def test_a_read_only_key_lists_and_reads_but_never_writes(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/maintenance", 201, json=one_off())
    key, _ = await tenant.new_key(read_only=True)
    reader = tenant.with_key(key)
    assert [w["id"] for w in (await reader.ok("GET", "/maintenance"))["windows"]] == [made["id"]]
    await reader.ok("GET", f"/maintenance/{made['id']}")
    path = f"/maintenance/{made['id']}"
    for method, url, body in (("POST", "/maintenance", one_off()), ("PATCH", path, {"name": "x"}),
                              ("POST", path + "/end", None), ("DELETE", path, None)):  # fmt: skip
        status, _ = await reader.call(method, url, json=body)
        assert status == 403, (method, url)
    assert (await tenant.ok("GET", path))["ended_at"] is None


# heartbeats in maintenance ------------------------------------------------------------------------
async def test_a_heartbeat_covered_now_says_until_when(api):
    tenant = await new_tenant(api)
    db, web = await heartbeat(tenant, "db", tags=["db"]), await heartbeat(tenant, "web", tags=["web"])
    assert db["maintenance_until"] is None
    by_tag = await tenant.ok("POST", "/maintenance", 201, json=one_off(covering={"tags": ["db"]}))
    assert (await tenant.ok("GET", f"/heartbeats/{db['id']}"))["maintenance_until"] == by_tag["ends_at"]
    assert (await tenant.ok("GET", f"/heartbeats/{web['id']}"))["maintenance_until"] is None
    longer = one_off(ends_at=at(now_ms() + 3 * H), covering={"heartbeats": [db["id"]]})
    by_id = await tenant.ok("POST", "/maintenance", 201, json=longer)
    listed = {h["name"]: h for h in (await tenant.ok("GET", "/heartbeats"))["heartbeats"]}
    assert listed["db"]["maintenance_until"] == by_id["ends_at"]  # the longest covering it
    await tenant.ok("POST", f"/maintenance/{by_id['id']}/end")
    await tenant.ok("DELETE", f"/maintenance/{by_tag['id']}", 204)
    assert (await tenant.ok("GET", f"/heartbeats/{db['id']}"))["maintenance_until"] is None


async def test_a_whole_project_window_covers_only_its_own_project(api):
    tenant, other = await new_tenant(api), await new_tenant(api)
    ours, theirs = await heartbeat(tenant), await heartbeat(other)
    made = await tenant.ok("POST", "/maintenance", 201, json=one_off())
    assert (await tenant.ok("GET", f"/heartbeats/{ours['id']}"))["maintenance_until"] == made["ends_at"]
    assert (await other.ok("GET", f"/heartbeats/{theirs['id']}"))["maintenance_until"] is None


async def test_the_view_follows_windows_written_elsewhere(api):
    """Another query process (or an older revision arriving late) goes through the topic."""
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant)
    now = now_ms()
    window = MaintenanceWindow(id="mw_elsewhere_" + tenant.project_id, project_id=tenant.project_id, name="x",
                               starts_ms=now - M, ends_ms=now + H, whole_project=True, created_ms=now,
                               updated_ms=now)  # fmt: skip
    await api.ctx.bus.publish(api.ctx.topics.maintenance, window.id, encode(window))

    async def covered() -> bool:
        answer = await tenant.ok("GET", f"/heartbeats/{hb['id']}")
        return answer["maintenance_until"] == at(now + H)

    await eventually(covered)


# the document --------------------------------------------------------------------------------
async def test_every_constraint_the_document_declares_for_windows_is_the_servers(api):
    doc = await served(api)
    tenant = await new_tenant(api)
    base = {"name": "w", "schedule": "0 2 * * *", "duration": "1h", "starts_at": "2025-01-01T00:00:00Z",
            "covering": {"whole_project": True}}  # fmt: skip
    create = doc["paths"]["/maintenance"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    checked = await check_body(doc, tenant, "POST", "/maintenance", create, base)
    made = await tenant.ok("POST", "/maintenance", 201, json=base)
    update = doc["paths"]["/maintenance/{id}"]["patch"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    checked += await check_body(doc, tenant, "PATCH", f"/maintenance/{made['id']}", update, {})
    assert checked > 25
    assert "maintenance" in [t["name"] for t in doc["tags"]]
