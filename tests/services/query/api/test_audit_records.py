"""What the write handlers record in the audit log (read back from the ``audit`` topic, where
``record_change`` publishes before it answers): channels with their secret settings masked,
maintenance windows, the status page (its key masked), project settings and key rotations,
key revocation; and a change whose record cannot be written answers 503."""

from __future__ import annotations

import dataclasses
import json
from contextlib import AsyncExitStack

import pytest
import structlog

from shared.bus import BusUnavailable
from shared.bus.local import LocalBus
from tests.services.notifier.support import Receiver
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.api.test_deliveries import (
    LOOPBACK,
    a_heartbeat_and_channel,
    an_alert,
    now_ms,
    record,
    tries,
)
from tests.services.query.api.test_instances import JUDGED, fleet, fleet_heartbeat, saved
from tests.services.query.conftest import serve_api
from tests.services.query.test_audit import audit_entries

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def since_creation(api, tenant: Tenant) -> list[dict]:
    """The project's entries after its own creation (and its first key's), oldest first, as JSON."""
    entries = await audit_entries(api, tenant.project_id)
    assert [e.action for e in entries[:2]] == ["project.create", "key.create"]
    return [json.loads(json.dumps({f: getattr(e, f) for f in e.__struct_fields__})) for e in entries[2:]]


async def test_a_channels_secret_settings_never_appear_in_its_entries(api):
    tenant = await new_tenant(api)
    bearer, signing = "Bearer s3cr3t-header-value-WXYZ", "whsec_signing-secret-value-ABCD"
    made = await tenant.ok("POST", "/channels", 201, json={"kind": "webhook", "name": "hook", "config": {
        "url": "https://hooks.example.com/x", "headers": {"Authorization": bearer}, "secret": signing}})  # fmt: skip
    await tenant.ok("PATCH", f"/channels/{made['id']}", json={"name": "renamed hook"})
    await tenant.ok("DELETE", f"/channels/{made['id']}", 204)
    created, updated, deleted = await since_creation(api, tenant)
    assert [created["action"], updated["action"], deleted["action"]] == [
        "channel.create", "channel.update", "channel.delete"]  # fmt: skip
    assert created["after"]["config"]["headers"] == {"Authorization": "****WXYZ"}
    assert updated["before"]["config"]["secret"] == updated["after"]["config"]["secret"] == "****ABCD"
    assert (updated["before"]["name"], updated["after"]["name"]) == ("hook", "renamed hook")
    assert deleted["after"] is None
    text = json.dumps([created, updated, deleted])
    assert "s3cr3t" not in text and "signing-secret" not in text


async def test_maintenance_status_page_project_and_key_changes_are_recorded_with_keys_masked(api):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "n", "interval": "1h"})
    window = await tenant.ok("POST", "/maintenance", 201, json={
        "name": "weekly", "schedule": "0 2 * * 0", "duration": "1h", "covering": {"whole_project": True}})  # fmt: skip
    await tenant.ok("PATCH", f"/maintenance/{window['id']}", json={"name": "sunday"})
    await tenant.ok("DELETE", f"/maintenance/{window['id']}", 204)
    page = await tenant.ok("PUT", "/projects/me/status-page", json={
        "title": "Jobs", "groups": [{"name": "All", "items": [{"heartbeat_id": hb["id"], "label": "n"}]}]})  # fmt: skip
    new_key = (await tenant.ok("POST", "/projects/me/status-page/key"))["key"]
    await tenant.ok("DELETE", "/projects/me/status-page", 204)
    await tenant.ok("PATCH", "/projects/me", json={"auto_create": False})
    badge_key = (await tenant.ok("POST", "/projects/me/badge-key"))["badge_key"]
    _, key = await tenant.new_key(name="spare")
    await tenant.ok("DELETE", f"/keys/{key['id']}", 204)
    entries = (await since_creation(api, tenant))[1:]  # after the heartbeat's creation
    assert [e["action"] for e in entries] == [
        "maintenance.create", "maintenance.update", "maintenance.delete", "status_page.update",
        "status_page.rotate_key", "status_page.delete", "project.update", "project.rotate_badge_key",
        "key.create", "key.revoke",
    ]  # fmt: skip
    by = {e["action"]: e for e in entries}
    assert (
        by["maintenance.update"]["before"]["name"] == "weekly"
        and by["maintenance.update"]["after"]["name"] == "sunday"
    )
    assert by["maintenance.delete"]["target_id"] == window["id"] and by["maintenance.delete"]["after"] is None
    rotated = by["status_page.rotate_key"]
    assert (
        rotated["before"]["key"] == "****" + page["key"][-4:]
        and rotated["after"]["key"] == "****" + new_key[-4:]
    )
    assert by["status_page.delete"]["after"] is None and by["status_page.update"]["after"]["title"] == "Jobs"
    settings = by["project.update"]
    assert (settings["before"]["auto_create"], settings["after"]["auto_create"]) == (True, False)
    assert "api_key_hashes" not in settings["after"]
    assert by["project.rotate_badge_key"]["after"]["badge_key"] == "****" + badge_key[-4:]
    revoked = by["key.revoke"]
    assert (revoked["before"]["revoked"], revoked["after"]["revoked"]) == (False, True)
    assert revoked["after"]["name"] == "spare" and "key_hash" not in revoked["after"]
    text = json.dumps(entries)
    assert page["key"] not in text and new_key not in text and badge_key not in text


