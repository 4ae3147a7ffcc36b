"""Slug URLs (``/ping/{ping_key}/{slug}``) and heartbeats created by their first ping,
over real HTTP to the real ingest app on the real embedded bus."""

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ingest import provision
from services.ingest.app import ingest_app
from services.ingest.logic import slug_monitor_id
from services.ingest.provision import PerMinute
from services.ingest.store import TokenIndex
from shared.ids import new_ping_key, new_token
from shared.settings import Settings
from tests.services.ingest.support import (
    TOPICS,
    add_channel,
    add_monitor,
    add_project,
    monitors_on_bus,
    open_bus,
    pings_on_bus,
    serve,
)

KEY = new_ping_key()


async def start(tmp_path, **settings):
    bus, index = await open_bus(tmp_path)
    client = TestClient(TestServer(ingest_app(Settings(**settings), bus, TOPICS, index)))
    await client.start_server()
    return bus, index, client


@pytest.fixture
async def ingest(tmp_path):
    bus, index, client = await start(tmp_path)
    await add_project(bus, "p", ping_key=KEY)
    await add_monitor(bus, new_token(), slug="backup-db")
    await index.sync()
    await index.projects.resolve(KEY)
    yield bus, client, index
    await client.close()
    await index.close()
    await bus.close()


async def created(bus) -> list:
    return [m for m in await monitors_on_bus(bus) if m.id != "hb_1"]


async def test_a_slug_url_pings_the_projects_heartbeat_with_that_slug(ingest):
    bus, client, _index = ingest
    for suffix in ("", "/start", "/fail", "/log", "/0", "/3", "/run", "/complete"):
        r = await client.post(f"/ping/{KEY}/backup-db{suffix}", data=b"out")
        assert (r.status, await r.text()) == (200, "OK"), suffix
    pings = await pings_on_bus(bus)
    assert {p.monitor_id for p in pings} == {"hb_1"}
    assert [p.kind for p in pings] == [
        "success",
        "start",
        "fail",
        "log",
        "success",
        "fail",
        "start",
        "success",
    ]


@pytest.mark.parametrize(
    "path, status, text",
    [
        ("/ping/{key}/unknown-slug", 404, "not found"),
        ("/ping/" + "r" * 22 + "/backup-db", 404, "not found"),
        ("/ping/{key}/Backup-DB", 400, "invalid url format"),
        ("/ping/{key}/backup.db", 404, "not found"),
        ("/ping/{key}/backup-db/256", 400, "invalid url format"),
        ("/ping/{key}/backup-db/nope", 404, "not found"),
    ],
)
async def test_slug_urls_answer_refusals_in_healthchecks_words(ingest, path, status, text):
    bus, client, _index = ingest
    r = await client.get(path.format(key=KEY))
    assert (r.status, await r.text()) == (status, text)
    assert await pings_on_bus(bus) == [] and await created(bus) == []


async def test_create_1_makes_the_heartbeat_with_the_api_defaults_and_all_the_projects_channels(ingest):
    bus, client, _index = ingest
    await add_channel(bus, "ch_a")
    await add_channel(bus, "ch_gone")
    await add_channel(bus, "ch_gone", deleted=True, updated_ms=1)
    await add_channel(bus, "ch_other", project_id="another")
    r = await client.post(f"/ping/{KEY}/backup-web1?create=1", data=b"first run")
    assert (r.status, await r.text()) == (201, "Created")
    [monitor] = await created(bus)
    assert monitor.id == slug_monitor_id("p", "backup-web1")
    assert (monitor.project_id, monitor.name, monitor.slug) == ("p", "backup-web1", "backup-web1")
    assert (monitor.interval_s, monitor.grace_s, monitor.channels) == (86400, 3600, ["ch_a"])
    [ping] = await pings_on_bus(bus)
    assert (ping.monitor_id, ping.output) == (monitor.id, "first run")
    r = await client.post(f"/ping/{KEY}/backup-web1/fail?create=1")
    assert (r.status, await r.text()) == (200, "OK")  # found, not created again
    assert len(await created(bus)) == 1


async def test_the_defaults_are_the_apis():
    from services.query import validation

    assert (provision.DEFAULT_INTERVAL_S, provision.DEFAULT_GRACE_S) == (
        validation.DEFAULT_INTERVAL_S,
        validation.DEFAULT_GRACE_S,
    )


async def test_fifty_first_pings_at_once_create_the_heartbeat_once_and_later_pings_land_on_it(ingest):
    bus, client, _index = ingest
    responses = await asyncio.gather(
        *(client.get(f"/ping/{KEY}/backup-host-0/start?create=1") for n in range(50))
    )
    assert sorted(r.status for r in responses) == [200] * 49 + [201]
    [monitor] = await created(bus)
    assert (await client.get(f"/ping/{KEY}/backup-host-0?create=1")).status == 200
    assert (await client.get(f"/ping/{KEY}/backup-host-0")).status == 200
    pings = await pings_on_bus(bus)
    assert len(pings) == 52 and {p.monitor_id for p in pings} == {monitor.id}


