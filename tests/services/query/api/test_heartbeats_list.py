"""The heartbeat list and a heartbeat's current state over real HTTP, as ``pingura serve``
mounts the API: statuses come from the evaluator's snapshots (written here by a real
evaluator core and its StateStore), never from ClickHouse."""

from __future__ import annotations

import dataclasses
import uuid

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.evaluator.logic import PartitionEvaluator
from services.evaluator.store import StateStore
from services.query.app import api_app
from shared.clock import now_ms
from shared.events import MonitorConfig, Ping
from shared.ids import new_token
from tests.polling import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
S = 1000


class Client:
    """One fresh project, and its key: tests share the server but never each other's list."""

    def __init__(self, api, project_id: str, key: str):
        self.api, self.project_id = api, project_id
        self.headers = {"Authorization": f"Bearer {key}"}

    async def get(self, path: str, **params) -> tuple[int, dict]:
        async with self.api.http.get(self.api.url + path, params=params, headers=self.headers) as r:
            return r.status, await r.json()

    async def create(self, name: str, **fields) -> dict:
        body = {"name": name, "interval": "1d", **fields}
        async with self.api.http.post(self.api.url + "/heartbeats", json=body,
                                      headers=self.headers) as r:  # fmt: skip
            assert r.status == 201, await r.text()
            return await r.json()

    async def post(self, path: str) -> dict:
        async with self.api.http.post(self.api.url + path, headers=self.headers) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def every_page(self, **params) -> list[dict]:
        found, cursor = [], None
        while True:
            status, body = await self.get("/heartbeats", **params, **({"before": cursor} if cursor else {}))
            assert status == 200, body
            found += body["heartbeats"]
            cursor = body["next"]
            if cursor is None:
                return found


@pytest_asyncio.fixture(loop_scope="session")
async def client(api) -> Client:
    async with api.http.post(api.url + "/projects", json={"name": "list " + uuid.uuid4().hex[:8]}) as r:
        assert r.status == 201, await r.text()
        project = await r.json()
    return Client(api, project["id"], project["api_key"])


async def evaluate(api, *steps) -> None:
    """Run the steps through a real evaluator core and publish its snapshots, as the
    evaluator service does at a checkpoint; then wait until the API's view has them."""
    ev = PartitionEvaluator(0)
    for offset, step in enumerate(steps, 1):
        if isinstance(step, str):
            ev.apply_config(api.ctx.monitors[step])
        elif isinstance(step, Ping):
            ev.apply_ping(step, offset)
        else:
            ev.advance(step)
    await StateStore(api.ctx.bus, api.ctx.topics).save(ev, len(steps))
    assert await api.ctx.statuses.sync()


def a_ping(monitor: dict, at_ms: int, project_id: str) -> Ping:
    return Ping(
        id=f"p{at_ms}", monitor_id=monitor["id"], project_id=project_id, received_ms=at_ms, kind="success"
    )


# one heartbeat ---------------------------------------------------------------------
async def test_a_new_heartbeat_has_no_check_in_and_expects_none(client):
    created = await client.create("nightly")
    status, body = await client.get(f"/heartbeats/{created['id']}")
    assert status == 200
    assert (body["status"], body["status_since"], body["status_reason"]) == ("new", None, None)
    assert (body["last_checkin_at"], body["next_expected_at"]) == (None, None)
    assert created["last_checkin_at"] is None and created["next_expected_at"] is None


async def test_a_heartbeat_shows_the_evaluators_status_last_check_in_and_next_expected(api, client):
    hb = await client.create("nightly", interval=60, grace=10)
    await evaluate(api, hb["id"], a_ping(hb, T0, client.project_id), T0 + 61 * S)
    status, body = await client.get(f"/heartbeats/{hb['id']}")
    assert status == 200
    assert body["status"] == "late"
    assert body["status_since"] == "2023-11-14T22:14:20.000Z"  # T0 + 60s: due, grace running
    assert body["status_reason"] == "no ping within the interval; in grace period"
    assert body["last_checkin_at"] == "2023-11-14T22:13:20.000Z"
    assert body["next_expected_at"] == "2023-11-14T22:14:20.000Z"


async def test_a_pause_shows_at_once_and_expects_nothing(api, client):
    hb = await client.create("nightly", interval=60, grace=10)
    await evaluate(api, hb["id"], a_ping(hb, T0, client.project_id))
    paused = await client.post(f"/heartbeats/{hb['id']}/pause")
    assert (paused["status"], paused["status_reason"], paused["next_expected_at"]) == (
        "paused",
        "paused",
        None,
    )
    assert paused["last_checkin_at"] == "2023-11-14T22:13:20.000Z"
    resumed = await client.post(f"/heartbeats/{hb['id']}/resume")
    assert resumed["status"] == "up"


async def test_reading_a_heartbeat_or_the_list_needs_no_clickhouse(api, client):
    hb = await client.create("nightly")

    class NoStore:
        def __getattr__(self, name):
            raise AssertionError(f"the store was asked for {name}")

    root = web.Application()
    ctx = dataclasses.replace(api.ctx)
    ctx.started(NoStore(), api.ctx.catalog)  # a stand-in for the store
    root.add_subapp("/api/v1", api_app(ctx))
    async with TestServer(root) as server, aiohttp.ClientSession(headers=client.headers) as http:
        for path in (f"/api/v1/heartbeats/{hb['id']}", "/api/v1/heartbeats"):
            async with http.get(server.make_url(path)) as r:
                assert r.status == 200, await r.text()