class AuditRefusingBus(LocalBus):
    """A real bus whose disk takes everything but the audit topic's records (as a full or
    failing log refuses an append): what makes ``record_change`` fail after the change."""

    audit_topic = ""

    async def publish(self, topic: str, key: str, value: bytes, partition: int | None = None) -> int:
        if topic == self.audit_topic:
            raise BusUnavailable("could not write to the local log: disk full")
        return await super().publish(topic, key, value, partition)


async def test_a_change_whose_record_cannot_be_written_answers_503_and_logs_the_entry(api, tmp_path):
    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "before", "interval": "1h"})
    bus = AuditRefusingBus(tmp_path / "bus.sqlite3")
    bus.audit_topic = api.ctx.topics.audit
    await bus.start()
    await bus.ensure_topics(api.ctx.topics.specs(1))
    ctx = dataclasses.replace(api.ctx, bus=bus)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(bus.close)
        url = await serve_api(stack, ctx)
        with structlog.testing.capture_logs() as logs:
            async with api.http.patch(f"{url}/heartbeats/{hb['id']}", json={"name": "after"},
                                      headers=tenant.headers) as r:  # fmt: skip
                status, body = r.status, await r.json()
    assert status == 503 and "audit record could not be written" in body["error"], body
    [logged] = [line for line in logs if line["event"] == "query.audit.unrecorded"]
    entry = json.loads(logged["entry"])
    assert entry["action"] == "heartbeat.update" and entry["after"]["name"] == "after"
    assert hb["token"] not in logged["entry"]


async def test_an_instance_taken_out_of_a_fleet_is_recorded(api):
    tenant = await new_tenant(api)
    hb = await fleet_heartbeat(tenant)
    await saved(api, tenant, hb, fleet=fleet({"web-1": JUDGED, "web-2": JUDGED}))
    await tenant.ok("DELETE", f"/heartbeats/{hb['id']}/instances/web-1", 202)
    removed = (await since_creation(api, tenant))[-1]
    assert (removed["action"], removed["target_kind"], removed["target_id"]) == (
        "instance.remove", "instance", f"{hb['id']}/web-1")  # fmt: skip
    assert removed["before"] == {"heartbeat_id": hb["id"], "instance": "web-1"} and removed["after"] is None


async def test_a_dead_letter_sent_again_is_recorded(api):
    api.ctx.settings = api.ctx.settings.replace(webhook_allowed_networks=LOOPBACK)  # the receiver is local
    receiver = Receiver()
    await receiver.start()
    try:
        tenant, hb, channel = await a_heartbeat_and_channel(api, receiver.url("/hook"))
        alert = an_alert(tenant.project_id, hb, channel)
        await record(api, tries(alert, channel, now_ms() - 60_000, ("failed", 400, "HTTP 400: bad")))
        await tenant.ok("POST", f"/deliveries/failed/{alert.id}|{channel}/resend")
    finally:
        await receiver.close()
    resent = (await since_creation(api, tenant))[-1]
    assert (resent["action"], resent["target_id"]) == ("delivery.resend", f"{alert.id}|{channel}")
    assert resent["after"] == {
        "alert_id": alert.id,
        "channel_id": channel,
        "attempt": 2,
        "outcome": "delivered",
    }
