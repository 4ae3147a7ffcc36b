"""Invitations to a project (issue 20): made by an admin for an email and a role, sent as a
link ``/invite#token=...`` whose secret is kept only as its SHA-256 (the ``invitations``
topic), good for :data:`INVITATION_TTL_MS` and once. Accepting makes the membership and
opens the person's session in the project.

The link goes out by email (:mod:`services.query.auth.mailer`). When it cannot (no SMTP
server, or the server refused), the answer to the admin holds the link, once, to pass on:
a team without mail can still invite.
"""

from __future__ import annotations

import secrets

import msgspec
import structlog
from aiohttp import web

from services.notifier.channels import TransportError
from services.query.api.context import API, CALLER, PROJECT
from services.query.api.errors import answer, error, one_line
from services.query.api.schemas import members as m
from services.query.audit import record_change
from services.query.auth.invitations import token_hash
from services.query.auth.mailer import MailUnavailable, send_account_mail
from services.query.auth.routes import same_origin
from services.query.auth.sessions import COOKIE
from services.query.auth.signin import second_factor_or_session, start_session
from services.query.auth.throttle import Throttled, client_address
from services.query.auth.users import UserExists, check_new_password, check_password, create_user, set_role
from shared.clock import iso_ms, now_ms
from shared.events import Invitation, User

log = structlog.get_logger()

INVITATION_TTL_MS = 7 * 24 * 3600 * 1000
TOKEN_BYTES = 32


def _shown(request: web.Request, invitation: Invitation, at_ms: int) -> dict:
    ctx = request.app[API]
    inviter = ctx.users.get(invitation.invited_by)
    key = ctx.keys.get(invitation.invited_by) if inviter is None else None
    return {
        "id": invitation.id,
        "email": invitation.email,
        "role": invitation.role,
        "invited_by": inviter.email
        if inviter is not None
        else key.name
        if key is not None
        else invitation.invited_by,
        "created_at": iso_ms(invitation.created_ms),
        "expires_at": iso_ms(invitation.expires_ms),
        "expired": invitation.expires_ms <= at_ms,
    }


def _pending(invitation: Invitation) -> bool:
    return invitation.accepted_by is None and not invitation.revoked


async def list_invitations(request: web.Request) -> web.Response:
    ctx, at = request.app[API], now_ms()
    waiting = [i for i in ctx.invitations.of_project(request[PROJECT].id) if _pending(i)]
    return answer(m.InvitationList(invitations=[m.Invitation(**_shown(request, i, at)) for i in waiting]))


async def _settle(request: web.Request, invitation: Invitation, **changes) -> Invitation:
    ctx = request.app[API]
    settled = msgspec.structs.replace(invitation, **changes)
    await ctx.save(ctx.topics.invitations, settled, ctx.invitations)
    return settled


def _mail_text(project_name: str, role: str, inviter: str, link: str) -> str:
    return (
        f"{inviter} invites you to the project {project_name} on Pingura, as {role}.\n\n"
        f"Accept within 7 days (the link works once):\n{link}\n\n"
        "If you did not expect this, ignore this email.\n"
    )


async def create_invitation(request: web.Request, body: m.InvitationCreate) -> web.Response:
    ctx, project, caller = request.app[API], request[PROJECT], request[CALLER]
    if body.role == "owner" and not caller.may("owner"):
        return error(403, f"only an owner can invite an owner (the caller is {caller.role})", "role")
    user = ctx.users.by_email(body.email)
    if user is not None and ctx.memberships.role(project.id, user.id) is not None:
        return error(409, f"{body.email} is a member of this project already", "email")
    for older in ctx.invitations.of_project(project.id):  # one waiting invitation per email
        if older.email == body.email and _pending(older):
            await _settle(request, older, revoked=True)
    token, at = secrets.token_urlsafe(TOKEN_BYTES), now_ms()
    invitation = Invitation(
        id=f"inv_{secrets.token_hex(8)}",
        project_id=project.id,
        email=body.email,
        role=body.role,
        token_hash=token_hash(token),
        invited_by=caller.actor[1],
        created_ms=at,
        expires_ms=at + INVITATION_TTL_MS,
    )
    await ctx.save(ctx.topics.invitations, invitation, ctx.invitations)
    await record_change(request, "invitation.create", "invitation", invitation.id, None, invitation)
    # In the fragment, as the other emailed links: never sent to a server, nor in a Referer.
    link = f"{ctx.settings.ping_base_url}/invite#token={token}"
    mail_error = None
    try:
        text = _mail_text(project.name, body.role, caller.actor[2], link)
        await send_account_mail(ctx.settings, body.email, f"Join {project.name} on Pingura", text)
    except (MailUnavailable, TransportError) as exc:
        mail_error = one_line(str(exc))
    log.info(
        "query.invitation.created", project_id=project.id, invitation_id=invitation.id, emailed=not mail_error
    )
    shown = _shown(request, invitation, at)
    made = m.InvitationCreated(**shown, emailed=mail_error is None, link=link if mail_error else None,
                               mail_error=mail_error)  # fmt: skip
    return answer(made, status=201)


