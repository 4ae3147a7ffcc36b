"""A dependency chain on a running Pingura (docs/semantics.md, "Dependencies"): ``app``
depends on ``db``, ``db`` on ``root``, made through the API, with ``db`` in the other ``pings``
partition than ``root`` and ``app``. All three go silent at once: only ``root`` pages, while
``db`` and ``app`` show their alerts held. The evaluator restarts. ``root`` comes back: ``db``,
still silent one window later, alerts once, saying ``root`` held it and that it holds ``app``;
``db`` comes back: ``app``, still silent one window later, alerts once.

On the real local bus (``pingura serve`` with two partitions, restarted whole) and on a real
Kafka broker (every service its own process, two partitions, the evaluator restarted alone).
The heartbeats check in every 2 s; their grace (3 s, 8 s, 13 s) puts each one's deadline 5 s
after its dependency's, more than a relay between partitions takes even on a busy machine.
"""

from __future__ import annotations

import aiohttp
import pytest

from shared.bus.base import partition_for
from tests.e2e.conftest import API_KEY, Server, eventually
from tests.e2e.test_ingest_incident import Pinger, bodies, got, made
from tests.e2e.test_kafka_deployment import Stack, wait_http
from tests.services.notifier.support import Receiver

pytestmark = pytest.mark.slow

PARTITIONS = 2


async def heartbeat_in(http, api: str, partition: int, body: dict) -> dict:
    """A heartbeat whose id lands in ``partition`` (ids are random: the others made on the
    way are deleted)."""
    while True:
        made_one = await made(http, f"{api}/heartbeats", body)
        if partition_for(made_one["id"], PARTITIONS) == partition:
            return made_one
        async with http.delete(f"{api}/heartbeats/{made_one['id']}") as r:
            assert r.status == 204


async def held(http, api: str, monitor_id: str) -> str | None:
    return (await got(http, f"{api}/heartbeats/{monitor_id}"))["held"]


def pages(alert_receiver: Receiver) -> list[tuple[str, str]]:
    return [(b["monitor"]["name"], b["kind"]) for b in bodies(alert_receiver, "/hook")]


async def until_pages(alert_receiver: Receiver, expected: list[tuple[str, str]]) -> list[dict]:
    def arrived():
        found = pages(alert_receiver)
        assert found == expected[: len(found)], found  # never one that is not expected next
        return len(found) == len(expected)

    await eventually(arrived, timeout_s=30)
    return bodies(alert_receiver, "/hook")


async def a_chain_pages_its_root_then_each_link_once(
    http, api: str, ping_base: str, alert_receiver: Receiver, restart
) -> None:
    hook = await made(http, f"{api}/channels", {"kind": "webhook", "name": "jobs",
                                                "config": {"url": alert_receiver.url("/hook")}})  # fmt: skip
    every = {"interval": 2, "channels": [hook["id"]]}
    root = await heartbeat_in(http, api, 0, {"name": "root", "grace": 3, **every})
    db = await heartbeat_in(http, api, 1, {"name": "db", "grace": 8, "depends_on": [root["id"]], **every})
    app = await heartbeat_in(http, api, 0, {"name": "app", "grace": 13, "depends_on": [db["id"]], **every})
    tokens = {m["id"]: m["token"] for m in (root, db, app)}

    async with Pinger(http, ping_base, list(tokens.values())) as pinger:
        await eventually(lambda: _counts(http, api, {"up": 3}), timeout_s=60)
        pinger.active.clear()  # all three silent at once
        await until_pages(alert_receiver, [("root", "down")])
        await eventually(lambda: _counts(http, api, {"down": 3}), timeout_s=30)
        assert await held(http, api, db["id"]) == "dependency 'root' down"
        assert await held(http, api, app["id"]) == "dependency 'db' down"

        await restart()
        assert await held(http, api, db["id"]) == "dependency 'root' down"  # from the snapshots
        assert pages(alert_receiver) == [("root", "down")]

        pinger.active = {tokens[root["id"]]}  # root is back
        await until_pages(alert_receiver, [("root", "down"), ("root", "up"), ("db", "down")])
        pinger.active.add(tokens[db["id"]])  # db is back
        found = await until_pages(
            alert_receiver, [("root", "down"), ("root", "up"), ("db", "down"), ("db", "up"), ("app", "down")]
        )
    assert pinger.refused == []
    db_down, app_down = found[2], found[4]
    assert (db_down["held"], db_down["dependents_held"]) == (
        "dependency 'root' down",
        {"count": 1, "names": ["app"]},
    )
    assert app_down["held"] == "dependency 'db' down" and found[0]["held"] is None
    assert db_down["at_ms"] > found[1]["at_ms"]  # after root came back, not while it was down


async def _counts(http, api: str, expected: dict) -> bool:
    counts = (await got(http, f"{api}/heartbeats"))["counts"]
    return {k: v for k, v in counts.items() if v} == expected


async def test_a_chain_on_the_local_bus_pages_only_its_root_then_each_link_once(tmp_path, alert_receiver):
    server = Server(tmp_path / "data", tmp_path / "serve.log", env={"PINGURA_PARTITIONS": str(PARTITIONS)})
    server.start()

    async def restart() -> None:
        server.stop()
        server.start()

    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            await a_chain_pages_its_root_then_each_link_once(
                http, f"{server.url}/api/v1", server.url, alert_receiver, restart
            )
    finally:
        server.stop()


@pytest.mark.kafka
async def test_a_chain_on_kafka_pages_only_its_root_then_each_link_once(
    kafka_bootstrap, tmp_path, alert_receiver
):
    stack = Stack(kafka_bootstrap, tmp_path)
    stack.env.update(PINGURA_PARTITIONS=str(PARTITIONS))
    stack.add("query", "query", "--port", str(stack.query_port), "--data-dir", str(tmp_path / "query"))
    stack.add("ingest", "ingest", "--port", str(stack.ingest_port))
    stack.add("evaluator", "evaluator")
    stack.add("notifier", "notifier")

    async def restart() -> None:
        stack.services["evaluator"].kill()
        stack.add("evaluator", "evaluator")

    try:
        await wait_http(f"{stack.api}/healthz")
        await wait_http(f"{stack.ingest}/api/heartbeat/x")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            await a_chain_pages_its_root_then_each_link_once(
                http, f"{stack.api}/api/v1", stack.ingest, alert_receiver, restart
            )
    finally:
        stack.stop()
        print(stack.logs())