async def test_a_read_only_key_sees_neither_token_nor_ping_url(api, client):
    hb = await client.create("nightly")
    async with api.http.post(api.url + "/keys", json={"name": "viewer", "read_only": True},
                             headers=client.headers) as r:  # fmt: skip
        assert r.status == 201, await r.text()
        viewer = Client(api, client.project_id, (await r.json())["key"])
    _, one = await viewer.get(f"/heartbeats/{hb['id']}")
    _, page = await viewer.get("/heartbeats")
    for body in (one, page["heartbeats"][0]):
        assert body["id"] == hb["id"] and "token" not in body and "ping_url" not in body
    _, own = await client.get(f"/heartbeats/{hb['id']}")
    assert own["token"] == hb["token"] and own["ping_url"].endswith(hb["token"])


# the list --------------------------------------------------------------------------
async def test_the_list_is_sorted_by_name_ignoring_case_and_pages_by_cursor(client):
    for name in ["beta", "Alpha", "gamma", "alpha 2", "Delta"]:
        await client.create(name)
    status, body = await client.get("/heartbeats", limit="2")
    assert status == 200
    assert [h["name"] for h in body["heartbeats"]] == ["Alpha", "alpha 2"]
    assert isinstance(body["next"], str)
    everything = await client.every_page(limit="2")
    assert [h["name"] for h in everything] == ["Alpha", "alpha 2", "beta", "Delta", "gamma"]


async def test_the_list_can_be_sorted_by_creation(client):
    for name in ["b", "c", "a"]:
        await client.create(name)
        # Creation time is in milliseconds and two creations within one are ordered by id:
        # the next waits for a later millisecond, so the order is the one they were made in.
        made_by = now_ms()
        await eventually(lambda made_by=made_by: now_ms() > made_by)
    assert [h["name"] for h in await client.every_page(sort="created", limit="1")] == ["b", "c", "a"]


async def test_sorted_by_status_down_and_late_come_first_each_by_name(api, client):
    late = await client.create("b late", interval=60, grace=100)
    down = await client.create("z down", interval=60, grace=10)
    await client.create("a new")
    await evaluate(api, late["id"], down["id"], a_ping(late, T0, client.project_id),
                   a_ping(down, T0, client.project_id), T0 + 120 * S)  # fmt: skip
    names = [h["name"] for h in await client.every_page(sort="status", limit="1")]
    assert names == ["z down", "b late", "a new"]


async def test_filters_narrow_the_list_and_counts_cover_the_whole_project(api, client):
    backup = await client.create("DB backup", tags=["db"], interval=60, grace=10)
    await client.create("db vacuum", tags=["db"])
    await client.create("report")
    await evaluate(api, backup["id"], a_ping(backup, T0, client.project_id), T0 + 200 * S)

    async def names(**params):
        status, body = await client.get("/heartbeats", **params)
        assert status == 200, body
        return [h["name"] for h in body["heartbeats"]], body["counts"]

    assert await names(status="down") == (["DB backup"], {"up": 0, "down": 1, "late": 0, "new": 2, "paused": 0,
                                                           "running": 0, "unknown": 0})  # fmt: skip
    assert (await names(tag="db"))[0] == ["DB backup", "db vacuum"]
    assert (await names(q="DB"))[0] == ["DB backup", "db vacuum"]
    assert (await names(q="db", status="new"))[0] == ["db vacuum"]
    assert (await names(tag="nope"))[0] == []


async def test_every_page_of_a_filtered_list_holds_each_match_once(client):
    for i in range(25):
        await client.create(f"job {i:02d}", tags=["even"] if i % 2 == 0 else [])
    evens = await client.every_page(tag="even", limit="4")
    assert [h["name"] for h in evens] == [f"job {i:02d}" for i in range(0, 25, 2)]
    matching = await client.every_page(q="1", limit="3")
    assert [h["name"] for h in matching] == ["job 01", "job 10", "job 11", "job 12", "job 13", "job 14", "job 15",
                                             "job 16", "job 17", "job 18", "job 19", "job 21"]  # fmt: skip


async def test_a_project_lists_only_its_own(api, client):
    await client.create("mine")
    status, body = await client.get("/heartbeats")
    assert status == 200, body
    assert [h["name"] for h in body["heartbeats"]] == ["mine"]
    assert sum(body["counts"].values()) == 1


@pytest.mark.parametrize(
    "params, field",
    [({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
     ({"status": "sideways"}, "status"), ({"before": "not-a-cursor"}, "before"), ({"sort": "size"}, "sort")],
)  # fmt: skip
async def test_it_refuses_a_bad_parameter_naming_it(client, params, field):
    status, body = await client.get("/heartbeats", **params)
    assert status == 400
    assert body["field"] == field and body["error"]


async def test_a_cursor_of_one_sort_is_refused_for_the_other(client):
    for name in ["a", "b"]:
        await client.create(name)
    _, body = await client.get("/heartbeats", limit="1", sort="created")
    status, refused = await client.get("/heartbeats", before=body["next"])
    assert (status, refused["field"]) == (400, "before")


async def test_a_page_of_a_20000_heartbeat_project_holds_the_page_only(api, client):
    # Put straight into the view (as a write does): 20,000 POSTs would only test the bus.
    for i in range(20_000):
        api.ctx.monitors.put(MonitorConfig(
            id=f"hb_{client.project_id}_{i:05d}", project_id=client.project_id, name=f"job {i:05d}",
            token=new_token(), interval_s=60, grace_s=10, created_ms=T0 + i, updated_ms=T0 + i,
        ))  # fmt: skip
    status, body = await client.get("/heartbeats")
    assert status == 200
    assert len(body["heartbeats"]) == 100 and body["next"] is not None
    assert body["heartbeats"][0]["name"] == "job 00000"
    assert body["counts"]["new"] == 20_000
    status, body = await client.get("/heartbeats", q="19999")
    assert [h["name"] for h in body["heartbeats"]] == ["job 19999"]
