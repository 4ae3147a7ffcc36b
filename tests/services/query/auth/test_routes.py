"""Dashboard sign-in over real HTTP: ``POST /login`` gives a signed session cookie, the API
takes it in place of a key (writes need the session's CSRF token), ``POST /logout`` ends it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp.test_utils import make_mocked_request

from services.query.auth.routes import came_over_https, same_origin
from services.query.auth.sessions import COOKIE
from shared.settings import Settings
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.auth.instances import another_instance
from tests.services.query.conftest import API_KEY

pytestmark = pytest.mark.asyncio(loop_scope="session")


def root(api) -> str:
    return api.url.removesuffix("/api/v1")


async def login(api, key: str, **headers) -> tuple[int, str, str | None, object]:
    """Status, Location, the session cookie's value (if set), and the cookie itself."""
    async with api.http.post(
        root(api) + "/login",
        data={"key": key},
        allow_redirects=False,
        headers={"Authorization": "", **headers},
    ) as r:
        morsel = r.cookies.get(COOKIE)
        return r.status, r.headers.get("Location"), morsel.value if morsel else None, morsel


def browser(tenant: Tenant, cookie: str, csrf: str | None = None) -> Tenant:
    """The same project as a browser sees it: no key, the cookie, and the CSRF token if known."""
    headers = {"Authorization": "", "Cookie": f"{COOKIE}={cookie}"}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    return Tenant(tenant.api, tenant.project_id, headers)


async def signed_in(api, read_only: bool = False) -> tuple[Tenant, Tenant, dict]:
    """A project, a browser signed in with a (new) key of it, and that key's record."""
    tenant = await new_tenant(api)
    key, made = await tenant.new_key(read_only=read_only, name="browser")
    status, location, cookie, _ = await login(api, key)
    assert (status, location) == (303, "/") and cookie
    session = await browser(tenant, cookie).ok("GET", "/session")
    return tenant, browser(tenant, cookie, session["csrf_token"]), made


async def test_login_sets_a_strict_http_only_cookie_for_the_session_ttl(api):
    tenant = await new_tenant(api)
    key, _ = await tenant.new_key()
    status, location, cookie, morsel = await login(api, key)
    assert (status, location) == (303, "/")
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert morsel["max-age"] == str(12 * 3600) and not morsel["secure"]
    assert key not in cookie


async def test_a_legacy_project_key_signs_in_too(api):
    status, _, cookie, _ = await login(api, API_KEY)
    assert status == 303
    async with api.http.get(
        api.url + "/session", headers={"Authorization": "", "Cookie": f"{COOKIE}={cookie}"}
    ) as r:
        session = await r.json()
    assert session["project"]["id"] == "prj_admin" and session["key_name"] == "project key"


async def test_a_failed_login_goes_back_to_the_form_without_a_cookie(api):
    for key in ("pk_wrong", "", "   "):
        status, location, cookie, _ = await login(api, key)
        assert (status, location, cookie) == (303, "/login?error=1", None)


async def test_a_login_posted_from_another_site_is_refused(api):
    tenant = await new_tenant(api)
    key, _ = await tenant.new_key()
    status, _, cookie, _ = await login(api, key, Origin="https://evil.example")
    assert status == 403 and cookie is None
    status, _, cookie, _ = await login(api, key, Origin=root(api))
    assert status == 303 and cookie


async def test_the_session_says_who_is_signed_in_and_gives_the_csrf_token(api):
    tenant, page, _ = await signed_in(api)
    session = await page.ok("GET", "/session")
    assert session["project"]["id"] == tenant.project_id and session["key_name"] == "browser"
    assert session["read_only"] is False and len(session["csrf_token"]) >= 32
    with_key = await tenant.ok("GET", "/session")
    assert with_key["csrf_token"] is None and with_key["project"]["id"] == tenant.project_id


async def test_a_session_write_needs_the_csrf_token(api):
    tenant, page, _ = await signed_in(api)
    without = Tenant(api, tenant.project_id, {**page.headers, "X-CSRF-Token": ""})
    status, body = await without.call("POST", "/heartbeats", json={"name": "n", "interval": "1h"})
    assert status == 403 and "X-CSRF-Token" in body["error"]
    wrong = Tenant(api, tenant.project_id, {**page.headers, "X-CSRF-Token": "x" * 43})
    assert (await wrong.call("POST", "/heartbeats", json={"name": "n", "interval": "1h"}))[0] == 403
    await page.ok("POST", "/heartbeats", 201, json={"name": "n", "interval": "1h"})
    await without.ok("GET", "/heartbeats")  # reads need no token


async def test_a_read_only_session_writes_nothing_even_with_the_token(api):
    _, page, _ = await signed_in(api, read_only=True)
    status, body = await page.call("POST", "/heartbeats", json={"name": "n", "interval": "1h"})
    assert status == 403 and "read-only" in body["error"]
    assert (await page.ok("GET", "/session"))["read_only"] is True


