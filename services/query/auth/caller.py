"""Who is calling: the project and key behind a request, from its key header or its session cookie.

A person's session names the user and the project; each request re-reads both: a disabled
user, or one whose ``sessions_after_ms`` is past the cookie's issue time (a password change,
"sign out everywhere"), is refused (403 and 401), and the role is the membership's now (a
removed member is refused at once, 403).

A key header wins; the session cookie counts only when no key is sent, so a script's
key never mixes with a browser's session. An ``Authorization`` header of another scheme
(``Basic``, from a proxy asking for a password in front of Pingura) is left to that proxy:
the cookie still counts, and only without one is it named as the problem. Every refusal
says in one line what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from services.query.auth.keys import KeyIndex, ProjectsView
from services.query.auth.people import MembershipsView, UsersView
from services.query.auth.sessions import COOKIE, Session, Sessions
from shared.errors import PinguraError
from shared.events import ApiKey, ProjectConfig, Role, User, role_at_least

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Unauthenticated(PinguraError):
    """No usable credentials; the message is the one-line reason for the 401."""

    status = 401


class Refused(Unauthenticated):
    """Known, but not let in (a disabled user, a removed member): 403, one line."""

    status = 403


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, in which project, with which role: a key (``key``), or a person
    (``user``, through a session). A read-only key acts as a ``viewer``, a read-write key as
    an ``admin`` (:data:`shared.events.Role`)."""

    project: ProjectConfig
    key: ApiKey | None
    session: Session | None = None
    """Set when the request came with a session cookie rather than a key."""
    user: User | None = None
    role: Role = "admin"

    @staticmethod
    def of_key(project: ProjectConfig, key: ApiKey, session: Session | None = None) -> Caller:
        return Caller(project, key, session, None, "viewer" if key.read_only else "admin")

    @property
    def read_only(self) -> bool:
        return not role_at_least(self.role, "member")

    def may(self, needed: Role) -> bool:
        return role_at_least(self.role, needed)

    @property
    def actor(self) -> tuple[Literal["user", "key"], str, str]:
        """``(kind, id, name)`` for the audit log: the user's email, or the key's name."""
        if self.user is not None:
            return "user", self.user.id, self.user.email
        assert self.key is not None  # a caller is a user or a key
        return "key", self.key.id, self.key.name


def key_from_headers(headers: Mapping[str, str]) -> str:
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("X-Api-Key", "").strip()


async def authenticate(
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    now_ms: int,
    keys: KeyIndex,
    projects: ProjectsView,
    sessions: Sessions,
    address: str | None = None,
    users: UsersView | None = None,
    memberships: MembershipsView | None = None,
) -> Caller:
    """The caller, or :class:`Unauthenticated` with the reason. A wrong key counts against
    the client's ``address`` (:class:`~services.query.auth.throttle.Throttled` past the limit)."""
    secret = key_from_headers(headers)
    if secret:
        key = await keys.resolve(secret, address)
        if key is None:
            raise Unauthenticated("unknown or revoked API key")
        return Caller.of_key(await _project(projects, key), key)
    cookie = cookies.get(COOKIE)
    if not cookie:
        if headers.get("Authorization", "").strip():
            raise Unauthenticated("Authorization header must be 'Bearer <key>' (or send X-Api-Key: <key>)")
        raise Unauthenticated("missing API key (send Authorization: Bearer <key> or X-Api-Key: <key>)")
    session = sessions.read(cookie, now_ms)
    if session is None:
        raise Unauthenticated("session expired or logged out; log in again")
    if session.user_id is not None:
        if users is None or memberships is None:
            raise Unauthenticated("this server takes no user sessions here; use an API key")
        return await _person(session, projects, users, memberships)
    key = keys.get(session.key_id or "")
    if key is None:
        raise Unauthenticated("the API key of this session was revoked; log in again")
    return Caller.of_key(await _project(projects, key), key, session)


async def _person(
    session: Session, projects: ProjectsView, users: UsersView, memberships: MembershipsView
) -> Caller:
    assert session.user_id is not None and session.project_id is not None
    user = users.get(session.user_id)
    if user is None and await users.sync(2.0):  # made a moment ago, elsewhere
        user = users.get(session.user_id)
    if user is None:
        raise Unauthenticated("this account no longer exists; sign in again")
    if user.disabled:
        raise Refused("this account is disabled; ask an admin of your project")
    if session.issued_ms < user.sessions_after_ms:
        raise Unauthenticated(
            "this session was ended (password changed or signed out everywhere); sign in again"
        )
    membership = memberships.role(session.project_id, user.id)
    if membership is None and await memberships.sync(2.0):
        membership = memberships.role(session.project_id, user.id)
    if membership is None:
        raise Refused("you are not a member of this project (any more); sign in again")
    project = projects.get(session.project_id)
    if project is None and await projects.sync(2.0):
        project = projects.get(session.project_id)
    if project is None:
        raise Refused("the project of this session does not exist; sign in again")
    return Caller(project, None, session, user, membership.role)


async def _project(projects: ProjectsView, key: ApiKey) -> ProjectConfig:
    project = projects.get(key.project_id)
    if project is None and await projects.sync(2.0):  # made a moment ago, elsewhere
        project = projects.get(key.project_id)
    if project is None:
        raise Unauthenticated("the project of this API key does not exist")
    return project
