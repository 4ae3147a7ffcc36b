"""OpenID Connect sign-in against a real provider (panva's certified ``oidc-provider`` under
Node, on loopback, started once for the module: tests/oidc), over real HTTP, the browser
played by an aiohttp client with a cookie jar; the Chromium run is tests/e2e/test_sso.py.

The flow end to end (user made, groups mapped to roles, session opened), then each way a
sign-in must be refused: a replayed state, an answer without this browser's sign-in, an ID
token carrying another sign-in's nonce, a forged signature, another audience, another
issuer; linking by a verified email only; a person's own membership left to them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.query.api import api_app
from services.query.api.context import ApiContext
from services.query.api.sso import _secret
from services.query.auth import oidc
from services.query.auth.oidc import OidcCache, SignIn, SignInRefused, SsoState
from services.query.auth.routes import add_session_routes
from services.query.auth.sessions import COOKIE
from services.query.auth.users import create_user, set_role
from shared.clock import now_ms
from shared.sso_settings import OidcRole
from tests.e2e.conftest import free_port
from tests.oidc.provider import USER, Client, Provider, authorize, query_of
from tests.services.query.api.tenants import new_tenant
from tests.services.query.test_audit import audit_entries

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "pingura-test-client-secret"
OTHER_SECRET = "another-client-of-the-provider"
CALLBACK = "/api/v1/sso/oidc/callback"


@dataclass
class Sso:
    base: str
    ctx: ApiContext
    provider: Provider
    project_id: str
    other_project_id: str


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def provider(port, tmp_path_factory) -> Iterator[Provider]:
    redirect = [f"http://127.0.0.1:{port}{CALLBACK}"]
    found = Provider(
        [Client("pingura", SECRET, redirect), Client("other", OTHER_SECRET, redirect)],
        tmp_path_factory.mktemp("oidc"),
    )
    found.start()
    yield found
    found.stop()


async def serve(stack: AsyncExitStack, ctx: ApiContext, port: int, host: str = "127.0.0.1") -> str:
    """The API and the session routes as ``pingura serve`` mounts them, on ``port``."""
    root = web.Application()
    root.add_subapp("/api/v1", api_app(ctx))
    add_session_routes(root, ctx)
    server = TestServer(root, host=host, port=port)
    await server.start_server()
    stack.push_async_callback(server.close)
    return f"http://{host}:{port}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sso(api, provider, port) -> AsyncIterator[Sso]:
    """The API with single sign-on set up: ``ops`` -> admin, ``staff`` -> member of a project,
    ``devs`` -> member of another."""
    mine, other = (await new_tenant(api)).project_id, (await new_tenant(api)).project_id
    settings = api.ctx.settings.replace(
        public_url=f"http://127.0.0.1:{port}",
        oidc_issuer=provider.issuer,
        oidc_client_id="pingura",
        oidc_client_secret=SECRET,
        oidc_scopes="openid email profile groups",
        oidc_provider_name="Test IdP",
        oidc_roles=(
            OidcRole("ops", mine, "admin"),
            OidcRole("staff", mine, "member"),
            OidcRole("devs", other, "member"),
        ),
    )
    ctx = dataclasses.replace(api.ctx, settings=settings, sso=SsoState())
    async with AsyncExitStack() as stack:
        yield Sso(await serve(stack, ctx, port), ctx, provider, mine, other)


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser's cookies (by host, whatever the port: the provider's and Pingura's)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**query_of(url), **changes})))


async def start(browser: aiohttp.ClientSession, sso: Sso) -> str:
    async with browser.get(f"{sso.base}/api/v1/sso/oidc/start", allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        assert r.cookies[oidc.COOKIE]["samesite"] == "Lax" and r.cookies[oidc.COOKIE]["httponly"]
        return r.headers["Location"]


async def get(browser: aiohttp.ClientSession, url: str) -> tuple[int, str, str | None]:
    async with browser.get(url, allow_redirects=False) as r:
        return r.status, await r.text(), r.headers.get("Location")


def oidc_cookie(browser: aiohttp.ClientSession) -> str:
    return next(c.value for c in browser.cookie_jar if c.key == oidc.COOKIE)


async def sign_in(browser, sso: Sso, login: str = "ada", **tamper: str) -> tuple[int, str, str | None]:
    """Start at Pingura, sign in at the provider as ``login`` (its authorization URL's
    parameters changed by ``tamper``), and bring the answer back to Pingura's callback."""
    url = await start(browser, sso)
    callback = await authorize(browser, with_query(url, **tamper) if tamper else url, login)
    assert callback.startswith(sso.base + CALLBACK), callback
    return await get(browser, callback)


