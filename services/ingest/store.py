"""Ingest's view of the ping tokens and slugs, built from the compacted ``monitors`` topic,
and of the projects' ping keys and channels (``projects`` and ``channels``).

Known tokens are answered from memory (no database round trip per ping). Keys are the
24 decoded token bytes and only ids are kept beside them, so a million monitors cost
well under 200 MB; a slug adds an entry only to the heartbeats that have one. Ids and
project ids are interned: one copy each, shared with the other services' views in one
process (``pingura serve``), instead of one per decoded record. An unknown
token, slug or ping key may belong to something created a moment ago, so before
answering 404 the view syncs with the topic's end (a bounded wait; free on the embedded
bus, one offsets request on Kafka, and only for unknown ones).

Until the index has read the topics up to where they ended at start (:attr:`TokenIndex.ready`),
ingest answers ``503`` with ``Retry-After``, never ``404``: a token it has not read yet may
well exist. In embedded mode it starts from a copy of itself saved in the data dir
(:mod:`services.ingest.token_snapshot`) and reads only what the topic gained since: at a
million monitors 1.3-1.7 s instead of about 7 s (measured).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import cast

import msgspec
import structlog

from services.ingest import token_snapshot
from services.ingest.token_snapshot import Chunk, Head, SnapshotFile, SnapshotUnreadable
from shared.bus import Bus, Record
from shared.bus.view import TopicFollower, cancel_and_wait, decode_as
from shared.events import ChannelConfig, MonitorConfig, ProjectConfig
from shared.ids import token_key
from shared.topics import Topics

log = structlog.get_logger()


class Held(msgspec.Struct, frozen=True, gc=False):
    """A live heartbeat as the token index holds it: one object for both of its dicts, with no
    GC header (48 bytes). It replaced a tuple and two dicts (keys, revisions): 46 B less a
    heartbeat (``python -m bench.memory_per_heartbeat``)."""

    monitor_id: str
    project_id: str
    key: bytes | None
    """None: a token ingest does not take (the heartbeat is not in ``_by_key``)."""
    revision: int


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
    :class:`ProjectIndex`, started and closed with it.

    With ``snapshot``, it loads that copy of itself at start, saves one every
    ``snapshot_interval_s`` once ``snapshot_min_changes`` records were applied since the
    last, and one when it closes."""

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        wait_s: float = 2.0,
        snapshot: SnapshotFile | None = None,
        snapshot_interval_s: float = 600,
        snapshot_min_changes: int = 10_000,
    ):
        self._bus = bus
        self._wait_s = wait_s
        self._by_key: dict[bytes, Held] = {}
        self._held: dict[str, Held] = {}  # monitor id -> the live heartbeat
        self._gone: dict[str, int] = {}  # monitor id -> the revision of a deleted one
        self._by_slug: dict[tuple[str, str], dict[str, None]] = {}  # two only if writers raced
        self._slug_of: dict[str, tuple[str, str]] = {}
        self._live_in: Counter[str] = Counter()  # project id -> its live heartbeats (auto-create's cap)
        self._follower = TopicFollower(bus, topics.monitors, self._apply)
        self.projects = ProjectIndex(bus, topics, wait_s)
        self.ready = False
        """True once the topics were read up to where they ended at start: from then on a
        token it does not know (after a sync) is unknown."""
        self._snapshot = snapshot
        self._snapshot_interval_s = snapshot_interval_s
        self._snapshot_min_changes = snapshot_min_changes
        self._applied: dict[int, int] = {}  # partition -> offset after the last record applied
        self._changes = 0  # monitor changes put since the last snapshot (applied or ingest's own)
        self._snapshots: asyncio.Task | None = None
        self._saving: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._by_key)

    async def start(self) -> None:
        resume_at = await self._load_snapshot() if self._snapshot is not None else None
        await self._follower.start(resume_at)
        await self.projects.start()
        self.ready = True
        if self._snapshot is not None:
            self._snapshots = asyncio.create_task(self._save_now_and_then(), name="token-index-snapshots")

    async def close(self) -> None:
        if self._snapshots is not None:
            await cancel_and_wait(self._snapshots)
        await self.projects.close()
        await self._follower.close()
        if self._saving is not None:
            await asyncio.wait([self._saving])  # one under way finishes (its errors are logged)
        if self._snapshot is not None and self.ready and self._changes:
            await self._save_snapshot()

    # snapshots ---------------------------------------------------------------
    async def _load_snapshot(self) -> dict[int, int] | None:
        """Fill the index from the saved copy; returns where to read the topic on from.
        None (and an empty index) when there is no usable copy."""
        assert self._snapshot is not None
        started = time.perf_counter()
        path = self._snapshot.path
        try:
            found = await asyncio.to_thread(token_snapshot.read, path)
        except SnapshotUnreadable as exc:
            log.warning("ingest.token_index.snapshot_unreadable", path=str(path), error=str(exc))
            return None
        if found is None:
            return None
        head, chunks = found
        if head.log_id != self._snapshot.log_id or head.topic != self._follower.topic:
            log.warning("ingest.token_index.snapshot_of_another_log", path=str(path))
            return None
        ends = await self._ends()
        if any(offset > ends.get(partition, 0) for partition, offset in head.offsets.items()):
            log.warning(
                "ingest.token_index.snapshot_past_the_end", path=str(path), offsets=head.offsets, ends=ends
            )
            return None
        for chunk in chunks:
            self._load_chunk(chunk)
            await asyncio.sleep(0)  # meanwhile the port answers 503
        self._applied = dict(head.offsets)
        log.info(
            "ingest.token_index.snapshot_loaded",
            monitors=head.monitors,
            offsets=head.offsets,
            took_s=round(time.perf_counter() - started, 3),
        )
        return head.offsets

    async def _ends(self) -> dict[int, int]:
        topic = self._follower.topic
        reader = self._bus.reader([(topic, p) for p in range(self._bus.partitions(topic))])
        await reader.start()
        try:
            return {p: end for (_, p), end in (await reader.end_offsets(reader.assignment())).items()}
        finally:
            await reader.close()

    def _load_chunk(self, chunk: Chunk) -> None:
        """What ``put`` would have left for these rows, in bulk."""
        intern = sys.intern
        chunk.ids = [intern(i) for i in chunk.ids]
        chunk.project_ids = [intern(p) if p is not None else None for p in chunk.project_ids]
        # A row with a key is live, and so has a project (``_chunk`` writes the project of its
        # holder); one without a key and without a project was deleted.
        rows = zip(chunk.ids, chunk.project_ids, chunk.keys, chunk.revisions, strict=False)
        held = [Held(i, p, k, r) for i, p, k, r in rows if k is not None and p is not None]
        self._held.update((h.monitor_id, h) for h in held)
        self._by_key.update((cast("bytes", h.key), h) for h in held)
        self._live_in.update(h.project_id for h in held)
        if len(held) < len(chunk.ids):
            self._gone.update(
                (i, r)
                for i, p, k, r in zip(chunk.ids, chunk.project_ids, chunk.keys, chunk.revisions, strict=False)
                if k is None
            )
        if chunk.slugs.count(None) < len(chunk.slugs):
            for monitor_id, project_id, slug in zip(chunk.ids, chunk.project_ids, chunk.slugs, strict=False):
                if slug is not None and project_id is not None:
                    self._slug_of[monitor_id] = (project_id, slug)
                    self._by_slug.setdefault((project_id, slug), {})[monitor_id] = None

    async def _save_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self._snapshot_interval_s)
            if self._changes >= self._snapshot_min_changes:
                if self._saving is None or self._saving.done():
                    self._saving = asyncio.create_task(self._save_snapshot(), name="token-index-snapshot")
                await asyncio.shield(self._saving)  # close() lets a save under way finish

    async def _save_snapshot(self) -> None:
        """Copy the index a chunk at a time (a few ms each, between pings), then write it
        from a thread. Errors are logged: without a copy, the next start reads the topic."""
        assert self._snapshot is not None
        started = time.perf_counter()
        try:
            # Both in one go, before any row: every row is then at least as new as these offsets.
            offsets, changes = dict(self._applied), self._changes
            ids = [*self._held, *self._gone]
            frames = [
                token_snapshot.frame(
                    Head(
                        token_snapshot.VERSION, self._snapshot.log_id, self._follower.topic, offsets, len(ids)
                    )
                )
            ]
            for at in range(0, len(ids), token_snapshot.CHUNK_ROWS):
                frames.append(token_snapshot.frame(self._chunk(ids[at : at + token_snapshot.CHUNK_ROWS])))
                await asyncio.sleep(0)
            await asyncio.to_thread(token_snapshot.write, self._snapshot.path, frames)
        except Exception:
            log.exception("ingest.token_index.snapshot_failed", path=str(self._snapshot.path))
            return
        self._changes -= changes
        log.info(
            "ingest.token_index.snapshot_saved",
            monitors=len(ids),
            offsets=offsets,
            took_s=round(time.perf_counter() - started, 3),
        )

    def _chunk(self, ids: list[str]) -> Chunk:
        revisions, keys, project_ids, slugs = [], [], [], []
        for monitor_id in ids:
            held = self._held.get(monitor_id)
            revisions.append(held.revision if held is not None else self._gone.get(monitor_id, 0))
            slug = self._slug_of.get(monitor_id)
            keys.append(held.key if held is not None else None)
            project_ids.append(
                held.project_id
                if held is not None and held.key is not None
                else slug[0]
                if slug is not None
                else None
            )
            slugs.append(slug[1] if slug is not None else None)
        return Chunk(ids, revisions, keys, project_ids, slugs)

    # applying ----------------------------------------------------------------
    def _apply(self, records: list[Record]) -> None:
        for record in records:
            self._applied[record.partition] = record.offset + 1
            cfg = decode_as(record, MonitorConfig, "ingest.token_index.poison")
            if cfg is not None:
                self.put(cfg)

    def put(self, cfg: MonitorConfig) -> None:
        """Apply one monitor record; an older revision than the one known is ignored. Ingest
        puts the heartbeats it creates itself, so its next ping already finds them."""
        monitor_id = sys.intern(cfg.id)
        if cfg.revision < self.revision(monitor_id):
            return
        self._changes += 1
        old = self._held.pop(monitor_id, None)
        if old is not None and old.key is not None:
            self._live_in[old.project_id] -= 1
            if self._by_key.get(old.key) is old:  # not if another heartbeat was given it since
                del self._by_key[old.key]
        old_slug = self._slug_of.pop(monitor_id, None)
        if old_slug is not None:
            ids = self._by_slug.get(old_slug, {})
            ids.pop(monitor_id, None)
            if not ids:
                self._by_slug.pop(old_slug, None)
        if cfg.deleted:
            self._gone[monitor_id] = cfg.revision
            return
        self._gone.pop(monitor_id, None)
        project_id = sys.intern(cfg.project_id)
        key = token_key(cfg.token)
        held = self._held[monitor_id] = Held(monitor_id, project_id, key, cfg.revision)
        if key is not None:
            self._by_key[key] = held
            self._live_in[project_id] += 1
        if cfg.slug:
            slug = (project_id, cfg.slug)
            self._by_slug.setdefault(slug, {})[monitor_id] = None
            self._slug_of[monitor_id] = slug

    async def sync(self) -> bool:
        """Wait until every monitor change published so far is applied."""
        return await self._follower.sync(self._wait_s)

    async def resolve(self, token: str) -> tuple[str, str] | None:
        """``(monitor_id, project_id)`` for a token, syncing with the topic if it is unknown."""
        key = token_key(token)
        if key is None:
            return None
        found = self._by_key.get(key)
        if found is None:
            if not await self._follower.sync(self._wait_s):
                return None
            found = self._by_key.get(key)
            if found is None:
                return None
        return found.monitor_id, found.project_id

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

    def heartbeats_in(self, project_id: str) -> int:
        """How many live heartbeats the project has, as far as this index has read."""
        return self._live_in[project_id]

    def revision(self, monitor_id: str) -> int:
        """The latest revision seen of a monitor, a deleted one included; 0 if never seen."""
        held = self._held.get(monitor_id)
        return held.revision if held is not None else self._gone.get(monitor_id, 0)

    def holder(self, monitor_id: str) -> tuple[str, str] | None:
        """``(project_id, slug)`` of the live heartbeat with this id; ``("", "")`` when it is
        live without a slug; None when no live heartbeat has it."""
        if monitor_id in self._slug_of:
            return self._slug_of[monitor_id]
        held = self._held.get(monitor_id)
        return ("", "") if held is not None and held.key is not None else None
