"""Who a single sign-on is: the user an OpenID Connect identity or a proxy's header names,
and the roles the identity provider's groups give.

An OpenID Connect identity is ``{issuer}|{sub}`` (``User.sso_subject``). The first time one
signs in it is linked to the user with its email, if the provider says the email is
verified (an unverified email could be anyone's), or else a new user is made with it (no
password: that user signs in through the provider). Groups (``PINGURA_OIDC_ROLES``) are
applied at every sign-in to the projects the mapping names: a membership made by the
mapping (``by="sso"``) follows the groups (granted, changed, removed); one made by a person
in Pingura (an invitation, an admin) is theirs and left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from aiohttp import web

from services.query.audit import record_change
from services.query.auth.oidc import SignInRefused
from services.query.auth.users import (
    UserExists,
    create_user,
    normalize_email,
    remove_member,
    save_user,
    set_role,
)
from services.query.validation import InvalidField
from shared.events import ROLES, Role, User

if TYPE_CHECKING:
    from services.query.api.context import ApiContext

log = structlog.get_logger()

SSO = "sso"
"""``Membership.by`` of the memberships the group mapping made."""
ACTOR = ("system", SSO, "single sign-on (identity provider groups)")
"""Who the audit log says changed a membership the mapping made."""


def _email(raw: Any) -> str:
    if not isinstance(raw, str):
        raise SignInRefused(
            "the identity provider sent no email for this account (is the email scope granted?)"
        )
    try:
        return normalize_email(raw)
    except InvalidField:
        raise SignInRefused("the identity provider's email for this account is not an address") from None


async def oidc_user(ctx: ApiContext, subject: str, claims: dict[str, Any]) -> User:
    """The user ``subject`` is linked to, else the one it links to by a verified email, else a
    new one; :class:`SignInRefused` when none can be (no email, an unverified email that
    has an account, an account linked to another identity)."""
    user = ctx.users.by_subject(subject)
    if user is None and await ctx.users.sync(2.0):  # linked a moment ago on another instance?
        user = ctx.users.by_subject(subject)
    if user is not None:
        return user
    email = _email(claims.get("email"))
    verified = claims.get("email_verified") is True
    existing = ctx.users.by_email(email)
    if existing is not None:
        if existing.sso_subject is not None:
            raise SignInRefused(
                f"the account of {email} signs in with another single sign-on identity; ask an admin"
            )
        if not verified:
            raise SignInRefused(
                f"an account with {email} exists here, and the identity provider does not say it "
                "verified the address, so it is not linked; ask an admin"
            )
        linked = await save_user(
            ctx, msgspec.structs.replace(existing, sso_subject=subject, email_verified=True)
        )
        log.info("auth.sso.linked", user_id=linked.id)
        return linked
    name = claims.get("name") if isinstance(claims.get("name"), str) else ""
    try:
        made = await create_user(ctx, email, name=str(name)[:200], verified=verified)
    except UserExists:
        raise SignInRefused(f"an account with {email} was made a moment ago; sign in again") from None
    made = await save_user(ctx, msgspec.structs.replace(made, sso_subject=subject))
    log.info("auth.sso.created", user_id=made.id)
    return made


def groups_of(claims: dict[str, Any], claim: str) -> set[str]:
    """The groups claim as a set: a list of names (most providers), or one name."""
    value = claims.get(claim)
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {g for g in value if isinstance(g, str)}
    return set()


def mapped_roles(ctx: ApiContext, groups: set[str]) -> dict[str, Role | None]:
    """Each project the mapping names -> the highest role the groups give there (None: none)."""
    wanted: dict[str, Role | None] = {}
    for line in ctx.settings.oidc_roles:
        current = wanted.setdefault(line.project_id, None)
        if line.group in groups and (current is None or ROLES.index(line.role) > ROLES.index(current)):
            wanted[line.project_id] = line.role
    return wanted


async def apply_groups(request: web.Request, ctx: ApiContext, user: User, groups: set[str]) -> None:
    """Grant, change or remove the mapping's memberships of ``user`` to match ``groups``; each
    change goes to the project's audit log, made by ``system``/``sso``."""
    for project_id, role in mapped_roles(ctx, groups).items():
        if project_id not in ctx.projects:
            log.warning("auth.sso.unknown_project", project_id=project_id)
            continue
        current = ctx.memberships.role(project_id, user.id)
        if current is not None and current.by != SSO:
            continue  # granted by a person in Pingura: theirs to change
        if role is None:
            if current is None:
                continue
            after, action = await remove_member(ctx, project_id, user.id), "member.remove"
        elif current is None or current.role != role:
            after = await set_role(ctx, project_id, user.id, role, by=SSO)
            action = "member.create" if current is None else "member.update"
        else:
            continue
        log.info("auth.sso.role", project_id=project_id, user_id=user.id, role=role)
        await record_change(
            request, action, "member", user.id, current, after, project_id=project_id, actor=ACTOR
        )
