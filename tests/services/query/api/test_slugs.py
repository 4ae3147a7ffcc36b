"""Slugs of heartbeats and the project's ping key over real HTTP: a slug is checked, unique in
its project and shown; the ping key is a secret read-write keys make, rotate and see, and
a project turns creation by ping on and off."""

from __future__ import annotations

import pytest

from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_heartbeat_has_no_slug_until_given_one(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": "nightly", "interval": "1d"})
    assert made["slug"] is None
    changed = await tenant.ok("PATCH", f"/heartbeats/{made['id']}", json={"slug": "backup-db_01"})
    assert changed["slug"] == "backup-db_01"
    assert (await tenant.ok("GET", f"/heartbeats/{made['id']}"))["slug"] == "backup-db_01"
    assert api.ctx.monitors[made["id"]].slug == "backup-db_01"  # what ingest reads from the topic
    cleared = await tenant.ok("PATCH", f"/heartbeats/{made['id']}", json={"slug": None})
    assert cleared["slug"] is None


async def test_a_slug_is_given_at_creation_too(api):
    tenant = await new_tenant(api)
    made = await tenant.ok(
        "POST", "/heartbeats", 201, json={"name": "web", "interval": "1d", "slug": "web-1"}
    )
    assert made["slug"] == "web-1"


@pytest.mark.parametrize(
    "slug", ["", "Backup", "back up", "x" * 101, "caf\u00e9", "a.b", "a/b", 5, True, ["a"]]
)
async def test_a_slug_that_is_not_one_is_400_naming_slug(api, slug):
    tenant = await new_tenant(api)
    status, body = await tenant.call(
        "POST", "/heartbeats", json={"name": "n", "interval": "1d", "slug": slug}
    )
    assert status == 400 and body["field"] == "slug", body
    assert "lower-case letters, digits, - and _" in body["error"]


async def test_a_slug_names_one_heartbeat_of_its_project(api):
    tenant, other = await new_tenant(api), await new_tenant(api)
    first = await tenant.ok("POST", "/heartbeats", 201, json={"name": "a", "interval": "1d", "slug": "db"})
    status, body = await tenant.call(
        "POST", "/heartbeats", json={"name": "b", "interval": "1d", "slug": "db"}
    )
    assert status == 400 and body["field"] == "slug" and first["id"] in body["error"]
    second = await tenant.ok("POST", "/heartbeats", 201, json={"name": "b", "interval": "1d"})
    status, body = await tenant.call("PATCH", f"/heartbeats/{second['id']}", json={"slug": "db"})
    assert status == 400 and body["field"] == "slug"
    await tenant.ok("PATCH", f"/heartbeats/{first['id']}", json={"slug": "db", "name": "a2"})  # its own: fine
    await other.ok(
        "POST", "/heartbeats", 201, json={"name": "a", "interval": "1d", "slug": "db"}
    )  # another project's: fine
    await tenant.ok("DELETE", f"/heartbeats/{first['id']}", 204)
    await tenant.ok("PATCH", f"/heartbeats/{second['id']}", json={"slug": "db"})  # free again once deleted


async def test_a_project_has_no_ping_key_until_one_is_made_and_may_create_by_ping(api):
    tenant = await new_tenant(api)
    me = await tenant.ok("GET", "/projects/me")
    assert (me["ping_key"], me["auto_create"]) == (None, True)
    made = await tenant.ok("POST", "/projects/me/ping-key")
    key = made["ping_key"]
    assert len(key) == 22  # never the 32 of a ping token: /ping/{a}/{b} tells them apart by length
    assert all(c.isalnum() or c in "-_" for c in key)
    assert (await tenant.ok("GET", "/projects/me"))["ping_key"] == key
    assert api.ctx.projects[tenant.project_id].ping_key == key  # on the projects topic, for ingest
    rotated = await tenant.ok("POST", "/projects/me/ping-key")
    assert rotated["ping_key"] not in (None, key)


async def test_a_read_only_key_never_sees_the_ping_key_nor_changes_it(api):
    tenant = await new_tenant(api)
    await tenant.ok("POST", "/projects/me/ping-key")
    reader_key, _ = await tenant.new_key(read_only=True)
    reader = tenant.with_key(reader_key)
    me = await reader.ok("GET", "/projects/me")
    assert "ping_key" not in me and me["auto_create"] is True
    for method, path, body in (
        ("POST", "/projects/me/ping-key", None),
        ("PATCH", "/projects/me", {"auto_create": False}),
    ):
        status, answer = await reader.call(method, path, json=body)
        assert status == 403, answer


async def test_auto_create_is_turned_off_and_on(api):
    tenant = await new_tenant(api)
    await tenant.ok("POST", "/projects/me/ping-key")
    off = await tenant.ok("PATCH", "/projects/me", json={"auto_create": False})
    assert off["auto_create"] is False and off["ping_key"]
    assert api.ctx.projects[tenant.project_id].auto_create is False
    assert (await tenant.ok("GET", "/projects/me"))["auto_create"] is False
    assert (await tenant.ok("PATCH", "/projects/me", json={"auto_create": True}))["auto_create"] is True


@pytest.mark.parametrize(
    "body, field",
    [({"auto_create": "no"}, "auto_create"), ({"name": "  "}, "name"), ({"ping_key": "mine"}, "ping_key")],
)
async def test_a_project_change_ingest_cannot_take_is_400_naming_the_field(api, body, field):
    tenant = await new_tenant(api)
    status, answer = await tenant.call("PATCH", "/projects/me", json=body)
    assert status == 400 and answer["field"] == field, answer
