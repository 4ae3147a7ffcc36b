"""A fleet end to end (docs/semantics.md, "Fleets"): the real ``pingura serve`` (local bus), a
heartbeat made through the API with a fleet rule, 40 instances pinging it over HTTP, each naming
itself (``?instance=``), alerts read as a webhook channel gets them on 127.0.0.1.

Three of the forty stop: one ``down`` alert names exactly those three, and the API lists them as
missing; they come back: one ``up``. The heartbeat expects a run every 5 s (grace 2 s): every
instance pings once a second, so a busy machine has to stall for seconds before a window sees an
instance missing that was not stopped. It pages at the second short window in a row: the window
the three stop in may have heard some of them already, the next one hears none.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.e2e.conftest import eventually
from tests.e2e.test_ingest_incident import bodies, got, made
from tests.services.notifier.support import Receiver

pytestmark = pytest.mark.slow

FORTY = [f"web-{n:02d}" for n in range(1, 41)]
STOPPED = ["web-07", "web-19", "web-33"]


class Instances:
    """The fleet's hosts: each name in ``active`` checks in once a second, naming itself."""

    def __init__(self, http, ping_url: str):
        self.http, self.ping_url = http, ping_url
        self.active = set(FORTY)
        self.refused: list[int] = []
        self._task: asyncio.Task | None = None

    async def _ping(self, name: str) -> None:
        async with self.http.post(self.ping_url, params={"instance": name}) as r:
            if r.status != 200:
                self.refused.append(r.status)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.gather(*(self._ping(name) for name in sorted(self.active)))
            await asyncio.sleep(max(0.0, 1.0 - (loop.time() - started)))  # the jobs' cadence

    async def __aenter__(self) -> Instances:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_a_fleet_of_40_where_3_stop_pages_once_naming_them(server, http, alert_receiver: Receiver):
    api = f"{server.url}/api/v1"
    hook = await made(http, f"{api}/channels", {"kind": "webhook", "name": "ops",
                                                "config": {"url": alert_receiver.url("/hook")}})  # fmt: skip
    heartbeat = await made(http, f"{api}/heartbeats", {
        "name": "log rotation", "interval": 5, "grace": 2, "channels": [hook["id"]],
        "fleet": {"min_percent": 100}, "max_consecutive_misses": 2,
    })  # fmt: skip
    assert heartbeat["fleet"]["min_percent"] == 100
    shown = f"{api}/heartbeats/{heartbeat['id']}"

    async def whole() -> bool:
        summary = (await got(http, shown))["instances_summary"]
        return summary is not None and (summary["members"], summary["missing"]) == (40, [])

    async with Instances(http, f"{server.url}/api/heartbeat/{heartbeat['token']}") as fleet:
        await eventually(whole, timeout_s=30)  # a window judged with all forty in it
        fleet.active -= set(STOPPED)

        await eventually(lambda: bodies(alert_receiver, "/hook", "down"), timeout_s=30)
        [down] = bodies(alert_receiver, "/hook")
        assert "only 37 of 40 instances reported" in down["reason"]
        assert down["reason"].endswith("missing: web-07, web-19, web-33")
        assert down["instances"] == {"reported": 37, "expected": 40, "missing": STOPPED}

        async def missing() -> list[str]:  # (the API reads the evaluator's snapshots: soon, not at once)
            listed = await got(http, f"{shown}/instances?status=missing")
            return [i["name"] for i in listed["items"]] if listed["reported"] == 37 else []

        assert await eventually(missing, timeout_s=30) == STOPPED

        fleet.active |= set(STOPPED)  # they are back
        await eventually(lambda: bodies(alert_receiver, "/hook", "up"), timeout_s=30)
    kinds = [(b["kind"], b["instances"]) for b in bodies(alert_receiver, "/hook")]
    assert kinds == [("down", {"reported": 37, "expected": 40, "missing": STOPPED}), ("up", None)]
    assert fleet.refused == []
