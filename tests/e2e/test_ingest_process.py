"""``pingura serve`` with ingest in a process of its own (``PINGURA_INGEST_PROCESS=1``): what
is particular to that layout. Every test of test_embedded.py runs against it as well."""

from __future__ import annotations

import os
import re
import signal

import aiohttp
import pytest

from tests.e2e.conftest import API_KEY, Server, eventually


@pytest.fixture
def split(tmp_path):
    srv = Server(
        tmp_path / "data",
        tmp_path / "serve.log",
        env={"PINGURA_INGEST_PROCESS": "1", "PINGURA_TRUSTED_PROXIES": "127.0.0.0/8"},
    )
    srv.start()
    yield srv
    srv.stop()


def worker_pids(server) -> list[int]:
    return [int(pid) for pid in re.findall(r"serve\.ingest_process\.started.*?pid=(\d+)", server.logs())]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


async def create_monitor(http, server) -> dict:
    async with http.post(
        f"{server.url}/api/v1/heartbeats", json={"name": "n", "interval": 60, "grace": 60}
    ) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def test_pings_are_answered_by_the_ingest_process_and_reach_the_api(split, http):
    [pid] = worker_pids(split)
    assert pid != split.proc.pid and alive(pid)
    monitor = await create_monitor(http, split)
    async with http.post(f"{split.url}/api/heartbeat/{monitor['token']}?message=first") as r:
        assert r.status == 200  # a heartbeat made a moment ago: the worker's index found it
    async with http.get(f"{split.url}/healthz") as r:
        assert (await r.json())["services"] == {
            "ingest": True,
            "query": True,
            "evaluator": True,
            "notifier": True,
        }

    async def seen():
        async with http.get(f"{split.url}/api/v1/heartbeats/{monitor['id']}/checkins") as r:
            return [c["message"] for c in (await r.json())["checkins"]]

    assert await eventually(seen) == ["first"]


async def test_the_api_sees_the_clients_own_address_not_one_the_client_claims(split, http):
    # Trusted proxies are 127.0.0.0/8: the sign-in over "https" is believed only if the API
    # learns the real peer (127.0.0.1) from the ingest process, not the header the client sent.
    async with http.post(
        f"{split.url}/login",
        data={"key": API_KEY},
        allow_redirects=False,
        headers={"X-Forwarded-Proto": "https", "X-Pingura-Peer": "203.0.113.9"},
    ) as r:
        assert r.status == 303
        cookie = r.headers["Set-Cookie"]
    assert "pingura_session=" in cookie and "Secure" in cookie


def test_stopping_serve_stops_the_ingest_process_first(split):
    [pid] = worker_pids(split)
    split.stop()
    assert not alive(pid)
    logs = split.logs()
    assert logs.index("ingest.worker.stopped") < logs.index("serve.stopped")
    assert not (split.data_dir / "http.sock").exists() and not (split.data_dir / "bus.sock").exists()


async def test_an_ingest_process_that_dies_is_started_again(split, http):
    monitor = await create_monitor(http, split)
    [pid] = worker_pids(split)
    os.kill(pid, signal.SIGKILL)

    async def pinged():
        try:
            async with http.post(f"{split.url}/api/heartbeat/{monitor['token']}") as r:
                return r.status == 200
        except (OSError, aiohttp.ClientError):  # the old one's connection, or none listening yet
            return False

    assert await eventually(pinged, timeout_s=30)
    assert "serve.ingest_process.exited" in split.logs()
    assert len(worker_pids(split)) == 2 and alive(worker_pids(split)[-1])


async def test_a_body_too_large_or_cut_short_in_front_of_the_api_gets_a_clear_answer(split, http):
    import asyncio

    for size in (128 * 1024, 2 * 1024 * 1024):  # over the API's limit; over the ingest process's too
        async with http.post(
            f"{split.url}/api/v1/heartbeats", data=b"x" * size, headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 413 and (await r.json())["field"] == "body"
    _, writer = await asyncio.open_connection("127.0.0.1", split.port)
    writer.write(b'POST /api/v1/heartbeats HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"na')
    await writer.drain()
    writer.close()  # half a body, then gone
    await eventually(lambda: "the body ended early" in split.logs())  # refused as such, with one info line
    async with http.get(f"{split.url}/healthz") as r:
        assert r.status == 200  # the ingest process carries on
    assert "Error handling request" not in split.logs()
