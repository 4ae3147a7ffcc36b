"""``pingura serve`` against clients that misbehave on purpose, in both layouts (one process,
and ``PINGURA_INGEST_PROCESS=1``): trickled and cut bodies on the routes that are not pings,
odd request lines and paths. Each gets a clear 4xx (or, for load, a 503 with
``Retry-After``) with a one-line reason, one info line in the log, never a traceback."""

from __future__ import annotations

import asyncio
import gzip
import time

import aiohttp
import pytest

from tests.e2e.conftest import API_KEY, Server, eventually

BODY_TIMEOUT_S = 1.0
MAX_BODY_READS = 4


@pytest.fixture(scope="module", params=["one process", "ingest process"])
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    env = {"PINGURA_PING_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S), "PINGURA_MAX_BODY_READS": str(MAX_BODY_READS)}
    if request.param == "ingest process":
        env["PINGURA_INGEST_PROCESS"] = "1"
    srv = Server(tmp / "data", tmp / "serve.log", env=env)
    srv.start()
    yield srv
    srv.stop()


class Log:
    """What the server logged from now on."""

    def __init__(self, server: Server):
        self.server = server
        self.start = len(server.logs())

    def since(self) -> str:
        return self.server.logs()[self.start :]


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text and "Error handling request" not in text, text[-3000:]


def head(
    method: str,
    path: str,
    length: int,
    content_type: str = "application/x-www-form-urlencoded",
    extra: str = "",
) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n{extra}\r\n"
    ).encode()


async def read_all(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    """Everything until the server closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout_s)


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


async def trickle(port: int, path: str, every_s: float = 0.2) -> tuple[bytes, float]:
    """A body promised 1,000 bytes long, sent a byte at a time; the answer and when it came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    began = time.monotonic()

    async def drip():
        writer.write(head("POST", path, 1000))
        for _ in range(1000):
            writer.write(b"k")
            await asyncio.sleep(every_s)  # a deliberately slow client: this is what the server must cut off

    dripping = asyncio.create_task(drip())
    try:
        # Stop sending once the answer begins, as a client does: bytes sent to a socket the
        # server has closed are answered with a reset, which asyncio's reader raises ahead of
        # the answer it holds (the server lingers a moment after a refusal for the same reason).
        first = await asyncio.wait_for(reader.read(1), BODY_TIMEOUT_S + 5)
        dripping.cancel()
        response = first + await read_all(reader, 5)
        return response, time.monotonic() - began
    finally:
        dripping.cancel()
        writer.close()


@pytest.mark.parametrize("path", ["/login", "/logout", "/api/v1/heartbeats"])
async def test_a_trickled_body_gets_408_within_the_deadline_and_the_connection_closes(server, path):
    log = Log(server)
    response, took_s = await trickle(server.port, path)
    assert status(response) == 408, response
    assert took_s < BODY_TIMEOUT_S + 0.8  # and read_all returned: the server closed the connection
    assert f"within {BODY_TIMEOUT_S:g}s".encode() in body(response) and body(response).count(b"\n") <= 1
    await eventually(lambda: "http.body.refused" in log.since())
    assert_no_traceback(log.since())
    assert log.since().count("http.body.refused") == 1


async def test_twenty_trickled_sign_ins_are_all_answered_promptly_and_a_prompt_one_still_signs_in(server):
    log = Log(server)
    tricklers = [asyncio.create_task(trickle(server.port, "/login")) for _ in range(20)]
    # All of them in: as many bodies being read as are allowed, the rest turned away busy.
    await eventually(lambda: log.since().count("status=503") >= 20 - MAX_BODY_READS)
    # The body comes with the head: never turned away.
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/login", data={"key": API_KEY}, allow_redirects=False) as r,
    ):
        assert r.status == 303 and "pingura_session=" in r.headers["Set-Cookie"]
    answers = await asyncio.gather(*tricklers)
    statuses = sorted(status(response) for response, _ in answers)
    assert statuses == [408] * MAX_BODY_READS + [503] * (20 - MAX_BODY_READS)
    assert all(took_s < BODY_TIMEOUT_S + 1 for _, took_s in answers)
    busy = next(response for response, _ in answers if status(response) == 503)
    assert b"Retry-After: 1\r\n" in busy and body(busy).startswith(b"busy: ")
    assert_no_traceback(log.since())


@pytest.mark.parametrize("path", ["/login", "/logout", "/api/v1/heartbeats", "/api/v1/projects"])
async def test_a_body_cut_short_is_one_info_line_never_a_traceback(server, path):
    log = Log(server)
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head("POST", path, 1000) + b"key=pk_")
    await writer.drain()
    await asyncio.sleep(
        0.1
    )  # the client lingers a moment (the server begins reading the body) before it goes
    writer.close()  # half a body, then gone
    await eventually(lambda: "ended early" in log.since())
    assert_no_traceback(log.since())
    lines = [line for line in log.since().splitlines() if "http.body.refused" in line]
    assert len(lines) == 1 and "[info" in lines[0] and "ended early" in lines[0], lines


FORMS = {
    "bytes that are not UTF-8": ("application/x-www-form-urlencoded", b"key=\xff\xfe"),
    "an unknown charset": ("application/x-www-form-urlencoded; charset=bogus", b"key=a"),
    "multipart without its boundary": ("multipart/form-data; boundary=zz", b"hello"),
}


