"""Single-use secrets sent by email (verify an address, reset a password) or printed at
first start: :class:`~shared.events.AccountToken` records on the ``account-tokens`` topic.

Only the secret's SHA-256 is published (the record's id is derived from it: ``atk_`` + its
first 16 hex digits); the view finds a link's record by that hash. Redeeming one publishes it again
with ``used_ms`` set (the used copy wins in every view: its revision is higher), so it works
once, on this instance at once and on the others as soon as they have read the topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from shared.bus import Bus
from shared.bus.view import ConfigView, cancel_and_wait
from shared.clock import now_ms
from shared.events import AccountToken, AccountTokenPurpose

if TYPE_CHECKING:
    from services.query.api.context import ApiContext

log = structlog.get_logger()

HOUR_MS = 3600 * 1000
TTL_MS: dict[AccountTokenPurpose, int] = {
    "verify_email": 48 * HOUR_MS,
    "reset_password": HOUR_MS,
    "first_run": 24 * HOUR_MS,
}
"""How long each kind of token works (the topic keeps records 7 days: longer than any)."""
MAX_SECRET_CHARS = 200


class AccountTokensView(ConfigView[AccountToken]):
    """id -> the token's newest record (a used copy replaces the unused one).

    Also the part that owns the account emails under way (:meth:`later`): a request that
    sends one does not wait for the SMTP server (a password reset must answer alike whether
    the address has an account or not), and closing waits for them a moment."""

    def __init__(self, bus: Bus, topic: str, poll_timeout_ms: int = 1000):
        super().__init__(bus, topic, AccountToken, _revision, poll_timeout_ms=poll_timeout_ms)
        self.redeeming: set[str] = set()
        """Ids being redeemed here right now: a second request for one is refused."""
        self.noticed_ms: dict[str, int] = {}
        """user id -> when its last failed sign-ins notice went out (at most one an hour)."""
        self._under_way: set[asyncio.Task] = set()
        self._by_hash: dict[str, str] = {}

    def put(self, event: AccountToken) -> bool:
        changed = super().put(event)
        if event.id in self:
            self._by_hash[event.token_hash] = event.id
        return changed

    def by_secret(self, secret: str) -> AccountToken | None:
        """The token whose secret this is (used or not), whatever its id."""
        key = self._by_hash.get(token_hash(secret))
        return None if key is None else self.get(key)

    def later(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` (an email to send) after the answer; it logs its own failures."""
        task = asyncio.create_task(work, name=name)
        self._under_way.add(task)
        task.add_done_callback(self._under_way.discard)

    async def settled(self, timeout_s: float = 10.0) -> None:
        """Wait for the emails under way (up to ``timeout_s``)."""
        if self._under_way:
            await asyncio.wait(list(self._under_way), timeout=timeout_s)

    async def close(self) -> None:
        await self.settled()
        for task in list(self._under_way):
            await cancel_and_wait(task)
        await super().close()


def _revision(token: AccountToken) -> int:
    return 0 if token.used_ms is None else 1


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_id(secret: str) -> str:
    return "atk_" + token_hash(secret)[:16]


async def issue(
    ctx: ApiContext, user_id: str | None, purpose: AccountTokenPurpose, ttl_ms: int | None = None
) -> str:
    """A new token for ``purpose``, published; returns its secret (for the link, never stored)."""
    secret = secrets.token_urlsafe(32)
    at = now_ms()
    token = AccountToken(
        id=token_id(secret),
        user_id=user_id,
        purpose=purpose,
        token_hash=token_hash(secret),
        created_ms=at,
        expires_ms=at + (TTL_MS[purpose] if ttl_ms is None else ttl_ms),
    )
    await ctx.save(ctx.topics.account_tokens, token, ctx.account_tokens)
    log.info("auth.account_token.issued", token_id=token.id, purpose=purpose, user_id=user_id)
    return secret


async def find(ctx: ApiContext, secret: str, purpose: AccountTokenPurpose) -> AccountToken | None:
    """The token ``secret`` stands for if it is of ``purpose``, unused and unexpired; else None.
    Does not use it (see :func:`redeem`)."""
    if not secret or len(secret) > MAX_SECRET_CHARS or not secret.isascii():
        return None
    view = ctx.account_tokens
    token = view.by_secret(secret)
    if token is None and await view.sync(2.0):  # issued a moment ago on another instance?
        token = view.by_secret(secret)
    if (
        token is None
        or token.purpose != purpose
        or not hmac.compare_digest(token.token_hash, token_hash(secret))
        or token.used_ms is not None
        or token.expires_ms <= now_ms()
    ):
        return None
    return token


async def redeem(ctx: ApiContext, secret: str, purpose: AccountTokenPurpose) -> AccountToken | None:
    """Use the token once: the used copy is published (durably) before this returns it.
    None if it is unknown, of another purpose, used, expired or being used right now.

    The view is synced first: a use published by another instance before this call is seen
    (two instances redeeming within the same few milliseconds could still both succeed)."""
    view = ctx.account_tokens
    await view.sync(2.0)
    token = await find(ctx, secret, purpose)
    if token is None or token.id in view.redeeming:
        return None
    current = view.get(token.id)
    if current is None or current.used_ms is not None:  # used while find() waited
        return None
    view.redeeming.add(token.id)
    try:
        used = msgspec.structs.replace(token, used_ms=now_ms())
        await ctx.save(ctx.topics.account_tokens, used, view)
    finally:
        view.redeeming.discard(token.id)
    log.info("auth.account_token.used", token_id=token.id, purpose=purpose, user_id=token.user_id)
    return used
