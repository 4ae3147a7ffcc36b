"""An ingest collapse on a running Pingura (docs/semantics.md, "Ingest incidents"): 300
heartbeats pinging, then every ping cut at once (a load balancer in front of ingest breaks).
No heartbeat pages during the incident: they show ``unknown``; the operators' channel
(``PINGURA_INGEST_ALERT_CHANNELS``) gets one ``ingest_down``. Then half the fleet pings again:
``ingest_up``, and one more window later only the silent half alerts, once each, saying the
incident held it.

On the real local bus (``pingura serve``) and on a real Kafka broker (every service its own
process, two ``pings`` partitions: each judges its own share of the fleet and holds its own
heartbeats, and reports to partition 0, so the operators still get one ``ingest_down`` and one
``ingest_up``, the second with the figures of both). The watch is shortened through the
environment, as an operator would set it: a 2 s window; the heartbeats check in every 2 s with
6 s of grace, and are pinged each second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import pytest

from tests.e2e.conftest import API_KEY, Server, eventually
from tests.e2e.test_kafka_deployment import Stack, wait_http
from tests.services.notifier.support import Receiver

pytestmark = pytest.mark.slow

FLEET = 300
WATCH = {
    "PINGURA_INGEST_WATCH_WINDOW_S": "2",
    "PINGURA_INGEST_WATCH_MIN_OVERDUE": "20",
    "PINGURA_DELIVERY_RETRY_INITIAL_S": "0.2",
}


class Pinger:
    """The fleet's jobs: each token in ``active`` is pinged once a second."""

    def __init__(self, http, ping_base: str, tokens: list[str]):
        self.http, self.ping_base = http, ping_base
        self.active: set[str] = set(tokens)
        self.rounds = 0
        self.refused: list[int] = []
        self._task: asyncio.Task | None = None

    async def _ping(self, token: str, gate: asyncio.Semaphore) -> None:
        async with gate, self.http.post(f"{self.ping_base}/api/heartbeat/{token}") as r:
            if r.status != 200:
                self.refused.append(r.status)

    async def _run(self) -> None:
        gate = asyncio.Semaphore(64)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.gather(*(self._ping(token, gate) for token in sorted(self.active)))
            self.rounds += 1
            await asyncio.sleep(
                max(0.0, 1.0 - (loop.time() - started))
            )  # the jobs' cadence, not a wait to count

    async def __aenter__(self) -> Pinger:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def rounds_more(self, n: int) -> None:
        target = self.rounds + n
        await eventually(lambda: self.rounds >= target, timeout_s=30)


