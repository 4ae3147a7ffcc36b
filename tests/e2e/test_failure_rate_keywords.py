"""Failure rates and keywords, end to end: the real ``pingura serve`` (local bus), heartbeats made
over the API with their ``failure_rate`` and ``keywords`` rules, pinged over HTTP, alerts read as a
webhook on 127.0.0.1 gets them.

A job failing one run in three goes down on its rate though never twice in a row, and comes back
once the failures have left its last runs. A job that exits 0 but prints "ERROR" goes down as a
failure, and the alert names the keyword; the history keeps the match with the check-in. (Wall
time stays short: the runs are pinged back to back; an hourly heartbeat does not mind.)
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import eventually
from tests.services.notifier.support import Receiver

pytestmark = pytest.mark.slow


async def test_a_job_failing_one_run_in_three_goes_down_on_its_rate_and_comes_back_under_the_lower_mark(
    server, http, alert_receiver
):
    api = f"{server.url}/api/v1"
    channel = await made(http, f"{api}/channels", {"kind": "webhook", "name": "ops",
                                                   "config": {"url": alert_receiver.url("/hook")}})  # fmt: skip
    heartbeat = await made(http, f"{api}/heartbeats", {
        "name": "sync", "interval": "1h", "grace": "10m", "channels": [channel["id"]],
        "max_consecutive_misses": 2, "failure_rate": {"percent": 30, "runs": 9},
    })  # fmt: skip
    assert heartbeat["failure_rate"] == {"percent": 30, "runs": 9, "window": None, "recover_percent": None}
    ping = f"{server.url}/api/heartbeat/{heartbeat['token']}"

    async def run(exit_code: int) -> None:
        async with http.post(f"{ping}/{exit_code}") as r:
            assert r.status == 200

    for exit_code in [0, 0, 1] * 3:  # never two failures in a row
        await run(exit_code)
    [down] = await eventually(lambda: alert_receiver.received("/hook"), timeout_s=30)
    assert down.body["kind"] == "down" and down.body["monitor"]["name"] == "sync"
    assert down.body["reason"].startswith(
        "3 of the last 9 runs failed (33%, limit 30%); latest: job reported failure (exit code 1)"
    ), down.body["reason"]

    async def rate_now(status: str, failed: int) -> dict | None:
        """The rate the API shows, once the evaluator has counted up to ``failed`` in ``status``."""
        async with http.get(f"{api}/heartbeats/{heartbeat['id']}") as r:
            assert r.status == 200, await r.text()
            shown = await r.json()
        now = shown["failure_rate_now"]
        return now if shown["status"] == status and now is not None and now["failed"] == failed else None

    assert await eventually(lambda: rate_now("down", 3), timeout_s=30) == {
        "failed": 3,
        "runs": 9,
        "percent": 33,
    }

    # The lower mark is 15%. Five successes leave two failures in the last nine (22%): still down.
    for _ in range(5):
        await run(0)
    assert await eventually(lambda: rate_now("down", 2), timeout_s=30) == {
        "failed": 2,
        "runs": 9,
        "percent": 22,
    }
    await run(0)  # one failure left (11%): up
    received = await eventually(lambda: _at_least(alert_receiver, 2), timeout_s=30)
    assert [r.body["kind"] for r in received] == ["down", "up"]
    assert received[1].body["down_since_ms"] == down.body["at_ms"]


async def test_an_exit_0_run_whose_output_says_error_goes_down_naming_the_keyword(
    server, http, alert_receiver
):
    api = f"{server.url}/api/v1"
    channel = await made(http, f"{api}/channels", {"kind": "webhook", "name": "ops",
                                                   "config": {"url": alert_receiver.url("/hook")}})  # fmt: skip
    heartbeat = await made(http, f"{api}/heartbeats", {
        "name": "backup", "interval": "1d", "grace": "1h", "channels": [channel["id"]],
        "keywords": {"success": ["backup complete"], "failure": ["ERROR"]},
    })  # fmt: skip
    assert heartbeat["keywords"] == {
        "success": ["backup complete"], "failure": ["ERROR"], "start": [], "unmatched": "keep"
    }  # fmt: skip
    ping = f"{server.url}/api/heartbeat/{heartbeat['token']}"
    text = {"Content-Type": "text/plain"}
    async with http.post(f"{ping}/0", data=b"3 files copied\nBackup complete\n", headers=text) as r:
        assert r.status == 200
    async with http.post(
        f"{ping}/0", data=b"2 files copied\nerror: disk full\nBackup complete\n", headers=text
    ) as r:
        assert r.status == 200

    [down] = await eventually(lambda: alert_receiver.received("/hook"), timeout_s=30)
    assert down.body["kind"] == "down" and down.body["monitor"]["name"] == "backup"
    assert "latest: job's output contains the failure keyword 'ERROR' at " in down.body["reason"], down.body

    # The history keeps each match with its check-in: the exit-0 run is still a success there, as sent.
    rows = await eventually(lambda: judged_checkins(http, api, heartbeat), timeout_s=30)
    assert [
        (row["kind"], row["exit_code"], row["keyword"], row["verdicts"], row["alerted"]) for row in rows
    ] == [
        ("success", 0, "ERROR", ["keyword_failure"], True),
        ("success", 0, "backup complete", ["keyword_success"], False),
    ]


async def judged_checkins(http, api: str, heartbeat: dict) -> list[dict] | None:
    async with http.get(f"{api}/heartbeats/{heartbeat['id']}/checkins?limit=10") as r:
        assert r.status == 200, await r.text()
        rows = [row for row in (await r.json())["checkins"] if row.get("verdicts")]
    return rows if len(rows) == 2 else None  # (history is written a moment after the alert)


def _at_least(alert_receiver: Receiver, count: int):
    found = alert_receiver.received("/hook")
    return found if len(found) >= count else None


async def made(http, url: str, body: dict) -> dict:
    async with http.post(url, json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()
