"""Users and their sessions: argon2id passwords, users and memberships published and seen,
and a person's cookie re-checked on every request (disabled, removed, signed out everywhere)."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from argon2 import PasswordHasher

from services.query.auth import users as u
from services.query.auth.sessions import COOKIE
from services.query.validation import InvalidField
from shared.clock import now_ms
from tests.services.query.api.tenants import Tenant, new_tenant

ASYNC = pytest.mark.asyncio(loop_scope="session")


def email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.org"


def test_a_password_is_hashed_with_argon2id_and_checked():
    hashed = u.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$") and "correct" not in hashed
    assert u.verify_password(hashed, "correct horse battery")
    assert not u.verify_password(hashed, "correct horse batterY")
    assert not u.verify_password(None, "x") and not u.verify_password("not a hash", "x")
    assert not u.needs_rehash(hashed)


def test_a_hash_made_with_other_parameters_needs_a_rehash():
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("correct horse battery")
    assert u.verify_password(old, "correct horse battery") and u.needs_rehash(old)


def test_new_passwords_and_emails_are_checked():
    with pytest.raises(InvalidField):
        u.check_new_password("short")
    with pytest.raises(InvalidField):
        u.check_new_password("x" * 1025)
    assert u.normalize_email("  Ada@Example.ORG ") == "ada@example.org"
    for bad in ("ada", "ada@", "@example.org", "a b@example.org", "ada@example"):
        with pytest.raises(InvalidField):
            u.normalize_email(bad)


@ASYNC
async def test_an_email_has_one_user(api):
    address = email()
    user = await u.create_user(api.ctx, address.upper(), "Ada", "correct horse battery")
    assert user.email == address and api.ctx.users.by_email(address).id == user.id
    assert await u.check_password(user, "correct horse battery")
    assert not await u.check_password(user, "wrong password!!")
    assert not await u.check_password(None, "correct horse battery")
    with pytest.raises(u.UserExists):
        await u.create_user(api.ctx, address)
    saved = await u.save_user(api.ctx, msgspec.structs.replace(user, name="Ada L."))
    assert saved.revision == 2 and api.ctx.users.get(user.id).name == "Ada L."


async def person(api, role="member", project_id: str | None = None) -> tuple[Tenant, object, dict]:
    """A project (new unless given), a user with ``role`` in it, and that user's browser:
    its cookie and CSRF token."""
    tenant = await new_tenant(api) if project_id is None else Tenant(api, project_id, {})
    user = await u.create_user(api.ctx, email(), "P")  # no password: sessions here are issued directly
    await u.set_role(api.ctx, tenant.project_id, user.id, role, by="test")
    _, cookie = api.ctx.sessions.issue_user(user.id, tenant.project_id, now_ms())
    browser = Tenant(api, tenant.project_id, {"Authorization": "", "Cookie": f"{COOKIE}={cookie}"})
    session = await browser.ok("GET", "/session")
    browser.headers["X-CSRF-Token"] = session["csrf_token"]
    return browser, user, session


@ASYNC
async def test_a_users_session_acts_in_its_project_with_its_role(api):
    browser, user, session = await person(api, "viewer")
    assert session["project"]["id"] == browser.project_id and session["key_name"] == user.email
    assert session["read_only"]
    status, body = await browser.call("POST", "/heartbeats", json={"name": "x", "interval": 60})
    assert status == 403 and "member role" in body["error"]
    await u.set_role(api.ctx, browser.project_id, user.id, "member", by="test")  # the role now counts
    await browser.ok("POST", "/heartbeats", 201, json={"name": "x", "interval": 60})


@ASYNC
async def test_a_removed_member_and_a_disabled_user_are_refused_at_once(api):
    browser, user, _ = await person(api)
    await u.remove_member(api.ctx, browser.project_id, user.id)
    status, body = await browser.call("GET", "/heartbeats")
    assert status == 403 and "not a member" in body["error"]
    browser, user, _ = await person(api)
    await u.save_user(api.ctx, msgspec.structs.replace(user, disabled=True))
    status, body = await browser.call("GET", "/heartbeats")
    assert status == 403 and "disabled" in body["error"]


@ASYNC
async def test_sessions_issued_before_sessions_after_ms_are_ended(api):
    browser, user, _ = await person(api)
    await u.save_user(api.ctx, msgspec.structs.replace(user, sessions_after_ms=now_ms() + 1))
    status, body = await browser.call("GET", "/heartbeats")
    assert status == 401 and "sign in again" in body["error"]


@ASYNC
async def test_a_user_of_one_project_never_reads_another(api):
    browser, _, _ = await person(api)
    other = await new_tenant(api)
    made = await other.ok("POST", "/heartbeats", 201, json={"name": "secret job", "interval": 60})
    status, _ = await browser.call("GET", f"/heartbeats/{made['id']}")
    assert status == 404
    listed = await browser.ok("GET", "/heartbeats")
    assert all(h["id"] != made["id"] for h in listed["heartbeats"])
    # a cookie for the other project, forged by editing it, fails its signature
    cookie = browser.headers["Cookie"].replace(browser.project_id, other.project_id)
    status, _ = await Tenant(api, other.project_id, {"Authorization": "", "Cookie": cookie}).call(
        "GET", "/heartbeats"
    )
    assert status == 401
