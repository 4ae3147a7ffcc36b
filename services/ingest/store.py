"""Ingest's view of the ping tokens, built from the compacted ``monitors`` topic.

Known tokens are answered from memory (no database round trip per ping). Keys are the
24 decoded token bytes, so a million monitors cost well under 200 MB. An unknown token
may belong to a monitor created a moment ago, so before answering 404 the view makes
sure it has read the topic to its end (a bounded wait; on the embedded bus the end is
in memory, on Kafka it costs one offsets request, only for unknown tokens).
"""

from __future__ import annotations

import asyncio
import time

import structlog

from shared.bus import Bus, Consumer
from shared.events import MonitorConfig, decode
from shared.ids import token_key
from shared.topics import Topics

log = structlog.get_logger()


class TokenIndex:
    def __init__(self, bus: Bus, topics: Topics, wait_s: float = 2.0):
        self._bus = bus
        self._topics = topics
        self._wait_s = wait_s
        self._by_key: dict[bytes, tuple[str, str]] = {}
        self._key_of: dict[str, bytes] = {}
        self._revision: dict[str, int] = {}
        self._reader: Consumer | None = None
        self._task: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._by_key)

    async def start(self) -> None:
        topic = self._topics.monitors
        self._reader = self._bus.reader([(topic, p) for p in range(self._bus.partitions(topic))])
        await self._reader.start()
        while not await self._reader.caught_up():
            self._apply(await self._reader.poll(max_records=10_000, timeout_ms=100))
        self._task = asyncio.create_task(self._follow(), name="ingest-token-index")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._reader is not None:
            await self._reader.close()

    async def _follow(self) -> None:
        assert self._reader is not None
        while True:
            try:
                self._apply(await self._reader.poll(max_records=10_000, timeout_ms=1000))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest.token_index.poll_failed")
                await asyncio.sleep(1)

    def _apply(self, records) -> None:
        for record in records:
            try:
                cfg = decode(record.value)
            except Exception as exc:
                log.warning("ingest.token_index.poison", partition=record.partition, offset=record.offset, error=str(exc))
                continue
            if not isinstance(cfg, MonitorConfig) or cfg.revision < self._revision.get(cfg.id, 0):
                continue
            self._revision[cfg.id] = cfg.revision
            old = self._key_of.pop(cfg.id, None)
            if old is not None:
                self._by_key.pop(old, None)
            if cfg.deleted:
                continue
            key = token_key(cfg.token)
            if key is not None:
                self._by_key[key] = (cfg.id, cfg.project_id)
                self._key_of[cfg.id] = key

    def lookup(self, token: str) -> tuple[str, str] | None:
        key = token_key(token)
        return None if key is None else self._by_key.get(key)

    async def resolve(self, token: str) -> tuple[str, str] | None:
        """``(monitor_id, project_id)`` for a token, waiting briefly if the view lags."""
        key = token_key(token)
        if key is None:
            return None
        found = self._by_key.get(key)
        if found is not None:
            return found
        deadline = time.monotonic() + self._wait_s
        assert self._reader is not None
        while time.monotonic() < deadline:
            if await self._reader.caught_up():
                return self._by_key.get(key)
            await asyncio.sleep(0.01)
            found = self._by_key.get(key)
            if found is not None:
                return found
        return self._by_key.get(key)