async def test_fifty_clients_on_real_connections_create_once(tmp_path):
    served = await serve(tmp_path)
    await add_project(served.bus, "p", ping_key=KEY)
    url = f"http://127.0.0.1:{served.port}/ping/{KEY}/backup-rack7?create=1"

    async def one_client():
        async with aiohttp.ClientSession() as session, session.post(url, data=b"done") as r:
            return r.status

    statuses = await asyncio.gather(*(one_client() for _ in range(50)))
    assert sorted(statuses) == [200] * 49 + [201]
    assert len(await monitors_on_bus(served.bus)) == 1
    assert {p.monitor_id for p in await pings_on_bus(served.bus)} == {slug_monitor_id("p", "backup-rack7")}
    await served.close()


async def test_two_ingest_instances_racing_write_the_same_heartbeat_id(tmp_path):
    bus, index, first = await start(tmp_path)
    other_index = TokenIndex(bus, TOPICS, wait_s=0.5)
    await other_index.start()
    second = TestClient(TestServer(ingest_app(Settings(), bus, TOPICS, other_index)))
    await second.start_server()
    await add_project(bus, "p", ping_key=KEY)
    answers = await asyncio.gather(
        first.get(f"/ping/{KEY}/db?create=1"), second.get(f"/ping/{KEY}/db?create=1")
    )
    assert {r.status for r in answers} <= {200, 201}
    monitors = await monitors_on_bus(bus)
    assert {m.id for m in monitors} == {slug_monitor_id("p", "db")}  # one key: compaction keeps one record
    for client in (first, second):
        await client.close()
    for view in (index, other_index):
        await view.close()
    await bus.close()


async def test_creation_is_rate_limited_per_project_with_retry_after(tmp_path):
    bus, index, client = await start(tmp_path, auto_create_per_minute=3)
    await add_project(bus, "p", ping_key=KEY)
    await add_project(bus, "q", ping_key="q" * 22)
    for n in range(3):
        assert (await client.get(f"/ping/{KEY}/host-{n}?create=1")).status == 201
    r = await client.get(f"/ping/{KEY}/host-3?create=1")
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    assert (await client.get(f"/ping/{KEY}/host-0?create=1")).status == 200  # existing ones still ping
    assert (
        await client.get(f"/ping/{'q' * 22}/host-3?create=1")
    ).status == 201  # another project's own budget
    assert len(await monitors_on_bus(bus)) == 4
    await client.close()
    await index.close()
    await bus.close()


def test_the_rate_refills_one_creation_every_sixty_seconds_over_the_limit():
    now = [0.0]
    limit = PerMinute(2, clock=lambda: now[0])
    assert (limit.take("p"), limit.take("p")) == (0.0, 0.0)
    assert limit.take("p") == pytest.approx(30.0)
    now[0] = 29.0
    assert limit.take("p") == pytest.approx(1.0)
    now[0] = 30.0
    assert limit.take("p") == 0.0


@pytest.mark.parametrize(
    "project, settings", [({"auto_create": False}, {}), ({}, {"auto_create_per_minute": 0})]
)
async def test_a_project_or_an_operator_can_turn_creation_off(tmp_path, project, settings):
    bus, index, client = await start(tmp_path, **settings)
    await add_project(bus, "p", ping_key=KEY, **project)
    r = await client.get(f"/ping/{KEY}/backup-web1?create=1")
    assert (r.status, await r.text()) == (404, "not found")
    assert await monitors_on_bus(bus) == [] and await pings_on_bus(bus) == []
    await client.close()
    await index.close()
    await bus.close()


async def test_a_rotated_ping_key_is_unknown(ingest):
    bus, client, index = ingest
    new_key = new_ping_key()
    await add_project(bus, "p", ping_key=new_key)
    await index.projects.resolve(new_key)
    assert (await client.get(f"/ping/{KEY}/backup-db")).status == 404
    assert (await client.get(f"/ping/{new_key}/backup-db")).status == 200


async def test_a_deleted_created_heartbeat_is_created_again_under_its_id_at_a_newer_revision(ingest):
    bus, client, index = ingest
    assert (await client.get(f"/ping/{KEY}/web?create=1")).status == 201
    [monitor] = await created(bus)
    await add_monitor(bus, monitor.token, revision=2, deleted=True, monitor_id=monitor.id, slug="web")
    await index.sync()
    assert (await client.get(f"/ping/{KEY}/web")).status == 404
    assert (await client.get(f"/ping/{KEY}/web?create=1")).status == 201
    again = (await created(bus))[-1]
    assert (again.id, again.revision, again.deleted) == (monitor.id, 3, False)


