"""The audit log over real HTTP: a change made through the API is read back through
``GET /audit`` (and is in ClickHouse's ``audit_log``, written by the real history writer),
narrowed by its filters, exported as CSV and JSON lines; secrets never in it; admins only."""

from __future__ import annotations

import csv
import io
import json

import pytest
import pytest_asyncio

from services.query.consumer import HistoryWriter
from tests.polling import eventually
from tests.services.query.api.tenants import Tenant, new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session", autouse=True)
async def writer(api):
    """The writer that copies the bus into ClickHouse, as ``pingura serve`` runs it."""
    history_writer = HistoryWriter(api.ctx.settings, api.ctx.bus, api.ctx.topics, api.ctx.store)
    await history_writer.start()
    yield history_writer
    await history_writer.close()


CREATION = ["key.create", "project.create"]
"""What a new project's log begins with (newest first): made by the admin key, with its first key."""


async def entries(tenant: Tenant, count: int) -> list[dict]:
    """The project's entries since its creation once ``count`` of them are written (the writer
    copies them in the background), newest first."""

    async def written():
        page = await tenant.ok("GET", "/audit")
        return page["entries"] if len(page["entries"]) >= count + len(CREATION) else None

    every = await eventually(written)
    assert [e["action"] for e in every[-len(CREATION) :]] == CREATION
    return every[: -len(CREATION)]


async def test_a_new_project_begins_its_log_with_its_creation_by_the_admin_key(api):
    tenant = await new_tenant(api)
    assert await entries(tenant, 0) == []
    key, project = (await tenant.ok("GET", "/audit"))["entries"]
    assert project["target_id"] == tenant.project_id and project["after"]["name"].startswith("t-")
    assert "api_key_hashes" not in project["after"] and key["after"]["name"] == "first key"
    assert project["actor_kind"] == "key" and project["actor_id"] == key["actor_id"]


