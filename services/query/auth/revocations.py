"""Signed-out sessions, shared by every query instance through the ``revoked-sessions`` topic.

A session cookie is signed, not stored, so signing out cannot delete it: it must be
refused until it expires. ``POST /logout`` publishes a :class:`SessionRevoked` (durable
before the answer), and every instance follows the topic from its start, so a cookie
signed out on one instance is refused by all of them, and after a restart.

Bounded twice: the topic keeps records 30 days (the longest session, see
``shared.settings.MAX_SESSION_TTL_S``), and this view forgets a session once it has expired
anyway (a sweep each time the set has doubled since the last one, so it costs O(1) a logout).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from shared.bus import Bus, Record
from shared.bus.view import TopicFollower, decode_as
from shared.clock import now_ms
from shared.events import SessionRevoked, encode

log = structlog.get_logger()

SWEEP_FLOOR = 1024
"""No sweep below this many entries: a few thousand ids cost less than sweeping them."""


class RevokedSessions:
    def __init__(self, bus: Bus, topic: str, poll_timeout_ms: int = 1000, clock: Callable[[], int] = now_ms):
        self._bus = bus
        self._topic = topic
        self._clock = clock
        self._until: dict[str, int] = {}  # session id -> its expiry
        self._sweep_at = SWEEP_FLOOR
        self._follower = TopicFollower(bus, topic, self._apply, poll_timeout_ms)

    async def start(self) -> None:
        await self._follower.start()
        log.info("auth.revoked_sessions.loaded", sessions=len(self._until))

    async def close(self) -> None:
        await self._follower.close()

    async def sync(self, timeout_s: float = 2.0) -> bool:
        """Wait until every sign-out published so far is applied (False on timeout)."""
        return await self._follower.sync(timeout_s)

    async def revoke(self, session_id: str, key_id: str, expires_ms: int, at_ms: int) -> None:
        """Sign a session out everywhere: published (durably) first, then applied here, so
        this instance refuses the cookie from its next request on. Raises
        :class:`shared.bus.BusUnavailable` when the bus cannot take it."""
        event = SessionRevoked(session_id=session_id, key_id=key_id, expires_ms=expires_ms, at_ms=at_ms)
        await self._bus.publish(self._topic, session_id, encode(event))
        self._put(session_id, expires_ms)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._until

    def __len__(self) -> int:
        return len(self._until)

    def _apply(self, records: list[Record]) -> None:
        for record in records:
            event = decode_as(record, SessionRevoked, "auth.revoked_sessions.poison")
            if event is not None:
                self._put(event.session_id, event.expires_ms)

    def _put(self, session_id: str, expires_ms: int) -> None:
        now = self._clock()
        if expires_ms <= now:
            return  # expired already: the cookie is refused for that
        self._until[session_id] = expires_ms
        if len(self._until) >= self._sweep_at:
            self._until = {sid: until for sid, until in self._until.items() if until > now}
            self._sweep_at = max(SWEEP_FLOOR, 2 * len(self._until))