async def test_revoking_the_key_ends_its_sessions_at_once(api):
    tenant, page, made = await signed_in(api)
    await tenant.ok("DELETE", f"/keys/{made['id']}", 204)
    status, body = await page.call("GET", "/heartbeats")
    assert status == 401 and "revoked" in body["error"]


async def test_a_tampered_cookie_is_refused(api):
    tenant, page, _ = await signed_in(api)
    cookie = page.headers["Cookie"].split("=", 1)[1]
    parts = cookie.split(".")
    parts[2] = "key_someone_else"
    status, body = await browser(tenant, ".".join(parts)).call("GET", "/heartbeats")
    assert status == 401 and "log in again" in body["error"]


async def test_logout_needs_the_csrf_token_then_ends_the_session(api):
    _, page, _ = await signed_in(api)
    async with api.http.post(
        root(api) + "/logout", allow_redirects=False, headers={**page.headers, "X-CSRF-Token": "wrong"}
    ) as r:
        assert r.status == 403
    await page.ok("GET", "/heartbeats")
    async with api.http.post(root(api) + "/logout", allow_redirects=False, headers=page.headers) as r:
        assert r.status == 204
        assert r.cookies[COOKIE].value == "" and r.cookies[COOKIE]["max-age"] == "0"
    status, body = await page.call("GET", "/heartbeats")
    assert status == 401 and "log in again" in body["error"]


async def test_a_logout_form_sends_the_token_as_a_field_and_is_redirected_to_login(api):
    _, page, _ = await signed_in(api)
    token = page.headers.pop("X-CSRF-Token")
    async with api.http.post(
        root(api) + "/logout", data={"csrf_token": token}, allow_redirects=False, headers=page.headers
    ) as r:
        assert (r.status, r.headers["Location"]) == (303, "/login")
    assert (await page.call("GET", "/heartbeats"))[0] == 401


async def test_a_logout_on_one_instance_holds_on_every_other(api):
    """Two query instances on one bus (as behind a load balancer): a cookie signed out on
    either is refused by both."""
    async with another_instance(api) as other:
        for here, there in ((api, other), (other, api)):
            tenant, page, _ = await signed_in(api)
            elsewhere = Tenant(there, tenant.project_id, page.headers)
            await elsewhere.ok("GET", "/heartbeats")  # one cookie, good on both
            async with api.http.post(
                root(here) + "/logout", allow_redirects=False, headers=page.headers
            ) as r:
                assert r.status == 204
            assert await there.ctx.sessions.revoked.sync(5)
            status, body = await elsewhere.call("GET", "/heartbeats")
            assert status == 401 and "log in again" in body["error"]


async def test_a_key_revoked_on_one_instance_is_refused_by_every_other(api):
    async with another_instance(api) as other:
        tenant, page, session_key = await signed_in(api)
        script_key, made = await tenant.new_key()
        there = Tenant(other, tenant.project_id, page.headers)
        assert await other.ctx.keys.sync()
        await there.ok("GET", "/heartbeats")
        await there.with_key(script_key).ok("GET", "/keys")
        for revoked in (session_key, made):  # the session's key, and a key used directly
            await tenant.ok("DELETE", f"/keys/{revoked['id']}", 204)
        assert await other.ctx.keys.sync()
        assert (await there.call("GET", "/heartbeats"))[0] == 401
        assert (await there.with_key(script_key).call("GET", "/keys"))[0] == 401


async def test_a_dashboard_behind_a_password_proxy_keeps_its_session(api):
    """A proxy asking for a password (HTTP Basic) sends its own Authorization header with
    every request: the session cookie still counts, and is not told its header is wrong."""
    tenant, page, _ = await signed_in(api)
    behind = Tenant(api, tenant.project_id, {**page.headers, "Authorization": "Basic dXNlcjpwdw=="})
    await behind.ok("GET", "/heartbeats")
    await behind.ok("POST", "/heartbeats", 201, json={"name": "n", "interval": "1h"})


# behind a proxy -----------------------------------------------------------------------------
def proxied(remote: str, **headers):
    ctx = SimpleNamespace(settings=Settings.from_env({"PINGURA_TRUSTED_PROXIES": "10.0.0.0/8"}))
    request = make_mocked_request("POST", "/login", headers={"Host": "pingura.internal:8080", **headers})
    request = request.clone(remote=remote)
    return request, ctx


async def test_the_cookie_is_secure_when_https_ended_at_a_trusted_proxy():
    assert came_over_https(*proxied("10.1.2.3", **{"X-Forwarded-Proto": "https"}))
    assert not came_over_https(*proxied("192.0.2.9", **{"X-Forwarded-Proto": "https"}))
    assert not came_over_https(*proxied("10.1.2.3"))


async def test_the_origin_may_be_the_host_a_trusted_proxy_forwarded():
    forwarded = {"X-Forwarded-Host": "status.example.com", "Origin": "https://status.example.com"}
    assert same_origin(*proxied("10.1.2.3", **forwarded))
    assert not same_origin(*proxied("192.0.2.9", **forwarded))
    assert same_origin(*proxied("192.0.2.9", Origin="http://pingura.internal:8080"))
    assert not same_origin(*proxied("192.0.2.9", Origin="null"))
