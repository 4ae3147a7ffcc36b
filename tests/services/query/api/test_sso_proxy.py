"""Sign-in from a trusted header (``PINGURA_TRUSTED_HEADER``), over real HTTP: believed from
the listed proxy address only (the test's client connects from 127.0.0.2, the proxy, or
from 127.0.0.1, anyone else), ignored and warned about once from any other peer; a known
email signs in, an unknown one is refused (not made: Pingura's admins decide who is in)."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import aiohttp
import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from services.query.api.context import ApiContext
from services.query.auth.oidc import SsoState
from services.query.auth.sessions import COOKIE
from services.query.auth.users import create_user, set_role
from tests.e2e.conftest import free_port
from tests.services.query.api.tenants import new_tenant
from tests.services.query.api.test_sso import serve

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEADER = "X-Forwarded-Email"
PROXY = "127.0.0.2"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def proxied(api) -> AsyncIterator[tuple[str, ApiContext, str]]:
    """The API believing ``X-Forwarded-Email`` from 127.0.0.2 only, and a member's email."""
    project_id = (await new_tenant(api)).project_id
    settings = api.ctx.settings.replace(
        trusted_header=HEADER, trusted_header_proxies=(ipaddress.ip_network(f"{PROXY}/32"),)
    )
    ctx = dataclasses.replace(api.ctx, settings=settings, sso=SsoState())
    user = await create_user(ctx, "proxied@example.org", "Pat")
    await set_role(ctx, project_id, user.id, "member", "usr_admin")
    async with AsyncExitStack() as stack:
        yield await serve(stack, ctx, free_port()), ctx, user.email


def client(source: str) -> aiohttp.ClientSession:
    """A browser connecting from ``source`` (any 127/8 address is this machine's)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(source, 0)), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )


async def test_the_header_signs_in_from_the_listed_proxy(proxied):
    base, _, email = proxied
    async with client(PROXY) as http:
        async with http.get(f"{base}/api/v1/sso/providers", headers={HEADER: email}) as r:
            assert (await r.json())["proxy"] == {"start": "/api/v1/sso/proxy"}
        async with http.get(
            f"{base}/api/v1/sso/proxy", headers={HEADER: email.upper()}, allow_redirects=False
        ) as r:
            assert (r.status, r.headers["Location"]) == (302, "/"), await r.text()
            assert COOKIE in r.cookies
        async with http.get(f"{base}/api/v1/session") as r:  # the cookie alone, now
            assert r.status == 200 and email in await r.text()


async def test_the_header_is_ignored_from_any_other_peer_and_warned_about_once(proxied):
    base, _, email = proxied
    with capture_logs() as logs:
        async with client("127.0.0.1") as http:
            for _ in range(2):
                async with http.get(
                    f"{base}/api/v1/sso/proxy", headers={HEADER: email}, allow_redirects=False
                ) as r:
                    assert r.status == 400 and "not through the proxy?" in await r.text()
                    assert COOKIE not in r.cookies
            async with http.get(f"{base}/api/v1/sso/providers", headers={HEADER: email}) as r:
                assert (await r.json())["proxy"] is None
    warned = [e for e in logs if e["event"] == "auth.trusted_header.ignored"]
    assert len(warned) == 1 and warned[0]["log_level"] == "warning"
    assert email not in str(warned)  # the header's name and the peer, never its value


async def test_an_unknown_email_or_none_at_all_is_refused(proxied):
    base, _, _ = proxied
    async with client(PROXY) as http:
        for headers, status, says in (
            (
                {HEADER: "stranger@example.org"},
                403,
                "No account on this Pingura has the email stranger@example.org",
            ),
            ({HEADER: "not an email"}, 400, "does not hold one email address"),
            ({}, 400, "No signed-in person"),
        ):
            async with http.get(f"{base}/api/v1/sso/proxy", headers=headers, allow_redirects=False) as r:
                assert r.status == status and says in await r.text(), headers
                assert COOKIE not in r.cookies
