"""Flapping and the recovery message, end to end: the real ``pingura serve`` (local bus),
heartbeats made and pinged over HTTP, webhooks to a alert_receiver on 127.0.0.1.

A flapping job (short flap settings) sends one ``flapping`` alert, then nothing until it has
been stable for its set time, then the alert its people had not heard; the API shows
``flapping_since`` meanwhile. A recovery (``up``) says how long the heartbeat was down and
how many expected check-ins it missed, in the webhook's JSON and in the readable text.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from shared.clock import now_ms
from tests.e2e.conftest import eventually
from tests.services.notifier.support import Receiver

pytestmark = pytest.mark.slow

STABLE_S = 15
"""Short (the API takes 10 s and more): the test waits it out."""
TEMPLATE = json.dumps({
    "status": "{{status}}", "at_ms": "{{at_ms}}", "held": "{{held}}", "missed_runs": "{{missed_runs}}",
    "down_since": "{{down_since}}", "text": "{{text}}",
})  # fmt: skip


async def test_a_flapping_job_sends_one_flapping_alert_then_nothing_until_stable(
    server, http, alert_receiver
):
    api = f"{server.url}/api/v1"
    channel = await made(http, f"{api}/channels", {"kind": "webhook", "name": "ops",
                                                   "config": {"url": alert_receiver.url("/hook"), "body": TEMPLATE}})  # fmt: skip
    heartbeat = await made(http, f"{api}/heartbeats", {
        "name": "flappy job", "interval": 60, "grace": 60, "channels": [channel["id"]],
        "flap_changes": 2, "flap_window": "1m", "flap_stable": STABLE_S,
    })  # fmt: skip
    assert [heartbeat[f"flap_{name}"] for name in ("changes", "window", "stable")] == [2, 60, STABLE_S]
    ping = f"{server.url}/api/heartbeat/{heartbeat['token']}"

    async def check_in(kind: str) -> int:
        sent = now_ms()  # (its event time is no earlier)
        async with http.post(ping + ("/fail" if kind == "fail" else "")) as r:
            assert r.status == 200
        return sent

    async def shown() -> dict:
        async with http.get(f"{api}/heartbeats/{heartbeat['id']}") as r:
            assert r.status == 200, await r.text()
            return await r.json()

    await check_in("success")
    # down, up (both heard), down (the third change: flapping), then four more changes: all held
    changes = [await check_in(kind) for kind in ["fail", "success"] * 3 + ["fail"]]

    await eventually(lambda: _flapping(shown), timeout_s=30)  # the API says so while it lasts
    heard = await eventually(lambda: _at_least_received(alert_receiver, "/hook", 4), timeout_s=STABLE_S + 30)
    bodies = [r.body for r in heard]
    assert [b["status"] for b in bodies] == ["down", "up", "flapping", "down"]
    flapping, released = bodies[2], bodies[3]
    assert flapping["text"].startswith("flappy job is flapping since ")
    assert "3 changes between down and up within 1 min" in flapping["text"]
    # Nothing between the flapping alert and the end of the stable time: the down that goes out
    # then is the one its people had not heard, saying flapping held it.
    assert int(released["at_ms"]) >= changes[-1] + STABLE_S * 1000
    assert released["held"].startswith("held while flapping since "), released
    assert "Held while flapping since" in released["text"]
    await eventually(lambda: _flapping(shown, False), timeout_s=30)  # and it says so no more

    # Once: its next alert is the recovery, not a second flapping alert or the down again.
    await check_in("success")
    await eventually(lambda: len(alert_receiver.received("/hook")) >= 5, timeout_s=30)
    assert [r.body["status"] for r in alert_receiver.received("/hook")] == [
        "down",
        "up",
        "flapping",
        "down",
        "up",
    ]


async def made(http, url: str, body: dict) -> dict:
    async with http.post(url, json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def test_the_recovery_message_says_how_long_it_was_down_and_how_many_check_ins_were_missed(
    server, http, alert_receiver
):
    api = f"{server.url}/api/v1"
    plain = await made(http, f"{api}/channels", {"kind": "webhook", "name": "json",
                                                 "config": {"url": alert_receiver.url("/json")}})  # fmt: skip
    readable = await made(http, f"{api}/channels", {"kind": "webhook", "name": "text",
                                                    "config": {"url": alert_receiver.url("/text"), "body": TEMPLATE}})  # fmt: skip
    heartbeat = await made(http, f"{api}/heartbeats", {
        "name": "every second", "interval": 1, "grace": 1, "channels": [plain["id"], readable["id"]],
    })  # fmt: skip
    ping = f"{server.url}/api/heartbeat/{heartbeat['token']}"
    async with http.post(ping) as r:
        assert r.status == 200

    async def missed() -> list[dict]:
        async with http.get(f"{api}/heartbeats/{heartbeat['id']}/checkins?limit=100") as r:
            assert r.status == 200, await r.text()
            return [row for row in (await r.json())["checkins"] if row["kind"] == "missed"]

    await eventually(lambda: alert_receiver.received("/json") or None, timeout_s=30)  # down
    await eventually(lambda: _at_least(missed, 4), timeout_s=30)  # and more windows missed while down
    async with http.post(ping) as r:
        assert r.status == 200

    up = (await eventually(lambda: _kind(alert_receiver, "/json", "up"), timeout_s=30)).body
    down = alert_receiver.received("/json")[0].body
    assert up["down_since_ms"] == down["at_ms"] and up["down_since"] == down["at"]
    assert up["missed_runs"] >= 4

    async def missed_before_up() -> int:  # (history is written a moment after the alert)
        return sum(1 for row in await missed() if _ms(row["received_at"]) < up["at_ms"])

    # Every expected check-in recorded missed before the recovery, and only those.
    await eventually(lambda: _equal(missed_before_up, up["missed_runs"]), timeout_s=15)
    text = (await eventually(lambda: _kind(alert_receiver, "/text", "up"), timeout_s=30)).body
    assert text["missed_runs"] == str(up["missed_runs"]) and text["down_since"] == up["down_since"]
    assert f"; {up['missed_runs']} expected check-ins missed." in text["text"]
    assert "every second is up again since " in text["text"] and ", after being down for " in text["text"]


async def _flapping(shown, flapping: bool = True) -> bool:
    return ((await shown())["flapping_since"] is not None) == flapping


def _at_least_received(alert_receiver: Receiver, path: str, count: int):
    found = alert_receiver.received(path)
    return found if len(found) >= count else None


async def _at_least(read, count: int) -> bool:
    return len(await read()) >= count


async def _equal(read, value) -> bool:
    found = await read()
    assert found == value, f"{found} != {value}"
    return True


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _kind(alert_receiver: Receiver, path: str, status: str):
    found = [r for r in alert_receiver.received(path) if r.body.get("kind", r.body.get("status")) == status]
    return found[0] if found else None
