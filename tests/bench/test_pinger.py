"""The soak's lean HTTP client reads whole answers on one kept-alive connection, and turns
anything it cannot read into an error, never into a status."""

import asyncio

import pytest
from aiohttp import web

from bench.pinger import AnswerError, Pinger


@pytest.fixture
async def server():
    seen: list[tuple[str, str, int]] = []

    async def ping(request: web.Request) -> web.Response:
        seen.append((request.method, request.path_qs, id(request.transport)))
        return web.Response(text="OK")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="not found: " + "x" * 5000)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"part")
        return response

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/api/heartbeat/{token}", ping)
    app.router.add_post("/missing", missing)
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/hang", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1], seen
    await runner.cleanup()


async def test_it_posts_on_one_kept_alive_connection_and_reads_each_whole_answer(server):
    port, seen = server
    pinger = Pinger("127.0.0.1", port)
    statuses = [await pinger.post(f"/api/heartbeat/t{n}?msg=a%20b&status=ok") for n in range(3)]
    assert statuses == [200, 200, 200]
    assert await pinger.post("/missing") == 404  # its 5 kB body read whole: the next one lines up
    assert await pinger.post("/api/heartbeat/t9") == 200
    assert [(m, p) for m, p, _ in seen] == [
        ("POST", f"/api/heartbeat/t{n}?msg=a%20b&status=ok") for n in range(3)
    ] + [("POST", "/api/heartbeat/t9")]
    assert len({conn for *_, conn in seen}) == 1
    pinger.close()


async def test_an_answer_it_cannot_read_or_one_that_never_comes_is_an_error(server):
    port, _ = server
    pinger = Pinger("127.0.0.1", port, timeout_s=0.3)
    with pytest.raises(AnswerError, match="chunked"):
        await pinger.post("/chunked")
    with pytest.raises(AnswerError, match="TimeoutError"):
        await pinger.post("/hang")
    assert await pinger.post("/api/heartbeat/t1") == 200  # a new connection after each error
    pinger.close()


async def test_a_refused_connection_is_an_error():
    pinger = Pinger("127.0.0.1", 1, timeout_s=1)
    with pytest.raises(AnswerError):
        await pinger.post("/api/heartbeat/t")
