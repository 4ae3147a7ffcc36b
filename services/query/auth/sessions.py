"""Dashboard sessions in signed cookies, so no session table has to be kept or shared.

A person's cookie reads ``v2.<session id>.<user id>.<project id>.<issued ms>.<expires ms>.
<csrf seed>.<signature>``; one opened with an API key (the secondary sign-in) reads
``v1.<session id>.<key id>.<expires ms>.<csrf seed>.<signature>``. The signature is
HMAC-SHA256 of everything before it under the server's secret, so a browser can neither
forge a session, nor stretch one, nor move it to another project or user. What a cookie cannot carry is an end before
its expiry: logging out publishes the session id to the ``revoked-sessions`` topic, which
every query instance follows (:mod:`services.query.auth.revocations`), so the cookie is
refused everywhere and after a restart, until it would have expired anyway. The key is
named, not copied: it is looked up on every request, so revoking the key ends its sessions
at once (the ``keys`` topic carries that). A user is named too: every request re-reads the
user (disabled? ``sessions_after_ms`` past the cookie's issue time, as a password change or
"sign out everywhere" sets?) and the membership (the role now), from the ``users`` and
``memberships`` topics, which every instance follows from its start.

The CSRF token is derived from the seed (an HMAC too): the page gets it from
``GET /api/v1/session`` and sends it back in ``X-CSRF-Token``, which another site's form
or script cannot do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import structlog

from services.datadir import SESSION_SECRET_FILE
from services.query.auth.revocations import RevokedSessions
from shared.errors import ConfigError
from shared.settings import Settings

log = structlog.get_logger()

COOKIE = "pingura_session"
CSRF_HEADER = "X-CSRF-Token"
MIN_SECRET_CHARS = 32

_VERSION = "v1"
_USER_VERSION = "v2"
TICKET_TTL_S = 300
_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_MS = re.compile(r"[0-9]{1,15}")  # ASCII digits only, and few enough for any int


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    key_id: str | None
    """The API key it was opened with (None: a user's session)."""
    expires_ms: int
    csrf_seed: str
    user_id: str | None = None
    project_id: str | None = None
    """A user's session is in one project at a time (switching re-issues the cookie)."""
    issued_ms: int = 0

    @property
    def subject(self) -> str:
        """The key or the user it stands for (what the ``revoked-sessions`` record names)."""
        return self.user_id or self.key_id or ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Sessions:
    def __init__(self, secret: bytes, ttl_s: int, revoked: RevokedSessions):
        self._secret = secret
        self.ttl_s = ttl_s
        self.revoked = revoked
        """Sessions signed out before their expiry; a part to start with the service."""

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._secret, text.encode(), hashlib.sha256).digest())

    def issue(self, key_id: str, now_ms: int) -> tuple[Session, str]:
        """A new session for ``key_id`` and its cookie value."""
        session = Session(
            secrets.token_urlsafe(16), key_id, now_ms + self.ttl_s * 1000, secrets.token_urlsafe(16)
        )
        body = ".".join((_VERSION, session.id, key_id, str(session.expires_ms), session.csrf_seed))
        return session, f"{body}.{self._sign(body)}"

    def issue_user(self, user_id: str, project_id: str, now_ms: int) -> tuple[Session, str]:
        """A new session of a person in ``project_id``, and its cookie value."""
        session = Session(
            secrets.token_urlsafe(16),
            None,
            now_ms + self.ttl_s * 1000,
            secrets.token_urlsafe(16),
            user_id,
            project_id,
            now_ms,
        )
        body = ".".join(
            (
                _USER_VERSION,
                session.id,
                user_id,
                project_id,
                str(now_ms),
                str(session.expires_ms),
                session.csrf_seed,
            )
        )
        return session, f"{body}.{self._sign(body)}"

    def read(self, cookie: str | None, now_ms: int) -> Session | None:
        """The session a cookie carries; None if it is malformed, tampered with, expired or logged out."""
        if not cookie or not cookie.isascii():
            return None
        parts = cookie.split(".")
        if (parts[0], len(parts)) not in ((_VERSION, 6), (_USER_VERSION, 8)):
            return None
        body, signature = cookie.rpartition(".")[0], parts[-1]
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        ids, times = (parts[1:3], parts[3:4]) if len(parts) == 6 else (parts[1:4], parts[4:6])
        if not (all(_ID.fullmatch(x) for x in (*ids, parts[-2])) and all(_MS.fullmatch(t) for t in times)):
            return None
        if len(parts) == 6:
            session = Session(parts[1], parts[2], int(parts[3]), parts[4])
        else:
            session = Session(parts[1], None, int(parts[5]), parts[6], parts[2], parts[3], int(parts[4]))
        if session.expires_ms <= now_ms or session.id in self.revoked:
            return None
        return session

    async def revoke(self, session: Session, now_ms: int) -> None:
        """Log out: refused from now until it expires, by every instance (raises
        :class:`shared.bus.BusUnavailable` when that cannot be recorded). The record's
        ``key_id`` names the key, or for a person's session the user."""
        await self.revoked.revoke(session.id, session.subject, session.expires_ms, now_ms)

    def ticket(self, purpose: str, subject: str, now_ms: int, ttl_s: int = TICKET_TTL_S) -> str:
        """A signed, expiring note naming ``subject`` for one ``purpose`` (the sign-in's
        second step): ``<subject>.<issued ms>.<expires ms>.<signature>``."""
        body = f"{subject}.{now_ms}.{now_ms + ttl_s * 1000}"
        return f"{body}.{self._sign(f'ticket.{purpose}.{body}')}"

    def read_ticket(self, purpose: str, ticket: str | None, now_ms: int) -> tuple[str, int] | None:
        """``(subject, issued ms)`` of a ticket of ``purpose`` still valid, else None."""
        if not ticket or not ticket.isascii():
            return None
        parts = ticket.split(".")
        if len(parts) != 4 or not _ID.fullmatch(parts[0]) or not all(_MS.fullmatch(t) for t in parts[1:3]):
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3].encode(), self._sign(f"ticket.{purpose}.{body}").encode()):
            return None
        if int(parts[2]) <= now_ms:
            return None
        return parts[0], int(parts[1])

    def csrf_token(self, session: Session) -> str:
        return self._sign(f"csrf.{session.id}.{session.csrf_seed}")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        if not token or not token.isascii():
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())


def load_secret(settings: Settings) -> bytes:
    """``PINGURA_SESSION_SECRET``, or ``<data-dir>/session-secret`` (made 0600 on first start).

    The file appears whole or not at all (written aside, then linked into place), so two
    processes starting at once agree on one secret."""
    if settings.session_secret is not None:
        if len(settings.session_secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"PINGURA_SESSION_SECRET: use at least {MIN_SECRET_CHARS} random characters")
        return settings.session_secret.encode()
    path = settings.data_dir / SESSION_SECRET_FILE
    if not path.exists():
        _create_secret(path)
    secret = path.read_text().strip()
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(f"{path}: holds no usable secret (delete it to make a new one)")
    return secret.encode()


def _create_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(aside, path)
        log.info("auth.session_secret.created", path=str(path))
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        os.unlink(aside)
