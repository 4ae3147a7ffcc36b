"""A person's sign-in over real HTTP: email and password give the session cookie; a wrong
password and an unknown email answer alike; failures are throttled per address and per
account (429 with Retry-After); sign-out holds on every instance; ``/me`` says who and where;
switching projects re-issues the cookie only for a project of one's own."""

from __future__ import annotations

import ipaddress
import uuid

import msgspec
import pytest

from services.query.auth import users as u
from services.query.auth.sessions import COOKIE
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.auth.instances import another_instance

pytestmark = pytest.mark.asyncio(loop_scope="session")
PASSWORD = "correct horse battery"
LOOPBACK_PROXY = (ipaddress.ip_network("127.0.0.0/8"),)
HASHED = u.hash_password(PASSWORD)  # once: each argon2id hash costs a fifth of a second here


def root(api) -> str:
    return api.url.removesuffix("/api/v1")


async def sign_in(api, email: str, password: str = PASSWORD, **headers) -> tuple[int, dict, str | None, dict]:
    """Status, body, the session cookie's value (if set), the answer's headers."""
    async with api.http.post(
        api.url + "/auth/sign-in",
        json={"email": email, "password": password},
        headers={"Authorization": "", **headers},
    ) as r:
        morsel = r.cookies.get(COOKIE)
        return r.status, await r.json(), morsel.value if morsel else None, dict(r.headers)


async def account(api, role="member", project_id: str | None = None) -> tuple[str, str, object]:
    """A user with a password, member of a new project (or ``project_id``): email, project, user."""
    project = project_id or (await new_tenant(api)).project_id
    user = await u.create_user(api.ctx, f"p-{uuid.uuid4().hex[:10]}@example.org", "Pat")
    user = await u.save_user(api.ctx, msgspec.structs.replace(user, password_hash=HASHED))
    await u.set_role(api.ctx, project, user.id, role, by="test")
    return user.email, project, user


async def browser(api, cookie: str, project_id: str = "") -> Tenant:
    page = Tenant(api, project_id, {"Authorization": "", "Cookie": f"{COOKIE}={cookie}"})
    me = await page.ok("GET", "/me")
    page.headers["X-CSRF-Token"] = me["csrf_token"]
    return page


async def test_email_and_password_sign_in_to_the_users_project_with_its_role(api):
    email, project, user = await account(api, "admin")
    status, body, cookie, headers = await sign_in(api, email.upper())
    assert (status, body) == (200, {"redirect": "/"}) and cookie and PASSWORD not in cookie
    assert headers["Cache-Control"] == "no-store" and "HttpOnly" in headers["Set-Cookie"]
    assert "SameSite=Strict" in headers["Set-Cookie"]
    me = await (await browser(api, cookie)).ok("GET", "/me")
    assert me["user"] == {
        "id": user.id,
        "email": email,
        "name": "Pat",
        "email_verified": False,
        "totp": False,
    }
    assert me["project"]["id"] == project and me["project"]["role"] == "admin" and me["key_name"] is None
    assert [p["id"] for p in me["projects"]] == [project] and me["read_only"] is False


async def test_a_wrong_password_and_an_unknown_email_answer_the_same(api):
    email, _, _ = await account(api)
    wrong = await sign_in(api, email, "not the password")
    unknown = await sign_in(api, "nobody-" + email, PASSWORD)
    assert wrong[:3] == unknown[:3] == (401, {"error": "wrong email or password"}, None)
    sso_only = await u.create_user(api.ctx, f"s-{uuid.uuid4().hex[:8]}@example.org")  # no password
    assert (await sign_in(api, sso_only.email, ""))[0] == 400  # a password is required
    assert (await sign_in(api, sso_only.email, "anything at all"))[:2] == wrong[:2]


