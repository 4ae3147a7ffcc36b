"""People for API tests: users with a role in a project, each with a real session cookie
(signed by the server's own :class:`~services.query.auth.sessions.Sessions`, read by its
middleware) and the CSRF token a write with it needs."""

from __future__ import annotations

import uuid

from services.query.auth.sessions import COOKIE, CSRF_HEADER
from services.query.auth.users import create_user, set_role
from shared.clock import now_ms
from shared.events import Role, User
from tests.services.query.api.tenants import Tenant
from tests.services.query.conftest import Api


def signed_in(api: Api, user: User, project_id: str) -> Tenant:
    """A caller holding ``user``'s session cookie in ``project_id`` (no key: the shared client's
    default key header is blanked), sending the session's CSRF token."""
    session, cookie = api.ctx.sessions.issue_user(user.id, project_id, now_ms())
    headers = {
        "Authorization": "",
        "Cookie": f"{COOKIE}={cookie}",
        CSRF_HEADER: api.ctx.sessions.csrf_token(session),
    }
    return Tenant(api, project_id, headers)


async def person(api: Api, project_id: str, role: Role, password: str | None = None) -> tuple[User, Tenant]:
    """A new user, ``role`` in ``project_id``, signed in there."""
    user = await create_user(api.ctx, f"{role}-{uuid.uuid4().hex[:8]}@example.org", role.title(), password)
    await set_role(api.ctx, project_id, user.id, role, "test")
    return user, signed_in(api, user, project_id)
