"""What every API handler reaches through ``request.app[API]``, and the caller's project."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from services.query.auth.caller import Caller
from services.query.auth.keys import KeyIndex, ProjectsView
from services.query.auth.sessions import Sessions
from services.query.catalog import Catalog
from services.query.status_view import StatusView
from services.query.store import HistoryStore
from shared.bus import Bus
from shared.bus.view import ConfigView
from shared.events import ChannelConfig, MonitorConfig, ProjectConfig, encode
from shared.settings import Settings
from shared.topics import Topics


@dataclass
class ApiContext:
    settings: Settings
    bus: Bus
    topics: Topics
    store: HistoryStore
    monitors: ConfigView[MonitorConfig]
    channels: ConfigView[ChannelConfig]
    projects: ProjectsView
    statuses: StatusView
    """Each monitor's current status, from the evaluator's snapshots."""
    catalog: Catalog
    """Each project's heartbeats sorted, filtered and counted; follows ``monitors`` and ``statuses``."""
    keys: KeyIndex
    """API keys by hash and by id (legacy project keys included): a request's key in O(1)."""
    sessions: Sessions
    """Signs and reads the dashboard's session cookies."""

    async def save(self, topic: str, event, view: ConfigView) -> None:
        """Publish a config to its topic (the source of truth), then put it into this
        process's view, so the caller's next request already sees it."""
        await self.bus.publish(topic, event.id, encode(event))
        view.put(event)


API = web.AppKey("api", ApiContext)
PROJECT = web.RequestKey("project", ProjectConfig)
"""The project whose key authenticated the request (set by the middleware)."""
READ_ONLY = web.RequestKey("read_only", bool)
"""True when the caller's key may only read: token and ping URL are left out of answers."""
KEY_ID = web.RequestKey("key_id", str)
"""The id of the caller's key (with a session cookie: the key the session was opened with)."""
CALLER = web.RequestKey("caller", Caller)
"""All of the above, and the session when the request came with the cookie."""
