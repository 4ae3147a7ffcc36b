"""Ping bodies as they really arrive: in pieces, cut short, chunked, compressed."""

import asyncio
import gzip
import json

import pytest

from shared.ids import new_token
from shared.settings import Settings
from tests.services.ingest.support import (
    add_monitor,
    exchange,
    ping_count,
    pings_on_bus,
    read_response,
    request,
    serve,
    status_of,
)

BODY_TIMEOUT_S = 0.5


@pytest.fixture
async def served(tmp_path):
    served = await serve(tmp_path, Settings(ping_body_timeout_s=BODY_TIMEOUT_S))
    token = new_token()
    await add_monitor(served.bus, token)
    await served.index.sync()
    yield served, f"/api/heartbeat/{token}"
    await served.close()


async def test_a_body_sent_in_many_small_pieces_is_stored_whole(served):
    served, path = served
    message = "".join(f"line {i}: all good\n" for i in range(600))[:10_000]
    raw = request(
        "POST", path, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()
    )
    pieces = [raw[i : i + 100] for i in range(0, len(raw), 100)]  # ~0.2 s of pauses, within the timeout
    assert len(raw) > 10_000
    assert status_of(await exchange(served.port, *pieces, pause_s=0.002)) == 200
    [ping] = await pings_on_bus(served.bus)
    assert ping.message == message


async def test_a_chunked_body_is_stored_whole(served):
    served, path = served
    head = request("POST", path, {"Transfer-Encoding": "chunked", "Content-Type": "text/plain"}, length=False)
    parts = (b"backup ", b"done: ", b"3 files")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
    assert status_of(await exchange(served.port, head, chunks, pause_s=0.01)) == 200
    [ping] = await pings_on_bus(served.bus)
    assert ping.message == "backup done: 3 files"


async def test_a_body_cut_short_by_the_client_is_not_recorded(served):
    served, path = served
    head = request("POST", path, {"Content-Length": "1000", "Content-Type": "text/plain"}, length=False)
    await exchange(served.port, head, b"0123456789", end=True)
    await exchange(served.port, request("GET", "/healthz"))  # the server has moved on
    assert ping_count(served.bus) == 0


async def test_an_unterminated_chunked_body_is_not_recorded(served):
    served, path = served
    head = request("POST", path, {"Transfer-Encoding": "chunked", "Content-Type": "text/plain"}, length=False)
    await exchange(served.port, head, b"5\r\nhello\r\n", end=True)
    await exchange(served.port, request("GET", "/healthz"))
    assert ping_count(served.bus) == 0


@pytest.mark.parametrize(
    "framing, rest",
    [({"Content-Length": "1000"}, b"0123456789"), ({"Transfer-Encoding": "chunked"}, b"5\r\nhello\r\n")],
)
async def test_a_body_that_stops_arriving_gets_408_and_is_not_recorded(served, framing, rest):
    served, path = served
    head = request("POST", path, {"Content-Type": "text/plain", **framing}, length=False)
    response = await exchange(served.port, head, rest, timeout_s=BODY_TIMEOUT_S + 2)
    assert status_of(response) == 408 and b"did not arrive" in response
    assert ping_count(served.bus) == 0


async def test_a_body_over_the_hard_limit_is_413_even_when_chunked(served):
    served, path = served
    head = request("POST", path, {"Transfer-Encoding": "chunked", "Content-Type": "text/plain"}, length=False)
    pieces = Settings().max_body_bytes // 65536 + 1
    chunks = b"".join(b"10000\r\n" + b"x" * 65536 + b"\r\n" for _ in range(pieces)) + b"0\r\n\r\n"
    assert status_of(await exchange(served.port, head, chunks)) == 413
    assert ping_count(served.bus) == 0


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("gzip", gzip.compress(b"backup done", mtime=0)),  # honest, but not accepted: see refuse_undecodable
        ("gzip", b"backup done"),  # lying
        ("deflate", b"backup done"),
        ("x-unknown", b"backup done"),
        ("gzip, gzip", gzip.compress(gzip.compress(b"backup done", mtime=0), mtime=0)),
    ],
)
async def test_a_compressed_body_is_refused_with_a_reason(served, encoding, body):
    served, path = served
    response = await exchange(
        served.port, request("POST", path, {"Content-Encoding": encoding, "Content-Type": "text/plain"}, body)
    )
    assert status_of(response) == 415 and b"send the body uncompressed" in response
    assert ping_count(served.bus) == 0


async def test_an_identity_content_encoding_is_no_encoding(served):
    served, path = served
    response = await exchange(
        served.port,
        request("POST", path, {"Content-Encoding": "identity", "Content-Type": "text/plain"}, b"done"),
    )
    assert status_of(response) == 200


async def test_a_zip_bomb_is_refused_and_its_connection_closed_rather_than_inflated(served):
    served, path = served
    bomb = gzip.compress(b"\0" * 200_000_000)  # 200 MB of zeros in about 200 KB
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request("POST", path, {"Content-Encoding": "gzip"}, bomb)[:65536])
    assert status_of(await asyncio.wait_for(read_response(reader, head=False), 2)) == 415
    # aiohttp would read (and inflate) the rest for up to 10 s after answering
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert ping_count(served.bus) == 0


async def test_an_encoding_aiohttp_cannot_even_start_is_refused_one_way_or_the_other(served):
    served, path = served
    response = await exchange(served.port, request("POST", path, {"Content-Encoding": "br"}, b"backup done"))
    assert status_of(response) in (400, 415)  # 400 from aiohttp itself when Brotli is not installed
    assert ping_count(served.bus) == 0


@pytest.mark.parametrize("coding", ["gzip, chunked", "identity", "chunked, chunked"])
async def test_a_transfer_encoding_other_than_chunked_is_400(served, coding):
    served, path = served
    head = request("POST", path, {"Transfer-Encoding": coding, "Content-Type": "text/plain"}, length=False)
    response = await exchange(served.port, head, b"5\r\nhello\r\n0\r\n\r\n")
    assert status_of(response) == 400
    assert ping_count(served.bus) == 0


async def test_a_header_that_is_not_utf_8_is_stored_as_valid_text(served):
    served, path = served
    response = await exchange(served.port, request("POST", path, {"User-Agent": b"caf\xe9-cron"}))
    assert status_of(response) == 200
    [ping] = await pings_on_bus(served.bus)
    assert ping.user_agent == "caf\ufffd-cron"
