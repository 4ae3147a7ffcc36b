"""Delivery guarantees of the real ``pingura serve``: every try shown by the API, a retry
that survives SIGKILL without starting over, and a dead letter sent again.

The receivers are scripted HTTP servers on loopback; retries are made short through the
environment (``PINGURA_DELIVERY_RETRY_INITIAL_S``), as an operator would set them.
"""

from __future__ import annotations

import signal

import pytest

from tests.e2e.conftest import Server, eventually
from tests.services.notifier.support import Receiver


def serve(tmp_path, monkeypatch, retry_initial_s: float) -> Server:
    monkeypatch.setenv("PINGURA_DELIVERY_RETRY_INITIAL_S", str(retry_initial_s))
    monkeypatch.setenv("PINGURA_DELIVERY_MAX_AGE_S", "120")
    server = Server(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    return server


@pytest.fixture
def fast_retries(tmp_path, monkeypatch):
    server = serve(tmp_path, monkeypatch, 0.3)
    yield server
    server.stop()


@pytest.fixture
def slow_retries(tmp_path, monkeypatch):
    server = serve(tmp_path, monkeypatch, 4.0)
    yield server
    server.stop()


async def a_silent_heartbeat(http, server: Server, alert_receiver: Receiver, path: str) -> tuple[str, str]:
    """A webhook channel to ``path`` and a heartbeat on it, pinged once: it goes down in a
    few seconds. Returns (heartbeat id, channel id)."""
    async with http.post(
        f"{server.url}/api/v1/channels",
        json={"kind": "webhook", "name": "ops", "config": {"url": alert_receiver.url(path)}},
    ) as r:
        assert r.status == 201, await r.text()
        channel = (await r.json())["id"]
    async with http.post(f"{server.url}/api/v1/heartbeats", json={
        "name": "nightly", "interval": 1, "grace": 1, "max_consecutive_misses": 1, "channels": [channel],
    }) as r:  # fmt: skip
        assert r.status == 201, await r.text()
        monitor = await r.json()
    async with http.post(f"{server.url}/api/heartbeat/{monitor['token']}") as r:
        assert r.status == 200
    return monitor["id"], channel


async def tries(http, server: Server, heartbeat: str) -> list[dict]:
    async with http.get(f"{server.url}/api/v1/heartbeats/{heartbeat}/deliveries") as r:
        assert r.status == 200, await r.text()
        return (await r.json())["deliveries"]


async def tries_when(http, server, heartbeat, count: int) -> list[dict] | None:
    rows = await tries(http, server, heartbeat)
    return rows if len(rows) >= count else None


async def test_a_receiver_failing_three_times_gets_one_delivery_in_four_attempts(
    fast_retries, http, alert_receiver
):
    server = fast_retries
    alert_receiver.answer("/hook", 503, 503, 503)
    heartbeat, channel = await a_silent_heartbeat(http, server, alert_receiver, "/hook")

    rows = await eventually(lambda: tries_when(http, server, heartbeat, 4), timeout_s=30)

    assert [(r["attempt"], r["outcome"], r["status_code"]) for r in rows] == [
        (4, "delivered", 200), (3, "retrying", 503), (2, "retrying", 503), (1, "retrying", 503),
    ]  # fmt: skip
    assert {r["alert_id"] for r in rows} == {f"{heartbeat}:1:down"} and {r["channel_id"] for r in rows} == {
        channel
    }
    assert all(r["next_attempt_at"] for r in rows[1:]) and all(r["latency_ms"] >= 0 for r in rows)
    assert [r.status for r in alert_receiver.received()] == [503, 503, 503, 200]
    async with http.get(f"{server.url}/api/v1/channels/{channel}/deliveries") as r:
        assert [row["attempt"] for row in (await r.json())["deliveries"]] == [4, 3, 2, 1]


async def test_a_retry_waiting_when_the_server_is_killed_is_delivered_once_after_restart(
    slow_retries, http, alert_receiver
):
    server = slow_retries
    alert_receiver.answer("/hook", 503, 503)
    heartbeat, _ = await a_silent_heartbeat(http, server, alert_receiver, "/hook")
    # Tries 1 and 2 fail; try 2 schedules try 3 about 8 s later (4 s doubled, ± 20 %).
    before = await eventually(lambda: tries_when(http, server, heartbeat, 2), timeout_s=30)
    assert [(r["attempt"], r["outcome"]) for r in before] == [(2, "retrying"), (1, "retrying")]

    server.stop(signal.SIGKILL)  # while try 3 waits
    assert len(alert_receiver.received()) == 2
    server.start()

    rows = await eventually(lambda: tries_when(http, server, heartbeat, 3), timeout_s=40)
    assert [(r["attempt"], r["outcome"], r["status_code"]) for r in rows] == [
        (3, "delivered", 200), (2, "retrying", 503), (1, "retrying", 503),
    ]  # fmt: skip  # counted on from 2, not started over
    assert rows[0]["at"] >= rows[1]["next_attempt_at"]  # and not before it was due
    received = alert_receiver.received()
    assert [r.status for r in received] == [503, 503, 200]  # exactly one successful delivery
    assert len({r.headers["Idempotency-Key"] for r in received}) == 1


async def test_a_permanent_failure_becomes_a_dead_letter_that_can_be_sent_again(
    fast_retries, http, alert_receiver
):
    server = fast_retries
    alert_receiver.answer("/hook", 400)
    heartbeat, channel = await a_silent_heartbeat(http, server, alert_receiver, "/hook")

    async def dead_letters():
        async with http.get(f"{server.url}/api/v1/deliveries/failed") as r:
            assert r.status == 200, await r.text()
            return (await r.json())["failed"]

    [letter] = await eventually(dead_letters, timeout_s=30)
    assert (letter["alert_id"], letter["channel_id"], letter["attempts"], letter["status_code"]) == (
        f"{heartbeat}:1:down",
        channel,
        1,
        400,
    )
    assert len(alert_receiver.received()) == 1  # not retried

    async with http.post(f"{server.url}/api/v1/deliveries/failed/{letter['id']}/resend") as r:
        assert r.status == 200, await r.text()
        answer = await r.json()

    assert (answer["ok"], answer["status_code"], answer["attempt"]) == (True, 200, 2)
    assert [r.status for r in alert_receiver.received()] == [400, 200]
    assert alert_receiver.received()[1].body["alert_id"] == letter["alert_id"]
    await eventually(lambda: _empty(dead_letters))
    rows = await tries(http, server, heartbeat)
    assert [(r["attempt"], r["outcome"], r["resend"]) for r in rows] == [
        (2, "delivered", True),
        (1, "failed", False),
    ]


async def _empty(read) -> bool:
    return await read() == []
