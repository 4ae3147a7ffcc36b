"""Deliveries over real HTTP: every try listed per heartbeat and per channel, the test button,
and dead letters listed and sent again.

Tries the notifier made are put straight into the session's ClickHouse (as in
test_history); tries this API makes itself (test, resend) travel the real way, through the
bus and a running history writer. Receivers are real HTTP servers on loopback, which this
module's API is allowed to reach.
"""

from __future__ import annotations

import ipaddress
import time

import pytest
import pytest_asyncio

from services.notifier.logic import TEST_REASON
from services.query.consumer import HistoryWriter
from shared.events import Alert, Delivery, DeliveryAttempt
from tests.polling import eventually
from tests.services.notifier.support import Receiver
from tests.services.query.api.tenants import Tenant, new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest_asyncio.fixture(scope="module", loop_scope="session", autouse=True)
async def writer(api):
    """Loopback allowed (the receivers live there), and the writer that copies the bus's
    deliveries into ClickHouse, as ``pingura serve`` runs it."""
    api.ctx.settings = api.ctx.settings.replace(webhook_allowed_networks=LOOPBACK)
    history_writer = HistoryWriter(api.ctx.settings, api.ctx.bus, api.ctx.topics, api.ctx.store)
    await history_writer.start()
    yield history_writer
    await history_writer.close()


@pytest_asyncio.fixture(loop_scope="session")
async def receiver():
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.close()


def now_ms() -> int:
    return int(time.time()) * 1000


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


async def a_heartbeat_and_channel(api, url: str) -> tuple[Tenant, str, str]:
    tenant = await new_tenant(api)
    channel = await tenant.ok("POST", "/channels", 201, json={"kind": "webhook", "config": {"url": url}})
    heartbeat = await tenant.ok(
        "POST", "/heartbeats", 201, json={"name": "backup", "interval": "1d", "channels": [channel["id"]]}
    )
    return tenant, heartbeat["id"], channel["id"]


def an_alert(project_id: str, monitor_id: str, channel_id: str, kind: str = "down") -> Alert:
    return Alert(
        id=f"{monitor_id}:1:{kind}", kind=kind, monitor_id=monitor_id, project_id=project_id, monitor_name="backup",
        incident=1, reason="no ping", at_ms=now_ms(), channels=[channel_id],
    )  # fmt: skip


def tries(
    alert: Alert, channel_id: str, t0: int, *outcomes: tuple[str, int | None, str]
) -> list[DeliveryAttempt]:
    """One attempt per ``(outcome, status_code, error)``, a second apart from ``t0``."""
    out = []
    for n, (outcome, status, error) in enumerate(outcomes, start=1):
        at = t0 + (n - 1) * 1000
        out.append(DeliveryAttempt(
            alert_id=alert.id, channel_id=channel_id, monitor_id=alert.monitor_id, project_id=alert.project_id,
            kind=alert.kind, attempt=n, at_ms=at, outcome=outcome, first_attempt_ms=t0, status_code=status,
            error=error, latency_ms=12, next_attempt_ms=at + 1000 if outcome == "retrying" else None,
            alert=alert if outcome == "failed" else None,
        ))  # fmt: skip
    return out


async def record(api, events) -> None:
    await api.ctx.store.insert_events(events, f"t-api-deliveries-{time.monotonic_ns()}")


# every try, listed -------------------------------------------------------------------------
async def test_a_heartbeats_deliveries_list_every_try_newest_first_a_page_at_a_time(api):
    tenant, hb, channel = await a_heartbeat_and_channel(api, "https://hooks.example.com/1")
    alert = an_alert(tenant.project_id, hb, channel)
    t0 = now_ms() - 10_000
    await record(api, tries(alert, channel, t0, ("retrying", 503, "receiver answered HTTP 503"),
                            ("retrying", 503, "receiver answered HTTP 503"), ("retrying", None, "timed out after 10 s"),
                            ("delivered", 200, "")))  # fmt: skip

    first = await tenant.ok("GET", f"/heartbeats/{hb}/deliveries", params={"limit": "3"})
    second = await tenant.ok(
        "GET", f"/heartbeats/{hb}/deliveries", params={"limit": "3", "before": first["next"]}
    )

    assert second["next"] is None
    rows = first["deliveries"] + second["deliveries"]
    assert [(r["attempt"], r["outcome"], r["status_code"], r["ok"]) for r in rows] == [
        (4, "delivered", 200, True), (3, "retrying", None, False), (2, "retrying", 503, False),
        (1, "retrying", 503, False),
    ]  # fmt: skip
    assert rows[3] == {
        "id": f"{alert.id}|{channel}|1", "alert_id": alert.id, "kind": "down", "heartbeat_id": hb,
        "channel_id": channel, "attempt": 1, "outcome": "retrying", "ok": False, "attempts": 1, "status_code": 503,
        "error": "receiver answered HTTP 503", "latency_ms": 12, "at": iso(t0), "next_attempt_at": iso(t0 + 1000),
        "digest": 0, "resend": False,
    }  # fmt: skip


