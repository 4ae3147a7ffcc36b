"""Run times and cadence, end to end: the real ``pingura serve`` (local bus), heartbeats made over
the API with their ``run_time`` and ``cadence`` rules, pinged over HTTP, alerts read as a webhook on
127.0.0.1 gets them.

A backup whose runs, as the job reports them (``?duration=``, seconds), drop from about 40 s to
3 s after 20 usual runs goes down, and the alert says the run time against the usual range. An
hourly job that starts running every few seconds goes down as too early, or as too often, each
with its own reason. (Wall time stays short: the runs report their own durations, and an hourly
heartbeat pinged a few seconds apart is as wrong as one pinged every minute.)
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import eventually
from tests.services.notifier.support import Receiver

pytestmark = pytest.mark.slow

USUAL_S = (38, 40, 42, 41, 39)


async def test_a_backup_whose_runs_drop_from_40_s_to_3_s_after_20_usual_runs_alerts_with_its_run_time_against_the_usual_range(
    server, http, alert_receiver
):
    api = f"{server.url}/api/v1"
    channel = await made(http, f"{api}/channels", {"kind": "webhook", "name": "ops",
                                                   "config": {"url": alert_receiver.url("/hook")}})  # fmt: skip
    heartbeat = await made(http, f"{api}/heartbeats", {
        "name": "nightly backup", "interval": 3600, "grace": 600, "channels": [channel["id"]],
        "run_time": {"baseline": "alert"},
    })  # fmt: skip
    assert heartbeat["run_time"]["baseline"] == "alert"
    ping = f"{server.url}/api/heartbeat/{heartbeat['token']}"
    for run in range(20):
        async with http.post(f"{ping}?duration={USUAL_S[run % len(USUAL_S)]}") as r:
            assert r.status == 200

    async def learned() -> dict | None:
        async with http.get(f"{api}/heartbeats/{heartbeat['id']}") as r:
            assert r.status == 200, await r.text()
            usual = (await r.json()).get("usual_run_time")
            return usual if usual is not None and usual["runs"] == 20 else None

    # All 20 judged (and learned) before the short one comes: nothing said of them.
    usual = await eventually(learned, timeout_s=30)
    assert (usual["median_s"], usual["low_s"], usual["high_s"]) == (40.0, 20.0, 80.0)
    assert alert_receiver.received("/hook") == []

    async with http.post(f"{ping}?duration=3") as r:
        assert r.status == 200
    down = (await eventually(lambda: alert_receiver.received("/hook"), timeout_s=30))[0].body
    assert down["kind"] == "down" and down["monitor"]["name"] == "nightly backup"
    assert (
        "latest: run took 3 s; usually 20 s to 1 min 20 s (median 40 s of the last 20 runs) at "
        in down["reason"]
    )
    # History keeps what was found with the check-in, and nothing with the usual ones.
    judged = await eventually(lambda: judged_checkins(http, api, heartbeat), timeout_s=30)
    assert [(c["duration"], c["verdicts"], c["alerted"]) for c in judged] == [(3.0, ["too_fast"], True)]
    assert judged[0]["verdict_reason"].startswith("run took 3 s; usually 20 s to 1 min 20 s")


async def test_an_hourly_job_that_starts_running_every_few_seconds_alerts_as_too_early_and_as_too_often(
    server, http, alert_receiver
):
    api = f"{server.url}/api/v1"
    channel = await made(http, f"{api}/channels", {"kind": "webhook", "name": "ops",
                                                   "config": {"url": alert_receiver.url("/hook")}})  # fmt: skip
    hourly = {"interval": "1h", "grace": "10m", "channels": [channel["id"]]}
    early = await made(http, f"{api}/heartbeats", {**hourly, "name": "report (early)",
                                                   "cadence": {"early_tolerance": "5m"}})  # fmt: skip
    often = await made(http, f"{api}/heartbeats", {**hourly, "name": "report (often)",
                                                   "cadence": {"max_runs_per_interval": 2}})  # fmt: skip
    assert early["cadence"] == {"early_tolerance": 300, "max_runs_per_interval": None}
    assert often["cadence"] == {"early_tolerance": None, "max_runs_per_interval": 2}

    async def run(heartbeat: dict) -> None:
        async with http.post(f"{server.url}/api/heartbeat/{heartbeat['token']}") as r:
            assert r.status == 200

    await run(early)  # the first run: nothing expected of it yet
    await run(early)  # an hour early, all but seconds
    await run(often)
    await run(often)  # two within the hour: as many as it allows
    await run(often)  # the third
    heard = await eventually(lambda: _by_name(alert_receiver, 2), timeout_s=30)
    assert heard["report (early)"]["kind"] == "down" == heard["report (often)"]["kind"]
    assert re.search(
        r"latest: run came 59 min \d+ s early \(expected at \S+; tolerance 5 min\) at ",
        heard["report (early)"]["reason"],
    ), heard["report (early)"]["reason"]
    assert re.search(
        r"latest: 3 runs within \d+(\.\d)? m?s; at most 2 expected in 1 h at ",
        heard["report (often)"]["reason"],
    ), heard["report (often)"]["reason"]


async def judged_checkins(http, api: str, heartbeat: dict) -> list[dict] | None:
    async with http.get(f"{api}/heartbeats/{heartbeat['id']}/checkins?limit=100") as r:
        assert r.status == 200, await r.text()
        rows = (await r.json())["checkins"]
    if sum(1 for row in rows if row["kind"] == "success") < 21:
        return None  # (history is written a moment after the alert)
    return [row for row in rows if row.get("verdicts")] or None


def _by_name(alert_receiver: Receiver, count: int) -> dict | None:
    bodies = {r.body["monitor"]["name"]: r.body for r in alert_receiver.received("/hook")}
    return bodies if len(bodies) >= count else None


async def made(http, url: str, body: dict) -> dict:
    async with http.post(url, json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()
