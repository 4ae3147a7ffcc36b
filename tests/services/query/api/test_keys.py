"""API keys over real HTTP: created and shown once, listed without secrets, revoked at once;
read-only keys write nothing and never see a ping token; every refusal says why in one line."""

from __future__ import annotations

import re

import pytest

from services.query.api.routes import ROUTES
from services.query.app import api_app
from shared.ids import hash_api_key
from tests.services.query.api.tenants import bearer, new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")

SAFE = {"GET", "HEAD", "OPTIONS"}
PUBLIC = {(route.method, route.path) for route in ROUTES if route.public}
"""Served without credentials (badges, status pages, metrics, sign-in, invitations): not the key's."""
NEEDS = {(route.method, route.path): route.needs for route in ROUTES}


def assert_refused(status: int, body, expected: int, says: str) -> None:
    assert status == expected, body
    assert isinstance(body, dict) and len(body["error"].splitlines()) == 1, body
    assert says in body["error"], body


def fill(path: str, ids: dict[str, str]) -> str:
    """``/channels/{id}/...`` with the id of a channel, and so on for each resource."""
    return path.replace("{id}", ids.get(path.split("/")[1], "x"))


async def some_of_everything(tenant, channel: dict | None = None) -> dict[str, str]:
    """One of each thing a project has, by the path it lives under (``channel``: the body of
    the channel to make, a webhook by default)."""
    heartbeat = await tenant.ok("POST", "/heartbeats", 201, json={"name": "nightly", "interval": "1h"})
    channel = await tenant.ok(
        "POST",
        "/channels",
        201,
        json=channel or {"kind": "webhook", "config": {"url": "https://hooks.example.com/x"}},
    )
    _, key = await tenant.new_key(name="spare")
    window = await tenant.ok("POST", "/maintenance", 201, json={
        "name": "weekly", "schedule": "0 2 * * 0", "duration": "1h", "covering": {"whole_project": True}})  # fmt: skip
    return {
        "heartbeats": heartbeat["id"],
        "maintenance": window["id"],
        "channels": channel["id"],
        "keys": key["id"],
        "token": heartbeat["token"],
    }


def api_routes(api) -> list[tuple[str, str]]:
    """Every (method, path) the API sub-app serves, read from its router: a route added
    later is covered without touching these tests."""
    app = api_app(api.ctx)
    found = []
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if route.method != "*" and path:
            found.append((route.method, path))
    return found


# create, list, revoke ------------------------------------------------------------------
async def test_it_creates_a_key_and_shows_it_once(api):
    tenant = await new_tenant(api)
    key, made = await tenant.new_key(name="grafana")
    assert set(made) == {"id", "name", "read_only", "created_at", "key"}
    assert made["name"] == "grafana" and made["read_only"] is False and made["created_at"].endswith("Z")
    listed = await tenant.ok("GET", "/keys")
    assert made["id"] in [k["id"] for k in listed["keys"]]
    assert all(set(k) == {"id", "name", "read_only", "created_at"} for k in listed["keys"])
    assert key not in str(listed) and hash_api_key(key) not in str(listed)
    me = await tenant.with_key(key).ok("GET", "/projects/me")
    assert me == {
        "id": tenant.project_id,
        "name": me["name"],
        "admin": False,
        "read_only": False,
        "key_name": "grafana",
        "auto_create": True,
        "ping_key": None,
        "badge_key": None,
    }


async def test_a_revoked_key_is_refused_at_once(api):
    tenant = await new_tenant(api)
    key, made = await tenant.new_key()
    await tenant.ok("DELETE", f"/keys/{made['id']}", 204)
    status, body = await tenant.with_key(key).call("GET", "/heartbeats")
    assert_refused(status, body, 401, "unknown or revoked API key")
    assert made["id"] not in str(await tenant.ok("GET", "/keys"))
    status, body = await tenant.call("DELETE", f"/keys/{made['id']}")
    assert_refused(status, body, 404, "not found")


async def test_a_key_cannot_revoke_itself(api):
    tenant = await new_tenant(api)
    key, made = await tenant.new_key()
    status, body = await tenant.with_key(key).call("DELETE", f"/keys/{made['id']}")
    assert_refused(status, body, 403, "cannot revoke itself")
    await tenant.with_key(key).ok("GET", "/keys")