async def test_deliveries_recorded_before_attempts_are_listed_as_their_outcome(api):
    tenant, hb, channel = await a_heartbeat_and_channel(api, "https://hooks.example.com/1")
    t = now_ms()
    legacy = Delivery(alert_id=f"{hb}:1:down", channel_id=channel, monitor_id=hb, project_id=tenant.project_id,
                      ok=False, attempts=4, at_ms=t, error="receiver answered HTTP 500")  # fmt: skip
    await record(api, [legacy])

    [row] = (await tenant.ok("GET", f"/heartbeats/{hb}/deliveries"))["deliveries"]

    assert (row["attempt"], row["outcome"], row["ok"], row["status_code"]) == (4, "failed", False, None)


async def test_a_channels_deliveries_list_its_tries_of_every_heartbeat(api):
    tenant, hb, channel = await a_heartbeat_and_channel(api, "https://hooks.example.com/1")
    other = await tenant.ok(
        "POST", "/heartbeats", 201, json={"name": "other", "interval": "1d", "channels": [channel]}
    )
    t0 = now_ms() - 5000
    await record(api, [
        *tries(an_alert(tenant.project_id, hb, channel), channel, t0, ("delivered", 200, "")),
        *tries(an_alert(tenant.project_id, other["id"], channel), channel, t0 + 100, ("delivered", 204, "")),
        *tries(an_alert(tenant.project_id, hb, "ch_elsewhere"), "ch_elsewhere", t0 + 200, ("delivered", 200, "")),
    ])  # fmt: skip

    body = await tenant.ok("GET", f"/channels/{channel}/deliveries")

    assert [(r["heartbeat_id"], r["status_code"]) for r in body["deliveries"]] == [
        (other["id"], 204),
        (hb, 200),
    ]
    assert body["next"] is None


async def test_another_projects_channel_has_no_deliveries_to_show_nor_test(api):
    _, _, channel = await a_heartbeat_and_channel(api, "https://hooks.example.com/1")
    stranger = await new_tenant(api)

    for method, path in (("GET", f"/channels/{channel}/deliveries"), ("POST", f"/channels/{channel}/test")):
        status, body = await stranger.call(method, path)
        assert status == 404, (path, body)


# the test button ---------------------------------------------------------------------------
async def test_the_test_button_sends_a_test_notification_and_records_the_try(api, receiver):
    tenant, _, channel = await a_heartbeat_and_channel(api, receiver.url("/hook"))

    answer = await tenant.ok("POST", f"/channels/{channel}/test")

    assert answer["ok"] is True and answer["status_code"] == 200 and answer["latency_ms"] >= 0
    assert "error" not in answer
    [request] = receiver.received("/hook")
    assert request.body["kind"] == "test" and request.body["reason"] == TEST_REASON
    assert request.headers["Idempotency-Key"] == request.body["alert_id"]

    rows = await eventually(lambda: _deliveries(tenant, f"/channels/{channel}/deliveries"), timeout_s=10.0)
    assert [(r["kind"], r["outcome"], r["attempt"], r["status_code"], r["heartbeat_id"]) for r in rows] == [
        ("test", "delivered", 1, 200, None)
    ]  # fmt: skip
    assert rows[0]["alert_id"] == request.body["alert_id"]


async def test_a_failing_test_says_why_and_is_no_dead_letter(api, receiver):
    receiver.answer("/down", 500)
    tenant, _, channel = await a_heartbeat_and_channel(api, receiver.url("/down"))

    answer = await tenant.ok("POST", f"/channels/{channel}/test")

    assert (answer["ok"], answer["status_code"]) == (False, 500) and "500" in answer["error"]
    rows = await eventually(lambda: _deliveries(tenant, f"/channels/{channel}/deliveries"), timeout_s=10.0)
    assert rows[0]["outcome"] == "failed"
    assert (await tenant.ok("GET", "/deliveries/failed"))["failed"] == []


async def test_a_read_only_key_cannot_send_a_test(api, receiver):
    tenant, _, channel = await a_heartbeat_and_channel(api, receiver.url("/hook"))
    key, _ = await tenant.new_key(read_only=True)

    status, _ = await tenant.with_key(key).call("POST", f"/channels/{channel}/test")

    assert status == 403 and receiver.received() == []