async def session_of(browser: aiohttp.ClientSession, sso: Sso) -> dict:
    async with browser.get(f"{sso.base}/api/v1/session") as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_a_sign_in_makes_the_user_gives_the_roles_of_the_groups_and_opens_the_session(sso, browser):
    async with browser.get(f"{sso.base}/api/v1/sso/providers") as r:
        assert (await r.json())["oidc"] == {"name": "Test IdP", "start": "/api/v1/sso/oidc/start"}
    status, page, location = await sign_in(browser, sso)
    assert (status, location) == (302, "/"), page
    assert any(c.key == COOKIE for c in browser.cookie_jar)
    assert not any(c.key == oidc.COOKIE and c.value for c in browser.cookie_jar)  # spent, and cleared
    user = sso.ctx.users.by_email(USER["email"])
    assert user is not None and user.sso_subject == f"{sso.provider.issuer}|ada" and user.email_verified
    assert user.name == "Ada Lovelace" and user.password_hash is None
    membership = sso.ctx.memberships.role(sso.project_id, user.id)
    assert membership is not None and (membership.role, membership.by) == ("admin", "sso")  # ops beats staff
    assert sso.ctx.memberships.role(sso.other_project_id, user.id) is None  # not in devs
    assert USER["email"] in str(await session_of(browser, sso))


async def test_the_groups_are_applied_again_at_each_sign_in(sso, browser):
    sso.provider.set_accounts({"gus": {"email": "gus@example.org", "groups": ["ops", "devs"]}})
    assert (await sign_in(browser, sso, "gus"))[0] == 302
    gus = sso.ctx.users.by_email("gus@example.org")
    assert gus is not None
    assert sso.ctx.memberships.role(sso.other_project_id, gus.id).role == "member"
    sso.provider.set_accounts({"gus": {"email": "gus@example.org", "groups": ["staff"]}})
    assert (await sign_in(browser, sso, "gus"))[0] == 302
    assert sso.ctx.memberships.role(sso.project_id, gus.id).role == "member"  # lowered with the groups
    assert sso.ctx.memberships.role(sso.other_project_id, gus.id) is None  # left devs: removed
    mine = [
        (e.action, e.actor_kind, e.actor_id)
        for e in await audit_entries(sso, sso.project_id)
        if e.target_id == gus.id
    ]
    assert mine == [("member.create", "system", "sso"), ("member.update", "system", "sso")]
    theirs = [e.action for e in await audit_entries(sso, sso.other_project_id) if e.target_id == gus.id]
    assert theirs == ["member.create", "member.remove"]


async def test_a_replayed_state_is_refused_with_a_page_saying_so(sso, browser):
    sso.provider.set_accounts({"ada": USER})
    url = await start(browser, sso)
    cookie = oidc_cookie(browser)
    callback = await authorize(browser, url)
    assert (await get(browser, callback))[0] == 302
    browser.cookie_jar.update_cookies({oidc.COOKIE: cookie}, aiohttp.client.URL(sso.base + CALLBACK))
    status, page, _ = await get(browser, callback)
    assert status == 400 and "used already (a replayed state)" in page
    assert page.startswith("<!doctype html>") and 'href="/login"' in page
    # The same, from a browser that never started it:
    async with aiohttp.ClientSession() as stranger, stranger.get(callback, allow_redirects=False) as r:
        assert r.status == 400 and "not started in this browser" in await r.text()


