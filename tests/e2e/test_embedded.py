"""`pingura serve` started for real: pings in over HTTP, history, alerts to a webhook, restarts."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess

import aiohttp
import pytest

from tests.e2e.conftest import API_KEY, Server, eventually


@pytest.fixture(params=["one process", "ingest process"])
def server(request, tmp_path):
    """Every test here runs against both layouts of ``pingura serve``: all in one process, and
    with ingest in a process of its own in front (``PINGURA_INGEST_PROCESS=1``), which answers
    pings and passes everything else on."""
    env = {"PINGURA_INGEST_PROCESS": "1"} if request.param == "ingest process" else {}
    srv = Server(tmp_path / "data", tmp_path / "serve.log", env=env)
    srv.start()
    yield srv
    srv.stop()


async def create_monitor(http, server, **fields):
    body = {"name": "nightly backup", "interval": 60, "grace": 60, **fields}
    async with http.post(f"{server.url}/api/v1/heartbeats", json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def create_webhook(http, server, receiver):
    async with http.post(
        f"{server.url}/api/v1/channels",
        json={"kind": "webhook", "name": "ops", "config": {"url": receiver.url}},
    ) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["id"]


async def history(http, server, monitor_id):
    async with http.get(f"{server.url}/api/v1/heartbeats/{monitor_id}/checkins?limit=100") as r:
        assert r.status == 200, await r.text()
        return (await r.json())["checkins"]


async def status_of(http, server, monitor_id):
    async with http.get(f"{server.url}/api/v1/heartbeats/{monitor_id}") as r:
        return (await r.json())["status"]


async def test_pings_with_metadata_as_query_json_and_form_reach_history_with_source_ip(server, http):
    monitor = await create_monitor(http, server)
    assert monitor["ping_url"].endswith(monitor["token"]) and monitor["status"] == "new"
    assert len(monitor["token"]) >= 22 and monitor["token"] not in monitor["id"]
    ping = f"{server.url}/api/heartbeat/{monitor['token']}"
    async with http.post(f"{ping}?status=completed&message=Processed+1247+records&duration=12.5s") as r:
        assert (r.status, await r.text()) == (200, "OK\n")
    async with http.post(ping, json={"status": "partial", "message": "json body", "duration": "1m30s"}) as r:
        assert r.status == 200
    async with http.post(
        f"{ping}/fail", data={"status": "broken", "message": "form body", "duration": "350ms"}
    ) as r:
        assert r.status == 200
    async with http.get(f"{ping}/3") as r:
        assert r.status == 200

    rows = await eventually(lambda: _rows_when(http, server, monitor["id"], 4))
    by_message = {row["message"]: row for row in rows}
    assert by_message["Processed 1247 records"]["status"] == "completed"
    assert by_message["Processed 1247 records"]["duration"] == 12.5
    assert by_message["Processed 1247 records"]["duration_raw"] == "12.5s"
    assert by_message["json body"]["duration"] == 90.0
    assert by_message["form body"]["kind"] == "fail" and by_message["form body"]["duration"] == pytest.approx(
        0.35
    )
    assert [r["exit_code"] for r in rows if r["message"] is None] == [3]
    assert all(row["source_ip"] == "127.0.0.1" for row in rows)
    assert all(row["user_agent"].startswith("Python") for row in rows)
    received = [row["received_at"] for row in rows]
    assert received == sorted(received, reverse=True)  # newest first


async def _rows_when(http, server, monitor_id, count):
    rows = await history(http, server, monitor_id)
    return rows if len(rows) >= count else None


async def test_the_seed_curl_examples_work_verbatim(server, http):
    monitor = await create_monitor(http, server)
    base = f"{server.url}/api/heartbeat/{monitor['token']}"
    commands = [
        f"curl -X POST {base}",
        f"curl -X POST {base}/fail",
        f"curl -X POST {base}/0",
        f"curl -X POST {base}/1",
        f'curl -X POST "{base}?status=completed&message=Processed+1247+records&duration=12.5s"',
        f'curl -X POST {base} -H "Content-Type: application/json" '
        f'-d \'{{"status": "completed", "message": "Processed 1247 records", "duration": "12.5s"}}\'',
        f"curl {base}",  # the crontab one-liner: a plain GET
    ]
    for command in commands:
        out = await asyncio.to_thread(
            subprocess.run, command, shell=True, capture_output=True, text=True, timeout=10
        )
        assert out.returncode == 0 and out.stdout.strip() == "OK", (command, out.stdout, out.stderr)
    rows = await eventually(lambda: _rows_when(http, server, monitor["id"], len(commands)))
    assert sorted(r["kind"] for r in rows) == [
        "fail",
        "fail",
        "success",
        "success",
        "success",
        "success",
        "success",
    ]


async def test_a_silent_monitor_alerts_down_once_then_up_once_after_a_ping(server, http, receiver):
    channel = await create_webhook(http, server, receiver)
    monitor = await create_monitor(
        http, server, interval=1, grace=1, max_consecutive_misses=2, channels=[channel]
    )
    async with http.post(f"{server.url}/api/heartbeat/{monitor['token']}") as r:
        assert r.status == 200

    await eventually(lambda: _received(receiver, 1), timeout_s=20)
    down = receiver.bodies[0]
    assert down["monitor"]["id"] == monitor["id"] and "2 consecutive" in down["reason"]
    assert receiver.headers[0]["Idempotency-Key"] == down["alert_id"]
    await eventually(lambda: _status_now(http, server, monitor["id"], "down"))  # the view follows the page
    missed_at_page = await missed_count(http, server, monitor["id"])
    assert missed_at_page >= 2
    # More windows pass while down (each one recorded as missed): still one page.
    await eventually(lambda: _missed_at_least(http, server, monitor["id"], missed_at_page + 2), timeout_s=10)
    assert receiver.kinds() == ["down"]

    async with http.post(f"{server.url}/api/heartbeat/{monitor['token']}") as r:
        assert r.status == 200
    # Then silent again, it pages its next outage. A monitor's alerts go out in order, so a
    # second page for the first outage, or a second `up`, would have come before that one.
    await eventually(lambda: _received(receiver, 3), timeout_s=20)
    assert receiver.kinds() == ["down", "up", "down"]
    assert [b["alert_id"] for b in receiver.bodies] == [
        f"{monitor['id']}:1:down",
        f"{monitor['id']}:1:up",
        f"{monitor['id']}:2:down",
    ]


async def _received(receiver, count):
    return len(receiver.bodies) >= count


async def _status_now(http, server, monitor_id, status) -> bool:
    return await status_of(http, server, monitor_id) == status


async def missed_count(http, server, monitor_id) -> int:
    return sum(1 for r in await history(http, server, monitor_id) if r["kind"] == "missed")


async def _missed_at_least(http, server, monitor_id, count) -> bool:
    return await missed_count(http, server, monitor_id) >= count


async def _delivered(http, server, monitor_id, alert_id) -> bool:
    async with http.get(f"{server.url}/api/v1/heartbeats/{monitor_id}/deliveries") as r:
        assert r.status == 200, await r.text()
        rows = (await r.json())["deliveries"]
    return any(row["alert_id"] == alert_id and row["outcome"] == "delivered" for row in rows)


async def test_a_restart_keeps_state_and_sends_no_duplicate_alert(server, http, receiver):
    channel = await create_webhook(http, server, receiver)
    monitor = await create_monitor(http, server, interval=1, grace=1, channels=[channel])
    quiet = await create_monitor(http, server, name="hourly", interval=3600, grace=60)
    async with http.post(f"{server.url}/api/heartbeat/{monitor['token']}?message=before") as r:
        assert r.status == 200
    async with http.post(f"{server.url}/api/heartbeat/{quiet['token']}") as r:
        assert r.status == 200
    await eventually(lambda: _received(receiver, 1), timeout_s=20)
    # Kill only once the notifier has recorded the delivery (milliseconds). A crash inside
    # that window re-sends with the same Idempotency-Key: at-least-once is the only honest
    # promise to a receiver outside our transaction; docs/architecture.md says so.
    await eventually(lambda: _delivered(http, server, monitor["id"], f"{monitor['id']}:1:down"))
    missed_before = await missed_count(http, server, monitor["id"])

    server.stop(signal.SIGKILL)  # no chance to flush anything
    server.start()
    # Ticks run on after the restart (more windows missed); the monitor is still down. That
    # no second `down` was sent is shown below: the `up` is the next alert to arrive.
    await eventually(lambda: _missed_at_least(http, server, monitor["id"], missed_before + 3), timeout_s=15)
    assert receiver.kinds() == ["down"]
    assert await status_of(http, server, monitor["id"]) == "down"
    assert await status_of(http, server, quiet["id"]) == "up"
    assert any(r["message"] == "before" for r in await history(http, server, monitor["id"]))

    # A longer interval from here on, so the only alert left to come is the `up`.
    async with http.patch(f"{server.url}/api/v1/heartbeats/{monitor['id']}", json={"interval": 3600}) as r:
        assert r.status == 200
    async with http.post(f"{server.url}/api/heartbeat/{monitor['token']}") as r:
        assert r.status == 200
    await eventually(lambda: _received(receiver, 2))
    assert receiver.kinds() == ["down", "up"]
    await eventually(lambda: _delivered(http, server, monitor["id"], f"{monitor['id']}:1:up"))
    server.stop()  # a graceful restart too
    server.start()
    # Nothing is sent again: made silent once more, the monitor pages its next outage, and
    # that alert comes after anything the restart could have sent again (same partition).
    # A session of its own: the server before the restart closed the connection ours keeps alive.
    async with (
        aiohttp.ClientSession(headers=http.headers) as fresh,
        fresh.patch(f"{server.url}/api/v1/heartbeats/{monitor['id']}", json={"interval": 1}) as r,
    ):
        assert r.status == 200
    await eventually(lambda: _received(receiver, 3), timeout_s=20)
    assert [b["alert_id"] for b in receiver.bodies] == [
        f"{monitor['id']}:1:down",
        f"{monitor['id']}:1:up",
        f"{monitor['id']}:2:down",
    ]


async def test_bad_input_gets_a_clear_error_and_loses_nothing(server, http):
    monitor = await create_monitor(http, server)
    ping = f"{server.url}/api/heartbeat/{monitor['token']}"
    async with http.post(ping, params={"message": "kept"}) as r:
        assert r.status == 200
    cases = [
        (f"{ping}/256", {}, 400, "exit code"),
        (f"{ping}/abc", {}, 400, "invalid URL"),
        (ping, {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
        (ping + "?duration=soon", {}, 400, "duration"),
        (ping, {"json": {"status": "x" * 101}}, 400, "status is longer"),
        (ping, {"json": {"duration": True}}, 400, "duration"),
        (ping, {"data": b"x" * (1024 * 1024 + 1), "headers": {"Content-Type": "text/plain"}}, 413, "larger"),
        (f"{server.url}/api/heartbeat/{'A' * 32}", {}, 404, "unknown"),
        (f"{server.url}/api/heartbeat/short", {}, 404, "unknown"),
    ]
    for url, kwargs, status, words in cases:
        async with http.post(url, **kwargs) as r:
            text = await r.text()
            assert r.status == status, (url, r.status, text)
            assert words in text and text.count("\n") == 1, text
    # A ping after the refused ones: once it is in history, whatever came before it is too.
    async with http.post(ping, params={"message": "after"}) as r:
        assert r.status == 200
    rows = await eventually(lambda: _rows_when(http, server, monitor["id"], 2))
    assert sorted(r["message"] for r in rows) == ["after", "kept"]

    api = f"{server.url}/api/v1/heartbeats"
    api_cases = [
        ({"name": "x", "interval": 0}, "interval"),
        ({"name": "x", "interval": "often"}, "interval"),
        ({"name": "x", "interval": "1m", "grace": -1}, "grace"),
        ({"name": "x", "interval": "1m", "max_consecutive_misses": 11}, "max_consecutive_misses"),
        ({"name": "x", "interval": "1m", "channels": ["ch_nope"]}, "channels"),
        ({"name": "", "interval": "1m"}, "name"),
        ({"name": "x", "interval": "1m", "colour": "red"}, "colour"),
        ({"name": "x"}, "interval"),
    ]
    for body, field in api_cases:
        async with http.post(api, json=body) as r:
            assert r.status == 400, body
            assert (await r.json())["error"].startswith(field), body
    async with http.get(f"{api}/hb_0000000000000000") as r:
        assert r.status == 404
    async with http.get(api, headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401


async def test_each_project_sees_only_its_own_data(server, http):
    mine = await create_monitor(http, server)
    async with http.post(f"{server.url}/api/v1/projects", json={"name": "other team"}) as r:
        assert r.status == 201
        other_key = (await r.json())["api_key"]
    other = {"Authorization": f"Bearer {other_key}"}
    async with http.get(f"{server.url}/api/v1/heartbeats", headers=other) as r:
        assert (await r.json())["heartbeats"] == []
    for suffix in ("", "/checkins", "/uptime", "/export?format=csv"):
        async with http.get(f"{server.url}/api/v1/heartbeats/{mine['id']}{suffix}", headers=other) as r:
            assert r.status == 404, suffix
    async with http.post(f"{server.url}/api/v1/projects", json={"name": "x"}, headers=other) as r:
        assert r.status == 403  # only the admin project creates projects


async def test_export_uptime_timings_rotation_and_pause(server, http):
    monitor = await create_monitor(http, server)
    ping = f"{server.url}/api/heartbeat/{monitor['token']}"
    for i in range(5):
        async with http.post(ping, json={"duration": f"{i + 1}s", "message": f'run {i}, "quoted"'}) as r:
            assert r.status == 200
    await eventually(lambda: _rows_when(http, server, monitor["id"], 5))
    base = f"{server.url}/api/v1/heartbeats/{monitor['id']}"
    async with http.get(f"{base}/export?format=csv") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
        lines = (await r.text()).strip().split("\n")
    assert lines[0].startswith("id,received_at,kind") and len(lines) == 6
    assert '"run 0, ""quoted"""' in lines[1]  # oldest first, CSV-quoted
    async with http.get(f"{base}/export?format=json") as r:
        rows = json.loads(await r.text())
    assert [row["duration"] for row in rows] == [1.0, 2.0, 3.0, 4.0, 5.0]
    async with http.get(f"{base}/uptime") as r:
        uptime = (await r.json())["uptime"]
    assert set(uptime) == {"24h", "7d", "30d", "90d"}
    async with http.get(f"{base}/timings?bucket=1h") as r:
        points = (await r.json())["points"]
    assert sum(p["count"] for p in points) == 5

    async with http.post(f"{base}/rotate-token") as r:
        new_token = (await r.json())["token"]
    assert new_token != monitor["token"]
    await eventually(lambda: _status_is(http, ping, 404))  # the old token dies within moments
    async with http.post(f"{server.url}/api/heartbeat/{new_token}") as r:
        assert r.status == 200

    async with http.post(f"{base}/pause") as r:
        assert (await r.json())["status"] == "paused"
    async with http.post(f"{server.url}/api/heartbeat/{new_token}?message=while+paused") as r:
        assert r.status == 200  # recorded, never alerts
    await eventually(lambda: _has_message(http, server, monitor["id"], "while paused"))
    async with http.delete(base) as r:
        assert r.status == 204
    async with http.get(base) as r:
        assert r.status == 404


async def _status_is(http, url, status):
    async with http.post(url) as r:
        return r.status == status


async def _has_message(http, server, monitor_id, message):
    return any(r["message"] == message for r in await history(http, server, monitor_id))


def test_the_api_key_is_required_for_the_api(server):
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/api/v1/heartbeats"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.stdout == "401"
    assert API_KEY not in server.logs()