async def test_a_disabled_user_cannot_sign_in_and_one_without_a_project_is_told(api):
    email, _, user = await account(api)
    await u.save_user(api.ctx, msgspec.structs.replace(user, disabled=True))
    status, body, cookie, _ = await sign_in(api, email)
    assert (status, cookie) == (403, None) and "disabled" in body["error"]
    lonely = await u.create_user(api.ctx, f"l-{uuid.uuid4().hex[:8]}@example.org")
    await u.save_user(api.ctx, msgspec.structs.replace(lonely, password_hash=HASHED))
    status, body, cookie, _ = await sign_in(api, lonely.email)
    assert (status, cookie) == (403, None) and "not a member of any project" in body["error"]


async def test_a_sign_in_from_another_site_is_refused(api):
    email, _, _ = await account(api)
    status, _, cookie, _ = await sign_in(api, email, Origin="https://evil.example")
    assert (status, cookie) == (403, None)
    assert (await sign_in(api, email, Origin=root(api)))[0] == 200


async def test_a_password_hashed_with_old_parameters_is_rehashed_on_sign_in(api):
    from argon2 import PasswordHasher

    email, _, user = await account(api)
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    await u.save_user(api.ctx, msgspec.structs.replace(user, password_hash=old))
    assert (await sign_in(api, email))[0] == 200
    fresh = api.ctx.users.get(user.id).password_hash
    assert fresh != old and not u.needs_rehash(fresh) and u.verify_password(fresh, PASSWORD)


async def test_a_user_with_totp_gets_the_second_step_instead_of_a_cookie(api):
    email, _, user = await account(api)
    await u.save_user(api.ctx, msgspec.structs.replace(user, totp_sealed="sealed"))
    status, body, cookie, _ = await sign_in(api, email)
    assert (status, body["second_factor"], cookie) == (200, "totp", None)
    from services.query.auth.signin import read_ticket

    assert read_ticket(api.ctx, body["ticket"]) == user.id
    assert read_ticket(api.ctx, body["ticket"].replace(user.id, "usr_0000000000000000")) is None
    assert read_ticket(api.ctx, "x.1.2.y") is None


async def test_sign_out_ends_the_session_on_every_instance(api):
    email, _, _ = await account(api)
    cookie = (await sign_in(api, email))[2]
    page = await browser(api, cookie)
    async with another_instance(api) as there:
        elsewhere = Tenant(there, "", page.headers)
        await elsewhere.ok("GET", "/heartbeats")
        await page.ok("POST", "/auth/sign-out", 204)
        assert (await page.call("GET", "/heartbeats"))[0] == 401
        assert await there.ctx.sessions.revoked.sync(5.0)
        status, body = await elsewhere.call("GET", "/heartbeats")
        assert status == 401 and "logged out" in body["error"]


async def test_sign_out_everywhere_ends_every_session_of_the_user(api):
    email, _, _ = await account(api)
    first = await browser(api, (await sign_in(api, email))[2])
    second = await browser(api, (await sign_in(api, email))[2])
    await first.ok("POST", "/auth/sign-out-everywhere", 204)
    for page in (first, second):
        status, body = await page.call("GET", "/heartbeats")
        assert status == 401 and "sign in again" in body["error"]
    await (await browser(api, (await sign_in(api, email))[2])).ok("GET", "/heartbeats")  # a new one works


async def test_a_key_has_no_session_to_end_or_switch(api):
    tenant = await new_tenant(api)
    for path, body in (("/auth/sign-out", None), ("/auth/switch-project", {"project_id": tenant.project_id})):
        status, answer = await tenant.call("POST", path, json=body)
        assert status == 400 and "key" in answer["error"], path
    me = await tenant.ok("GET", "/me")
    assert me["user"] is None and me["project"]["role"] == "admin" and me["csrf_token"] is None


