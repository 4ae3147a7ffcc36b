"""Two projects on one server: each key, and each session cookie, sees its own project only.

Another project's ids are 404 everywhere (never 403: that would confirm they exist), and
lists, history and exports hold nothing of the other project.
"""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio

from services.query.auth.sessions import COOKIE
from shared.clock import now_ms
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.factories import a_ping

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def furnished(api) -> tuple[Tenant, dict]:
    """A project with a heartbeat that has history, a channel and a spare key."""
    tenant = await new_tenant(api)
    heartbeat = await tenant.ok(
        "POST", "/heartbeats", 201, json={"name": f"hb-{uuid.uuid4().hex[:6]}", "interval": "1d"}
    )
    channel = await tenant.ok(
        "POST",
        "/channels",
        201,
        json={
            "kind": "webhook",
            "name": f"ch-{uuid.uuid4().hex[:6]}",
            "config": {"url": "https://hooks.example.com/x"},
        },
    )
    _, key = await tenant.new_key(name="spare")
    message = f"msg-{uuid.uuid4().hex}"
    ping = a_ping(tenant.project_id, heartbeat["id"], now_ms() - 60_000, message=message)
    await api.ctx.store.insert_events([ping], f"tenancy-{ping.id}")
    return tenant, {
        "heartbeat": heartbeat["id"],
        "channel": channel["id"],
        "key": key["id"],
        "message": message,
        "token": heartbeat["token"],
    }


async def as_browser(api, tenant: Tenant) -> Tenant:
    key, _ = await tenant.new_key(name="browser")
    root = api.url.removesuffix("/api/v1")
    async with api.http.post(
        root + "/login", data={"key": key}, allow_redirects=False, headers={"Authorization": ""}
    ) as r:
        cookie = r.cookies[COOKIE].value
    page = Tenant(api, tenant.project_id, {"Authorization": "", "Cookie": f"{COOKIE}={cookie}"})
    csrf = (await page.ok("GET", "/session"))["csrf_token"]
    return Tenant(api, tenant.project_id, {**page.headers, "X-CSRF-Token": csrf})


def other_ids_paths(theirs: dict) -> list[tuple[str, str]]:
    hb, ch, key = theirs["heartbeat"], theirs["channel"], theirs["key"]
    return [
        ("GET", f"/heartbeats/{hb}"),
        ("PATCH", f"/heartbeats/{hb}"),
        ("DELETE", f"/heartbeats/{hb}"),
        ("POST", f"/heartbeats/{hb}/pause"),
        ("POST", f"/heartbeats/{hb}/resume"),
        ("POST", f"/heartbeats/{hb}/rotate-token"),
        ("GET", f"/heartbeats/{hb}/checkins"),
        ("GET", f"/heartbeats/{hb}/uptime"),
        ("GET", f"/heartbeats/{hb}/timings"),
        ("GET", f"/heartbeats/{hb}/export"),
        ("GET", f"/channels/{ch}"),
        ("DELETE", f"/channels/{ch}"),
        ("DELETE", f"/keys/{key}"),
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def two(api):
    return await furnished(api), await furnished(api)


@pytest.mark.parametrize("by", ["key", "session"])
async def test_another_projects_ids_are_404_everywhere(api, two, by):
    (mine, _), (theirs, their_ids) = two
    caller = mine if by == "key" else await as_browser(api, mine)
    for method, path in other_ids_paths(their_ids):
        status, body = await caller.call(method, path, json={"name": "taken"} if method == "PATCH" else None)
        assert status == 404, (method, path, status, body)
        assert "not found" in body["error"], body
    # ...and none of those calls changed anything of theirs
    still = await theirs.ok("GET", f"/heartbeats/{their_ids['heartbeat']}")
    assert still["paused"] is False and still["token"] == their_ids["token"]
    await theirs.ok("GET", f"/channels/{their_ids['channel']}")
    assert their_ids["key"] in str(await theirs.ok("GET", "/keys"))


@pytest.mark.parametrize("by", ["key", "session"])
async def test_each_project_lists_only_its_own_things(api, two, by):
    for (tenant, own), (_, other) in (two, two[::-1]):
        caller = tenant if by == "key" else await as_browser(api, tenant)
        heartbeats = await caller.ok("GET", "/heartbeats")
        channels = await caller.ok("GET", "/channels")
        keys = await caller.ok("GET", "/keys")
        assert [h["id"] for h in heartbeats["heartbeats"]] == [own["heartbeat"]]
        assert [c["id"] for c in channels["channels"]] == [own["channel"]]
        assert own["key"] in str(keys) and other["key"] not in str(keys)
        assert (await caller.ok("GET", "/projects/me"))["id"] == tenant.project_id


@pytest.mark.parametrize("by", ["key", "session"])
async def test_history_and_exports_hold_only_the_projects_own_check_ins(api, two, by):
    for (tenant, own), (_, other) in (two, two[::-1]):
        caller = tenant if by == "key" else await as_browser(api, tenant)
        checkins = await caller.ok("GET", f"/heartbeats/{own['heartbeat']}/checkins")
        assert [c["message"] for c in checkins["checkins"]] == [own["message"]]
        for fmt in ("csv", "json"):
            exported = await caller.ok(
                "GET", f"/heartbeats/{own['heartbeat']}/export", params={"format": fmt}
            )
            assert own["message"] in str(exported) and other["message"] not in str(exported)


async def test_a_heartbeat_cannot_be_pointed_at_another_projects_channel(api, two):
    (mine, own), (_, theirs) = two
    status, body = await mine.call(
        "PATCH", f"/heartbeats/{own['heartbeat']}", json={"channels": [theirs["channel"]]}
    )
    assert status == 400 and body["field"].startswith("channels"), body
