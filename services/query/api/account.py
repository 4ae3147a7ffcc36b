"""Signing in and out as a person, the first-run setup, and switching between one's projects (issue 20).

``POST /auth/sign-in`` takes email and password (JSON) and answers as
:mod:`services.query.auth.signin` does: the cookie and ``{"redirect": "/"}``, or the TOTP
step. A wrong password and an unknown email get the same 401 after the same work (an
argon2id check either way). Failures count per client address and per account; past the
allowance the answer is 429 with ``Retry-After``, before any password is checked, and the
account's owner is told by email (:func:`~services.query.auth.account_mail.note_failed_sign_in`).

``/setup`` creates the first account with the single-use link ``pingura serve`` prints
while no account exists; that person becomes owner of the admin project.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog
from aiohttp import web

from services.query.api.context import API, CALLER
from services.query.api.errors import answer, error
from services.query.api.route_types import NO_CONTENT, Route, ok
from services.query.api.schemas import account as s
from services.query.audit import record_change
from services.query.auth.account_mail import note_failed_sign_in
from services.query.auth.account_tokens import redeem
from services.query.auth.routes import same_origin
from services.query.auth.sessions import COOKIE
from services.query.auth.signin import second_factor_or_session, start_session
from services.query.auth.throttle import Throttled, client_address
from services.query.auth.users import (
    UserExists,
    check_password,
    create_user,
    hash_password,
    needs_rehash,
    save_user,
    set_role,
)
from shared.clock import now_ms

log = structlog.get_logger()

WRONG = "wrong email or password"
CROSS_SITE = "refused: sent from another site's page"


def _throttled(exc: Throttled) -> web.Response:
    return error(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})


async def sign_in(request: web.Request, body: s.SignIn) -> web.Response:
    ctx = request.app[API]
    if not same_origin(request, ctx):
        return error(403, CROSS_SITE)
    throttle = ctx.sign_ins
    assert throttle is not None  # made by ApiContext
    address = client_address(request, ctx.settings.trusted_proxies)
    email = body.email.strip().lower()
    try:
        throttle.check(address, email)
    except Throttled as exc:
        return _throttled(exc)
    user = ctx.users.by_email(email)
    if not await check_password(user, body.password):
        if throttle.failed(address, email) and user is not None:
            await note_failed_sign_in(ctx, user, address)
        log.info("auth.sign_in.refused", address=address)
        return error(401, WRONG)
    assert user is not None and user.password_hash is not None
    if needs_rehash(user.password_hash):  # argon2-cffi's parameters changed since it was set
        fresh = await asyncio.to_thread(hash_password, body.password)
        user = await save_user(ctx, msgspec.structs.replace(user, password_hash=fresh))
        log.info("auth.password.rehashed", user_id=user.id)
    return await second_factor_or_session(request, user)


async def sign_out(request: web.Request) -> web.Response:
    """End this session everywhere (the ``revoked-sessions`` topic) and drop the cookie."""
    caller = request[CALLER]
    if caller.session is None:
        return error(400, "no session to end: a key is revoked with DELETE /keys/{id}")
    await request.app[API].sessions.revoke(caller.session, now_ms())
    log.info("auth.sign_out", user_id=caller.session.user_id, session_id=caller.session.id)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


async def sign_out_everywhere(request: web.Request) -> web.Response:
    """End every session of the user, this one included, on every instance (``sessions_after_ms``)."""
    ctx, caller = request.app[API], request[CALLER]
    if caller.user is None:
        return error(400, "no user: sign out everywhere is for a person's sessions")
    current = ctx.users.get(caller.user.id) or caller.user
    await save_user(ctx, msgspec.structs.replace(current, sessions_after_ms=now_ms() + 1))
    log.info("auth.sign_out.everywhere", user_id=caller.user.id)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    """Who is calling, the role here, the user's projects, and the session's CSRF token."""
    ctx, caller = request.app[API], request[CALLER]
    here = s.MeProject(id=caller.project.id, name=caller.project.name, role=caller.role)
    user = None
    projects = [here]
    if caller.user is not None:
        u = caller.user
        user = s.MeUser(
            id=u.id,
            email=u.email,
            name=u.name,
            email_verified=u.email_verified,
            totp=u.totp_sealed is not None,
        )
        projects = []
        for m in ctx.memberships.of_user(u.id):
            project = ctx.projects.get(m.project_id)
            if project is not None:
                projects.append(s.MeProject(id=project.id, name=project.name, role=m.role))
        projects.sort(key=lambda p: (p.name.lower(), p.id))
    return answer(
        s.Me(
            user=user,
            key_name=caller.key.name if caller.key is not None else None,
            project=here,
            projects=projects,
            read_only=caller.read_only,
            csrf_token=ctx.sessions.csrf_token(caller.session) if caller.session is not None else None,
        )
    )


async def switch_project(request: web.Request, body: s.SwitchProject) -> web.Response:
    """The session re-issued in another of the user's projects; the old one ends."""
    ctx, caller = request.app[API], request[CALLER]
    if caller.user is None or caller.session is None:
        return error(400, "no user session: a key belongs to one project")
    response = await start_session(request, caller.user, body.project_id)
    if response.status == 200:
        await ctx.sessions.revoke(caller.session, now_ms())
        log.info("auth.project.switched", user_id=caller.user.id, project_id=body.project_id)
    return response


