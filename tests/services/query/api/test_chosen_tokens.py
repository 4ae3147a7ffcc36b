"""A token the client chooses on create (a job moved in from Healthchecks keeps its URL), a
ping key the project chooses (its slug URLs too), and a heartbeat's description: over real
HTTP against the API sub-app."""

from __future__ import annotations

import uuid

import pytest

from shared.ids import token_key
from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")


def a_uuid() -> str:
    return str(uuid.uuid4())


async def test_a_chosen_token_is_kept_and_unique_across_projects(api):
    one, other = await new_tenant(api), await new_tenant(api)
    token = a_uuid()
    made = await one.ok("POST", "/heartbeats", 201, json={"name": "moved", "interval": 60, "token": token})
    assert made["token"] == token and made["ping_url"].endswith("/" + token)
    assert (await one.ok("GET", f"/heartbeats/{made['id']}"))["token"] == token
    for tenant in (other, one):  # another project's, or its own: refused alike, naming no one
        status, body = await tenant.call(
            "POST", "/heartbeats", json={"name": "x", "interval": 60, "token": token}
        )
        assert status == 409 and body["field"] == "token", body
        assert one.project_id not in body["error"] and made["id"] not in body["error"]
    # once the heartbeat is deleted its token is free again
    await one.ok("DELETE", f"/heartbeats/{made['id']}", 204)
    again = await other.ok("POST", "/heartbeats", 201, json={"name": "moved", "interval": 60, "token": token})
    assert again["token"] == token


@pytest.mark.parametrize(
    "token",
    [
        "5BF38CBE-6F6B-4C3E-9C0D-7C1A2B3C4D5E",  # upper case: Healthchecks never spells one so
        "5bf38cbe6f6b4c3e9c0d7c1a2b3c4d5e",  # no hyphens
        "{5bf38cbe-6f6b-4c3e-9c0d-7c1a2b3c4d5e}",
        "5bf38cbe-6f6b-4c3e-9c0d-7c1a2b3c4d5e\n",
        "not-a-uuid",
        "",
        "x" * 32,  # the length of Pingura's own tokens
    ],
)
async def test_a_chosen_token_must_be_a_lower_case_uuid(api, token):
    tenant = await new_tenant(api)
    status, body = await tenant.call(
        "POST", "/heartbeats", json={"name": "x", "interval": 60, "token": token}
    )
    assert status == 400 and body["field"] == "token", body


async def test_a_token_is_never_changed_by_an_update_and_never_shown_to_a_read_only_key(api):
    tenant = await new_tenant(api)
    token = a_uuid()
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": "t", "interval": 60, "token": token})
    status, body = await tenant.call("PATCH", f"/heartbeats/{made['id']}", json={"token": a_uuid()})
    assert status == 400 and body["field"] == "token", body
    key, _ = await tenant.new_key(read_only=True)
    reader = tenant.with_key(key)
    shown = await reader.ok("GET", f"/heartbeats/{made['id']}")
    listed = (await reader.ok("GET", "/heartbeats"))["heartbeats"]
    assert "token" not in shown and "ping_url" not in shown and all("token" not in h for h in listed)
    assert token not in str(shown) + str(listed)


async def test_the_token_index_takes_lower_case_uuids_only():
    token = a_uuid()
    assert token_key(token) == uuid.UUID(token).bytes
    assert token_key(token.upper()) is None and token_key(token + "\n") is None
    assert (
        token_key(token.replace("-", "")) != uuid.UUID(token).bytes
    )  # 32 characters: a token of Pingura's own


async def test_a_description_is_plain_text_kept_as_given(api):
    tenant = await new_tenant(api)
    text = "Dumps the database.\nIf it fails:\n\tcheck db1's disk <b>&amp;</b> page the DBA ☃"
    made = await tenant.ok(
        "POST", "/heartbeats", 201, json={"name": "d", "interval": 60, "description": text}
    )
    assert made["description"] == text
    changed = await tenant.ok("PATCH", f"/heartbeats/{made['id']}", json={"description": "x" * 10_000})
    assert changed["description"] == "x" * 10_000
    assert (await tenant.ok("PATCH", f"/heartbeats/{made['id']}", json={"name": "e"}))[
        "description"
    ] == "x" * 10_000
    key, _ = await tenant.new_key(read_only=True)
    assert (await tenant.with_key(key).ok("GET", f"/heartbeats/{made['id']}"))["description"] == "x" * 10_000
    plain = await tenant.ok("POST", "/heartbeats", 201, json={"name": "p", "interval": 60})
    assert plain["description"] == ""


@pytest.mark.parametrize("text", ["x" * 10_001, "bell\x07", "cr\r\nlf", "nul\x00", "bidi\u202e", "c1\x85", 5])
async def test_a_description_refused(api, text):
    tenant = await new_tenant(api)
    status, body = await tenant.call(
        "POST", "/heartbeats", json={"name": "d", "interval": 60, "description": text}
    )
    assert status == 400 and body["field"] == "description", body


async def test_a_chosen_ping_key_is_unique_across_projects(api):
    one, other = await new_tenant(api), await new_tenant(api)
    key = uuid.uuid4().hex[:22]
    assert (await one.ok("PATCH", "/projects/me", json={"ping_key": key}))["ping_key"] == key
    assert (await one.ok("PATCH", "/projects/me", json={"ping_key": key}))["ping_key"] == key  # its own: fine
    status, body = await other.call("PATCH", "/projects/me", json={"ping_key": key})
    assert status == 409 and body["field"] == "ping_key" and one.project_id not in body["error"], body
    for bad in ("short", "x" * 23, "a" * 21 + "/", "a" * 32, "a" * 22 + "\n"):
        status, body = await other.call("PATCH", "/projects/me", json={"ping_key": bad})
        assert status == 400 and body["field"] == "ping_key", body
    rotated = await one.ok("POST", "/projects/me/ping-key")
    assert rotated["ping_key"] != key