async def made(http, url: str, body: dict) -> dict:
    async with http.post(url, json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def got(http, url: str):
    async with http.get(url) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def channels(http, api: str, alert_receiver: Receiver) -> tuple[str, str]:
    """The heartbeats' webhook channel (``/hook``) and the operators' (``/ops``)."""
    hook = await made(
        http,
        f"{api}/channels",
        {"kind": "webhook", "name": "jobs", "config": {"url": alert_receiver.url("/hook")}},
    )
    ops = await made(
        http,
        f"{api}/channels",
        {"kind": "webhook", "name": "ops", "config": {"url": alert_receiver.url("/ops")}},
    )
    return hook["id"], ops["id"]


def bodies(alert_receiver: Receiver, path: str, kind: str | None = None) -> list[dict]:
    return [
        r.body
        for r in alert_receiver.received(path)
        if r.status == 200 and kind in (None, r.body.get("kind"))
    ]


async def counts(http, api: str) -> dict[str, int]:
    return {k: v for k, v in (await got(http, f"{api}/heartbeats"))["counts"].items() if v}


async def the_fleet_goes_quiet_then_half_comes_back(
    http, api: str, ping_base: str, healthz: str, alert_receiver: Receiver, hook: str, partitions: int
) -> None:
    gate = asyncio.Semaphore(32)

    async def create(i: int) -> dict:
        async with gate:
            return await made(http, f"{api}/heartbeats", {"name": f"edge job {i:03d}", "interval": 2, "grace": 6,
                                                          "channels": [hook]})  # fmt: skip

    fleet = await asyncio.gather(*(create(i) for i in range(FLEET)))
    silent = {m["id"] for m in fleet[1::2]}
    async with Pinger(http, ping_base, [m["token"] for m in fleet]) as pinger:
        await eventually(lambda: _equal(counts(http, api), {"up": FLEET}), timeout_s=60)
        await pinger.rounds_more(4)  # the watch learns the usual volume
        assert (await got(http, f"{api}/ingest-incidents"))["incidents"] == []

        pinger.active.clear()  # every ping cut at once
        opened = await eventually(lambda: _incidents(http, api, partitions), timeout_s=30)
        assert {i["scope"] for i in opened} == {""} and {i["partition"] for i in opened} == set(
            range(partitions)
        )
        await eventually(lambda: _equal(counts(http, api), {"unknown": FLEET}), timeout_s=30)
        assert (await got(http, healthz))["ingest_incidents"] == partitions
        [down] = await eventually(lambda: _exactly(bodies(alert_receiver, "/ops", "ingest_down"), 1))
        assert (down["alert_id"], down["ingest"]["scope"], down["ingest"]["partitions"]) == (
            "ingest:*:1:down", "", partitions
        )  # fmt: skip
        assert down["ingest"]["overdue"] >= 20 and set(down["ingest"]["in_partitions"]) <= set(
            range(partitions)
        )
        assert bodies(alert_receiver, "/hook") == []  # every miss so far was held: no heartbeat paged

        pinger.active = {m["token"] for m in fleet[::2]}  # half the fleet pings again
        resumed_ms = int(time.time() * 1000)  # (ingest stamps pings with this machine's clock)
        await eventually(lambda: _incidents(http, api, 0), timeout_s=30)
        [up] = await eventually(lambda: _exactly(bodies(alert_receiver, "/ops", "ingest_up"), 1))
        assert up["alert_id"] == "ingest:*:1:up" and up["ingest"]["since_ms"] == down["ingest"]["since_ms"]
        assert (up["ingest"]["held"], up["ingest"]["in_partitions"]) == (FLEET, list(range(partitions)))
        downs = await eventually(
            lambda: _exactly(bodies(alert_receiver, "/hook", "down"), len(silent)), timeout_s=30
        )
        await eventually(lambda: _equal(counts(http, api), {"up": FLEET - len(silent), "down": len(silent)}))
        assert (await got(http, healthz))["ingest_incidents"] == 0

    assert pinger.refused == []
    assert sorted(b["monitor"]["id"] for b in downs) == sorted(silent)  # only the silent half, once each
    assert all(b["held"].startswith("ingest incident since") for b in downs)
    assert all(b["at_ms"] > resumed_ms for b in downs)  # after the recovery, not during the incident
    assert [b["kind"] for b in bodies(alert_receiver, "/hook")] == ["down"] * len(silent)
    assert [b["kind"] for b in bodies(alert_receiver, "/ops")] == [
        "ingest_down",
        "ingest_up",
    ]  # one each, in all


async def _equal(value, expected):
    return (await value) == expected


async def _incidents(http, api: str, n: int):
    found = (await got(http, f"{api}/ingest-incidents"))["incidents"]
    return (found or True) if len(found) == n else None


def _exactly(found: list, n: int) -> list | None:
    assert len(found) <= n, found
    return found if len(found) == n else None


async def test_a_cut_on_the_local_bus_pages_no_one_and_then_only_the_silent_half(
    tmp_path, http, alert_receiver
):
    server = Server(tmp_path / "data", tmp_path / "serve.log", env=dict(WATCH))
    server.start()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as first:
            hook, ops = await channels(first, f"{server.url}/api/v1", alert_receiver)
        server.stop()  # the operators' channel is named in the settings, read at start
        server.extra_env["PINGURA_INGEST_ALERT_CHANNELS"] = ops
        server.start()
        await the_fleet_goes_quiet_then_half_comes_back(
            http,
            f"{server.url}/api/v1",
            server.url,
            f"{server.url}/healthz",
            alert_receiver,
            hook,
            partitions=1,
        )
    finally:
        server.stop()


@pytest.mark.kafka
async def test_a_cut_on_kafka_is_judged_per_partition_tells_the_operators_once_and_pages_only_the_silent_half(
    kafka_bootstrap, tmp_path, http, alert_receiver
):
    stack = Stack(kafka_bootstrap, tmp_path)
    stack.env.update(WATCH, PINGURA_PARTITIONS="2")
    try:
        stack.add("query", "query", "--port", str(stack.query_port), "--data-dir", str(tmp_path / "query"))
        stack.add("ingest", "ingest", "--port", str(stack.ingest_port))
        await wait_http(f"{stack.api}/healthz")
        await wait_http(f"{stack.ingest}/api/heartbeat/x")
        hook, ops = await channels(http, f"{stack.api}/api/v1", alert_receiver)
        stack.env["PINGURA_INGEST_ALERT_CHANNELS"] = ops  # read at start by the evaluator and the notifier
        stack.add("evaluator", "evaluator")
        stack.add("notifier", "notifier")
        await the_fleet_goes_quiet_then_half_comes_back(
            http,
            f"{stack.api}/api/v1",
            stack.ingest,
            f"{stack.api}/healthz",
            alert_receiver,
            hook,
            partitions=2,
        )
    finally:
        stack.stop()
        print(stack.logs())
