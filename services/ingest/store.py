"""Ingest's view of the ping tokens, built from the compacted ``monitors`` topic.

Known tokens are answered from memory (no database round trip per ping). Keys are the
24 decoded token bytes and only ids are kept beside them, so a million monitors cost
well under 200 MB. An unknown token may belong to a monitor created a moment ago, so
before answering 404 the view syncs with the topic's end (a bounded wait; free on the
embedded bus, one offsets request on Kafka, and only for unknown tokens).
"""

from __future__ import annotations

from shared.bus import Bus, Record
from shared.bus.view import TopicFollower, decode_as
from shared.events import MonitorConfig
from shared.ids import token_key
from shared.topics import Topics


class TokenIndex:
    def __init__(self, bus: Bus, topics: Topics, wait_s: float = 2.0):
        self._wait_s = wait_s
        self._by_key: dict[bytes, tuple[str, str]] = {}
        self._key_of: dict[str, bytes] = {}
        self._revision: dict[str, int] = {}
        self._follower = TopicFollower(bus, topics.monitors, self._apply)

    def __len__(self) -> int:
        return len(self._by_key)

    async def start(self) -> None:
        await self._follower.start()

    async def close(self) -> None:
        await self._follower.close()

    def _apply(self, records: list[Record]) -> None:
        for record in records:
            cfg = decode_as(record, MonitorConfig, "ingest.token_index.poison")
            if cfg is None or cfg.revision < self._revision.get(cfg.id, 0):
                continue
            self._revision[cfg.id] = cfg.revision
            old = self._key_of.pop(cfg.id, None)
            if old is not None:
                self._by_key.pop(old, None)
            key = None if cfg.deleted else token_key(cfg.token)
            if key is not None:
                self._by_key[key] = (cfg.id, cfg.project_id)
                self._key_of[cfg.id] = key

    async def sync(self) -> bool:
        """Wait until every monitor change published so far is applied."""
        return await self._follower.sync(self._wait_s)

    async def resolve(self, token: str) -> tuple[str, str] | None:
        """``(monitor_id, project_id)`` for a token, syncing with the topic if it is unknown."""
        key = token_key(token)
        if key is None:
            return None
        found = self._by_key.get(key)
        if found is None and await self._follower.sync(self._wait_s):
            found = self._by_key.get(key)
        return found
