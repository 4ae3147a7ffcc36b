"""Handlers of two-factor sign-in: enrol (a secret shown once, with its QR code), confirm with
a first code (which switches it on and shows ten recovery codes once), disable, new recovery
codes, and the sign-in's second step (``POST /auth/sign-in/totp``).

See :mod:`services.query.auth.totp` for how the secret is sealed and why a code works once.
Wrong codes at the sign-in step count against the same per-address and per-account limits
as wrong passwords (429 with ``Retry-After``); the account that runs out is told by email
(:func:`~services.query.auth.account_mail.note_failed_sign_in`).
"""

from __future__ import annotations

import time

import msgspec
import structlog
from aiohttp import web
from msgspec import UNSET

from services.query.api.account_recovery import refuse_cross_site, signed_in_user
from services.query.api.context import API, ApiContext
from services.query.api.errors import answer, error
from services.query.api.schemas import account_security as s
from services.query.auth import totp
from services.query.auth.account_mail import note_failed_sign_in
from services.query.auth.sessions import load_secret
from services.query.auth.signin import read_ticket, start_session
from services.query.auth.throttle import Throttled, client_address
from services.query.auth.users import check_password, save_user
from shared.clock import now_ms
from shared.events import User

log = structlog.get_logger()

WRONG_CODE = "wrong or already used code"
BUSY = "another check of this account's code is under way; retry"


def sealer(ctx: ApiContext) -> totp.Sealer:
    return totp.Sealer(load_secret(ctx.settings))


async def prove(ctx: ApiContext, user: User, proof: s.SecondFactorProof | s.TotpSignIn) -> User | None:
    """The user as saved after a good code (its step recorded) or recovery code (dropped),
    or a good password (unchanged); None if the proof is wrong. One check per user at a time."""
    busy = f"totp:{user.id}"
    if busy in ctx.account_tokens.redeeming:
        return None
    ctx.account_tokens.redeeming.add(busy)
    try:
        await ctx.users.sync(2.0)  # a code or recovery code used on another instance is seen
        user = ctx.users.get(user.id) or user  # the newest: its last step, its codes left
        if proof.code is not UNSET and user.totp_sealed:
            secret = totp.open_secret(sealer(ctx), user.id, user.totp_sealed)
            step = (
                None
                if secret is None
                else totp.accepted_step(secret, proof.code, time.time(), user.totp_last_step)
            )
            return None if step is None else await save_user(ctx, _replace(user, totp_last_step=step))
        if proof.recovery_code is not UNSET and user.totp_sealed:
            left = totp.use_recovery_code(user.recovery_code_hashes, proof.recovery_code)
            if left is None:
                return None
            log.info("auth.totp.recovery_code_used", user_id=user.id, left=len(left))
            return await save_user(ctx, _replace(user, recovery_code_hashes=left))
        password = getattr(proof, "password", UNSET)
        if password is not UNSET and await check_password(user, password):
            return user
        return None
    finally:
        ctx.account_tokens.redeeming.discard(busy)


def _one_proof(proof: s.SecondFactorProof | s.TotpSignIn) -> web.Response | None:
    given = [
        v for v in (proof.code, proof.recovery_code, getattr(proof, "password", UNSET)) if v is not UNSET
    ]
    if len(given) != 1:
        fields = (
            "code, recovery_code or password"
            if isinstance(proof, s.SecondFactorProof)
            else "code or recovery_code"
        )
        return error(400, f"send one of {fields}", "code")
    return None


async def enrol(request: web.Request) -> web.Response:
    """``POST /account/totp/enrol``: a new secret, shown only in this answer."""
    ctx, user = request.app[API], signed_in_user(request)
    if user.totp_sealed:
        return error(409, "two-factor sign-in is on already; disable it first to enrol again")
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, user.email)
    log.info("auth.totp.enrol_started", user_id=user.id)
    return answer(
        s.TotpEnrolment(
            secret=secret,
            otpauth_uri=uri,
            qr_svg=totp.qr_svg(uri),
            pending=totp.seal_pending(sealer(ctx), user.id, secret, now_ms()),
        )
    )