async def test_an_id_token_with_another_sign_ins_nonce_is_refused(sso, browser):
    sso.provider.set_accounts({"ada": USER})
    earlier = query_of(await start(browser, sso))["nonce"]
    status, page, _ = await sign_in(browser, sso, nonce=earlier)
    assert status == 400 and "nonce" in page


async def test_a_state_not_this_browsers_sign_in_is_refused(sso, browser):
    status, page, _ = await sign_in(browser, sso, state="forged-state-of-another-sign-in")
    assert status == 400 and "state is not this browser" in page


async def test_the_provider_saying_no_is_shown(sso, browser):
    url = await start(browser, sso)
    state = query_of(url)["state"]
    status, page, _ = await get(browser, f"{sso.base}{CALLBACK}?error=access_denied&state={state}")
    assert status == 400 and "did not sign you in: access_denied" in page


async def test_another_issuer_is_refused(sso, browser):
    url = await start(browser, sso)
    callback = await authorize(browser, url)
    assert query_of(callback)["iss"] == sso.provider.issuer  # RFC 9207: the provider names itself
    status, page, _ = await get(browser, with_query(callback, iss="https://evil.example.com"))
    assert status == 400 and "another issuer" in page
    # A provider whose discovery document names another issuer than the configured one:
    elsewhere = sso.ctx.settings.replace(oidc_issuer=sso.provider.issuer.replace("127.0.0.1", "localhost"))
    async with oidc.client() as http:
        with pytest.raises(SignInRefused, match="names another issuer") as refused:
            await oidc.metadata(elsewhere, OidcCache(), http)
    assert refused.value.status == 502


async def tokens_for_other_client(browser, sso: Sso) -> tuple[dict, SignIn, dict]:
    """A real ID token the provider issued to its other client, with Pingura's sign-in's
    nonce: the sign-in started at Pingura, the client id swapped at the provider, the code
    exchanged by the other client."""
    url = await start(browser, sso)
    sign_in = SignIn.read(oidc_cookie(browser), _secret(sso.ctx), now_ms())
    assert sign_in is not None
    callback = await authorize(browser, with_query(url, client_id="other"))
    async with oidc.client() as http:
        meta = await oidc.metadata(sso.ctx.settings, OidcCache(), http)
        form = {"grant_type": "authorization_code", "code": query_of(callback)["code"],
                "redirect_uri": sso.base + CALLBACK, "code_verifier": sign_in.verifier}  # fmt: skip
        basic = {"Authorization": aiohttp.encode_basic_auth("other", OTHER_SECRET)}
        async with http.post(meta["token_endpoint"], data=form, headers=basic) as r:
            assert r.status == 200, await r.text()
            tokens = await r.json()
    return tokens, sign_in, meta


async def keys_of(meta: dict):
    async with oidc.client() as http:
        return await oidc._keys(meta, OidcCache(), http, fresh=True)


async def test_an_id_token_for_another_audience_or_from_another_issuer_is_refused(sso, browser):
    tokens, sign_in, meta = await tokens_for_other_client(browser, sso)
    keys = await keys_of(meta)
    access = tokens["access_token"]
    assert (
        oidc.verify_id_token(tokens["id_token"], keys, meta, "other", sign_in.nonce, access)["aud"] == "other"
    )
    with pytest.raises(SignInRefused, match=r"audience \(aud\)"):
        oidc.verify_id_token(tokens["id_token"], keys, meta, "pingura", sign_in.nonce, access)
    with pytest.raises(SignInRefused, match=r"issuer \(iss\)"):
        oidc.verify_id_token(tokens["id_token"], keys, {**meta, "issuer": "https://evil.example.com"}, "other",
                             sign_in.nonce, access)  # fmt: skip
    with pytest.raises(SignInRefused, match="nonce"):
        oidc.verify_id_token(tokens["id_token"], keys, meta, "other", "another-nonce", access)
    head, body, signature = tokens["id_token"].split(".")
    forged = f"{head}.{body}.{signature[:-8]}{'A' * 8 if signature[-8:] != 'A' * 8 else 'B' * 8}"
    with pytest.raises(SignInRefused, match="signature"):
        oidc.verify_id_token(forged, keys, meta, "other", sign_in.nonce, access)


