"""Changing a channel over real HTTP (``PATCH /channels/{id}``): checked as on create, secrets
kept when left out or sent back as shown, the kind fixed; another project's channel is 404
and a read-only key is refused. And each channel names the heartbeats that alert to it."""

from __future__ import annotations

import msgspec
import pytest

from tests.services.query.api.tenants import new_tenant
from tests.services.query.test_audit import audit_entries

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "s3cret-signing-key-0001"
TOKEN = "Bearer abcdefghijklmnop-4321"
HOOK = {
    "kind": "webhook",
    "name": "ops hook",
    "config": {"url": "https://hooks.example.com/a", "secret": SECRET, "headers": {"Authorization": TOKEN}},
}


def saved(api, channel_id: str) -> dict:
    """The config as stored (what the notifier sends with), not as the API shows it."""
    return api.ctx.channels.get(channel_id).config


async def test_a_change_keeps_secrets_left_out_or_sent_as_shown(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/channels", 201, json=HOOK)
    assert made["config"]["secret"] == "****0001" and made["config"]["headers"] == {
        "Authorization": "****4321"
    }
    one = f"/channels/{made['id']}"

    # The name and the URL change; the secret and the header, left out, stay.
    changed = await tenant.ok(
        "PATCH", one, json={"name": " paging ", "config": {"url": "https://hooks.example.com/b"}}
    )
    assert changed["name"] == "paging" and changed["config"]["url"] == "https://hooks.example.com/b"
    assert changed["config"]["secret"] == "****0001" and changed["updated_at"] >= made["updated_at"]
    assert saved(api, made["id"]) == {**HOOK["config"], "url": "https://hooks.example.com/b"}

    # The channel sent back as the API shows it (a form's round trip) changes nothing secret;
    # a header added beside the masked one is taken, and the kind may be sent if unchanged.
    shown = changed["config"]
    await tenant.ok("PATCH", one, json={
        "kind": "webhook", "config": {**shown, "headers": {**shown["headers"], "X-Team": "ops"}}})  # fmt: skip
    assert saved(api, made["id"])["secret"] == SECRET
    assert saved(api, made["id"])["headers"] == {"Authorization": TOKEN, "X-Team": "ops"}

    # A new secret replaces the old; null removes an optional one.
    await tenant.ok("PATCH", one, json={"config": {"secret": "another-signing-key-0002", "headers": None}})
    assert saved(api, made["id"])["secret"] == "another-signing-key-0002"
    assert not saved(api, made["id"]).get("headers")  # as the kind stores none: {}
    shown = (await tenant.ok("GET", one))["config"]
    assert shown["secret"] == "****0002" and not shown.get("headers"), shown


@pytest.mark.parametrize("body, field, says", [
    ({"config": {"url": "ftp://hooks.example.com/a"}}, "config.url", "http"),
    ({"config": {"url": None}}, "config.url", "required"),
    ({"config": {"colour": "red"}}, "config.colour", "unknown field"),
    ({"config": {"secret": "****9999"}}, "config.secret", "looks masked"),
    ({"config": {"headers": {"Authorization": "****0000"}}}, "config.headers.Authorization", "looks masked"),
    ({"config": "url=x"}, "config", "object"),
    ({"name": "  "}, "name", "required"),
    ({"kind": "slack"}, "kind", "cannot change"),
    ({"id": "ch_other"}, "id", ""),
])  # fmt: skip
async def test_a_bad_change_is_refused_naming_the_field_and_changes_nothing(api, body, field, says):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/channels", 201, json=HOOK)
    status, answer = await tenant.call("PATCH", f"/channels/{made['id']}", json=body)
    assert status == 400 and answer["field"] == field and says in answer["error"], answer
    assert len(answer["error"].splitlines()) == 1
    assert saved(api, made["id"]) == HOOK["config"]


async def test_a_change_is_checked_by_the_kind_as_on_create(api):
    """The same check on both paths: what create refuses, a change refuses with the same words."""
    tenant = await new_tenant(api)
    made = await tenant.ok(
        "POST", "/channels", 201, json={"kind": "pagerduty", "config": {"routing_key": "r" * 32}}
    )
    bad = {"routing_key": "r" * 32, "rate_limit_per_minute": 0}
    created = await tenant.call("POST", "/channels", json={"kind": "pagerduty", "config": bad})
    changed = await tenant.call(
        "PATCH", f"/channels/{made['id']}", json={"config": {"rate_limit_per_minute": 0}}
    )
    assert created == changed and created[0] == 400, (created, changed)


async def test_another_projects_channel_is_404_and_a_read_only_key_is_refused(api):
    mine, theirs = await new_tenant(api), await new_tenant(api)
    made = await theirs.ok("POST", "/channels", 201, json=HOOK)
    status, answer = await mine.call("PATCH", f"/channels/{made['id']}", json={"name": "mine now"})
    assert (status, answer) == (404, {"error": "channel not found"})
    key, _ = await theirs.new_key(read_only=True)
    status, answer = await theirs.with_key(key).call("PATCH", f"/channels/{made['id']}", json={"name": "x"})
    assert status == 403 and "read-only" in answer["error"], answer
    assert (await theirs.ok("GET", f"/channels/{made['id']}"))["name"] == "ops hook"


async def test_each_channel_names_the_heartbeats_alerting_to_it(api):
    tenant = await new_tenant(api)
    used = await tenant.ok("POST", "/channels", 201, json=HOOK)
    unused = await tenant.ok("POST", "/channels", 201, json={**HOOK, "name": "spare"})
    assert used["heartbeats"] == []
    beats = [
        await tenant.ok(
            "POST", "/heartbeats", 201, json={"name": name, "interval": "1h", "channels": [used["id"]]}
        )
        for name in ("nightly", "Backup", "hourly")
    ]
    await tenant.ok("DELETE", f"/heartbeats/{beats[2]['id']}", 204)
    expected = [{"id": beats[1]["id"], "name": "Backup"}, {"id": beats[0]["id"], "name": "nightly"}]
    key, _ = await tenant.new_key(read_only=True)
    reader = tenant.with_key(key)  # a viewer may read which heartbeats use a channel
    assert (await reader.ok("GET", f"/channels/{used['id']}"))["heartbeats"] == expected
    listed = {c["id"]: c["heartbeats"] for c in (await reader.ok("GET", "/channels"))["channels"]}
    assert listed == {used["id"]: expected, unused["id"]: []}
    renamed = await tenant.ok("PATCH", f"/channels/{used['id']}", json={"name": "pager"})
    assert renamed["heartbeats"] == expected
    # The index follows the heartbeats: renamed, moved to another channel.
    await tenant.ok("PATCH", f"/heartbeats/{beats[0]['id']}", json={"name": "Nightly dump"})
    await tenant.ok("PATCH", f"/heartbeats/{beats[1]['id']}", json={"channels": [unused["id"]]})
    listed = {c["id"]: c["heartbeats"] for c in (await reader.ok("GET", "/channels"))["channels"]}
    assert listed == {
        used["id"]: [{"id": beats[0]["id"], "name": "Nightly dump"}],
        unused["id"]: [{"id": beats[1]["id"], "name": "Backup"}],
    }
    expected = listed[used["id"]]
    other = await new_tenant(api)  # another project's heartbeat naming the id is not counted
    status, _ = await other.call(
        "POST", "/heartbeats", json={"name": "x", "interval": "1h", "channels": [used["id"]]}
    )
    assert (await tenant.ok("GET", f"/channels/{used['id']}"))["heartbeats"] == expected, status


async def test_channel_changes_are_audited_with_their_secrets_masked(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/channels", 201, json=HOOK)
    new_header = {"Authorization": "Bearer another-token-0002"}
    await tenant.ok("PATCH", f"/channels/{made['id']}", json={"config": {"headers": new_header}})
    await tenant.ok("DELETE", f"/channels/{made['id']}", 204)
    entries = [e for e in await audit_entries(api, tenant.project_id) if e.target_kind == "channel"]
    assert [(e.action, e.target_id) for e in entries] == [
        ("channel.create", made["id"]), ("channel.update", made["id"]), ("channel.delete", made["id"])
    ]  # fmt: skip
    create, update, delete = entries
    assert create.before is None and delete.after is None
    assert update.before is not None and update.after is not None
    before, after = update.before["config"]["headers"], update.after["config"]["headers"]
    assert (before, after) == ({"Authorization": "****4321"}, {"Authorization": "****0002"})
    text = msgspec.json.encode(entries).decode()
    assert SECRET not in text and TOKEN not in text and "another-token-0002" not in text