async def test_another_projects_key_id_is_404_and_stays_valid(api):
    mine, theirs = await new_tenant(api), await new_tenant(api)
    their_key, made = await theirs.new_key()
    status, body = await mine.call("DELETE", f"/keys/{made['id']}")
    assert_refused(status, body, 404, "not found")
    await theirs.with_key(their_key).ok("GET", "/keys")


@pytest.mark.parametrize("body, field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 201}, "name"),
    ({"name": 5}, "name"), ({"name": "k", "read_only": "yes"}, "read_only"),
    ({"name": "k", "read_only": 1}, "read_only"), ({"name": "k", "admin": True}, "admin"),
])  # fmt: skip
async def test_it_refuses_a_bad_key_body_naming_the_field(api, body, field):
    tenant = await new_tenant(api)
    status, answer = await tenant.call("POST", "/keys", json=body)
    assert status == 400 and answer["field"] == field, answer


# projects --------------------------------------------------------------------------------
async def test_an_admin_key_creates_a_project_with_its_first_read_write_key(api):
    async with api.http.post(api.url + "/projects", json={"name": "  billing "}) as r:
        assert r.status == 201
        made = await r.json()
    assert made["name"] == "billing" and made["api_key"].startswith("pk_")
    async with api.http.get(api.url + "/projects/me", headers=bearer(made["api_key"])) as r:
        me = await r.json()
    assert me == {
        "id": made["id"],
        "name": "billing",
        "admin": False,
        "read_only": False,
        "key_name": "first key",
        "auto_create": True,
        "ping_key": None,
        "badge_key": None,
    }


async def test_only_an_admin_key_creates_projects(api):
    tenant = await new_tenant(api)
    status, body = await tenant.call("POST", "/projects", json={"name": "x"})
    assert_refused(status, body, 403, "admin")


async def test_the_admin_sees_itself_as_admin_with_its_legacy_project_key(api):
    async with api.http.get(api.url + "/projects/me") as r:
        me = await r.json()
    assert me["admin"] is True and me["read_only"] is False and me["key_name"] == "project key"


# read-only keys --------------------------------------------------------------------------
async def test_a_read_only_key_gets_403_on_every_write_route(api):
    tenant = await new_tenant(api)
    ids = await some_of_everything(tenant)
    key, _ = await tenant.new_key(read_only=True)
    reader = tenant.with_key(key)
    # Writes a viewer may make (signing out, leaving, one's own account) are the role matrix's
    # (test_role_matrix.py): a read-only key gets past the role there, and is refused by the handler.
    writes = [
        (m, p)
        for m, p in api_routes(api)
        if m not in SAFE and (m, p) not in PUBLIC and NEEDS[(m, p)] != "viewer"
    ]
    assert {("POST", "/keys"), ("DELETE", "/keys/{id}"), ("POST", "/heartbeats")} <= set(writes)
    for method, path in writes:
        status, body = await reader.call(method, fill(path, ids), json={"name": "x"})
        assert_refused(status, body, 403, "read-only")
    assert (await tenant.ok("GET", f"/heartbeats/{ids['heartbeats']}"))["paused"] is False
    assert len((await tenant.ok("GET", "/keys"))["keys"]) == 3


async def test_a_read_only_key_reads_everything_but_never_a_ping_token_or_url(api):
    tenant = await new_tenant(api)
    ids = await some_of_everything(tenant)
    key, _ = await tenant.new_key(read_only=True)
    reader = tenant.with_key(key)
    assert (await reader.ok("GET", "/projects/me"))["read_only"] is True
    reads = [(m, p) for m, p in api_routes(api) if m == "GET"]
    for method, path in reads:
        if (method, path) in PUBLIC:  # not the key's to read: test_badges.py, test_status_pages.py...
            continue
        status, body = await reader.call(method, fill(path, ids))
        if (
            NEEDS[(method, path)] != "viewer"
        ):  # the keys, the invitations: for admins (this key acts as a viewer)
            assert_refused(status, body, 403, f"needs the {NEEDS[(method, path)]} role")
            continue
        if "{checkin_id}" in path or path == "/projects/me/status-page":  # none: read, and not found
            assert status == 404, (path, status, body)
            continue
        if path.startswith("/account/"):  # a person's own account: a key has none (test_account_security.py)
            assert_refused(status, body, 403, "needs a signed-in user")
            continue
        assert status == 200, (path, status, body)
        text = body if isinstance(body, str) else str(body)
        assert ids["token"] not in text, path
        if path not in ("/openapi.json", "/channel-kinds"):  # documents name fields, hold no values
            assert "ping_url" not in text and "'token'" not in text, path
    listed = await reader.ok("GET", "/heartbeats")
    assert [h["id"] for h in listed["heartbeats"]] == [ids["heartbeats"]]
    assert "token" in (await tenant.ok("GET", f"/heartbeats/{ids['heartbeats']}"))  # a read-write key sees it