async def test_a_slug_renamed_away_keeps_its_id_and_the_slug_gets_another(ingest):
    bus, client, index = ingest
    assert (await client.get(f"/ping/{KEY}/web?create=1")).status == 201
    [monitor] = await created(bus)
    await add_monitor(bus, monitor.token, revision=2, monitor_id=monitor.id, slug="web-old")
    await index.sync()
    assert (await client.get(f"/ping/{KEY}/web?create=1")).status == 201
    new = (await created(bus))[-1]
    assert new.id == slug_monitor_id("p", "web", 1) != monitor.id
    assert (await client.get(f"/ping/{KEY}/web-old")).status == 200


async def test_two_heartbeats_with_one_slug_are_ambiguous(ingest):
    bus, client, index = ingest
    await add_monitor(bus, new_token(), monitor_id="hb_2", slug="backup-db")
    await index.sync()
    r = await client.get(f"/ping/{KEY}/backup-db")
    assert (r.status, await r.text()) == (409, "ambiguous slug")


async def test_cronitors_telemetry_url_creates_like_cronitor_does(ingest):
    bus, client, _index = ingest
    r = await client.get(f"/p/{KEY}/nightly-job?state=run&series=abc")
    assert r.status == 201
    r = await client.get(f"/p/{KEY}/nightly-job?state=complete&series=abc&metric=duration:3")
    assert (r.status, await r.text()) == (200, "OK")
    run, complete = await pings_on_bus(bus)
    assert run.monitor_id == complete.monitor_id == slug_monitor_id("p", "nightly-job")
    assert (run.kind, run.rid, complete.kind, complete.duration_s) == ("start", "abc", "success", 3.0)
    assert (await client.get(f"/p/{'x' * 22}/nightly-job?state=run")).status == 404


async def test_creation_stops_at_the_projects_heartbeat_cap_with_a_reason_and_a_deleted_one_makes_room(
    tmp_path,
):
    # A leaked ping key could otherwise create 144,000 heartbeats a day, each on every channel.
    bus, index, client = await start(tmp_path, auto_create_max=3)
    await add_project(bus, "p", ping_key=KEY)
    await add_project(bus, "q", ping_key="q" * 22)
    await add_monitor(bus, new_token(), monitor_id="hb_api", slug="made-by-the-api")  # every heartbeat counts
    for n in range(2):
        assert (await client.get(f"/ping/{KEY}/host-{n}?create=1")).status == 201
    r = await client.get(f"/ping/{KEY}/host-2?create=1")
    assert (r.status, await r.text()) == (403, CAP_REASON.format(3))
    assert "Retry-After" not in r.headers  # retrying will not help: someone must make room
    r = await client.post(f"/p/{KEY}/host-2?state=run")  # Cronitor's URL creates too: the same cap
    assert (r.status, await r.text()) == (403, CAP_REASON.format(3))
    assert (await client.get(f"/ping/{KEY}/host-0?create=1")).status == 200  # existing ones still ping
    assert (await client.get(f"/ping/{'q' * 22}/host-2?create=1")).status == 201  # another project's own cap
    assert len(await pings_on_bus(bus)) == 4
    await add_monitor(bus, new_token(), monitor_id="hb_api", slug="made-by-the-api", revision=2, deleted=True)
    await index.sync()
    assert (await client.get(f"/ping/{KEY}/host-2?create=1")).status == 201
    assert index.heartbeats_in("p") == 3
    await client.close()
    await index.close()
    await bus.close()


async def test_creations_under_way_together_do_not_pass_the_cap(tmp_path):
    bus, index, client = await start(tmp_path, auto_create_max=3)
    await add_project(bus, "p", ping_key=KEY)
    answers = await asyncio.gather(*(client.get(f"/ping/{KEY}/host-{n}?create=1") for n in range(8)))
    assert sorted(r.status for r in answers) == [201] * 3 + [403] * 5
    assert len(await monitors_on_bus(bus)) == 3 and index.heartbeats_in("p") == 3
    await client.close()
    await index.close()
    await bus.close()


async def test_a_cap_of_zero_turns_creation_off(tmp_path):
    bus, index, client = await start(tmp_path, auto_create_max=0)
    await add_project(bus, "p", ping_key=KEY)
    r = await client.get(f"/ping/{KEY}/backup-web1?create=1")
    assert (r.status, await r.text()) == (404, "not found")
    await client.close()
    await index.close()
    await bus.close()


CAP_REASON = (
    "no more heartbeats created by pings: the project has {0}, the limit is {0} "
    "(PINGURA_AUTO_CREATE_MAX); create this one with the API or delete some"
)
