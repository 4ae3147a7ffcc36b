"""Ingest's view of the ping tokens and slugs, built from the compacted ``monitors`` topic,
and of the projects' ping keys and channels (``projects`` and ``channels``).

Known tokens are answered from memory (no database round trip per ping). Keys are the
24 decoded token bytes and only ids are kept beside them, so a million monitors cost
well under 200 MB; a slug adds an entry only to the heartbeats that have one. An unknown
token, slug or ping key may belong to something created a moment ago, so before
answering 404 the view syncs with the topic's end (a bounded wait; free on the embedded
bus, one offsets request on Kafka, and only for unknown ones).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.bus import Bus, Record
from shared.bus.view import TopicFollower, decode_as
from shared.events import ChannelConfig, MonitorConfig, ProjectConfig
from shared.ids import token_key
from shared.topics import Topics


@dataclass(frozen=True, slots=True)
class SlugProject:
    """What ingest knows of a project that has a ping key."""

    id: str
    auto_create: bool


class ProjectIndex:
    """Projects by ping key, and each project's live channels (a heartbeat created by a
    ping is given all of them, as one created in Healthchecks by its first ping is)."""

    def __init__(self, bus: Bus, topics: Topics, wait_s: float = 2.0):
        self._wait_s = wait_s
        self._by_ping_key: dict[str, SlugProject] = {}
        self._ping_key_of: dict[str, str] = {}
        self._channels: dict[str, dict[str, None]] = {}  # project id -> its channel ids, oldest first
        self._channel_updated_ms: dict[str, int] = {}
        self._projects = TopicFollower(bus, topics.projects, self._apply_projects)
        self._channel_follower = TopicFollower(bus, topics.channels, self._apply_channels)

    async def start(self) -> None:
        await self._projects.start()
        await self._channel_follower.start()

    async def close(self) -> None:
        await self._channel_follower.close()
        await self._projects.close()

    def _apply_projects(self, records: list[Record]) -> None:
        for record in records:
            project = decode_as(record, ProjectConfig, "ingest.project_index.poison")
            if project is not None:
                self.put(project)

    def put(self, project: ProjectConfig) -> None:
        """Apply one project record (the latest wins: project records carry no revision)."""
        old = self._ping_key_of.pop(project.id, None)
        if old is not None:
            self._by_ping_key.pop(old, None)
        if project.ping_key:
            self._by_ping_key[project.ping_key] = SlugProject(project.id, project.auto_create)
            self._ping_key_of[project.id] = project.ping_key

    def _apply_channels(self, records: list[Record]) -> None:
        for record in records:
            channel = decode_as(record, ChannelConfig, "ingest.project_index.poison")
            if channel is None or channel.updated_ms < self._channel_updated_ms.get(channel.id, 0):
                continue
            self._channel_updated_ms[channel.id] = channel.updated_ms
            ids = self._channels.setdefault(channel.project_id, {})
            if channel.deleted:
                ids.pop(channel.id, None)
            else:
                ids[channel.id] = None

    def channels(self, project_id: str) -> list[str]:
        return list(self._channels.get(project_id, ()))

    async def resolve(self, ping_key: str) -> SlugProject | None:
        """The project whose ping key this is, syncing with the topic if it is unknown."""
        found = self._by_ping_key.get(ping_key)
        if found is None and await self._projects.sync(self._wait_s):
            found = self._by_ping_key.get(ping_key)
        return found

    async def sync_channels(self) -> bool:
        return await self._channel_follower.sync(self._wait_s)


class TokenIndex:
    """Monitors by ping token and by ``(project, slug)``; ``projects`` is the
    :class:`ProjectIndex`, started and closed with it."""

    def __init__(self, bus: Bus, topics: Topics, wait_s: float = 2.0):
        self._wait_s = wait_s
        self._by_key: dict[bytes, tuple[str, str]] = {}
        self._key_of: dict[str, bytes] = {}
        self._revision: dict[str, int] = {}
        self._by_slug: dict[tuple[str, str], dict[str, None]] = {}  # two only if writers raced
        self._slug_of: dict[str, tuple[str, str]] = {}
        self._follower = TopicFollower(bus, topics.monitors, self._apply)
        self.projects = ProjectIndex(bus, topics, wait_s)

    def __len__(self) -> int:
        return len(self._by_key)

    async def start(self) -> None:
        await self._follower.start()
        await self.projects.start()

    async def close(self) -> None:
        await self.projects.close()
        await self._follower.close()

    def _apply(self, records: list[Record]) -> None:
        for record in records:
            cfg = decode_as(record, MonitorConfig, "ingest.token_index.poison")
            if cfg is not None:
                self.put(cfg)

    def put(self, cfg: MonitorConfig) -> None:
        """Apply one monitor record; an older revision than the one known is ignored. Ingest
        puts the heartbeats it creates itself, so its next ping already finds them."""
        if cfg.revision < self._revision.get(cfg.id, 0):
            return
        self._revision[cfg.id] = cfg.revision
        old = self._key_of.pop(cfg.id, None)
        if old is not None:
            self._by_key.pop(old, None)
        old_slug = self._slug_of.pop(cfg.id, None)
        if old_slug is not None:
            ids = self._by_slug.get(old_slug, {})
            ids.pop(cfg.id, None)
            if not ids:
                self._by_slug.pop(old_slug, None)
        if cfg.deleted:
            return
        key = token_key(cfg.token)
        if key is not None:
            self._by_key[key] = (cfg.id, cfg.project_id)
            self._key_of[cfg.id] = key
        if cfg.slug:
            slug = (cfg.project_id, cfg.slug)
            self._by_slug.setdefault(slug, {})[cfg.id] = None
            self._slug_of[cfg.id] = slug

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

    def find_slug(self, project_id: str, slug: str) -> list[str]:
        """Ids of the project's live heartbeats with this slug: one, or none; more only for
        as long as two writers that raced have not been put right."""
        return list(self._by_slug.get((project_id, slug), ()))

    async def resolve_slug(self, project_id: str, slug: str) -> list[str]:
        """Like :meth:`find_slug`, syncing with the topic if there is none."""
        found = self.find_slug(project_id, slug)
        if not found and await self._follower.sync(self._wait_s):
            found = self.find_slug(project_id, slug)
        return found

    def revision(self, monitor_id: str) -> int:
        """The latest revision seen of a monitor, a deleted one included; 0 if never seen."""
        return self._revision.get(monitor_id, 0)

    def holder(self, monitor_id: str) -> tuple[str, str] | None:
        """``(project_id, slug)`` of the live heartbeat with this id; ``("", "")`` when it is
        live without a slug; None when no live heartbeat has it."""
        if monitor_id in self._slug_of:
            return self._slug_of[monitor_id]
        return ("", "") if monitor_id in self._key_of else None