async def setup_state(request: web.Request) -> web.Response:
    """Whether the first-run setup is still open (no account exists)."""
    return answer(s.SetupState(open=not len(request.app[API].users)))


async def setup(request: web.Request, body: s.Setup) -> web.Response:
    """The first account, made with the setup link: owner of the admin project, signed in."""
    ctx = request.app[API]
    if not same_origin(request, ctx):
        return error(403, CROSS_SITE)
    if len(ctx.users) or (await ctx.users.sync(2.0) and len(ctx.users)):
        return error(
            409, "setup is done: an account exists already; sign in, or ask its owner for an invitation"
        )
    address = client_address(request, ctx.settings.trusted_proxies)
    failures = ctx.keys.failures
    try:
        if failures is not None:
            failures.check(address)
    except Throttled as exc:
        return _throttled(exc)
    admin = ctx.projects.admin()
    if admin is None:
        return error(409, "the admin project does not exist yet; retry in a moment")
    if await redeem(ctx, body.token, "first_run") is None:
        if failures is not None:
            failures.failed(address)
        return error(
            403,
            "this setup link is not valid (used, expired or mistyped); restart pingura serve for a new one",
        )
    try:
        user = await create_user(ctx, body.email, body.name, body.password)
    except UserExists as exc:
        return error(409, str(exc), "email")
    membership = await set_role(ctx, admin.id, user.id, "owner", by="setup")
    await record_change(
        request, "member.setup", "member", user.id, None, membership, project_id=admin.id,
        actor=("user", user.id, user.email),
    )  # fmt: skip
    log.info("auth.setup.done", user_id=user.id, project_id=admin.id)
    return await start_session(request, user, admin.id)


SIGNED_IN = ok("Signed in (the session cookie is set), or the second step to take.", s.SignedIn)
R = Route
ROUTES: tuple[Route, ...] = (
    R("POST", "/auth/sign-in", sign_in, "Sign in with email and password (public): the session cookie, or the "
      "TOTP step", "auth", "signIn", SIGNED_IN, body=s.SignIn, errors=(401, 403, 429), public=True),
    R("POST", "/auth/sign-out", sign_out, "Sign out: this session ends on every instance, for good", "auth",
      "signOut", NO_CONTENT, errors=(400,), role="viewer"),
    R("POST", "/auth/sign-out-everywhere", sign_out_everywhere, "End every session of the signed-in user, this "
      "one included", "auth", "signOutEverywhere", NO_CONTENT, errors=(400,), role="viewer"),
    R("GET", "/me", me, "Who is calling: the user, the role in the current project, the user's projects, and "
      "the CSRF token of a session", "auth", "getMe", ok("The caller.", s.Me)),
    R("POST", "/auth/switch-project", switch_project, "Re-issue the session in another of the user's projects",
      "auth", "switchProject", SIGNED_IN, body=s.SwitchProject, errors=(400,), role="viewer"),
    R("GET", "/setup", setup_state, "Whether the first-run setup is open (public)", "auth", "getSetup",
      ok("Open while no account exists.", s.SetupState), public=True),
    R("POST", "/setup", setup, "Create the first account with the setup link ``pingura serve`` printed "
      "(public): owner of the admin project, signed in", "auth", "setUp", SIGNED_IN, body=s.Setup,
      errors=(403, 409, 429), public=True),
)  # fmt: skip
