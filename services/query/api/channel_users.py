"""Which heartbeats alert to each channel: the "used by" of ``GET /channels`` and
``GET /channels/{id}``, read from an index rather than from a scan of every heartbeat.

The index is the API app's (:data:`CHANNEL_USERS`, put there by the route table), built on
first use from the monitors view in one pass over three packed fields of each config, yielding
to the loop as it goes (100,000 heartbeats: 0.3-0.7 s once, measured), then kept by following
the view's changes (a heartbeat created, edited, deleted), so that each answer costs only the
channel's own heartbeats (their names read from the view then: a few ms for 2,000). Where the
view tells no changes (a plain :class:`~shared.bus.view.ConfigView`), each answer makes the pass.

The index keeps no name (one more copy of every name beside the view's, 120 B a heartbeat at
200,000): for each heartbeat, its project id, the interned string the views share.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from services.query.api.context import API
from services.query.api.schemas.channels import ChannelHeartbeat
from shared.bus.view import PackedConfigView
from shared.events import MonitorConfig

Users = dict[str, list[ChannelHeartbeat]]


Index = dict[str, dict[str, str]]
SCAN_CHUNK = 2_000
"""Configs read between two yields to the loop while building (~5 ms)."""


class ChannelUsers:
    """channel id -> {heartbeat id: project id} of the live heartbeats naming it."""

    def __init__(self) -> None:
        self._index: Index | None = None
        self._building = asyncio.Lock()
        self._listening = False
        self._pending: dict[str, set[str]] | None = None
        """While building: heartbeat id -> every channel it named in the changes seen meanwhile."""

    async def _build(self, monitors: Any) -> Index:
        """One pass over three packed fields of each config, yielding every :data:`SCAN_CHUNK`.
        A heartbeat that changed meanwhile may have been read before or after its change: its
        entries are put right from the view once the pass is done."""
        index: Index = {}
        fields = ("project_id", "channels", "deleted")
        rows = (
            monitors.select(*fields)
            if isinstance(monitors, PackedConfigView)
            else ((m.id, [m.project_id, m.channels, m.deleted]) for m in monitors.values())
        )
        for n, (monitor_id, (project_id, channel_ids, deleted)) in enumerate(rows, 1):
            if not deleted:
                for channel_id in channel_ids or ():
                    index.setdefault(channel_id, {})[monitor_id] = sys.intern(project_id)
            if n % SCAN_CHUNK == 0:
                await asyncio.sleep(0)
        return index

    def _changed(self, monitor_id: str, before: MonitorConfig | None, after: MonitorConfig | None) -> None:
        if self._pending is not None:  # building: put right at the end
            named = self._pending.setdefault(monitor_id, set())
            named.update(before.channels if before is not None else ())
            named.update(after.channels if after is not None else ())
            return
        if self._index is not None:
            _apply(self._index, monitor_id, before.channels if before is not None else (), after)

    async def of(self, monitors: Any, project_id: str, channel_ids: list[str]) -> Users:
        """Each of ``channel_ids`` (the project's) -> the project's heartbeats alerting to it,
        by name (another project's heartbeat naming the id is not counted)."""
        index = self._index
        if index is None:
            index = await self._ready(monitors)
        name_of = _names(monitors)
        out: Users = {}
        for channel_id in channel_ids:
            users = index.get(channel_id, {})
            found = []
            for monitor_id in [m for m, p in users.items() if p == project_id]:
                name = name_of(monitor_id)  # None: deleted while this answer was being made
                if name is not None:
                    found.append(ChannelHeartbeat(id=monitor_id, name=name))
            found.sort(key=lambda h: (h.name.casefold(), h.id))
            out[channel_id] = found
        return out

    async def _ready(self, monitors: Any) -> Index:
        if not hasattr(monitors, "listen"):  # a view that tells no changes: a pass each time
            return await self._build(monitors)
        async with self._building:
            if self._index is not None:
                return self._index
            self._pending = {}
            if not self._listening:
                monitors.listen(self._changed)
                self._listening = True
            try:
                index = await self._build(monitors)
            finally:
                pending, self._pending = self._pending, None
            for monitor_id, named in pending.items():
                _apply(index, monitor_id, named, monitors.get(monitor_id))
            self._index = index
            return index


def _names(monitors: Any) -> Callable[[str], str | None]:
    """A heartbeat's name from the view (a field read where the view is packed)."""
    if isinstance(monitors, PackedConfigView):

        def packed(monitor_id: str) -> str | None:
            try:
                return monitors.field(monitor_id, "name")
            except KeyError:
                return None

        return packed
    return lambda monitor_id: m.name if (m := monitors.get(monitor_id)) is not None else None


def _apply(index: Index, monitor_id: str, named: Iterable[str], now: MonitorConfig | None) -> None:
    """``monitor_id`` out of the channels it ``named``, then into those it names ``now``."""
    for channel_id in named:
        users = index.get(channel_id)
        if users is not None:
            users.pop(monitor_id, None)
            if not users:
                del index[channel_id]
    if now is not None and not now.deleted:
        for channel_id in now.channels:
            index.setdefault(channel_id, {})[monitor_id] = sys.intern(now.project_id)


CHANNEL_USERS = web.AppKey("channel_users", ChannelUsers)


async def heartbeats_by_channel(request: web.Request, project_id: str, channel_ids: list[str]) -> Users:
    return await request.app[CHANNEL_USERS].of(request.app[API].monitors, project_id, channel_ids)
