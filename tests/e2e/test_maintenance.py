"""A recurring maintenance window in a time zone, on the real ``pingura serve`` (local bus):
a heartbeat going down inside it sends nothing; its alert arrives once, when the window ends,
saying the window held it.

The window runs daily at the current minute of Europe/Berlin's clock for 90 s (read in UTC it
would be an hour off, and hold nothing). The real clock cannot be moved to a DST change: that
a window follows its zone across one is proven in the pure core
(``tests/services/evaluator/test_maintenance.py``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared.clock import iso_ms, now_ms
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.slow

ZONE = "Europe/Berlin"
TEMPLATE = '{"status": "{{status}}", "at_ms": "{{at_ms}}", "text": "{{text}}"}'


async def made(http, url: str, body: dict) -> dict:
    async with http.post(url, json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def test_a_heartbeat_down_in_a_recurring_window_alerts_once_when_it_ends(server, http, alert_receiver):
    api = f"{server.url}/api/v1"
    channel = await made(http, f"{api}/channels", {
        "kind": "webhook", "name": "ops", "config": {"url": alert_receiver.url("/hook"), "body": TEMPLATE},
    })  # fmt: skip
    heartbeat = await made(http, f"{api}/heartbeats", {
        "name": "nightly db dump", "interval": 1, "grace": 1, "channels": [channel["id"]], "tags": ["db"],
    })  # fmt: skip
    local = datetime.fromtimestamp(now_ms() / 1000, ZoneInfo(ZONE))
    # This minute's occurrence, ending 20-60 s from now: long enough for the heartbeat to go down
    # inside it, short enough not to wait out a long window.
    duration = 60 if local.second <= 40 else 90
    window = await made(http, f"{api}/maintenance", {
        "name": "db upkeep", "schedule": f"{local.minute} {local.hour} * * *", "duration": duration, "timezone": ZONE,
        "starts_at": iso_ms(now_ms() - 3_600_000), "covering": {"tags": ["db"]},
    })  # fmt: skip
    assert window["active_until"] is not None, window  # on now: started this minute, Berlin time
    ends_ms = int(datetime.fromisoformat(window["active_until"]).timestamp() * 1000)

    async with http.post(f"{server.url}/api/heartbeat/{heartbeat['token']}") as r:
        assert r.status == 200

    async def down_in_maintenance() -> dict | None:
        async with http.get(f"{api}/heartbeats/{heartbeat['id']}") as r:
            answer = await r.json()
        return answer if answer["status"] == "down" else None

    down = await eventually(down_in_maintenance)
    assert down["maintenance_until"] == window["active_until"]
    assert now_ms() < ends_ms, "the heartbeat went down only after the window ended: no hold was tested"
    assert alert_receiver.received() == []  # down, and nobody paged

    [alert] = await eventually(lambda: alert_receiver.received() or None, timeout_s=150)
    assert alert.body["status"] == "down"
    assert int(alert.body["at_ms"]) >= ends_ms  # sent when the window ended, not when it went down
    assert "maintenance window 'db upkeep'" in alert.body["text"], alert.body["text"]

    # Once: the next alert of this heartbeat is its recovery, not the down again.
    async with http.post(f"{server.url}/api/heartbeat/{heartbeat['token']}") as r:
        assert r.status == 200
    await eventually(lambda: len(alert_receiver.received()) == 2)
    assert [r.body["status"] for r in alert_receiver.received()] == ["down", "up"]
