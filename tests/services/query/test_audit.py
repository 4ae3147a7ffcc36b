"""The audit log's records (services/query/audit.py): a change made through the API is
published to the ``audit`` topic with who, from where, before and after; secrets masked."""

from __future__ import annotations

import msgspec
import pytest

from services.query.audit import masked, new_entry_id
from shared.events import AuditEntry, ChannelConfig, MonitorConfig, decode
from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def audit_entries(api, project_id: str) -> list[AuditEntry]:
    """Every entry of ``project_id`` on the audit topic, in the order published. A write's
    entry is published before its answer, so reading once after it is enough."""
    bus, topic = api.ctx.bus, api.ctx.topics.audit
    reader = bus.reader([(topic, p) for p in range(bus.partitions(topic))])
    await reader.start()
    try:
        found: list[AuditEntry] = []
        while not await reader.caught_up():
            for record in await reader.poll(timeout_ms=200):
                entry = decode(record.value)
                if isinstance(entry, AuditEntry) and entry.project_id == project_id:
                    found.append(entry)
        return found
    finally:
        await reader.close()


async def test_a_heartbeat_edit_is_recorded_with_before_and_after_and_its_token_masked(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": "nightly", "interval": "1h"})
    await tenant.ok("PATCH", f"/heartbeats/{made['id']}", json={"name": "nightly backup", "grace": "5m"})
    await tenant.ok("POST", f"/heartbeats/{made['id']}/rotate-token")
    entries = (await audit_entries(api, tenant.project_id))[2:]  # after the project's and its key's creation
    assert [e.action for e in entries] == ["heartbeat.create", "heartbeat.update", "heartbeat.rotate_token"]
    create, edit, rotate = entries
    assert create.before is None and create.after is not None and create.after["name"] == "nightly"
    assert edit.before is not None and edit.after is not None
    assert (edit.before["name"], edit.after["name"]) == ("nightly", "nightly backup")
    assert (edit.before["grace_s"], edit.after["grace_s"]) != (300, 300) and edit.after["grace_s"] == 300
    assert edit.target_kind == "heartbeat" and edit.target_id == made["id"]
    assert edit.actor_kind == "key" and edit.actor_name and edit.actor_id
    assert edit.address == "127.0.0.1"
    assert edit.id > create.id and rotate.id > edit.id  # time-ordered
    # The token: recognisable by its last 4, never whole, in any entry.
    assert edit.after["token"] == "****" + made["token"][-4:]
    assert rotate.before is not None and rotate.after is not None
    assert (
        rotate.before["token"] == "****" + made["token"][-4:]
        and rotate.after["token"] != rotate.before["token"]
    )
    assert made["token"] not in msgspec.json.encode(entries).decode()


async def test_a_delete_records_the_heartbeat_before_and_nothing_after(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": "gone", "interval": "1h"})
    await tenant.ok("DELETE", f"/heartbeats/{made['id']}", 204)
    deleted = (await audit_entries(api, tenant.project_id))[-1]
    assert deleted.action == "heartbeat.delete"
    assert deleted.before is not None and deleted.before["name"] == "gone" and deleted.after is None


async def test_secrets_are_masked_or_left_out():
    channel = ChannelConfig(
        id="ch_1", project_id="p", kind="webhook", name="hook", created_ms=0, updated_ms=0,
        config={"url": "https://hooks.example.com/x", "headers": {"Authorization": "Bearer s3cr3t-v4lue-wxyz"}},
    )  # fmt: skip
    shown = masked("channel", channel)
    assert shown is not None and "type" not in shown
    assert "s3cr3t" not in msgspec.json.encode(shown).decode()
    assert shown["config"]["headers"] == {"Authorization": "****wxyz"}
    signed = masked(
        "channel", {"kind": "webhook", "config": {"url": "https://x.example", "secret": "whsec_0123456789"}}
    )
    assert signed == {
        "kind": "webhook",
        "config": {"url": "https://x.example", "secret": "****6789"},
    }  # shown masked
    project = {
        "name": "p", "ping_key": "abcdefghijklmnopqrstuv", "badge_key": None, "api_key_hashes": ["f" * 64],
        "status_page": {"key": "0123456789abcdefghijkl", "title": "t"},
    }  # fmt: skip
    assert masked("project", project) == {
        "name": "p", "ping_key": "****stuv", "badge_key": None, "status_page": {"key": "****ijkl", "title": "t"},
    }  # fmt: skip
    user = {
        "email": "a@example.com",
        "password_hash": "$argon2id$x",
        "totp_sealed": "x",
        "recovery_code_hashes": [],
    }
    assert masked("user", user) == {"email": "a@example.com"}
    assert masked("status_page", {"key": "0123456789abcdefghijkl"}) == {"key": "****ijkl"}
    assert masked("heartbeat", None) is None
    paused = masked("heartbeat", MonitorConfig(id="hb_1", project_id="p", name="n", token="t" * 32, interval_s=60,
                                               grace_s=60, created_ms=0, updated_ms=0))  # fmt: skip
    assert paused is not None and paused["paused"] is False and paused["tags"] == []  # defaults too
    assert "v" not in paused and "type" not in paused and paused["token"] == "****tttt"


async def test_entry_ids_sort_as_their_times():
    ids = [new_entry_id(at) for at in (1, 2, 10**12, 1_800_000_000_000)]
    assert ids == sorted(ids) and len(set(ids)) == 4
