"""What the HTTP server does about clients before any handler sees them: heads that arrive
too slowly are cut off (slowloris), request lines that are not HTTP/1 and malformed requests
get a one-line 400 and one info line, never a traceback."""

import asyncio
import gc
import signal

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from services.ingest.server import GuardedAppRunner
from services.runtime import run
from shared.ids import new_token
from shared.settings import Settings
from tests.services.ingest.support import (
    add_monitor,
    exchange,
    ping_count,
    read_response,
    request,
    serve,
    status_of,
)

HEAD_TIMEOUT_S = 0.5


@pytest.fixture
async def served(tmp_path):
    served = await serve(tmp_path, Settings(header_timeout_s=HEAD_TIMEOUT_S, ping_body_timeout_s=5))
    token = new_token()
    await add_monitor(served.bus, token)
    await served.index.sync()
    yield served, f"/api/heartbeat/{token}"
    await served.close()


async def closed_after(reader: asyncio.StreamReader, within_s: float) -> float:
    """Seconds until the server closed the connection (reading whatever it sent first)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.wait_for(reader.read(), within_s)
    return loop.time() - start


async def test_it_closes_a_connection_that_sends_half_a_request_line_while_serving_others(served):
    served, path = served
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"POST /api/heartbeat/")
    await asyncio.sleep(HEAD_TIMEOUT_S / 2)  # half its head timeout passes with the head unfinished
    assert (
        status_of(await exchange(served.port, request("POST", path))) == 200
    )  # another connection is served
    assert await closed_after(reader, HEAD_TIMEOUT_S + 1) <= HEAD_TIMEOUT_S
    writer.close()


async def test_it_closes_a_connection_that_opens_and_sends_nothing(served):
    served, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    assert await closed_after(reader, HEAD_TIMEOUT_S + 1) <= HEAD_TIMEOUT_S + 0.2
    writer.close()


async def test_a_head_dribbled_byte_by_byte_is_cut_off_by_the_deadline_not_renewed_by_each_byte(served):
    served, path = served
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)

    async def dribble():
        for byte in request("POST", path):  # about 5 s at this pace
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)  # the slow client under test

    task = asyncio.create_task(dribble())
    assert await closed_after(reader, HEAD_TIMEOUT_S + 1) <= HEAD_TIMEOUT_S + 0.2
    task.cancel()
    writer.close()


async def test_on_a_kept_alive_connection_the_next_head_has_the_same_deadline(served):
    served, path = served
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("POST", path).replace(b"Connection: close", b"Connection: keep-alive"))
    assert status_of(await read_response(reader, head=False)) == 200
    await asyncio.sleep(HEAD_TIMEOUT_S * 2)  # idle between requests: keep-alive's business, not closed
    writer.write(b"POST /api/heartbeat/")
    assert await closed_after(reader, HEAD_TIMEOUT_S + 1) <= HEAD_TIMEOUT_S + 0.2
    writer.close()


async def test_a_slow_body_after_a_prompt_head_is_not_cut_off_by_the_head_deadline(served):
    served, path = served
    body = b"backup done"
    head = request("POST", path, {"Content-Type": "text/plain"}, body)[: -len(body)]
    pieces = [head] + [body[i : i + 1] for i in range(len(body))]
    response = await exchange(served.port, *pieces, pause_s=HEAD_TIMEOUT_S * 2 / len(body))
    assert status_of(response) == 200


async def test_pingura_serve_applies_the_header_timeout_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {"PINGURA_HEADER_TIMEOUT_S": "0.4", "PINGURA_DATA_DIR": str(tmp_path), "PINGURA_PORT": "0"}
    )
    assert settings.header_timeout_s == 0.4
    probes: list[asyncio.Task[float]] = []

    async def ready(port: int) -> None:
        async def probe() -> float:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x")
            try:
                return await closed_after(reader, 2)
            finally:
                writer.close()
                signal.raise_signal(signal.SIGTERM)  # run() stops on it, as under systemd

        probes.append(asyncio.get_running_loop().create_task(probe()))

    try:
        await asyncio.wait_for(run(settings, ("ingest",), ready), 10)
    finally:
        gc.unfreeze()  # run() froze everything alive for its own process's sake
    assert await probes[0] <= 0.4 + 0.2


@pytest.mark.parametrize("method, path", [("POST", "ping"), ("PUT", "ping"), ("GET", "/nowhere")])
async def test_an_expect_header_that_is_not_text_is_ignored_rather_than_a_500(served, method, path):
    served, ping_path = served
    target = ping_path if path == "ping" else path
    response = await exchange(served.port, request(method, target, {"Expect": b"\xff-continue"}))
    assert status_of(response) == {"POST": 200, "PUT": 405, "GET": 404}[method]


async def test_expect_100_continue_still_works(served):
    served, path = served
    response = await exchange(served.port, request("POST", path, {"Expect": "100-continue"}, b""))
    assert response.startswith(b"HTTP/1.1 100 Continue") and status_of(response) == 200


@pytest.mark.parametrize(
    "head",
    [
        b"POST {path} HTTP/0.9\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"POST {path}\r\n\r\n",
        b"POST {path} HTTP/2.0\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
)  # HTTP/2's preface
async def test_a_request_that_is_not_http_1_is_refused_with_a_one_line_400(served, head):
    served, path = served
    response = await exchange(served.port, head.replace(b"{path}", path.encode()))
    assert status_of(response) == 400
    body = response.partition(b"\r\n\r\n")[2]
    assert body.startswith(b"bad request: ") and body.count(b"\n") == 1 and b"send HTTP/1.1" in body, body
    assert ping_count(served.bus) == 0  # refused means not recorded


async def test_http_1_0_is_still_served(served):
    served, path = served
    assert status_of(await exchange(served.port, f"POST {path} HTTP/1.0\r\n\r\n".encode())) == 200


MALFORMED = {
    "a header longer than the limit": b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 20_000 + b"\r\n\r\n",
    "a request line longer than the limit": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "too many headers": b"GET /x HTTP/1.1\r\nHost: x\r\n" + b"X-A: a\r\n" * 500 + b"\r\n",
    "NUL in a header": b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "a Content-Length that is no number": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "two Content-Lengths": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
    "a chunk size that is no number": b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\na\r\n",
    "an unknown content coding": b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\na",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_request_gets_a_one_line_400_and_one_info_line_never_a_traceback(
    served, caplog, data
):
    served, _ = served
    with capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(data)
        response = await asyncio.wait_for(reader.read(), 5)  # the 400 closes the connection
        writer.close()
    assert status_of(response) == 400
    body = response.partition(b"\r\n\r\n")[2]
    assert body.startswith(b"bad request: ") and body.count(b"\n") == 1 and len(body) < 200, body
    assert [e["log_level"] for e in logs if e["event"] == "http.request.malformed"] == ["info"]
    assert not any(r.exc_info for r in caplog.records), [r.getMessage() for r in caplog.records]


async def test_a_body_that_fails_under_a_handler_is_a_400_not_a_500_with_a_traceback(caplog):
    async def reads(request: web.Request) -> web.Response:
        await request.read()  # no guard of its own: the server's answer is what remains
        return web.Response(text="read")

    app = web.Application()
    app.router.add_post("/reads", reads)
    runner = GuardedAppRunner(app, header_timeout_s=HEAD_TIMEOUT_S, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        with capture_logs() as logs:
            response = await exchange(
                runner.addresses[0][1], request("POST", "/reads", {"Content-Encoding": "gzip"}, b"not gzip")
            )
        assert status_of(response) == 400
        assert (
            response.partition(b"\r\n\r\n")[2]
            == b"bad request: the body ended early or is not framed as declared\n"
        )
        assert [e["event"] for e in logs] == ["http.request.malformed"]
        assert not any(r.exc_info for r in caplog.records)
    finally:
        await runner.cleanup()
