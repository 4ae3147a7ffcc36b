"""The ingest app over real HTTP, on the real embedded bus."""

import base64
from urllib.parse import quote

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ingest.app import ingest_app
from shared.ids import new_token
from shared.settings import Settings
from tests.services.ingest.support import SECRET, TOKEN, TOPICS, add_monitor, open_bus, pings_on_bus


async def start(tmp_path, max_pending=50_000):
    bus, index = await open_bus(tmp_path, max_pending)
    client = TestClient(TestServer(ingest_app(Settings(), bus, TOPICS, index)))
    await client.start_server()
    return bus, index, client


@pytest.fixture
async def ingest(tmp_path):
    bus, index, client = await start(tmp_path)
    yield bus, client, index
    await client.close()
    await index.close()
    await bus.close()


async def test_a_ping_is_on_the_bus_when_it_is_answered(ingest):
    bus, client, _index = ingest
    token = new_token()
    await add_monitor(bus, token)  # created a moment ago: the index syncs before a 404
    r = await client.post(f"/api/heartbeat/{token}/7?message=hi", headers={"User-Agent": "cron"})
    assert r.status == 200 and await r.text() == "OK\n"
    [ping] = await pings_on_bus(bus)
    assert (ping.monitor_id, ping.kind, ping.exit_code, ping.message, ping.user_agent) == (
        "hb_1",
        "fail",
        7,
        "hi",
        "cron",
    )
    assert ping.source_ip == "127.0.0.1"


async def test_head_and_get_count_as_pings(ingest):
    bus, client, _index = ingest
    token = new_token()
    await add_monitor(bus, token)
    assert (await client.head(f"/api/heartbeat/{token}")).status == 200
    assert (await client.get(f"/api/heartbeat/{token}")).status == 200
    assert [p.method for p in await pings_on_bus(bus)] == ["HEAD", "GET"]


async def test_a_rotated_or_deleted_token_is_unknown(ingest):
    bus, client, index = ingest
    old, new = new_token(), new_token()
    await add_monitor(bus, old)
    await add_monitor(bus, new, revision=2)
    await index.sync()  # rotation takes effect once ingest's view has read it (milliseconds)
    assert (await client.post(f"/api/heartbeat/{old}")).status == 404
    assert (await client.post(f"/api/heartbeat/{new}")).status == 200
    await add_monitor(bus, new, revision=3, deleted=True)
    await index.sync()
    assert (await client.post(f"/api/heartbeat/{new}")).status == 404


async def test_it_answers_503_with_retry_after_when_the_bus_cannot_take_the_ping(tmp_path):
    bus, index, client = await start(tmp_path)
    token = new_token()
    await add_monitor(bus, token)
    await index.resolve(token)
    bus._max_pending = 0  # the disk queue is full
    r = await client.post(f"/api/heartbeat/{token}")
    assert r.status == 503 and r.headers["Retry-After"] == "5"
    assert "retry later" in await r.text()
    bus._max_pending = 50_000
    assert await pings_on_bus(bus) == []  # nothing half-written
    await client.close()
    await index.close()
    await bus.close()


async def test_an_oversized_body_is_413_even_without_content_length(ingest):
    bus, client, _index = ingest
    token = new_token()
    await add_monitor(bus, token)

    async def chunks():
        for _ in range(Settings().max_body_bytes // 65536 + 1):
            yield b"x" * 65536

    r = await client.post(f"/api/heartbeat/{token}", data=chunks(), headers={"Content-Type": "text/plain"})
    assert r.status == 413
    assert msgspec.json.encode(await pings_on_bus(bus)) == b"[]"


async def test_a_token_spelled_any_other_way_is_unknown(ingest):
    bus, client, _index = ingest
    await add_monitor(bus, TOKEN)
    assert (await client.post(f"/api/heartbeat/{TOKEN}")).status == 200
    standard = base64.b64encode(SECRET).decode()  # '+' and '/' for '-' and '_'
    for spelling in (quote(standard, safe=""), TOKEN + "=", TOKEN.replace("-", "+")):
        r = await client.post(f"/api/heartbeat/{spelling}")
        assert r.status == 404, spelling
    assert len(await pings_on_bus(bus)) == 1
