"""Pings that skip aiohttp's router get what the router would have given them: the same
handler with the same match info, and every other request the router's own answer."""

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.server import GuardedAppRunner
from services.ingest.shortcut import PINGURA_PATHS, with_ping_shortcut
from tests.services.ingest.support import exchange

NAME = web.AppKey("name", str)


async def echo(request: web.Request) -> web.Response:
    info = request.match_info
    return web.Response(
        text=f"{request.app[NAME]} {request.method} {info.get('token')} {info.get('suffix')} "
        f"{info.route.resource.canonical if info.route.resource else None}"
    )


def make_app(middlewares=()) -> web.Application:
    app = web.Application(middlewares=list(middlewares))
    app[NAME] = "root"
    for path in PINGURA_PATHS:
        app.router.add_post(path, echo)
        app.router.add_get(path, echo)
    app.router.add_get("/api/heartbeats", echo)  # a neighbour the prefix must not swallow
    api = web.Application(middlewares=[_passing])  # as Pingura's API: a sub-app with middleware
    api[NAME] = "api"
    api.router.add_get("/things", echo)
    app.add_subapp("/api/v1", api)
    return app


@web.middleware
async def _passing(request, handler):
    return await handler(request)


@pytest.fixture
async def two_servers():
    """The same routes, served with the shortcut (GuardedAppRunner) and without it."""
    runners = [GuardedAppRunner(make_app(), header_timeout_s=5, access_log=None), web.AppRunner(make_app())]
    ports = []
    for runner in runners:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(runner.addresses[0][1])
    yield ports
    for runner in runners:
        await runner.cleanup()


async def answer(port: int, method: str, target: str, headers: str = "") -> bytes:
    raw = await exchange(
        port,
        f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{headers}Connection: close\r\n\r\n".encode(),
        head=method == "HEAD",
    )
    return re.sub(rb"\r\n(Date|Server): [^\r]*", b"", raw)  # the rest, byte for byte


async def test_a_ping_is_handed_to_its_route_with_the_match_info_the_router_makes(two_servers):
    fast, plain = two_servers
    for target in ("/api/heartbeat/abc_DEF-123", "/api/heartbeat/abc/fail", "/api/heartbeat/abc/0?x=1"):
        got = await answer(fast, "POST", target)
        assert got == await answer(plain, "POST", target)
        assert b"\r\n\r\nroot POST abc" in got


async def test_the_shortcut_is_taken_for_a_plain_ping_and_not_for_anything_else():
    app = make_app()
    app.freeze()
    taken = []

    async def router(request):
        taken.append("router")
        return web.Response()

    handle = with_ping_shortcut(app, router)
    await handle(make_mocked_request("POST", "/api/heartbeat/abc", app=app))
    assert taken == []  # straight to the route
    for method, path, headers in (
        ("DELETE", "/api/heartbeat/abc", {}),
        ("POST", "/api/heartbeat/a%62c", {}),
        ("POST", "/api/heartbeat/abc/", {}),
        ("POST", "/api/heartbeat/./abc", {}),
        ("POST", "/api/heartbeat/abc", {"Expect": "100-continue"}),
        ("POST", "/api/heartbeats", {}),
    ):
        await handle(make_mocked_request(method, path, headers=headers, app=app))
    assert taken == ["router"] * 6


def test_an_app_with_middlewares_of_its_own_keeps_the_router():
    app = make_app(middlewares=[_passing])
    app.freeze()

    async def router(request):
        return web.Response()

    assert with_ping_shortcut(app, router) is router


SEGMENT = st.text(alphabet="abcXYZ019-_.%~+!=", min_size=0, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]),
    segments=st.lists(SEGMENT, min_size=0, max_size=3),
    query=st.sampled_from(["", "?", "?a=1", "?state=fail&x"]),
    expect=st.booleans(),
)
async def test_any_request_under_the_prefix_gets_the_routers_answer(
    two_servers, method, segments, query, expect
):
    fast, plain = two_servers
    target = "/api/heartbeat" + "".join("/" + s for s in segments) + query
    headers = "Expect: 100-continue\r\n" if expect else ""
    assert await answer(fast, method, target, headers) == await answer(plain, method, target, headers)