@pytest.mark.parametrize(("content_type", "data"), FORMS.values(), ids=FORMS.keys())
async def test_a_sign_in_form_that_cannot_be_read_is_a_one_line_400(server, content_type, data):
    log = Log(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head("POST", "/login", len(data), content_type) + data)
    response = await read_all(reader, 5)
    writer.close()
    assert status(response) == 400 and body(response).startswith(b"the form cannot be read"), response
    assert_no_traceback(log.since())


@pytest.mark.parametrize("path", ["/login", "/api/v1/heartbeats"])
async def test_a_body_whose_coding_is_garbled_is_400_not_500(server, path):
    log = Log(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head("POST", path, 5, "application/json", "Content-Encoding: gzip\r\n") + b"hello")
    response = await read_all(reader, 5)
    writer.close()
    assert status(response) == 400, response
    assert_no_traceback(log.since())


async def test_a_sign_in_form_from_an_origin_that_is_no_url_is_refused_not_a_500(server):
    log = Log(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head("POST", "/login", 5, extra="Origin: http://[::1\r\n") + b"key=a")
    response = await read_all(reader, 5)
    writer.close()
    assert status(response) == 403, response
    assert_no_traceback(log.since())


@pytest.mark.parametrize("path", ["/login", "/api/v1/heartbeats"])
async def test_a_body_that_inflates_past_the_api_limit_is_413_naming_that_limit(server, path):
    bomb = gzip.compress(b'{"name": "' + b"0" * 10_000_000, 9)  # 10 MB in about 10 KB
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Authorization": f"Bearer {API_KEY}",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}{path}", data=bomb, headers=headers) as r,
    ):
        assert r.status == 413 and "larger than 65536 bytes" in await r.text()


async def test_a_gzipped_api_body_is_read_once_decoded(server):
    data = gzip.compress(b'{"name": "zipped", "interval": 60, "grace": 60}')
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http,
        http.post(
            f"{server.url}/api/v1/heartbeats",
            data=data,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        ) as r,
    ):
        assert r.status == 201, await r.text()


ODD = [
    b"GET /static/app.js%00.html",
    b"GET /static/%2e%2e/%2e%2e/pyproject.toml",
    b"GET /static/..%2f..%2fREADME.md",
    b"GET /static/" + b"a" * 5000 + b".js",
    b"GET /static/" + b"a/" * 2000 + b"x.js",
    b"GET /static/%ff%fe.js",
    b"GET /heartbeats/%ff%00",
    b"GET /api/v1/heartbeats/a%00b",
    b"GET /api/v1/heartbeats/%ff%fe",
    b"DELETE /api/v1/heartbeats/%c0%ae%c0%ae",
    b"GET /ping/%ff%00",
    b"GET /api/heartbeat/%00/fail",
    b"GET /" + b"%ff" * 2000,
    b"GET /%2e%2e/%2e%2e/etc/passwd",
    b"OPTIONS *",
    b"CONNECT evil.example:443",
    b"GET /api/v1/heartbeats?q=%ff%00&sort=%00&limit=%ff",
]
SERVED_ANYWAY = [  # odd, but they name something that exists: anything but a server error
    b"GET http://evil.example/api/v1/heartbeats?q=%00",
    b"GET /api/v1/heartbeats#%00",
    b"GET /channels?%00=%ff",
    b"GET /api/v1/heartbeats?q=%ff%fe",
]


async def answer(server, line: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        line
        + f" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n".encode()
        + b"Connection: close\r\n\r\n"
    )
    response = await read_all(reader, 5)
    writer.close()
    return response


@pytest.mark.parametrize("line", ODD, ids=[o[:40].decode() for o in ODD])
async def test_an_odd_path_is_a_4xx_never_a_server_error(server, line):
    log = Log(server)
    response = await answer(server, line)
    assert 400 <= status(response) < 500, response[:300]
    assert_no_traceback(log.since())


@pytest.mark.parametrize("line", SERVED_ANYWAY, ids=[o[:40].decode() for o in SERVED_ANYWAY])
async def test_an_odd_url_to_something_that_exists_is_never_a_server_error(server, line):
    log = Log(server)
    response = await answer(server, line)
    assert status(response) < 500, response[:300]
    assert_no_traceback(log.since())


@pytest.mark.parametrize(
    "line",
    [
        b"GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n",
        b"GET /healthz\r\n\r\n",
        b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"POST /login HTTP/2.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nkey=a",
    ],
)
async def test_a_request_line_that_is_not_http_1_is_refused_with_a_one_line_400(server, line):
    log = Log(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(line)
    response = await read_all(reader, 5)
    writer.close()
    assert status(response) == 400 and b"send HTTP/1.1" in body(response) and body(response).count(b"\n") == 1
    assert_no_traceback(log.since())


async def test_huge_or_malformed_heads_are_one_line_400s_never_a_traceback(server):
    log = Log(server)
    for data in [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(500)) + b"\r\n",
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nkey",
        b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nkey\r\n0\r\n\r\n",
        b"POST /api/v1/heartbeats HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\na",
    ]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(data)
        response = await read_all(reader, 5)
        writer.close()
        assert status(response) == 400 and body(response).count(b"\n") == 1, response[:300]
    await eventually(lambda: log.since().count("http.request.malformed") >= 5)
    assert_no_traceback(log.since())
    assert log.since().count("http.request.malformed") == 5
