"""Setting poison records aside: logged, counted, copied to the ``dead-letters`` topic.

A record nobody can decode would fail the same way forever; retrying it would stall its
partition for every monitor behind it. Consumers call :meth:`DeadLetters.set_aside` and
then :meth:`flush` before they commit, so the copy is durable before the offset moves.
"""

from __future__ import annotations

import base64

import structlog

from shared.bus.base import Bus, BusUnavailable, Record
from shared.clock import now_ms
from shared.events import DeadLetter, encode
from shared.topics import Topics

log = structlog.get_logger()


class DeadLetters:
    def __init__(self, bus: Bus, topics: Topics, service: str):
        self._bus = bus
        self._topic = topics.dead_letters
        self._service = service
        self._pending: list[tuple[str, bytes]] = []
        self.count = 0

    def set_aside(self, record: Record, error: str) -> None:
        self.count += 1
        log.error(
            f"{self._service}.record.dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error[:500],
        )
        letter = DeadLetter(
            service=self._service,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error[:2000],
            value_b64=base64.b64encode(record.value).decode(),
            at_ms=now_ms(),
        )
        self._pending.append((record.key, encode(letter)))

    async def flush(self) -> None:
        """Publish what was set aside; raises BusUnavailable (then the caller must not commit)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        try:
            await self._bus.publish_many(self._topic, pending)
        except BusUnavailable:
            self._pending = pending + self._pending
            raise