async def test_a_heartbeat_edit_is_read_back_with_before_and_after_and_is_in_clickhouse(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": "nightly", "interval": "1h"})
    await tenant.ok("PATCH", f"/heartbeats/{made['id']}", json={"name": "nightly backup", "interval": "2h"})
    edit, create = await entries(tenant, 2)
    assert (create["action"], edit["action"]) == ("heartbeat.create", "heartbeat.update")
    assert edit["target_kind"] == "heartbeat" and edit["target_id"] == made["id"]
    assert edit["before"]["name"] == "nightly" and edit["after"]["name"] == "nightly backup"
    assert (edit["before"]["interval_s"], edit["after"]["interval_s"]) == (3600, 7200)
    assert create["before"] is None and create["after"]["name"] == "nightly"
    assert (
        edit["actor_kind"] == "key" and edit["actor_name"] == "first key" and edit["address"] == "127.0.0.1"
    )
    assert edit["at"].endswith("Z") and edit["at"] >= create["at"]
    rows = await api.ctx.store.clickhouse.query(
        "SELECT action, target_id, before, after FROM audit_log FINAL WHERE project_id = {p:String} "
        "AND target_kind = 'heartbeat' ORDER BY at, id",
        {"p": tenant.project_id},
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("heartbeat.create", made["id"]),
        ("heartbeat.update", made["id"]),
    ]
    assert json.loads(rows[1][2])["name"] == "nightly" and json.loads(rows[1][3])["name"] == "nightly backup"
    assert made["token"] not in str(rows)


async def test_no_token_or_key_ever_appears_in_the_log(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": "n", "interval": "1h"})
    rotated = await tenant.ok("POST", f"/heartbeats/{made['id']}/rotate-token")
    ping_key = (await tenant.ok("POST", "/projects/me/ping-key"))["ping_key"]
    secret, key = await tenant.new_key(name="robot")
    logged = await entries(tenant, 4)
    text = json.dumps(logged)
    for value in (made["token"], rotated["token"], ping_key, secret):
        assert value not in text
    rotation = next(e for e in logged if e["action"] == "heartbeat.rotate_token")
    assert rotation["before"]["token"] == "****" + made["token"][-4:]
    assert rotation["after"]["token"] == "****" + rotated["token"][-4:]
    created = next(e for e in logged if e["action"] == "key.create")
    assert created["target_id"] == key["id"] and created["after"]["name"] == "robot"
    assert "key_hash" not in created["after"]
    export = await tenant.call("GET", "/audit/export?format=jsonl")
    assert export[0] == 200 and all(value not in export[1] for value in (made["token"], ping_key, secret))


async def test_only_admins_read_the_audit_log(api):
    tenant = await new_tenant(api)
    secret, _ = await tenant.new_key(read_only=True)
    reader = tenant.with_key(secret)
    for path in ("/audit", "/audit/export", "/audit/export?format=jsonl"):
        status, body = await reader.call("GET", path)
        assert status == 403 and "admin" in body["error"] and len(body["error"].splitlines()) == 1, body
    await tenant.ok("GET", "/audit")  # a read-write key acts as an admin


async def test_each_project_sees_only_its_own_entries(api):
    mine, theirs = await new_tenant(api), await new_tenant(api)
    await theirs.ok("POST", "/heartbeats", 201, json={"name": "theirs", "interval": "1h"})
    await mine.ok("POST", "/heartbeats", 201, json={"name": "mine", "interval": "1h"})
    [entry] = await entries(mine, 1)
    assert entry["after"]["name"] == "mine"
    assert "theirs" not in (await mine.call("GET", "/audit/export?format=jsonl"))[1]


async def test_the_filters_narrow_the_entries_and_pages_go_back_in_time(api):
    tenant = await new_tenant(api)
    first = await tenant.ok("POST", "/heartbeats", 201, json={"name": "a", "interval": "1h"})
    second = await tenant.ok("POST", "/heartbeats", 201, json={"name": "b", "interval": "1h"})
    robot_secret, robot = await tenant.new_key(name="robot")
    await tenant.with_key(robot_secret).ok("POST", f"/heartbeats/{second['id']}/pause")
    await tenant.ok("DELETE", f"/heartbeats/{first['id']}", 204)
    every = await entries(tenant, 5)
    assert [e["action"] for e in every] == [
        "heartbeat.delete", "heartbeat.pause", "key.create", "heartbeat.create", "heartbeat.create",
    ]  # fmt: skip

    async def actions(query: str) -> list[str]:
        return [e["action"] for e in (await tenant.ok("GET", "/audit?" + query))["entries"]]

    assert await actions("actor=robot") == ["heartbeat.pause"]
    assert await actions(f"actor={robot['id']}") == ["heartbeat.pause"]
    assert await actions("action=heartbeat.create") == ["heartbeat.create", "heartbeat.create"]
    assert await actions("action=heartbeat") == ["heartbeat.delete", "heartbeat.pause", "heartbeat.create",
                                                 "heartbeat.create"]  # fmt: skip
    assert await actions("action=key&target_kind=key") == ["key.create", "key.create"]  # robot, first key
    assert await actions(f"target_kind=heartbeat&target_id={first['id']}") == ["heartbeat.delete",
                                                                               "heartbeat.create"]  # fmt: skip
    pause_at = every[1]["at"]
    assert await actions(f"from={pause_at}&action=heartbeat") == ["heartbeat.delete", "heartbeat.pause"]
    assert await actions(f"to={pause_at}&action=heartbeat") == ["heartbeat.create", "heartbeat.create"]
    assert await actions("from=2000-01-01&to=2000-01-02") == []
    assert len(await actions("")) == len(every) + len(CREATION)
    # A page at a time, newest first; the cursor goes on with the same filters.
    seen, cursor = [], None
    while True:
        page = await tenant.ok(
            "GET", "/audit?limit=2&action=heartbeat" + (f"&before={cursor}" if cursor else "")
        )
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in every if e["action"].startswith("heartbeat")]


@pytest.mark.parametrize("query, field", [
    ("action=Heartbeat", "action"), ("action=heart%20beat", "action"), ("target_kind=a.b", "target_kind"),
    ("limit=0", "limit"), ("limit=1001", "limit"), ("before=nope", "before"), ("from=yesterday", "from"),
    ("from=2026-01-02&to=2026-01-01", "from"), ("actor=" + "x" * 321, "actor"), ("format=xml", "format"),
])  # fmt: skip
async def test_a_bad_filter_is_a_400_naming_it(api, query, field):
    tenant = await new_tenant(api)
    path = "/audit/export?" if field == "format" else "/audit?"
    status, body = await tenant.call("GET", path + query)
    assert status == 400 and body["field"] == field and len(body["error"].splitlines()) == 1, body


async def test_the_export_streams_csv_and_json_lines_oldest_first(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": "=cmd|' /C calc'!A0", "interval": "1h"})
    await tenant.ok("PATCH", f"/heartbeats/{made['id']}", json={"name": 'safe, "quoted" name'})
    robot, _ = await tenant.new_key(name="@robot")
    await tenant.with_key(robot).ok("POST", f"/heartbeats/{made['id']}/pause")
    newest_first = await entries(tenant, 4)
    async with api.http.get(api.url + "/audit/export", headers=tenant.headers) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
        assert r.headers["Content-Disposition"] == f'attachment; filename="{tenant.project_id}-audit.csv"'
        assert r.headers["Cache-Control"] == "no-store"
        text = await r.text()
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["id", "at", "actor_kind"] and header[-2:] == ["before", "after"]
    cells = {name: [row[i] for row in body[len(CREATION) :]] for i, name in enumerate(header)}
    assert cells["id"] == [e["id"] for e in reversed(newest_first)]
    assert cells["action"] == ["heartbeat.create", "heartbeat.update", "key.create", "heartbeat.pause"]
    assert json.loads(cells["after"][1])["name"] == 'safe, "quoted" name'  # JSON text in one cell
    assert cells["after"][0].startswith("{")  # a JSON object: no formula however its name starts
    assert cells["target_id"][2] and cells["actor_name"] == ["first key"] * 3 + ["'@robot"]  # no formula
    async with api.http.get(
        api.url + "/audit/export?format=jsonl&action=heartbeat", headers=tenant.headers
    ) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in (await r.text()).splitlines()]
    assert [line["action"] for line in lines] == ["heartbeat.create", "heartbeat.update", "heartbeat.pause"]
    assert lines[2]["actor_name"] == "@robot"  # JSON lines are exact
    assert lines[0]["after"]["name"] == "=cmd|' /C calc'!A0"  # JSON lines are exact
