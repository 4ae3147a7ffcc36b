"""Flapping and the recovery message, end to end.

A flapping job: the real evaluator (its consumer and ticker on the wall clock) and notifier on
the real local bus, a webhook receiver on 127.0.0.1; the heartbeat's config, with short flap
settings, is published on the ``monitors`` topic as the API writes it, and its check-ins on
``pings`` as ingest writes them. It sends one ``flapping`` alert, then nothing until it has
been stable for its set time, then the alert its people had not heard.

The recovery message: the real ``pingura serve``, pings over HTTP; the ``up`` alert says how
long the heartbeat was down and how many expected check-ins it missed, in the webhook's JSON
and in the readable text.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime

import pytest

from services.evaluator.service import EvaluatorService
from services.notifier.consumer import Notifier
from shared.bus.local import LocalBus
from shared.clock import now_ms
from shared.events import ChannelConfig, MonitorConfig, Ping, encode
from shared.settings import Settings
from shared.topics import Topics
from tests.e2e.conftest import eventually
from tests.services.notifier.support import Receiver

pytestmark = pytest.mark.slow

STABLE_S = 4
TEMPLATE = json.dumps({
    "status": "{{status}}", "at_ms": "{{at_ms}}", "held": "{{held}}", "missed_runs": "{{missed_runs}}",
    "down_since": "{{down_since}}", "text": "{{text}}",
})  # fmt: skip


@pytest.fixture
async def receiver():
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture
async def running(tmp_path):
    """The evaluator (consumer and ticker) and the notifier on a local bus, as ``pingura serve``
    runs them; yields the bus."""
    settings = Settings(
        data_dir=tmp_path, lateness_ms=200, checkpoint_interval_ms=200, delivery_retry_initial_s=0.2,
        webhook_allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
    )  # fmt: skip
    topics = Topics(settings.topic_prefix)
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(topics.specs(1))
    evaluator = EvaluatorService(settings, bus)
    notifier = Notifier(settings, bus, topics, poll_timeout_ms=100)
    await evaluator.start()
    await notifier.start()
    yield bus, topics
    await notifier.close()
    await evaluator.close()
    await bus.close()


async def test_a_flapping_job_sends_one_flapping_alert_then_nothing_until_stable(running, receiver):
    bus, topics = running
    at = now_ms()
    channel = ChannelConfig(id="ch1", project_id="p1", kind="webhook", name="ops", created_ms=at, updated_ms=at,
                            config={"url": receiver.url("/hook"), "body": TEMPLATE})  # fmt: skip
    await bus.publish(topics.channels, channel.id, encode(channel))
    monitor = MonitorConfig(
        id="hb_flappy", project_id="p1", name="flappy job", token="t" * 32, interval_s=60, grace_s=60,
        channels=[channel.id], created_ms=at, updated_ms=at,
        flap_changes=2, flap_window_s=60, flap_stable_s=STABLE_S,
    )  # fmt: skip
    await bus.publish(topics.monitors, monitor.id, encode(monitor))

    async def check_in(kind: str) -> int:
        received = now_ms()
        ping = Ping(id=f"{kind}-{received}", monitor_id=monitor.id, project_id="p1", received_ms=received,
                    kind=kind, exit_code=1 if kind == "fail" else None)  # fmt: skip
        await bus.publish(topics.pings, monitor.id, encode(ping))
        return received

    await check_in("success")
    # down, up (both heard), down (the third change: flapping), then four more changes: all held
    changes = [await check_in(kind) for kind in ["fail", "success"] * 3 + ["fail"]]

    heard = await eventually(lambda: receiver.received("/hook") if len(receiver.received("/hook")) >= 4 else None,
                             timeout_s=30)  # fmt: skip
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

    # Once: its next alert is the recovery, not a second flapping alert or the down again.
    await check_in("success")
    await eventually(lambda: len(receiver.received("/hook")) >= 5, timeout_s=30)
    assert [r.body["status"] for r in receiver.received("/hook")] == ["down", "up", "flapping", "down", "up"]


async def made(http, url: str, body: dict) -> dict:
    async with http.post(url, json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def test_the_recovery_message_says_how_long_it_was_down_and_how_many_check_ins_were_missed(
    server, http, receiver
):
    api = f"{server.url}/api/v1"
    plain = await made(http, f"{api}/channels", {"kind": "webhook", "name": "json",
                                                 "config": {"url": receiver.url("/json")}})  # fmt: skip
    readable = await made(http, f"{api}/channels", {"kind": "webhook", "name": "text",
                                                    "config": {"url": receiver.url("/text"), "body": TEMPLATE}})  # fmt: skip
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

    await eventually(lambda: receiver.received("/json") or None, timeout_s=30)  # down
    await eventually(lambda: _at_least(missed, 4), timeout_s=30)  # and more windows missed while down
    async with http.post(ping) as r:
        assert r.status == 200

    up = (await eventually(lambda: _kind(receiver, "/json", "up"), timeout_s=30)).body
    down = receiver.received("/json")[0].body
    assert up["down_since_ms"] == down["at_ms"] and up["down_since"] == down["at"]
    assert up["missed_runs"] >= 4

    async def missed_before_up() -> int:  # (history is written a moment after the alert)
        return sum(1 for row in await missed() if _ms(row["received_at"]) < up["at_ms"])

    # Every expected check-in recorded missed before the recovery, and only those.
    await eventually(lambda: _equal(missed_before_up, up["missed_runs"]), timeout_s=15)
    text = (await eventually(lambda: _kind(receiver, "/text", "up"), timeout_s=30)).body
    assert text["missed_runs"] == str(up["missed_runs"]) and text["down_since"] == up["down_since"]
    assert f"; {up['missed_runs']} expected check-ins missed." in text["text"]
    assert "every second is up again since " in text["text"] and ", after being down for " in text["text"]


async def _at_least(read, count: int) -> bool:
    return len(await read()) >= count


async def _equal(read, value) -> bool:
    found = await read()
    assert found == value, f"{found} != {value}"
    return True


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _kind(receiver: Receiver, path: str, status: str):
    found = [r for r in receiver.received(path) if r.body.get("kind", r.body.get("status")) == status]
    return found[0] if found else None