async def test_switching_projects_reissues_the_cookie_only_for_ones_own(api):
    email, first, user = await account(api, "viewer")
    second = (await new_tenant(api)).project_id
    await u.set_role(api.ctx, second, user.id, "owner", by="test")
    stranger = (await new_tenant(api)).project_id
    page = await browser(api, (await sign_in(api, email))[2])
    me = await page.ok("GET", "/me")
    assert sorted(p["id"] for p in me["projects"]) == sorted([first, second])
    status, body = await page.call("POST", "/auth/switch-project", json={"project_id": stranger})
    assert status == 403 and "not a member" in body["error"]
    async with api.http.post(
        api.url + "/auth/switch-project", json={"project_id": second}, headers=page.headers
    ) as r:
        assert r.status == 200 and (await r.json()) == {"redirect": "/"}
        cookie = r.cookies[COOKIE].value
    moved = await browser(api, cookie)
    me = await moved.ok("GET", "/me")
    assert me["project"] == {"id": second, "name": me["project"]["name"], "role": "owner"}
    assert (await page.call("GET", "/heartbeats"))[0] == 401  # the old cookie ended


async def test_failed_sign_ins_are_throttled_per_address_with_retry_after(api):
    emails = [(await account(api))[0] for _ in range(2)]
    async with another_instance(api, auth_failures_per_minute=3, trusted_proxies=LOOPBACK_PROXY) as there:
        statuses = [
            (await sign_in(there, emails[i % 2], "wrong password", **{"X-Forwarded-For": "198.51.100.9"}))[0]
            for i in range(3)
        ]
        assert statuses == [401, 401, 401]
        status, body, cookie, headers = await sign_in(there, emails[0], **{"X-Forwarded-For": "198.51.100.9"})
        assert (status, cookie) == (429, None)  # even the right password waits
        assert 1 <= int(headers["Retry-After"]) <= 20
        assert "from your address" in body["error"]
        assert (await sign_in(there, emails[0], **{"X-Forwarded-For": "198.51.100.10"}))[0] == 200


async def test_failed_sign_ins_are_throttled_per_account_whether_it_exists_or_not(api):
    email, _, _ = await account(api)
    async with another_instance(api, auth_failures_per_minute=3, trusted_proxies=LOOPBACK_PROXY) as there:
        for target in (email, "nobody-" + email):
            for i in range(3):
                status = (await sign_in(there, target, "wrong", **{"X-Forwarded-For": f"203.0.113.{i}"}))[0]
                assert status == 401
            status, body, _, headers = await sign_in(there, target, **{"X-Forwarded-For": "203.0.113.99"})
            assert status == 429 and 1 <= int(headers["Retry-After"]) <= 20
            assert "for this account" in body["error"]
        other, _, _ = await account(api)
        assert (await sign_in(there, other, **{"X-Forwarded-For": "203.0.113.99"}))[0] == 200


async def test_a_removal_a_disabled_user_and_sign_out_everywhere_reach_every_instance(api):
    email, project, user = await account(api)
    other_email, other_project, other = await account(api)
    page = await browser(api, (await sign_in(api, email))[2])
    other_page = await browser(api, (await sign_in(api, other_email))[2])
    async with another_instance(api) as there:
        here_and_there = [
            (page, Tenant(there, project, page.headers)),
            (other_page, Tenant(there, other_project, other_page.headers)),
        ]
        for _, elsewhere in here_and_there:
            await elsewhere.ok("GET", "/heartbeats")

        await u.remove_member(api.ctx, project, user.id)  # on this instance; the other follows the topic
        assert await there.ctx.memberships.sync(5.0)
        status, body = await here_and_there[0][1].call("GET", "/heartbeats")
        assert status == 403 and "not a member" in body["error"]

        await other_page.ok("POST", "/auth/sign-out-everywhere", 204)
        assert await there.ctx.users.sync(5.0)
        status, body = await here_and_there[1][1].call("GET", "/heartbeats")
        assert status == 401 and "sign in again" in body["error"]

        current = api.ctx.users.get(other.id)
        await u.save_user(api.ctx, msgspec.structs.replace(current, disabled=True))
        assert await there.ctx.users.sync(5.0)
        status, body, cookie, _ = await sign_in(there, other_email)
        assert (status, cookie) == (403, None) and "disabled" in body["error"]
