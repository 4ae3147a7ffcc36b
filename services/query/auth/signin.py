"""Opening a person's session: the cookie (see :mod:`services.query.auth.sessions`), or first
the second step when the user has TOTP on.

Every way in ends here: a password (``POST /api/v1/auth/sign-in``), the first-run setup,
an accepted invitation, single sign-on, the TOTP step. Each answers 200 JSON
``{"redirect": "/"}`` with the cookie set (or ``{"second_factor": "totp", "ticket": ...}``),
which the page follows.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from services.query.api.context import API, ApiContext
from services.query.api.errors import error
from services.query.auth.routes import LOGIN_CONTEXT, set_session_cookie
from shared.clock import now_ms
from shared.events import Membership, User

log = structlog.get_logger()

TOTP_TICKET = "totp"
"""The purpose a second-step ticket is signed for."""


def context(request: web.Request) -> ApiContext:
    """The API's context, from the API's sub-app or the root app's sign-in routes."""
    ctx = request.app.get(API) or request.app.get(LOGIN_CONTEXT)
    assert ctx is not None, "signin used outside the query service's apps"
    return ctx


def pick_project(ctx: ApiContext, user: User, project_id: str | None) -> Membership | None:
    """The membership to open the session in: ``project_id``'s, or the user's first one
    (None: not a member there, or of nothing)."""
    if project_id is not None:
        membership = ctx.memberships.role(project_id, user.id)
        return membership if membership is not None and project_id in ctx.projects else None
    mine = [m for m in ctx.memberships.of_user(user.id) if m.project_id in ctx.projects]
    return mine[0] if mine else None


async def start_session(request: web.Request, user: User, project_id: str | None = None) -> web.Response:
    """Issue ``user``'s session cookie in ``project_id`` (or the user's first project) and
    answer 200 ``{"redirect": "/"}``; 403 for a disabled user or one not a member there."""
    ctx = context(request)
    if user.disabled:
        return error(403, "this account is disabled; ask an admin of your project")
    membership = pick_project(ctx, user, project_id)
    if membership is None and project_id is not None:
        return error(403, "you are not a member of that project", "project_id")
    if membership is None:
        return error(403, "you are not a member of any project yet; ask a project's admin to invite you")
    session, cookie = ctx.sessions.issue_user(user.id, membership.project_id, now_ms())
    response = web.json_response({"redirect": "/"}, headers={"Cache-Control": "no-store"})
    set_session_cookie(request, response, ctx, cookie)
    log.info(
        "auth.sign_in.succeeded", user_id=user.id, project_id=membership.project_id, session_id=session.id
    )
    return response


async def second_factor_or_session(
    request: web.Request, user: User, project_id: str | None = None
) -> web.Response:
    """With TOTP on (``user.totp_sealed``): 200 ``{"second_factor": "totp", "ticket": ...}``,
    a signed ticket naming the user for 5 minutes, to post with the code to
    ``POST /api/v1/auth/sign-in/totp``. Otherwise :func:`start_session`."""
    if user.totp_sealed and not user.disabled:
        ticket = context(request).sessions.ticket(TOTP_TICKET, user.id, now_ms())
        return web.json_response(
            {"second_factor": "totp", "ticket": ticket}, headers={"Cache-Control": "no-store"}
        )
    return await start_session(request, user, project_id)


def read_ticket(ctx: ApiContext, ticket: str | None) -> str | None:
    """The user id a second-step ticket names, while it is valid: signed here, not expired,
    its user still there, not disabled, and not signed out everywhere since it was issued."""
    found = ctx.sessions.read_ticket(TOTP_TICKET, ticket, now_ms())
    if found is None:
        return None
    user_id, issued_ms = found
    user = ctx.users.get(user_id)
    if user is None or user.disabled or issued_ms < user.sessions_after_ms:
        return None
    return user_id