# who is calling ----------------------------------------------------------------------------
@pytest.mark.parametrize("headers, says", [
    ({}, "missing API key"),
    ({"Authorization": "Bearer pk_nobody"}, "unknown or revoked API key"),
    ({"X-Api-Key": "pk_nobody"}, "unknown or revoked API key"),
    ({"Authorization": "Basic dXNlcjpwdw=="}, "Authorization header must be 'Bearer <key>'"),
    ({"Authorization": "pk_nobody"}, "Authorization header must be 'Bearer <key>'"),
    ({"Authorization": "Bearer"}, "Authorization header must be 'Bearer <key>'"),
    ({"Cookie": "pingura_session=v1.a.b.1.c.d"}, "log in again"),
])  # fmt: skip
async def test_it_says_why_it_refuses_a_caller(api, headers, says):
    async with api.http.get(api.url + "/heartbeats", headers={"Authorization": "", **headers}) as r:
        assert_refused(r.status, await r.json(), 401, says)


async def test_a_key_is_accepted_in_x_api_key_too(api):
    tenant = await new_tenant(api)
    key, _ = await tenant.new_key()
    async with api.http.get(api.url + "/keys", headers={"Authorization": "", "X-Api-Key": key}) as r:
        assert r.status == 200


async def test_no_answer_ever_holds_a_key_hash(api):
    tenant = await new_tenant(api)
    await tenant.new_key()
    answers = [await tenant.call("GET", p) for p in ("/keys", "/projects/me", "/session")]
    assert not any(re.search(r"[0-9a-f]{64}", str(body)) for _, body in answers), answers


# secrets in answers are never cached ---------------------------------------------------------
async def test_every_answer_with_a_key_says_no_store(api):
    """Every authenticated answer is the caller's own (and many carry a secret: a new key, a
    project's first key, the ping key, a heartbeat's token and ping URL), so none may sit in
    a shared or browser cache; refusals included."""
    async with api.http.post(api.url + "/projects", json={"name": "cached"}) as r:
        assert (r.status, r.headers.get("Cache-Control")) == (201, "no-store")
        tenant = await new_tenant(api)
    answers = {}
    for method, path, body in [
        ("POST", "/keys", {"name": "k"}),
        ("POST", "/projects/me/ping-key", None),
        ("PATCH", "/projects/me", {"auto_create": False}),
        ("POST", "/heartbeats", {"name": "nightly", "interval": "1h"}),
        ("GET", "/heartbeats", None),
        ("GET", "/keys", None),
        ("POST", "/heartbeats/hb_missing/rotate-token", None),  # a refusal too
    ]:
        async with api.http.request(method, api.url + path, json=body, headers=tenant.headers) as r:
            answers[(method, path)] = (r.status, r.headers.get("Cache-Control"))
            if path == "/heartbeats" and method == "POST":
                made = await r.json()
    async with api.http.post(api.url + f"/heartbeats/{made['id']}/rotate-token", headers=tenant.headers) as r:
        answers[("POST", "/heartbeats/{id}/rotate-token")] = (r.status, r.headers.get("Cache-Control"))
    async with api.http.get(
        api.url + f"/heartbeats/{made['id']}/export?format=csv", headers=tenant.headers
    ) as r:
        answers[("GET", "/heartbeats/{id}/export")] = (r.status, r.headers.get("Cache-Control"))  # streamed
    async with api.http.get(api.url + "/keys", headers={"Authorization": "Bearer pk_nobody"}) as r:
        answers[("GET", "/keys", "unknown key")] = (r.status, r.headers.get("Cache-Control"))
    assert {where: cache for where, (_, cache) in answers.items()} == {
        where: "no-store" for where in answers
    }, answers
    assert [status for status, _ in answers.values()] == [201, 200, 200, 201, 200, 200, 404, 200, 200, 401]