# dead letters ------------------------------------------------------------------------------
async def test_a_dead_letter_is_listed_and_sent_again_once(api, receiver):
    tenant, hb, channel = await a_heartbeat_and_channel(api, receiver.url("/hook"))
    alert = an_alert(tenant.project_id, hb, channel)
    t0 = now_ms() - 60_000
    await record(
        api, tries(alert, channel, t0, ("retrying", 503, "HTTP 503"), ("failed", 400, "HTTP 400: bad"))
    )

    listed = await tenant.ok("GET", "/deliveries/failed")
    assert listed == {"failed": [{
        "id": f"{alert.id}|{channel}", "alert_id": alert.id, "kind": "down", "heartbeat_id": hb,
        "heartbeat_name": "backup", "channel_id": channel, "attempts": 2, "status_code": 400,
        "error": "HTTP 400: bad", "failed_at": iso(t0 + 1000),
    }], "next": None}  # fmt: skip

    answer = await tenant.ok("POST", f"/deliveries/failed/{alert.id}|{channel}/resend")

    assert answer == {"ok": True, "status_code": 200, "latency_ms": answer["latency_ms"], "attempt": 3}
    [request] = receiver.received("/hook")
    assert request.body["alert_id"] == alert.id and request.headers["Idempotency-Key"] == alert.id
    await eventually(lambda: _failed_ids(tenant, want=[]), timeout_s=10.0)
    rows = (await tenant.ok("GET", f"/heartbeats/{hb}/deliveries"))["deliveries"]
    assert [(r["attempt"], r["outcome"], r["resend"]) for r in rows] == [
        (3, "delivered", True), (2, "failed", False), (1, "retrying", False),
    ]  # fmt: skip


async def test_a_resend_that_fails_again_stays_listed_with_its_new_error(api, receiver):
    receiver.answer("/hook", 500)
    tenant, hb, channel = await a_heartbeat_and_channel(api, receiver.url("/hook"))
    alert = an_alert(tenant.project_id, hb, channel)
    await record(api, tries(alert, channel, now_ms() - 60_000, ("failed", 400, "HTTP 400")))

    answer = await tenant.ok("POST", f"/deliveries/failed/{alert.id}|{channel}/resend")

    assert (answer["ok"], answer["status_code"], answer["attempt"]) == (False, 500, 2)
    [row] = await eventually(lambda: _failed_rows(tenant, attempts=2), timeout_s=10.0)
    assert row["status_code"] == 500 and "500" in row["error"]


async def test_dead_letters_are_paged_newest_first(api):
    tenant, hb, channel = await a_heartbeat_and_channel(api, "https://hooks.example.com/1")
    t0 = now_ms() - 60_000
    alerts = [an_alert(tenant.project_id, f"{hb}-{i}", channel) for i in range(3)]
    for i, alert in enumerate(alerts):
        await record(api, tries(alert, channel, t0 + i * 10_000, ("failed", 404, "HTTP 404")))

    first = await tenant.ok("GET", "/deliveries/failed", params={"limit": "2"})
    second = await tenant.ok("GET", "/deliveries/failed", params={"limit": "2", "before": first["next"]})

    assert [f["alert_id"] for f in first["failed"] + second["failed"]] == [a.id for a in reversed(alerts)]
    assert second["next"] is None


async def test_only_the_projects_own_dead_letters_can_be_seen_or_sent(api, receiver):
    owner, hb, channel = await a_heartbeat_and_channel(api, receiver.url("/hook"))
    alert = an_alert(owner.project_id, hb, channel)
    await record(api, tries(alert, channel, now_ms() - 1000, ("failed", 400, "HTTP 400")))
    stranger = await new_tenant(api)

    assert (await stranger.ok("GET", "/deliveries/failed"))["failed"] == []
    for pair in (f"{alert.id}|{channel}", "no-such-pair", f"{alert.id}|ch_nope"):
        status, body = await stranger.call("POST", f"/deliveries/failed/{pair}/resend")
        assert status == 404, (pair, body)
    assert receiver.received() == []


async def _deliveries(tenant: Tenant, path: str) -> list[dict]:
    return (await tenant.ok("GET", path))["deliveries"]


async def _failed_ids(tenant: Tenant, want: list[str]) -> bool:
    return [f["id"] for f in (await tenant.ok("GET", "/deliveries/failed"))["failed"]] == want


async def _failed_rows(tenant: Tenant, attempts: int) -> list[dict] | None:
    rows = (await tenant.ok("GET", "/deliveries/failed"))["failed"]
    return rows if rows and rows[0]["attempts"] == attempts else None
