"""Handlers of a person's address and password: verify the email address, reset a forgotten
password through an emailed link, change the password (signing out everywhere is
``POST /auth/sign-out-everywhere``, :mod:`.account`).

The routes without a signed-in caller (verify, ask for a reset, reset) are public; as they
write, they refuse a POST another site's page sent (its ``Origin``). The others need a
person's session: an API key has no password or address to manage (403).

Ending sessions: a reset moves the user's ``sessions_after_ms`` to now, which every query
instance checks on every request (:mod:`services.query.auth.caller`); a password change
does the same and hands this browser a fresh cookie, so only the others end.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog
from aiohttp import web

from services.query.api.context import API, CALLER, ApiContext
from services.query.api.errors import answer, error
from services.query.api.schemas import account_security as s
from services.query.auth import account_tokens
from services.query.auth.account_mail import reset_mail, send_later, verification_mail
from services.query.auth.mailer import can_mail
from services.query.auth.routes import same_origin
from services.query.auth.sessions import COOKIE
from services.query.auth.signin import start_session
from services.query.auth.users import check_password, hash_password, save_user
from services.query.validation import InvalidField
from shared.clock import now_ms
from shared.events import User

log = structlog.get_logger()

MAIL_EVERY_MS = 60 * 1000
"""At most one verification or reset email a minute per account: a form cannot flood an inbox."""
RESET_ACCEPTED = s.ResetAccepted(
    "If an account has this address, a link to reset its password is on its way; it works once, for one hour."
)
NO_MAIL_STATUS = 409
"""No SMTP server is the operator's setting, not a failure of Pingura's parts (which a 5xx
would say): the request conflicts with how this server is set up."""
NO_MAIL = "this server sends no email (PINGURA_SMTP_URL is not set); ask an operator to set your password"
BAD_LINK = "this link is unknown, used or expired; ask for a new one"


def signed_in_user(request: web.Request) -> User:
    """The person calling; a 403 for an API key (keys have no account to manage)."""
    caller = request[CALLER]
    if caller.user is None:
        raise web.HTTPForbidden(
            text='{"error": "this needs a signed-in user (an API key has no account)"}',
            content_type="application/json",
        )
    return caller.user


def refuse_cross_site(request: web.Request) -> None:
    """A public write sent by another site's page (its Origin says so) is refused (403)."""
    if not same_origin(request, request.app[API]):
        raise web.HTTPForbidden(
            text='{"error": "refused: the request was sent from another site"}',
            content_type="application/json",
        )


def _mail_allowed(ctx: ApiContext, user: User, kind: str) -> bool:
    """True (and noted) unless ``user`` was sent a ``kind`` email less than a minute ago."""
    key, at = f"{kind}:{user.id}", now_ms()
    last = ctx.account_tokens.noticed_ms.get(key)
    if last is not None and at - last < MAIL_EVERY_MS:
        return False
    ctx.account_tokens.noticed_ms[key] = at
    return True


def _state(ctx: ApiContext, user: User) -> s.SecurityState:
    return s.SecurityState(
        user_id=user.id,
        email=user.email,
        email_verified=user.email_verified,
        has_password=user.password_hash is not None,
        totp=user.totp_sealed is not None,
        recovery_codes_left=len(user.recovery_code_hashes) if user.totp_sealed else 0,
        can_mail=can_mail(ctx.settings),
    )


async def get_security(request: web.Request) -> web.Response:
    """``GET /account/security``."""
    return answer(_state(request.app[API], signed_in_user(request)))


async def send_verification(request: web.Request) -> web.Response:
    """``POST /account/verify-email/send``: email a verification link to the caller's address."""
    ctx, user = request.app[API], signed_in_user(request)
    if user.email_verified:
        return error(409, "your email address is verified already")
    if not can_mail(ctx.settings):
        return error(NO_MAIL_STATUS, "this server sends no email (PINGURA_SMTP_URL is not set)")
    if not _mail_allowed(ctx, user, "verify_email"):
        return error(
            429, "a verification email went out less than a minute ago", headers={"Retry-After": "60"}
        )
    secret = await account_tokens.issue(ctx, user.id, "verify_email")
    send_later(ctx, user, "verify_email", verification_mail(ctx.settings, user, secret))
    return answer(s.MailSent(user.email), status=202)