async def test_a_code_issued_to_another_client_is_refused_at_the_exchange(sso, browser):
    url = await start(browser, sso)
    callback = await authorize(browser, with_query(url, client_id="other"))
    status, page, _ = await get(browser, callback)
    assert status == 400 and "refused the code (invalid_grant)" in page


async def test_an_account_is_linked_by_a_verified_email_only_and_keeps_its_own_role(sso, browser):
    kept = await create_user(sso.ctx, "kim@example.org", "Kim", "a long enough password")
    await set_role(sso.ctx, sso.project_id, kept.id, "viewer", "usr_someone")
    unverified = await create_user(sso.ctx, "lou@example.org", "Lou", "a long enough password")
    await set_role(sso.ctx, sso.project_id, unverified.id, "viewer", "usr_someone")
    sso.provider.set_accounts({
        "kim": {"email": "KIM@example.org", "groups": ["ops"]},
        "lou": {"email": "lou@example.org", "email_verified": False, "groups": ["ops"]},
    })  # fmt: skip
    assert (await sign_in(browser, sso, "kim"))[0] == 302
    linked = sso.ctx.users.get(kept.id)
    assert linked.sso_subject == f"{sso.provider.issuer}|kim" and linked.password_hash == kept.password_hash
    assert sso.ctx.memberships.role(sso.project_id, kept.id).role == "viewer"  # an admin's choice stands
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as lous_browser:
        status, page, _ = await sign_in(lous_browser, sso, "lou")
    assert status == 400 and "does not say it verified" in page
    assert sso.ctx.users.get(unverified.id).sso_subject is None


async def test_a_user_the_groups_give_no_project_is_told_so(sso, browser):
    sso.provider.set_accounts({"max": {"email": "max@example.org", "groups": ["strangers"]}})
    status, page, _ = await sign_in(browser, sso, "max")
    assert status == 403 and "not a member of any project" in page
    assert sso.ctx.users.by_email("max@example.org") is not None  # made, for an admin to add


async def test_without_settings_the_routes_say_sso_is_off(api):
    base = api.url.removesuffix("/api/v1")
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{base}/api/v1/sso/providers") as r:
            assert r.status == 200 and await r.json() == {"oidc": None, "proxy": None}
        for path in ("/sso/oidc/start", "/sso/oidc/callback?code=x&state=y", "/sso/proxy"):
            async with anonymous.get(f"{base}/api/v1{path}", allow_redirects=False) as r:
                assert r.status == 404 and r.content_type == "text/html", path
                assert "off" in await r.text() or "not configured" in await r.text()


async def test_the_sign_in_cookie_is_refused_when_forged_or_expired():
    secret = oidc.state_secret(b"s" * 32)
    sign_in = SignIn.new(secret, 1_000)
    assert SignIn.read(sign_in.cookie(), secret, 1_000) == sign_in
    assert SignIn.read(sign_in.cookie(), secret, sign_in.expires_ms) is None  # expired
    assert SignIn.read(sign_in.cookie(), oidc.state_secret(b"t" * 32), 1_000) is None  # another server's
    seed, expires = sign_in.seed, sign_in.expires_ms
    assert SignIn.read(sign_in.cookie().replace(str(expires), str(expires + 10**9)), secret, 1_000) is None
    assert SignIn.read(sign_in.cookie().replace(seed, "0" * 32), secret, 1_000) is None
    assert len(sign_in.verifier) == 43 and len({sign_in.state, sign_in.nonce, sign_in.verifier}) == 3
