"""What every API handler reaches through ``request.app[API]``, and the caller's project."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from services.notifier.sending import Senders
from services.query.auth.account_tokens import AccountTokensView
from services.query.auth.caller import Caller
from services.query.auth.invitations import InvitationsView
from services.query.auth.keys import KeyIndex, ProjectsView
from services.query.auth.oidc import SsoState
from services.query.auth.people import MembershipsView, UsersView
from services.query.auth.sessions import Sessions
from services.query.auth.throttle import SignInThrottle
from services.query.catalog import Catalog
from services.query.maintenance_view import MaintenanceView
from services.query.status_view import StatusView
from services.query.store import HistoryStore
from shared.bus import Bus
from shared.bus.view import ConfigView
from shared.errors import PinguraError
from shared.events import ChannelConfig, MonitorConfig, ProjectConfig, encode
from shared.settings import Settings
from shared.topics import Topics


class NotStarted(PinguraError):
    """A handler read what the query service builds when it starts, before it did: its
    routes answer 503 until then, so this is a bug in whatever let the request through."""


@dataclass
class ApiContext:
    """Made with the query service's routes, before anything is started (the HTTP port opens
    first); :meth:`started` hands over the two things that can only be built once it has:
    the history store (opening ClickHouse blocks) and the catalog (it indexes the loaded views)."""

    settings: Settings
    bus: Bus
    topics: Topics
    monitors: ConfigView[MonitorConfig]
    channels: ConfigView[ChannelConfig]
    projects: ProjectsView
    statuses: StatusView
    """Each monitor's current status, from the evaluator's snapshots."""
    keys: KeyIndex
    """API keys by hash and by id (legacy project keys included): a request's key in O(1)."""
    sessions: Sessions
    """Signs and reads the dashboard's session cookies."""
    senders: Senders
    """What test notifications and resends go out on; the query service closes it."""
    maintenance: MaintenanceView
    """Every project's maintenance windows (the ``maintenance`` topic)."""
    users: UsersView
    """People who sign in (the ``users`` topic), by id, email and single sign-on identity."""
    memberships: MembershipsView
    """Each user's role in each project (the ``memberships`` topic)."""
    account_tokens: AccountTokensView
    """Single-use emailed secrets (verify an address, reset a password; the ``account-tokens`` topic)."""
    invitations: InvitationsView
    """Invitations to projects (the ``invitations`` topic), by the hash of their link's secret."""
    sign_ins: SignInThrottle | None = field(default=None, kw_only=True, repr=False)
    """Failed password sign-ins per address (shared with wrong keys) and per account; made
    from the settings when not given."""
    sso: SsoState = field(default_factory=SsoState, kw_only=True, repr=False)
    """Single sign-on's caches (the provider's discovery document and keys)."""
    # Given by started(); init fields so that dataclasses.replace copies them.
    _store: HistoryStore | None = field(default=None, kw_only=True, repr=False)
    _catalog: Catalog | None = field(default=None, kw_only=True, repr=False)

    def __post_init__(self) -> None:
        if self.sign_ins is None or self.sign_ins.addresses is not self.keys.failures:
            self.sign_ins = SignInThrottle(self.keys.failures, self.settings.auth_failures_per_minute)

    def started(self, store: HistoryStore, catalog: Catalog) -> None:
        self._store, self._catalog = store, catalog

    @property
    def store(self) -> HistoryStore:
        if self._store is None:
            raise NotStarted("the history store is read before the query service started")
        return self._store

    @property
    def catalog(self) -> Catalog:
        """Each project's heartbeats sorted, filtered and counted; follows ``monitors`` and ``statuses``."""
        if self._catalog is None:
            raise NotStarted("the catalog is read before the query service started")
        return self._catalog

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
KEY_ID: web.RequestKey[str | None] = web.RequestKey("key_id")  # None: a user (session), not a key
"""The id of the caller's key (with a session cookie: the key the session was opened with)."""
CALLER = web.RequestKey("caller", Caller)
"""All of the above, and the session when the request came with the cookie."""