async def verify_email(request: web.Request, body: s.VerifyEmail) -> web.Response:
    """``POST /account/verify-email`` (public): use a verification link."""
    refuse_cross_site(request)
    ctx = request.app[API]
    token = await account_tokens.redeem(ctx, body.token, "verify_email")
    user = ctx.users.get(token.user_id) if token is not None and token.user_id else None
    if user is None:
        return error(400, BAD_LINK, "token")
    if not user.email_verified:
        user = await save_user(ctx, _replace(user, email_verified=True))
        log.info("auth.email.verified", user_id=user.id)
    return answer(s.Verified(user.email, user.email_verified))


async def request_reset(request: web.Request, body: s.ResetRequest) -> web.Response:
    """``POST /account/password-reset`` (public): email a reset link if the address has an
    account. The answer, and how long it takes, are the same either way."""
    refuse_cross_site(request)
    ctx = request.app[API]
    if not can_mail(ctx.settings):
        return error(NO_MAIL_STATUS, NO_MAIL)
    await ctx.users.sync(2.0)  # made a moment ago elsewhere? Asked for every address: no timing tells
    user = ctx.users.by_email(body.email)
    if user is not None and not user.disabled and _mail_allowed(ctx, user, "reset_password"):
        ctx.account_tokens.later(_send_reset(ctx, user), "mail:reset_password")
    log.info("auth.password_reset.asked", user_id=user.id if user is not None else None)
    return answer(RESET_ACCEPTED, status=202)


async def _send_reset(ctx: ApiContext, user: User) -> None:
    """After the answer: the token is published and the email sent (a failure is logged)."""
    try:
        secret = await account_tokens.issue(ctx, user.id, "reset_password")
    except Exception as exc:  # noqa: BLE001 - after the answer: nobody to tell but the log
        log.warning("auth.mail.failed", kind="reset_password", user_id=user.id, error=str(exc))
        return
    send_later(ctx, user, "reset_password", reset_mail(ctx.settings, user, secret))


async def reset_password(request: web.Request, body: s.ResetPassword) -> web.Response:
    """``POST /account/password-reset/confirm`` (public): a reset link's secret and a new
    password. Every session of the account ends; the page sends the browser to sign in."""
    refuse_cross_site(request)
    ctx = request.app[API]
    token = await account_tokens.find(ctx, body.token, "reset_password")
    user = ctx.users.get(token.user_id) if token is not None and token.user_id else None
    if token is None or user is None or user.disabled or token.created_ms < user.sessions_after_ms:
        return error(400, BAD_LINK, "token")
    password_hash = await asyncio.to_thread(hash_password, body.password)
    if await account_tokens.redeem(ctx, body.token, "reset_password") is None:
        return error(400, BAD_LINK, "token")  # used meanwhile, by another request
    user = ctx.users.get(user.id) or user
    # The link came by email: the address is proven too.
    changed = _replace(user, password_hash=password_hash, email_verified=True, sessions_after_ms=now_ms())
    await save_user(ctx, changed)
    log.info("auth.password.reset", user_id=user.id)
    response = answer(s.Redirect("/login"))
    response.del_cookie(COOKIE, path="/")
    return response


async def change_password(request: web.Request, body: s.PasswordChange) -> web.Response:
    """``POST /account/password``: needs the current password; ends every other session and
    gives this browser a new cookie (the answer of a sign-in)."""
    ctx, user = request.app[API], signed_in_user(request)
    if user.password_hash is None:
        return error(409, "this account signs in through single sign-on and has no password here")
    if not await check_password(user, body.current_password):
        log.info("auth.password.change_refused", user_id=user.id)
        return error(403, "the current password is wrong", "current_password")
    if body.new_password == body.current_password:
        raise InvalidField("new_password", "must differ from the current password")
    password_hash = await asyncio.to_thread(hash_password, body.new_password)
    user = await save_user(ctx, _replace(user, password_hash=password_hash, sessions_after_ms=now_ms()))
    log.info("auth.password.changed", user_id=user.id)
    return await start_session(request, user, request[CALLER].project.id)


def _replace(user: User, **changes) -> User:
    return msgspec.structs.replace(user, **changes)
