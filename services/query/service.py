"""The query service, built from the settings and the bus: the JSON API, the dashboard's
session routes and pages, the history writer, and (embedded) the control socket.

Building makes the views, unloaded, and the :class:`ApiContext` over them, so the routes can
be mounted before anything starts; they answer ``503`` with ``Retry-After`` until the
service is ready. Starting opens ClickHouse, loads the views in the order requests need
them, then hands the history store and the catalog to the context.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog
from aiohttp import web

from services.datadir import ADMIN_KEY_FILE
from services.ingest.server import BodyGate
from services.notifier.sending import Senders
from services.parts import STARTING_RETRY_AFTER_S, Parts, Readiness, add_routes_until_ready, until_ready
from services.query.api import ApiContext, api_app
from services.query.api.errors import error
from services.query.api.status_pages import project_of_key
from services.query.auth.account_tokens import AccountTokensView, issue
from services.query.auth.accounts import Accounts
from services.query.auth.invitations import InvitationsView
from services.query.auth.keys import KeyIndex, ProjectsView
from services.query.auth.people import MembershipsView, UsersView
from services.query.auth.revocations import RevokedSessions
from services.query.auth.routes import add_session_routes
from services.query.auth.sessions import Sessions, load_secret
from services.query.catalog import Catalog, WatchedConfigView
from services.query.consumer import HistoryWriter
from services.query.control import ControlSocket
from services.query.maintenance_view import MaintenanceView
from services.query.status_view import StatusView
from services.query.store import HistoryStore
from services.query.web.pages import add_page_routes, add_status_page_route
from shared.bus import Bus
from shared.bus.view import ConfigView
from shared.clickhouse import open_client
from shared.events import ChannelConfig, MonitorConfig
from shared.ids import new_api_key, new_id
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()


class QueryService:
    name = "query"

    def __init__(self, settings: Settings, bus: Bus, metrics: Metrics | None = None):
        self._settings = settings
        self._bus = bus
        self._metrics = metrics
        self._topics = topics = Topics(settings.topic_prefix)
        projects = ProjectsView(bus, topics.projects)
        keys = KeyIndex(bus, topics.keys, projects, failures_per_minute=settings.auth_failures_per_minute)
        self.accounts = Accounts(bus, topics, projects, keys)
        self._monitors: WatchedConfigView[MonitorConfig] = WatchedConfigView(
            bus, topics.monitors, MonitorConfig, _revision
        )
        self._statuses = StatusView(bus, topics)
        self.context = ApiContext(
            settings=settings,
            bus=bus,
            topics=topics,
            monitors=self._monitors,
            channels=ConfigView(bus, topics.channels, ChannelConfig, _revision),
            projects=projects,
            statuses=self._statuses,
            keys=keys,
            sessions=Sessions(
                load_secret(settings), settings.session_ttl_s, RevokedSessions(bus, topics.revoked_sessions)
            ),
            senders=Senders(settings),
            maintenance=MaintenanceView(bus, topics.maintenance),
            users=UsersView(bus, topics.users),
            memberships=MembershipsView(bus, topics.memberships),
            invitations=InvitationsView(bus, topics.invitations),
            account_tokens=AccountTokensView(bus, topics.account_tokens),
        )
        self._readiness: Readiness | None = None
        self._parts = Parts()

    def mount(self, app: web.Application, readiness: Readiness) -> None:
        self._readiness = readiness
        readiness.ingest_incidents = lambda: len(self._statuses.ingest_incidents())
        if self._metrics is not None:
            self._metrics.watch_incidents(readiness.ingest_incidents)
        ctx = self.context
        api = api_app(ctx)
        api.middlewares.insert(0, until_ready(readiness, self.name, _starting))
        # Outermost: every API body is read whole within the deadline before anything else.
        bodies = BodyGate(ctx.settings.ping_body_timeout_s, ctx.settings.max_body_reads)
        api.middlewares.insert(0, bodies.middleware)
        app.add_subapp("/api/v1", api)
        add_routes_until_ready(
            app,
            lambda root: add_session_routes(root, ctx),
            readiness,
            self.name,
            _starting,
            guard=bodies.guard_form,
        )
        add_page_routes(app)  # files only: nothing to wait for
        add_routes_until_ready(  # but a status page is served only where its key is known
            app,
            lambda root: add_status_page_route(root, lambda key: project_of_key(ctx, key) is not None),
            readiness,
            self.name,
            _starting,
        )

    async def start(self) -> None:
        ctx, parts, settings = self.context, self._parts, self._settings
        parts.on_close(ctx.senders.close)  # last: after the HTTP server, no test or resend is under way
        ch = open_client(settings)
        parts.on_close(ch.close)
        if self._metrics is not None:
            ch.observe = self._metrics.clickhouse
        store = HistoryStore(ch, settings.history_retention_days)
        await store.migrate()
        await parts.start(ctx.projects)
        await parts.start(ctx.keys)
        await parts.start(ctx.sessions.revoked)  # before any cookie is read: a signed-out one stays out
        await parts.start(ctx.users)
        await parts.start(ctx.memberships)
        await parts.start(ctx.account_tokens)
        await parts.start(ctx.invitations)
        key_file = await ensure_first_project(settings, self.accounts)
        setup_link = await ensure_setup_link(ctx)
        if self._readiness is not None:
            self._readiness.key_file = key_file
            self._readiness.setup_link = setup_link
        await parts.start(self._monitors)
        await parts.start(self._statuses)
        await parts.start(ctx.channels)
        await parts.start(ctx.maintenance)
        # The catalog indexes both views as they are, then follows them.
        ctx.started(store, Catalog(self._monitors, self._statuses))
        if settings.embedded:  # on Kafka, `pingura keys` publishes there itself
            await parts.start(ControlSocket(settings.data_dir, self.accounts))
        writer = await parts.start(HistoryWriter(settings, self._bus, self._topics, store))
        if self._metrics is not None:
            self._metrics.watch_history(writer.progress)

    async def close(self) -> None:
        await self._parts.close()


def build_query(settings: Settings, bus: Bus, metrics: Metrics | None = None) -> QueryService:
    return QueryService(settings, bus, metrics)


def _starting(request: web.Request) -> web.Response:
    return error(
        503,
        "starting: the views are being built, retry in a moment",
        headers={"Retry-After": str(STARTING_RETRY_AFTER_S)},
    )


def _revision(event) -> int:
    return getattr(event, "revision", 0) or getattr(event, "updated_ms", 0)


async def ensure_first_project(settings: Settings, accounts: Accounts) -> Path | None:
    """On a fresh install, create the admin project and its key, and hand the key to the
    operator through a 0600 file in the data directory (only its hash is stored).

    Returns that file when this call wrote it (the first start). The file comes first and
    the project last: a crash in between leaves no project, so the next start begins again.
    """
    key = settings.bootstrap_api_key
    if key and accounts.keys.find(key) is not None:
        return None
    if not key and len(accounts.projects):
        return None
    path = None
    if not key:
        key = new_api_key()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / ADMIN_KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    project_id = new_id("prj")
    await accounts.create_key(project_id, "admin", secret=key)
    await accounts.create_project("default", admin=True, project_id=project_id)
    log.info("serve.api_key.created", project_id=project_id, path=str(path) if path else None)
    return path


async def ensure_setup_link(ctx: ApiContext) -> str | None:
    """While no account exists: a new single-use setup link (``/setup#token=...``, 24 hours),
    for the welcome to print. Its secret is in the fragment, which browsers never send, so
    it reaches no access log; only its hash is published (``account-tokens``). Each start
    without an account makes a new one (an older one works until it expires or is used)."""
    if len(ctx.users) or ctx.projects.admin() is None:
        return None
    secret = await issue(ctx, None, "first_run")
    log.info("serve.setup_link.made", valid_hours=24)
    return f"/setup#token={secret}"
