"""The distributed deployment: every service its own OS process, on a real Kafka broker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import msgspec
import pytest

from shared.bus import partition_for
from tests.e2e.conftest import API_KEY, end_process, eventually, free_port
from tests.e2e.test_metrics import scrape, total
from tests.real_services import start_local_broker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class Service:
    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self, sig=signal.SIGTERM) -> None:
        if self.proc is not None:
            end_process(self.proc, sig)


class Stack:
    def __init__(self, bootstrap: str, tmp: Path):
        self.tmp = tmp
        self.ingest_port, self.query_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "PINGURA_KAFKA_BOOTSTRAP": bootstrap,
            "PINGURA_TOPIC_PREFIX": f"e{uuid.uuid4().hex[:8]}.",
            "PINGURA_PARTITIONS": "4",
            "PINGURA_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "PINGURA_BOOTSTRAP_API_KEY": API_KEY,
            "PINGURA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "PINGURA_DELIVERY_RETRY_INITIAL_S": "0.2",
            "PINGURA_LATENESS_MS": "500",
            "PINGURA_CHECKPOINT_INTERVAL_MS": "200",
            "PINGURA_PUBLISH_TIMEOUT_MS": "3000",
        }
        self.services: dict[str, Service] = {}

    def add(self, name: str, *args: str) -> Service:
        # Every service listens (/healthz, /metrics); those not given a port get a free one,
        # as two on one host must not share 8080.
        argv = list(args) if "--port" in args else [*args, "--port", str(free_port())]
        service = Service(name, argv, self.env, self.tmp).start()
        self.services[name] = service
        return service

    @property
    def ingest(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.kill()

    def logs(self) -> str:
        return "\n".join(f"== {s.name}\n{s.log_path.read_text()[-3000:]}" for s in self.services.values())


async def wait_http(url: str, timeout_s: float = 60) -> None:
    async def up():
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as r:
                return r.status < 500
        except aiohttp.ClientError:
            return False

    await eventually(up, timeout_s=timeout_s, interval_s=0.3)


@pytest.fixture
async def stack(kafka_bootstrap, tmp_path):
    s = Stack(kafka_bootstrap, tmp_path)
    s.add("query", "query", "--port", str(s.query_port), "--data-dir", str(tmp_path / "query"))
    s.add("ingest", "ingest", "--port", str(s.ingest_port))
    # Every process listens (the evaluator and the notifier for /healthz and /metrics): a port each.
    s.add("evaluator-1", "evaluator", "--port", str(free_port()))
    s.add("evaluator-2", "evaluator", "--port", str(free_port()))
    s.add("notifier", "notifier", "--port", str(free_port()))
    try:
        await wait_http(f"{s.api}/healthz")
        await wait_http(f"{s.ingest}/api/heartbeat/x")
        yield s
    finally:
        s.stop()
        print(s.logs())


def owner_of(stack: Stack, partition: int) -> str | None:
    """Which evaluator process last logged owning ``partition``."""
    for name in ("evaluator-1", "evaluator-2"):
        found = re.findall(
            r"evaluator\.partitions\.assigned.*partitions=\[([\d, ]*)\]",
            stack.services[name].log_path.read_text(),
        )
        if found and str(partition) in [p.strip() for p in found[-1].split(",")]:
            return name
    return None


def assigned(stack: Stack, name: str) -> list[int]:
    """The partitions ``name`` last logged gaining (an empty list until it has some)."""
    found = re.findall(
        r"evaluator\.partitions\.assigned.*partitions=\[([\d, ]*)\]",
        stack.services[name].log_path.read_text(),
    )
    return [int(p) for p in found[-1].split(",") if p.strip()] if found else []


async def missed_count(http, stack, monitor_id) -> int:
    async with http.get(f"{stack.api}/api/v1/heartbeats/{monitor_id}/checkins?limit=1000") as r:
        return sum(1 for row in (await r.json())["checkins"] if row["kind"] == "missed")


async def test_separate_services_detect_a_miss_and_survive_a_killed_evaluator(stack, http, receiver):
    async with http.post(
        f"{stack.api}/api/v1/channels", json={"kind": "webhook", "config": {"url": receiver.url}}
    ) as r:
        assert r.status == 201, await r.text()
        channel = (await r.json())["id"]
    monitors = []
    for i in range(8):  # spread over the partitions, so both evaluators own some
        async with http.post(
            f"{stack.api}/api/v1/heartbeats",
            json={
                "name": f"worker {i}",
                "interval": 2,
                "grace": 1,
                "max_consecutive_misses": 1,
                "channels": [channel] if i == 0 else [],
            },
        ) as r:
            assert r.status == 201, await r.text()
            monitors.append(await r.json())
    silent, *busy = monitors

    async def ping_all(targets):
        for m in targets:
            async with http.post(f"{stack.ingest}/api/heartbeat/{m['token']}") as r:
                assert r.status == 200, await r.text()

    await eventually(lambda: _accepted(http, stack.ingest, silent["token"]), timeout_s=20)  # its last ping
    await ping_all(busy)

    # Kill -9 the evaluator that owns the silent monitor before its miss is due: the
    # other one must take the partition over and still raise the alert, once.
    owner = await eventually(lambda: _owner(stack, partition_for(silent["id"], 4)), timeout_s=20)
    stack.services[owner].kill(signal.SIGKILL)

    async def busy_pinged_then(check):  # the busy ones keep to their 2 s interval meanwhile
        await ping_all(busy)
        return check()

    try:
        await eventually(lambda: busy_pinged_then(lambda: receiver.bodies), timeout_s=45, interval_s=0.7)
    except AssertionError:
        raise AssertionError(f"no alert after the takeover: {stack.logs()}") from None
    assert receiver.kinds() == ["down"], stack.logs()
    assert receiver.bodies[0]["monitor"]["id"] == silent["id"]

    # A new evaluator joins: partitions move again, state moves with them (it logs its share
    # once their snapshots are read), nobody is paged twice (the `up` below comes next).
    stack.add("evaluator-3", "evaluator", "--port", str(free_port()))
    await eventually(
        lambda: busy_pinged_then(lambda: assigned(stack, "evaluator-3")), timeout_s=45, interval_s=0.7
    )
    assert receiver.kinds() == ["down"]

    # The busy monitors never missed (ticks kept the event-time clock honest during the takeover).
    for m in busy:
        assert await missed_count(http, stack, m["id"]) == 0, m["id"]

    async def statuses() -> dict[str, str]:
        async with http.get(f"{stack.api}/api/v1/heartbeats") as r:
            return {h["id"]: h["status"] for h in (await r.json())["heartbeats"]}

    async def settled() -> dict[str, str] | None:
        # The status view shows what the evaluators' snapshots say, a checkpoint after the moves.
        shown = await statuses()
        return shown if shown[silent["id"]] == "down" and all(shown[m["id"]] == "up" for m in busy) else None

    async def pinged_and_settled() -> dict[str, str] | None:
        await ping_all(busy)
        return await settled()

    try:
        await eventually(pinged_and_settled, timeout_s=20, interval_s=0.7)
    except AssertionError:
        raise AssertionError(f"statuses never settled: {await statuses()}") from None

    # Recovery goes through whichever evaluator owns it now; then, silent again, the next
    # outage is paged. A monitor's alerts go out in order, so a second `down` from a takeover,
    # or a second `up`, would have come before that one.
    await ping_all([silent])
    await eventually(lambda: _received(receiver, 3), timeout_s=30)
    assert [b["alert_id"] for b in receiver.bodies] == [
        f"{silent['id']}:1:down",
        f"{silent['id']}:1:up",
        f"{silent['id']}:2:down",
    ], stack.logs()
    await _each_service_exports_its_metrics(stack)


async def _each_service_exports_its_metrics(stack: Stack) -> None:
    """``/metrics`` of every live process of this deployment, each counting its own work."""
    scraped = {}
    for name, service in stack.services.items():
        if service.proc is not None and service.proc.poll() is None:
            port = int(service.args[service.args.index("--port") + 1])
            scraped[name] = await scrape(f"http://127.0.0.1:{port}")
    assert {s.labels["process"] for f in scraped["evaluator-3"].values() for s in f.samples} == {"evaluator"}
    assert total(scraped["ingest"], "pingura_pings_accepted", format="pingura") > 0
    assert (
        total(
            scraped["ingest"], "pingura_bus_append_seconds", "pingura_bus_append_seconds_count", bus="kafka"
        )
        > 0
    )
    # The alerts the receiver got: emitted by the evaluators alive now, sent by the notifier.
    assert (
        sum(total(scraped[n], "pingura_evaluator_alerts", kind="up") for n in scraped if "evaluator" in n)
        >= 1
    )
    assert (
        total(scraped["notifier"], "pingura_notifier_deliveries", channel_kind="webhook", outcome="delivered")
        == 3
    )
    groups = {s.labels["group"] for s in scraped["notifier"]["pingura_consumer_lag_records"].samples}
    assert groups == {"notifier"}
    assert "pingura_history_writer_lag_seconds" in scraped["query"]
    ch = "pingura_clickhouse_query_seconds_count"
    assert total(scraped["query"], "pingura_clickhouse_query_seconds", ch, op="insert") > 0
    evaluators = [n for n in scraped if "evaluator" in n]
    assert any(total(scraped[n], "pingura_evaluator_clock_behind_seconds") > 0 for n in evaluators)


async def _owner(stack, partition):
    return owner_of(stack, partition)


async def _accepted(http, ingest, token):
    async with http.post(f"{ingest}/api/heartbeat/{token}") as r:
        return r.status == 200


async def _received(receiver, count):
    return len(receiver.bodies) >= count


async def test_ops_teams_read_the_alert_stream_with_their_own_group(stack, http, kafka_bootstrap):
    from aiokafka import AIOKafkaConsumer

    async with http.post(
        f"{stack.api}/api/v1/heartbeats", json={"name": "ops", "interval": 1, "grace": 0}
    ) as r:
        monitor = await r.json()
    await eventually(lambda: _accepted(http, stack.ingest, monitor["token"]), timeout_s=20)
    consumer = AIOKafkaConsumer(
        stack.env["PINGURA_TOPIC_PREFIX"] + "alerts",
        bootstrap_servers=kafka_bootstrap,
        group_id="ops-team",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    alert = msgspec.json.decode(message.value)
    assert message.key.decode() == monitor["id"]
    assert (alert["type"], alert["v"], alert["kind"]) == ("alert", 1, "down")
    assert alert["id"] == f"{monitor['id']}:1:down"


async def test_every_ping_answered_200_survives_a_broker_outage(tmp_path, http):
    broker = start_local_broker(tmp_path / "broker")  # its own broker: this test stops it
    s = Stack(broker.bootstrap, tmp_path)
    s.add("query", "query", "--port", str(s.query_port), "--data-dir", str(tmp_path / "query"))
    s.add("ingest", "ingest", "--port", str(s.ingest_port))
    try:
        await wait_http(f"{s.api}/healthz")
        async with http.post(f"{s.api}/api/v1/heartbeats", json={"name": "fleet", "interval": 3600}) as r:
            monitor = await r.json()
        await eventually(lambda: _accepted(http, s.ingest, monitor["token"]), timeout_s=30)
        url = f"{s.ingest}/api/heartbeat/{monitor['token']}"
        answers: dict[str, int] = {}

        async def send(i: int) -> None:
            try:
                async with http.post(
                    url, params={"message": f"n{i}"}, timeout=aiohttp.ClientTimeout(total=15)
                ) as r:
                    answers[f"n{i}"] = r.status
            except (TimeoutError, aiohttp.ClientError):
                answers[f"n{i}"] = 0

        i = 0
        for _ in range(20):
            await send(i)
            i += 1
        broker.stop()
        for _ in range(10):  # while the broker is down: 503 with Retry-After, never a false 200
            await send(i)
            i += 1
        broker.start()
        for _ in range(20):
            await send(i)
            i += 1

        ok = {m for m, status in answers.items() if status == 200}
        refused = {m for m, status in answers.items() if status == 503}
        assert ok | refused == set(answers), answers
        assert refused, "the outage should have refused some pings"

        async def stored():
            messages = set()
            async with http.get(f"{s.api}/api/v1/heartbeats/{monitor['id']}/export?format=json") as r:
                if r.status != 200:
                    return None
                messages = {row["message"] for row in msgspec.json.decode(await r.read())}
            return messages if ok <= messages else None

        assert await eventually(stored, timeout_s=60)
    finally:
        s.stop()
        print(s.logs())
        broker.stop()


async def test_a_query_process_closes_the_kafka_producer_of_a_test_notification_on_shutdown(
    kafka_bootstrap, tmp_path, http
):
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    s = Stack(kafka_bootstrap, tmp_path)
    query = s.add("query", "query", "--port", str(s.query_port), "--data-dir", str(tmp_path / "query"))
    try:
        await wait_http(f"{s.api}/healthz")
        topic = s.env["PINGURA_TOPIC_PREFIX"].rstrip(".") + "-ops-alerts"  # not one of Pingura's own
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        async with http.post(
            f"{s.api}/api/v1/channels", json={"kind": "kafka", "config": {"topic": topic}}
        ) as r:
            assert r.status == 201, await r.text()
            channel = (await r.json())["id"]
        async with http.post(f"{s.api}/api/v1/channels/{channel}/test") as r:
            assert (await r.json())["ok"] is True, await r.text()

        query.kill()  # SIGTERM, waited for
    finally:
        s.stop()
        print(s.logs())

    assert query.proc is not None and query.proc.returncode == 0
    log = query.log_path.read_text()
    assert "notifier.kafka.producer_started" in log
    assert "notifier.kafka.producer_stopped" in log  # flushed and closed by the process that opened it
    assert log.index("notifier.kafka.producer_stopped") < log.index("serve.stopped")