async def revoke_invitation(request: web.Request) -> web.Response:
    ctx = request.app[API]
    invitation = ctx.invitations.get(request.match_info["id"])
    if invitation is None or invitation.project_id != request[PROJECT].id:
        return error(404, "invitation not found")
    if invitation.accepted_by is not None:
        return error(409, "this invitation was accepted already: remove the member instead")
    if not invitation.revoked:
        revoked = await _settle(request, invitation, revoked=True)
        log.info("query.invitation.revoked", project_id=invitation.project_id, invitation_id=invitation.id)
        await record_change(request, "invitation.revoke", "invitation", invitation.id, invitation, revoked)
    return web.Response(status=204)


def _usable(request: web.Request, token: str) -> Invitation | web.Response:
    """The invitation of a link that still works, or the refusal saying why not."""
    invitation = request.app[API].invitations.by_token(token)
    if invitation is None:
        return error(404, "no such invitation; check the link (it must be copied whole)")
    if invitation.accepted_by is not None:
        return error(410, "this invitation was used already; sign in instead")
    if invitation.revoked:
        return error(410, "this invitation was revoked; ask for a new one")
    if invitation.expires_ms <= now_ms():
        return error(410, "this invitation has expired; ask for a new one")
    if invitation.project_id not in request.app[API].projects:
        return error(410, "the project of this invitation no longer exists")
    return invitation


def _signed_in(request: web.Request) -> User | None:
    """The person this browser's session cookie names, if it is valid."""
    ctx = request.app[API]
    session = ctx.sessions.read(request.cookies.get(COOKIE), now_ms())
    if session is None or session.user_id is None:
        return None
    user = ctx.users.get(session.user_id)
    if user is None or user.disabled or session.issued_ms < user.sessions_after_ms:
        return None
    return user


async def preview_invitation(request: web.Request, body: m.InvitationToken) -> web.Response:
    found = _usable(request, body.token)
    if isinstance(found, web.Response):
        return found
    ctx = request.app[API]
    project = ctx.projects[found.project_id]
    signed_in = _signed_in(request)
    preview = m.InvitationPreview(
        project_name=project.name,
        role=found.role,
        email=found.email,
        account_exists=ctx.users.by_email(found.email) is not None,
        signed_in_as=signed_in.email if signed_in is not None else None,
        expires_at=iso_ms(found.expires_ms),
    )
    return answer(preview, headers={"Cache-Control": "no-store"})


async def _person(
    request: web.Request, invitation: Invitation, body: m.InvitationAccept
) -> User | web.Response:
    """The account accepting: the invited email's (signed in as it, or its password given),
    or a new one made with the name and password given."""
    ctx = request.app[API]
    user = ctx.users.by_email(invitation.email)
    if user is None:
        if isinstance(body.password, msgspec.UnsetType):
            return error(400, "password: required to make your account", "password")
        if isinstance(body.name, msgspec.UnsetType) or not body.name:
            return error(400, "name: required to make your account", "name")
        try:
            return await create_user(
                ctx, invitation.email, body.name, check_new_password(body.password), verified=True
            )
        except UserExists:  # made a moment ago (the link used twice at once): sign in as it instead
            return error(409, "an account with this email was just made; sign in, then open the link again")
    signed_in = _signed_in(request)
    if signed_in is not None and signed_in.id == user.id:
        return user
    if isinstance(body.password, msgspec.UnsetType):
        return error(403, f"sign in as {invitation.email} first, or give its password", "password")
    # The sign-in's limits: a link does not buy more password guesses than the sign-in page.
    throttle, address = ctx.sign_ins, client_address(request, ctx.settings.trusted_proxies)
    assert throttle is not None  # made by ApiContext
    try:
        throttle.check(address, user.email)
    except Throttled as exc:
        return error(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    if not await check_password(user, body.password):
        throttle.failed(address, user.email)
        log.info("query.invitation.wrong_password", invitation_id=invitation.id, user_id=user.id)
        return error(403, f"wrong password for {invitation.email}", "password")
    return user


async def accept_invitation(request: web.Request, body: m.InvitationAccept) -> web.Response:
    if not same_origin(request, request.app[API]):  # another site's page signing this browser in
        return error(403, "refused: sent from another site's page")
    found = _usable(request, body.token)
    if isinstance(found, web.Response):
        return found
    ctx = request.app[API]
    person = await _person(request, found, body)
    if isinstance(person, web.Response):
        return person
    if person.disabled:
        return error(403, "this account is disabled; ask an admin of your project")
    if _usable(request, body.token) is not found:  # used or revoked while the password was checked
        return error(410, "this invitation was used already; sign in instead")
    await _settle(request, found, accepted_by=person.id)
    current = ctx.memberships.role(found.project_id, person.id)
    membership = current
    if current is None:  # a member already keeps the role they have
        membership = await set_role(ctx, found.project_id, person.id, found.role, found.invited_by)
    log.info(
        "query.invitation.accepted", project_id=found.project_id, invitation_id=found.id, user_id=person.id
    )
    actor = ("user", person.id, person.email)
    await record_change(request, "invitation.accept", "member", person.id, current, membership,
                        project_id=found.project_id, actor=actor)  # fmt: skip
    if _signed_in(request) is not None:
        return await start_session(request, person, found.project_id)
    return await second_factor_or_session(request, person, found.project_id)
