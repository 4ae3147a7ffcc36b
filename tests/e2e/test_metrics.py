"""``GET /metrics`` on a real ``pingura serve``: one process, and with the ingest process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import API_KEY, Server, eventually

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TOKEN = "metrics-token-" + "m" * 24
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


async def scrape(url: str, **headers: str) -> dict:
    """The families of one scrape, parsed by the official parser (no API key sent)."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return {f.name: f for f in text_string_to_metric_families(await r.text())}


def total(families: dict, name: str, sample: str | None = None, **labels: str) -> float:
    """The sum of ``name``'s samples (``sample``: only those so named) with these labels."""
    family = families.get(name)
    if family is None:
        return 0.0
    return sum(
        s.value
        for s in family.samples
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items())
    )


def exposed_names(families: dict) -> set[str]:
    """Every name a query can use: families and their samples, suffixes included."""
    names = set()
    for family in families.values():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(s.name for s in family.samples)
    return names


def names_used_by_deploy() -> set[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "pingura.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return set(re.findall(r"\bpingura_[a-z0-9_]+", "\n".join(exprs)))


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    srv = Server(tmp / "data", tmp / "serve.log", env={"PINGURA_METRICS_TOKEN": TOKEN})
    srv.start()
    yield srv
    srv.stop()


async def _heartbeat(url: str) -> dict:
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"})
    async with (
        session,
        session.post(f"{url}/api/v1/heartbeats", json={"name": "metered", "interval": 3600}) as r,
    ):
        assert r.status == 201, await r.text()
        return await r.json()


async def _ping(url: str, path: str) -> int:
    async with aiohttp.ClientSession() as session, session.post(f"{url}{path}") as r:
        return r.status


async def test_a_scrape_counts_the_pings_the_server_answered(serve):
    before = await scrape(serve.url)
    monitor = await _heartbeat(serve.url)
    assert await _ping(serve.url, f"/api/heartbeat/{monitor['token']}") == 200
    assert await _ping(serve.url, f"/ping/{monitor['token']}") == 200
    assert await _ping(serve.url, "/api/heartbeat/" + "x" * 32) == 404  # refused: unknown token
    after = await scrape(serve.url)

    def moved(name, sample=None, **labels):
        return total(after, name, sample, **labels) - total(before, name, sample, **labels)

    assert moved("pingura_pings_accepted", format="pingura", process="serve") == 1
    assert moved("pingura_pings_accepted", format="healthchecks") == 1
    assert moved("pingura_pings_refused", format="pingura", reason="not_found") == 1
    assert moved("pingura_pings_refused", reason="unavailable") == 0
    assert moved("pingura_ping_answer_seconds", "pingura_ping_answer_seconds_count") == 3
    assert moved("pingura_bus_append_seconds", "pingura_bus_append_seconds_count", bus="local") >= 2
    assert total(after, "pingura_bus_fsync_seconds", "pingura_bus_fsync_seconds_count") > 0
    assert total(after, "pingura_clickhouse_query_seconds", "pingura_clickhouse_query_seconds_count") > 0
    groups = {s.labels["group"] for s in after["pingura_consumer_lag_records"].samples}
    assert {"evaluator", "notifier"} <= groups
    assert after["pingura_ingest_incidents_open"].samples[0].value == 0

    async def clock_read():  # the ticker's first tick reached the evaluator
        return total(await scrape(serve.url), "pingura_evaluator_clock_behind_seconds") > 0

    await eventually(clock_read)


async def test_every_metric_the_rules_and_the_dashboard_name_is_in_a_live_scrape(serve):
    used = names_used_by_deploy()
    assert "pingura_pings_refused_total" in used and "pingura_ping_answer_seconds_bucket" in used
    missing = used - exposed_names(await scrape(serve.url))
    assert not missing, f"named in deploy/ but not exported: {sorted(missing)}"


async def test_a_forwarded_scrape_needs_the_token(serve):
    async with aiohttp.ClientSession() as session:
        forwarded = {"X-Forwarded-For": "203.0.113.9"}
        async with session.get(f"{serve.url}/metrics", headers=forwarded) as r:
            assert r.status == 403
            assert "needs Authorization: Bearer" in await r.text()
        async with session.get(f"{serve.url}/metrics", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 403
    families = await scrape(serve.url, Authorization=f"Bearer {TOKEN}", **forwarded)
    assert "pingura_pings_accepted" in families
    assert TOKEN not in serve.logs()


async def test_the_ingest_process_layout_shows_both_processes_in_one_scrape(tmp_path):
    srv = Server(
        tmp_path / "data",
        tmp_path / "serve.log",
        env={"PINGURA_INGEST_PROCESS": "1", "PINGURA_METRICS_TOKEN": TOKEN},
    )
    srv.start()
    try:
        monitor = await _heartbeat(srv.url)
        assert await _ping(srv.url, f"/api/heartbeat/{monitor['token']}") == 200
        assert await _ping(srv.url, "/api/push/" + "y" * 32) == 404
        families = await scrape(srv.url)
        assert total(families, "pingura_scrape_upstream_ok") == 1
        assert total(families, "pingura_pings_accepted", process="ingest", format="pingura") == 1
        assert (
            total(families, "pingura_pings_refused", process="ingest", format="kuma", reason="not_found") == 1
        )
        linked = "pingura_bus_append_seconds_count"
        assert total(families, "pingura_bus_append_seconds", linked, process="ingest", bus="linked") == 1
        # The serving process behind it: its bus commits the ping, its evaluator reads it.
        assert (
            total(families, "pingura_bus_fsync_seconds", "pingura_bus_fsync_seconds_count", process="serve")
            > 0
        )
        lag = families["pingura_consumer_lag_records"].samples
        assert {s.labels["process"] for s in lag} == {"serve"}
        assert {s.labels["process"] for s in families["process_cpu_seconds"].samples} == {"ingest", "serve"}
        session = aiohttp.ClientSession()
        async with session, session.get(f"{srv.url}/metrics", headers={"X-Real-IP": "203.0.113.9"}) as r:
            assert r.status == 403
        with_token = await scrape(srv.url, Authorization=f"Bearer {TOKEN}", **{"X-Real-IP": "203.0.113.9"})
        assert total(with_token, "pingura_scrape_upstream_ok") == 1  # the serving process let it in too
    finally:
        srv.stop()
