"""The role matrix (README, "Teams"): every route of the API table, called by every kind of
caller — a viewer, a member, an admin and an owner (people, through real session cookies,
sending the session's CSRF token on writes), a read-only key (a viewer) and a read-write key
(an admin). Below the route's role the answer is a 403 saying which role it needs; at or
above it, never a 403 of the role check (nor a 401 or a 5xx). Made from the table itself
(:data:`services.query.api.routes.ROUTES`), so a route added later is walked too.

Each caller walks a project of its own, holding one of each thing a path can name; a write
that ended the caller's session or membership (signing out, leaving) is followed by a fresh
one, so the walk goes on as that caller.
"""

from __future__ import annotations

import re

import pytest

from services.query.api.route_types import Route
from services.query.api.routes import ROUTES
from services.query.auth.sessions import CSRF_HEADER
from services.query.auth.users import create_user, set_role
from shared.events import ROLES, Role, role_at_least
from tests.services.query.api.people import mail_server, signed_in
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.api.test_keys import some_of_everything

CALLERS: dict[str, Role] = {
    "viewer": "viewer",
    "member": "member",
    "admin": "admin",
    "owner": "owner",
    "read-only key": "viewer",
    "read-write key": "admin",
}
WALKED = [route for route in ROUTES if not route.public]
HANDLER_REFUSALS = (
    "only an admin key can create projects",  # POST /projects: from the admin project only (tenancy, not role)
    "an API key has no account",  # a person's own account: a key has none
)
"""403s a handler gives at or above the route's role, for what the role does not decide."""
PARAMETER = re.compile(r"\{([a-z_]+)\}")


def path_of(route: Route, ids: dict[str, str]) -> str:
    """The route's path with each parameter an id of the caller's project (``{id}``: of the
    resource the path starts with); an absent one is a name that is not there (404)."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        return ids.get(route.path.split("/")[1] if name == "id" else name, "absent")

    return PARAMETER.sub(value, route.path)


def walk_order(route: Route) -> tuple[int, str]:
    """Reads, then writes, then deletions: a thing is read before it may be gone."""
    return ({"GET": 0, "DELETE": 2}.get(route.method, 1), route.path)


async def project_for(api, kind: str) -> tuple[Tenant, dict[str, str], object]:
    """A project with one of each thing, a second owner and a spare member (so no last-owner
    rule stops the walk), a waiting invitation; and the caller."""
    tenant = await new_tenant(api)
    ids = await some_of_everything(tenant, channel={"kind": "email", "config": {"to": ["ops@example.org"]}})
    ids["invitations"] = (await tenant.ok("POST", "/invitations", 201, json={"email": "new@example.org"}))[
        "id"
    ]
    for role in ("owner", "viewer"):
        other = await create_user(api.ctx, f"other-{role}-{tenant.project_id}@example.org", role)
        await set_role(api.ctx, tenant.project_id, other.id, role, "test")
    ids["user_id"] = other.id
    if kind.endswith("key"):
        key, _ = await tenant.new_key(read_only=kind == "read-only key")
        return tenant.with_key(key), ids, None
    user = await create_user(api.ctx, f"{kind}-{tenant.project_id}@example.org", kind)
    await set_role(api.ctx, tenant.project_id, user.id, CALLERS[kind], "test")
    return signed_in(api, user, tenant.project_id), ids, user


async def as_before(api, caller: Tenant, user, role: Role) -> Tenant:
    """The caller again as it was: a person's membership back if they left, a fresh session."""
    if user is None:
        return caller
    current = api.ctx.memberships.role(caller.project_id, user.id)
    if current is None or current.role != role:
        await set_role(api.ctx, caller.project_id, user.id, role, "test")
    return signed_in(api, api.ctx.users.get(user.id), caller.project_id)


def refused_for_role(kind: str, route: Route, body) -> bool:
    text = body.get("error", "") if isinstance(body, dict) else ""
    if kind == "read-only key":
        return "read-only" in text and (route.writes or f"needs the {route.needs} role" in text)
    return f"needs the {route.needs} role" in text


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("kind", list(CALLERS))
async def test_every_route_answers_each_role_as_the_table_says(api, kind):
    role = CALLERS[kind]
    with mail_server(api):
        caller, ids, user = await project_for(api, kind)
        walked = 0
        for route in sorted(WALKED, key=walk_order):
            caller = await as_before(api, caller, user, role)
            body = {"json": {}} if route.writes else {}
            status, answer = await caller.call(route.method, path_of(route, ids), **body)
            where = (kind, route.method, route.path, status, answer)
            assert status < 500 and status != 401, where
            if not role_at_least(role, route.needs):
                assert status == 403 and refused_for_role(kind, route, answer), where
            elif status == 403:
                assert any(reason in str(answer) for reason in HANDLER_REFUSALS), where
            walked += 1
    assert walked == len(WALKED) and {r.needs for r in WALKED} >= {"viewer", "member", "admin"}


@pytest.mark.asyncio(loop_scope="session")
async def test_a_persons_write_without_the_csrf_token_is_refused_whatever_the_role(api):
    with mail_server(api):
        caller, ids, _ = await project_for(api, "owner")
    without = Tenant(api, caller.project_id, {k: v for k, v in caller.headers.items() if k != CSRF_HEADER})
    for route in sorted((r for r in WALKED if r.writes), key=walk_order):
        status, answer = await without.call(route.method, path_of(route, ids), json={})
        assert status == 403 and CSRF_HEADER in answer["error"], (route.method, route.path, status, answer)
    assert (await without.ok("GET", "/members"))["your_role"] == "owner"


OWN = ("/account", "/auth/", "/projects/me/leave")
"""A person's own: their account, their sessions, leaving. Any role may."""
ADMIN_ONLY = {
    ("POST", "/projects"), ("GET", "/keys"), ("POST", "/keys"), ("DELETE", "/keys/{id}"), ("PATCH", "/projects/me"),
    ("POST", "/projects/me/ping-key"), ("POST", "/projects/me/badge-key"), ("PUT", "/projects/me/status-page"),
    ("DELETE", "/projects/me/status-page"), ("POST", "/projects/me/status-page/key"),
    ("PATCH", "/members/{user_id}"), ("DELETE", "/members/{user_id}"), ("GET", "/invitations"),
    ("POST", "/invitations"), ("DELETE", "/invitations/{id}"),
}  # fmt: skip


def test_the_table_gives_each_route_the_role_the_readme_says():
    """The matrix above holds the API to its table; this holds the table to the README: the
    roles are the four, keys and project settings and members are for admins, and a write
    below a member's role is only a person's own."""
    assert ROLES == ("viewer", "member", "admin", "owner")
    needs = {(route.method, route.path): route.needs for route in WALKED}
    assert {where: needs[where] for where in ADMIN_ONLY} == dict.fromkeys(ADMIN_ONLY, "admin")
    viewer_writes = {where for where, role in needs.items() if role == "viewer" and where[0] != "GET"}
    assert all(path.startswith(OWN) for _, path in viewer_writes), viewer_writes
    assert needs[("GET", "/members")] == "viewer" and needs[("POST", "/heartbeats")] == "member"
