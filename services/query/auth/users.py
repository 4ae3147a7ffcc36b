"""People and their roles: passwords (argon2id), creating and saving users, granting and
removing memberships. The writes publish to the ``users`` and ``memberships`` topics (the
source of truth) and put the record into this process's views, so the next request here
sees it; other query instances follow the topics within milliseconds.

A password is kept only as an argon2id hash (a PHC string: it names its own parameters),
made by argon2-cffi's :class:`~argon2.PasswordHasher` with its defaults (RFC 9106's low-memory
choice: 3 passes, 64 MiB, 4 lanes). When those defaults change, a successful sign-in rehashes
the password under the new ones (:func:`needs_rehash`).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import msgspec
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.query.validation import InvalidField
from shared.clock import now_ms
from shared.errors import PinguraError
from shared.events import Membership, Role, User
from shared.ids import new_id

if TYPE_CHECKING:
    from services.query.api.context import ApiContext

log = structlog.get_logger()

_hasher = PasswordHasher()
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
"""Longer ones are refused before hashing: a megabyte "password" is only a way to make work."""
MAX_EMAIL_CHARS = 254
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
# A valid hash of nothing anyone types: an unknown email is checked against it, so that it
# costs what a wrong password costs and the two answers cannot be told apart by time.
_DUMMY_HASH = _hasher.hash("pingura: no such user " + new_id("x"))


class UserExists(PinguraError):
    """The email belongs to another user already (answer 409)."""


def hash_password(password: str) -> str:
    """argon2id, as a PHC string (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one hashed (False for no hash or a broken one)."""
    if not password_hash or len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def check_password(user: User | None, password: str) -> bool:
    """:func:`verify_password` off the event loop (a check takes tens of milliseconds of CPU);
    an unknown user (None) costs the same and is False."""
    password_hash = user.password_hash if user is not None else None
    if user is None or not password_hash:
        await asyncio.to_thread(verify_password, _DUMMY_HASH, password)
        return False
    return await asyncio.to_thread(verify_password, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def check_new_password(password: str, field: str = "password") -> str:
    """A password one may choose: 10 to 1,024 characters (an InvalidField otherwise)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidField(field, f"must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidField(field, f"must be at most {MAX_PASSWORD_CHARS} characters")
    return password


def normalize_email(email: str, field: str = "email") -> str:
    """Trimmed and lower-cased, and shaped like an address (an InvalidField otherwise)."""
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(email):
        raise InvalidField(field, "must be an email address (name@example.org)")
    return email


async def create_user(
    ctx: ApiContext, email: str, name: str = "", password: str | None = None, verified: bool = False
) -> User:
    """A new user (``usr_`` + 16 hex digits), published; :class:`UserExists` if the email is
    taken. ``password``: in clear, hashed here (None: signs in only by single sign-on)."""
    email = normalize_email(email)
    if ctx.users.by_email(email) is not None:
        raise UserExists(f"email: {email} has an account already")
    at = now_ms()
    user = User(
        id=new_id("usr"),
        email=email,
        name=name.strip(),
        password_hash=None if password is None else await asyncio.to_thread(hash_password, password),
        email_verified=verified,
        created_ms=at,
        updated_ms=at,
    )
    await ctx.save(ctx.topics.users, user, ctx.users)
    log.info("auth.user.created", user_id=user.id)
    return user


async def save_user(ctx: ApiContext, user: User) -> User:
    """Publish a changed user (revision + 1, ``updated_ms`` now) and return what was saved.
    Changing the email to one another user has raises :class:`UserExists`."""
    owner = ctx.users.by_email(user.email)
    if owner is not None and owner.id != user.id:
        raise UserExists(f"email: {user.email} has an account already")
    current = ctx.users.get(user.id)
    revision = max(user.revision, current.revision if current is not None else 0) + 1
    saved = msgspec.structs.replace(user, revision=revision, updated_ms=max(now_ms(), user.updated_ms))
    await ctx.save(ctx.topics.users, saved, ctx.users)
    return saved


async def set_role(ctx: ApiContext, project_id: str, user_id: str, role: Role, by: str | None) -> Membership:
    """Make ``user_id`` a member of ``project_id`` with ``role`` (or change the role);
    ``by``: who granted it (a user id, ``sso``, ``setup``)."""
    current = ctx.memberships.role(project_id, user_id)
    at = now_ms() if current is None else max(now_ms(), current.updated_ms + 1)
    membership = Membership(
        project_id=project_id,
        user_id=user_id,
        role=role,
        by=by,
        created_ms=current.created_ms if current is not None else at,
        updated_ms=at,
    )
    await ctx.save(ctx.topics.memberships, membership, ctx.memberships)
    log.info("auth.member.role", project_id=project_id, user_id=user_id, role=role)
    return membership


async def remove_member(ctx: ApiContext, project_id: str, user_id: str) -> Membership | None:
    """Take ``user_id`` out of ``project_id``: its sessions there are refused from the next
    request on. None when it was no member."""
    current = ctx.memberships.role(project_id, user_id)
    if current is None:
        return None
    removed = msgspec.structs.replace(current, deleted=True, updated_ms=max(now_ms(), current.updated_ms + 1))
    await ctx.save(ctx.topics.memberships, removed, ctx.memberships)
    log.info("auth.member.removed", project_id=project_id, user_id=user_id)
    return removed