async def confirm(request: web.Request, body: s.TotpConfirm) -> web.Response:
    """``POST /account/totp/confirm``: the first code switches it on; the answer holds the
    recovery codes, shown only now."""
    ctx, user = request.app[API], signed_in_user(request)
    if user.totp_sealed:
        return error(409, "two-factor sign-in is on already")
    secret = totp.open_pending(sealer(ctx), user.id, body.pending, now_ms())
    if secret is None:
        return error(400, "this enrolment is not yours or is over 15 minutes old; start again", "pending")
    step = totp.accepted_step(secret, body.code, time.time(), 0)
    if step is None:
        return error(400, "wrong code: check the app's clock, and that the code is this account's", "code")
    codes = totp.new_recovery_codes()
    await save_user(
        ctx,
        _replace(
            user,
            totp_sealed=totp.seal_secret(sealer(ctx), user.id, secret),
            totp_last_step=step,
            recovery_code_hashes=[totp.recovery_hash(c) for c in codes],
        ),
    )
    log.info("auth.totp.enabled", user_id=user.id)
    return answer(s.RecoveryCodes(codes))


async def disable(request: web.Request, body: s.SecondFactorProof) -> web.Response:
    """``POST /account/totp/disable``: needs a code, a recovery code or the password."""
    ctx, user = request.app[API], signed_in_user(request)
    refused = _one_proof(body)
    if refused is not None:
        return refused
    if not user.totp_sealed:
        return error(409, "two-factor sign-in is off already")
    proven = await prove(ctx, user, body)
    if proven is None:
        return error(403, "wrong code, recovery code or password", "code")
    await save_user(ctx, _replace(proven, totp_sealed=None, recovery_code_hashes=[]))
    log.info("auth.totp.disabled", user_id=user.id)
    return web.Response(status=204)


async def new_recovery_codes(request: web.Request, body: s.SecondFactorProof) -> web.Response:
    """``POST /account/totp/recovery-codes``: ten new codes (the old ones stop working)."""
    ctx, user = request.app[API], signed_in_user(request)
    refused = _one_proof(body)
    if refused is not None:
        return refused
    if not user.totp_sealed:
        return error(409, "two-factor sign-in is off: there are no recovery codes")
    proven = await prove(ctx, user, body)
    if proven is None:
        return error(403, "wrong code, recovery code or password", "code")
    codes = totp.new_recovery_codes()
    await save_user(ctx, _replace(proven, recovery_code_hashes=[totp.recovery_hash(c) for c in codes]))
    log.info("auth.totp.recovery_codes_renewed", user_id=user.id)
    return answer(s.RecoveryCodes(codes))


async def sign_in_totp(request: web.Request, body: s.TotpSignIn) -> web.Response:
    """``POST /auth/sign-in/totp`` (public): the ticket of the password step and a code (or a
    recovery code); the answer is the session's, as any sign-in's."""
    refuse_cross_site(request)
    ctx = request.app[API]
    refused = _one_proof(body)
    if refused is not None:
        return refused
    user_id = read_ticket(ctx, body.ticket)
    user = ctx.users.get(user_id) if user_id is not None else None
    if user is None or not user.totp_sealed:
        return error(401, "this sign-in has expired (5 minutes); sign in again", "ticket")
    address = client_address(request, ctx.settings.trusted_proxies)
    throttle = ctx.sign_ins
    try:
        if throttle is not None:
            throttle.check(address, user.email)
    except Throttled as exc:
        return error(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    proven = await prove(ctx, user, body)
    if proven is None:
        log.info("auth.totp.refused", user_id=user.id)
        await _count_failure(ctx, user, address)
        return error(401, WRONG_CODE, "code")
    return await start_session(request, proven)


async def _count_failure(ctx: ApiContext, user: User, address: str) -> None:
    throttle = ctx.sign_ins
    if throttle is not None and throttle.failed(address, user.email):  # this one ran the account out
        await note_failed_sign_in(ctx, user, address)


def _replace(user: User, **changes) -> User:
    return msgspec.structs.replace(user, **changes)
