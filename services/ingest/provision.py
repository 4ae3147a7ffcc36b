"""Creating a heartbeat from the first ping to an unknown slug (``?create=1``).

A thousand hosts each pinging ``/ping/{ping_key}/backup-<hostname>?create=1`` need nobody
to create a thousand heartbeats first. Creation happens once per (project, slug), however
many first pings arrive together:

- in this process, creators of one (project, slug) queue on a lock and each looks again
  once it holds it: the first creates, the others find what it created;
- across ingest instances (Kafka), the heartbeat's id is derived from (project, slug)
  (:func:`services.ingest.logic.slug_monitor_id`), so racing instances write the same key
  of the compacted ``monitors`` topic at the same revision: one heartbeat, whichever copy
  is last (the copies differ only in their token, which nobody has been shown yet).

Created with the slug defaults (interval 1 day, grace 1 hour), named after the slug, and
given all of the project's channels, so it alerts someone. A project may turn creation
off (``auto_create``), and each project may create at most ``auto_create_per_minute``
heartbeats a minute per ingest instance (a token bucket: bursts up to that many), and none
once it has ``auto_create_max`` heartbeats.

The cap counts every live heartbeat of the project, however made, as Healthchecks does (its
auto-provisioning stops at twice the account's check limit): that count is what a leaked
ping key inflates and what costs (memory, and alerts to every channel), it is known to
every ingest instance from the ``monitors`` topic, survives restarts, and deleting
heartbeats makes room. Counting only those pings created would need a mark on each record
that older records lack. Ingest instances on Kafka can pass it by what they create before
they read each other's records (a few, at most ``auto_create_per_minute`` each).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import structlog

from services.ingest.logic import PingRejected, slug_monitor_id
from services.ingest.store import TokenIndex
from shared.bus import Bus
from shared.clock import now_ms
from shared.events import MonitorConfig, encode
from shared.ids import new_token
from shared.topics import Topics

log = structlog.get_logger()

DEFAULT_INTERVAL_S = 86400
DEFAULT_GRACE_S = 3600
"""The API's defaults (``services.query.validation``; a test holds them equal), not
imported: ingest carries none of the query service's code."""

MAX_ID_ATTEMPTS = 8
"""Derived ids tried before giving up: a later one is needed only when a heartbeat made
from this slug was renamed to another slug and still holds the id."""


class PerMinute:
    """A token bucket per key: ``per_minute`` at once, then one every ``60 / per_minute`` s."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self._capacity = float(per_minute)
        self._rate_per_s = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, key: str) -> float:
        """0 when one was taken; otherwise the seconds until one is there."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - then) * self._rate_per_s)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self._rate_per_s


class Provisioner:
    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        index: TokenIndex,
        per_minute: int,
        most: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._bus = bus
        self._topics = topics
        self._index = index
        self._limit = PerMinute(per_minute, clock) if per_minute > 0 and most > 0 else None
        self._most = most
        self._creating: dict[str, int] = {}  # project id -> creations under way (not in the index yet)
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}  # lock and its users

    @property
    def enabled(self) -> bool:
        return self._limit is not None

    async def monitor_for(self, project_id: str, slug: str) -> tuple[str, bool]:
        """The id of the project's heartbeat with this slug, created if there is none yet,
        and whether this call created it. Raises :class:`PingRejected` (429) over the rate
        limit and :class:`shared.bus.BusUnavailable` when the bus cannot take it."""
        key = (project_id, slug)
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                found = self._index.find_slug(project_id, slug)
                if found:
                    return min(found), False
                return await self._create(project_id, slug), True
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _create(self, project_id: str, slug: str) -> str:
        assert self._limit is not None, "creation is off: check enabled first"
        under_way = self._creating.get(project_id, 0)
        count = self._index.heartbeats_in(project_id) + under_way
        if count >= self._most:
            log.info("ingest.slug.create_capped", project_id=project_id, heartbeats=count, most=self._most)
            raise PingRejected(
                403,
                f"no more heartbeats created by pings: the project has {count}, the limit is "
                f"{self._most} (PINGURA_AUTO_CREATE_MAX); create this one with the API or "
                "delete some",
            )
        wait_s = self._limit.take(project_id)
        if wait_s:
            log.info("ingest.slug.create_limited", project_id=project_id, retry_after_s=wait_s)
            raise PingRejected(
                429,
                "too many heartbeats created by pings; retry later",
                retry_after_s=max(1, math.ceil(wait_s)),
            )
        monitor_id = self._free_id(project_id, slug)
        self._creating[project_id] = under_way + 1  # counted from here: others check while this one awaits
        try:
            return await self._publish(project_id, slug, monitor_id)
        finally:
            if self._creating[project_id] == 1:
                del self._creating[project_id]
            else:
                self._creating[project_id] -= 1

    async def _publish(self, project_id: str, slug: str, monitor_id: str) -> str:
        await self._index.projects.sync_channels()  # a channel made a moment ago is the project's too
        at = now_ms()
        cfg = MonitorConfig(
            id=monitor_id, project_id=project_id, name=slug, slug=slug, token=new_token(),
            interval_s=DEFAULT_INTERVAL_S, grace_s=DEFAULT_GRACE_S, channels=self._index.projects.channels(project_id),
            created_ms=at, updated_ms=at, revision=self._index.revision(monitor_id) + 1,
        )  # fmt: skip
        await self._bus.publish(self._topics.monitors, cfg.id, encode(cfg))
        self._index.put(cfg)
        log.info("ingest.slug.created", monitor_id=cfg.id, project_id=project_id, slug=slug)
        return cfg.id

    def _free_id(self, project_id: str, slug: str) -> str:
        """The first derived id no other live heartbeat holds; a deleted heartbeat's id is
        taken again (at its next revision, so every reader takes the new record)."""
        for attempt in range(MAX_ID_ATTEMPTS):
            monitor_id = slug_monitor_id(project_id, slug, attempt)
            if self._index.holder(monitor_id) in (None, (project_id, slug)):
                return monitor_id
        raise PingRejected(
            409,
            "cannot create a heartbeat for this slug: rename or delete the heartbeats that had it before",
            (409, "ambiguous slug"),
        )
