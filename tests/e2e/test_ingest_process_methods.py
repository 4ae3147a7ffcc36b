"""A ping URL asked with a method it does not take gets the same answer in both layouts of
``pingura serve``: ``405`` with ``Allow`` where the one-process layout's router says so (the
ingest process answers it itself instead of passing it on to be answered ``404``), and the
ping's own answer on the URLs that take any method."""

from __future__ import annotations

import aiohttp
import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_ingest_process import create_monitor

WRONG = ("DELETE", "PUT", "PATCH", "OPTIONS", "TRACE")
UNKNOWN_TOKEN, UNKNOWN_KEY = "T" * 32, "k" * 22
ANY_METHOD = (  # Healthchecks', Uptime Kuma's and Cronitor's URLs: every method is a ping
    f"/ping/{UNKNOWN_TOKEN}",
    f"/ping/{UNKNOWN_TOKEN}/fail",
    f"/ping/{UNKNOWN_KEY}/backup",
    f"/ping/{UNKNOWN_KEY}/backup/fail",
    f"/api/push/{UNKNOWN_TOKEN}",
    f"/p/{UNKNOWN_KEY}/backup",
)


@pytest.fixture(scope="module", params=["one process", "ingest process"])
def server(request, tmp_path_factory):
    env = {"PINGURA_INGEST_PROCESS": "1"} if request.param == "ingest process" else {}
    tmp = tmp_path_factory.mktemp(request.param.replace(" ", "-"))
    srv = Server(tmp / "data", tmp / "serve.log", env=env)
    srv.start()
    yield srv
    srv.stop()


async def answer(url: str, method: str) -> tuple[int, str | None, str | None, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as r:
        return r.status, r.headers.get("Allow"), r.headers.get("Content-Type"), await r.text()


async def test_a_wrong_method_on_pinguras_ping_url_is_405_with_allow(server, http):
    monitor = await create_monitor(http, server)
    for path in (f"/api/heartbeat/{monitor['token']}", f"/api/heartbeat/{monitor['token']}/fail"):
        for method in WRONG:
            assert await answer(server.url + path, method) == (
                405,
                "GET,HEAD,POST",
                "text/plain; charset=utf-8",
                "405: Method Not Allowed",
            ), (path, method)
        assert (await answer(server.url + path, "HEAD"))[0] == 200  # the methods it takes still ping


async def test_the_urls_that_take_any_method_answer_each_as_a_ping(server):
    for path in ANY_METHOD:
        as_get = await answer(server.url + path, "GET")
        assert as_get[0] == 404 and as_get[1] is None, path  # unknown: their dialect's not-found
        for method in WRONG:
            assert await answer(server.url + path, method) == as_get, (path, method)
