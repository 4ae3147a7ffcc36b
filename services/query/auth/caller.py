"""Who is calling: the project and key behind a request, from its key header or its session cookie.

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
from services.query.auth.sessions import COOKIE, Session, Sessions
from shared.errors import PinguraError
from shared.events import ApiKey, ProjectConfig, Role, User, role_at_least

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Unauthenticated(PinguraError):
    """No usable credentials; the message is the one-line reason for the 401."""


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
    key = keys.get(session.key_id)
    if key is None:
        raise Unauthenticated("the API key of this session was revoked; log in again")
    return Caller.of_key(await _project(projects, key), key, session)


async def _project(projects: ProjectsView, key: ApiKey) -> ProjectConfig:
    project = projects.get(key.project_id)
    if project is None and await projects.sync(2.0):  # made a moment ago, elsewhere
        project = projects.get(key.project_id)
    if project is None:
        raise Unauthenticated("the project of this API key does not exist")
    return project
