"""A project's heartbeats for Prometheus over real HTTP: ``GET /api/v1/metrics/{key}`` with a
read-only key of the project in the URL, statuses from the evaluator's snapshots on the real
bus, and every answer read back with the official parser
(``prometheus_client.parser.text_string_to_metric_families``)."""

from __future__ import annotations

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from services.query.api.project_metrics import NOT_FOUND, WRITE_KEY, Row, render
from services.query.auth.throttle import FailureThrottle
from shared.clock import now_ms
from shared.events import STATUSES, MonitorSnapshot, encode
from shared.snapshots import STATE_VERSION, MonitorState, encode_state
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.conftest import API_KEY

on_session_loop = pytest.mark.asyncio(loop_scope="session")

S = 1000


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous():
    async with aiohttp.ClientSession() as http:
        yield http


async def scrape(api, anonymous, key: str) -> tuple[int, str, str]:
    async with anonymous.get(f"{api.url}/metrics/{key}") as r:
        return r.status, r.headers["Content-Type"], await r.text()


def parsed(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric name -> its samples as (labels, value), by the official parser."""
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


async def heartbeat(tenant: Tenant, name: str, tags: list[str] | None = None) -> dict:
    return await tenant.ok(
        "POST", "/heartbeats", 201, json={"name": name, "interval": "1h", "tags": tags or []}
    )


async def saved(api, tenant: Tenant, hb: dict, status: str, last_ping_ms: int | None) -> None:
    """The heartbeat's snapshot as the evaluator writes it, in ``status``."""
    state = MonitorState(
        monitor_id=hb["id"], project_id=tenant.project_id, name=hb["name"], interval_ms=3600 * S, grace_ms=0,
        max_problems=1, channels=(), tags=(), revision=1, status=status, last_ping_ms=last_ping_ms,
    )  # fmt: skip
    snapshot = MonitorSnapshot(monitor_id=hb["id"], partition=0, offset=1, state=encode_state(state),
                               state_v=STATE_VERSION)  # fmt: skip
    await api.ctx.bus.publish(api.ctx.topics.evaluator_state, hb["id"], encode(snapshot))
    assert await api.ctx.statuses.sync()


async def read_only_key(tenant: Tenant) -> str:
    key, _ = await tenant.new_key(read_only=True, name="prometheus")
    return key


# what a scrape shows ----------------------------------------------------------------------
@on_session_loop
async def test_each_heartbeat_shows_its_current_status_its_silence_and_the_counts_per_status(api, anonymous):
    tenant = await new_tenant(api)
    now = now_ms()
    up = await heartbeat(tenant, "backup", ["db", "nightly"])
    down = await heartbeat(tenant, "report")
    late = await heartbeat(tenant, "sync")
    running = await heartbeat(tenant, "etl")
    paused = await heartbeat(tenant, "old job")
    new = await heartbeat(tenant, "never pinged")
    for hb, status, ago_s in (
        (up, "up", 30),
        (down, "down", 7200),
        (late, "late", 3700),
        (running, "running", 5),
    ):
        await saved(api, tenant, hb, status, now - ago_s * S)
    await saved(api, tenant, paused, "up", now - 600 * S)
    await tenant.ok("POST", f"/heartbeats/{paused['id']}/pause")

    status, content_type, text = await scrape(api, anonymous, await read_only_key(tenant))

    assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
    metrics = parsed(text)
    shown = {labels["id"]: labels for labels, value in metrics["pingura_heartbeat_status"] if value == 1}
    assert len(metrics["pingura_heartbeat_status"]) == len(shown) == 6  # one series each: its current status
    assert {id_: labels["status"] for id_, labels in shown.items()} == {
        up["id"]: "up", down["id"]: "down", late["id"]: "late", running["id"]: "running",
        paused["id"]: "paused", new["id"]: "new",
    }  # fmt: skip
    assert shown[up["id"]] == {"id": up["id"], "name": "backup", "tags": "db,nightly", "status": "up"}
    assert shown[down["id"]]["tags"] == ""
    counts = {labels["status"]: value for labels, value in metrics["pingura_heartbeats"]}
    assert counts == {
        s: (1 if s in ("up", "down", "late", "running", "paused", "new") else 0) for s in STATUSES
    }
    silence = {labels["id"]: value for labels, value in metrics["pingura_heartbeat_seconds_since_last_ping"]}
    assert new["id"] not in silence  # never pinged: no series, rather than NaN
    assert set(silence) == {up["id"], down["id"], late["id"], running["id"], paused["id"]}
    for hb, ago_s in ((up, 30), (down, 7200), (late, 3700), (running, 5), (paused, 600)):
        assert ago_s <= silence[hb["id"]] < ago_s + 60, hb["name"]  # the scrape came a moment after


@on_session_loop
async def test_it_is_gzipped_when_asked_as_prometheus_asks_and_plain_otherwise(api, anonymous):
    tenant = await new_tenant(api)
    await heartbeat(tenant, "backup")
    key = await read_only_key(tenant)
    answers = {}
    for encoding in ("gzip", "identity"):
        async with anonymous.get(f"{api.url}/metrics/{key}", headers={"Accept-Encoding": encoding}) as r:
            answers[encoding] = (r.headers.get("Content-Encoding"), await r.text())  # the client inflates
    assert answers["gzip"][0] == "gzip" and answers["identity"][0] is None
    assert answers["gzip"][1] == answers["identity"][1]
    assert "backup" in {
        labels["name"] for labels, _ in parsed(answers["gzip"][1])["pingura_heartbeat_status"]
    }


@on_session_loop
async def test_another_projects_heartbeats_never_appear(api, anonymous):
    mine, theirs = await new_tenant(api), await new_tenant(api)
    kept = await heartbeat(mine, "mine")
    other = await heartbeat(theirs, "theirs")
    await saved(api, theirs, other, "down", now_ms())

    _, _, text = await scrape(api, anonymous, await read_only_key(mine))

    metrics = parsed(text)
    ids = {labels["id"] for family in metrics.values() for labels, _ in family if "id" in labels}
    assert ids == {kept["id"]}
    assert other["id"] not in text and "theirs" not in text
    assert {labels["status"]: value for labels, value in metrics["pingura_heartbeats"]}["down"] == 0


@on_session_loop
async def test_a_project_without_heartbeats_lists_every_status_at_zero(api, anonymous):
    tenant = await new_tenant(api)
    status, _, text = await scrape(api, anonymous, await read_only_key(tenant))
    metrics = parsed(text)
    assert status == 200
    assert metrics["pingura_heartbeats"] == [({"status": s}, 0) for s in STATUSES]
    assert metrics["pingura_heartbeat_status"] == []


@on_session_loop
async def test_hostile_names_and_tags_come_back_whole_through_the_parser(api, anonymous):
    tenant = await new_tenant(api)
    names = ['say "hi"', "back\\slash\\", "emoji 🐧 ok", "label} 1\n# not a line", 'x="y",z']
    made = {}
    for name in names:
        try:
            made[(await heartbeat(tenant, name, ['t"1', "a\\b", "🐧"]))["id"]] = name
        except AssertionError:  # the API refuses control characters in names: the renderer's test has them
            assert "\n" in name
    _, _, text = await scrape(api, anonymous, await read_only_key(tenant))
    shown = {labels["id"]: labels for labels, _ in parsed(text)["pingura_heartbeat_status"]}
    assert {id_: labels["name"] for id_, labels in shown.items()} == made
    assert {labels["tags"] for labels in shown.values()} == {'t"1,a\\b,🐧'}


label_text = st.text(min_size=0, max_size=30)


@given(rows=st.lists(st.tuples(label_text, label_text, st.sampled_from(STATUSES)), max_size=5))
@settings(max_examples=200, deadline=None)
def test_any_name_or_tags_survive_the_official_parser(rows):
    """Names reach the view from the topic too (older versions, the CLI): newlines, quotes,
    backslashes, braces and any unicode are escaped so the parser reads them back as they were."""
    given_rows = [Row(f"hb_{i}", name, tags, status, 0) for i, (name, tags, status) in enumerate(rows)]
    metrics = parsed(render(given_rows, 5 * S).decode())
    assert [
        (labels["id"], labels["name"], labels["tags"], labels["status"])
        for labels, _ in metrics["pingura_heartbeat_status"]
    ] == [(row.id, row.name, row.tags, row.status) for row in given_rows]
    assert [value for _, value in metrics["pingura_heartbeat_seconds_since_last_ping"]] == [5.0] * len(rows)


# the key ------------------------------------------------------------------------------------
@on_session_loop
async def test_a_key_that_can_write_is_refused_with_a_reason(api, anonymous):
    tenant = await new_tenant(api)
    await heartbeat(tenant, "hidden")
    write_key = tenant.headers["Authorization"].removeprefix("Bearer ")
    for key in (write_key, API_KEY):  # a key of its own, and a legacy project key (read-write)
        async with anonymous.get(f"{api.url}/metrics/{key}") as r:
            assert (r.status, await r.json()) == (403, {"error": WRITE_KEY})


@on_session_loop
async def test_an_unknown_or_revoked_key_is_404(api, anonymous):
    tenant = await new_tenant(api)
    key, made = await tenant.new_key(read_only=True)
    assert (await scrape(api, anonymous, key))[0] == 200
    await tenant.ok("DELETE", f"/keys/{made['id']}", 204)
    for wrong in (key, "pk_nope", key[:-1], "x" * 5000, "%F0%9F%90%A7"):
        async with anonymous.get(f"{api.url}/metrics/{wrong}") as r:
            assert (r.status, await r.json()) == (404, {"error": NOT_FOUND}), wrong


@on_session_loop
async def test_it_is_public_in_the_openapi_document_with_its_refusals(api):
    from tests.services.query.api.test_openapi import operation

    op = operation("GET", "/metrics/{key}")
    assert op["security"] == []
    assert {"200", "403", "404", "429"} <= set(op["responses"])
    assert "text/plain" in op["responses"]["200"]["content"]


@on_session_loop
async def test_wrong_keys_are_throttled_per_address_as_a_headers_are_and_a_good_one_still_works(
    api, anonymous
):
    tenant = await new_tenant(api)
    key = await read_only_key(tenant)
    keys = api.ctx.keys
    keys.failures = FailureThrottle(2)  # this module's server has none: one for this test only
    try:
        refused = [(await scrape(api, anonymous, f"pk_wrong_{i}"))[0] for i in range(3)]
        async with anonymous.get(f"{api.url}/metrics/pk_wrong_again") as r:
            last = (r.status, "Retry-After" in r.headers, (await r.json())["error"])
        assert refused == [404, 404, 429] and last[:2] == (429, True) and "\n" not in last[2]
        assert (await scrape(api, anonymous, key))[0] == 200
    finally:
        keys.failures = None


@on_session_loop
async def test_no_key_of_the_url_reaches_the_logs(api, anonymous):
    tenant = await new_tenant(api)
    key, made = await tenant.new_key(read_only=True)
    write_key = tenant.headers["Authorization"].removeprefix("Bearer ")
    with capture_logs() as logs:
        assert (await scrape(api, anonymous, key))[0] == 200
        assert (await scrape(api, anonymous, write_key))[0] == 403
        await tenant.ok("DELETE", f"/keys/{made['id']}", 204)
        assert (await scrape(api, anonymous, key))[0] == 404
    assert key not in repr(logs) and write_key not in repr(logs)
