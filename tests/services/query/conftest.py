"""One ClickHouse for the whole test session: a server from testcontainers when a Docker
daemon answers, otherwise chDB in-process (chDB allows one engine per process).

Tests share its tables and stay apart by using fresh project and monitor ids.
``tests/shared/test_clickhouse.py`` opens the same path, so it shares this engine too.
"""

import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.notifier.sending import Senders
from services.query.app import ApiContext, api_app
from services.query.auth.account_tokens import AccountTokensView
from services.query.auth.invitations import InvitationsView
from services.query.auth.keys import KeyIndex, ProjectsView
from services.query.auth.people import MembershipsView, UsersView
from services.query.auth.revocations import RevokedSessions
from services.query.auth.routes import add_session_routes
from services.query.auth.sessions import Sessions, load_secret
from services.query.catalog import Catalog, WatchedConfigView
from services.query.maintenance_view import MaintenanceView
from services.query.status_view import StatusView
from services.query.store import HistoryStore
from shared.bus.local import LocalBus
from shared.bus.view import ConfigView
from shared.clickhouse import ClickHouse, open_client
from shared.events import ChannelConfig, MonitorConfig, ProjectConfig
from shared.ids import hash_api_key
from shared.settings import Settings
from shared.topics import Topics
from tests.real_services import docker_answers

RETENTION_DAYS = 400


@pytest.fixture(scope="session")
def clickhouse_settings(tmp_path_factory):
    base = Settings(data_dir=tmp_path_factory.getbasetemp(), history_retention_days=RETENTION_DAYS)
    if not docker_answers():
        yield base
        return
    from testcontainers.clickhouse import ClickHouseContainer

    with ClickHouseContainer() as server:
        url = (
            f"http://{server.username}:{server.password}@{server.get_container_host_ip()}:"
            f"{server.get_exposed_port(8123)}/{server.dbname}"
        )
        yield base.replace(clickhouse_url=url)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ch(clickhouse_settings) -> ClickHouse:
    client = open_client(clickhouse_settings)
    yield client
    await client.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def store(ch) -> HistoryStore:
    history = HistoryStore(ch, RETENTION_DAYS)
    await history.migrate()
    return history


@pytest.fixture
def project_id() -> str:
    return "prj_" + uuid.uuid4().hex


@pytest.fixture
def monitor_id() -> str:
    return "mon_" + uuid.uuid4().hex


@pytest.fixture
def now_ms() -> int:
    # Whole seconds keep expected ISO strings simple; recent, so well inside the TTL.
    return int(time.time()) * 1000


API_KEY = "pk_test_" + "q" * 40


@dataclass
class Api:
    """The JSON API served over real HTTP, and a client already holding an admin key."""

    url: str
    http: aiohttp.ClientSession
    ctx: ApiContext


def starter(stack: AsyncExitStack):
    """``started(part)``: the part started, and closed with ``stack``."""

    async def started(part):
        await part.start()
        stack.push_async_callback(part.close)
        return part

    return started


async def serve_api(stack: AsyncExitStack, ctx: ApiContext) -> str:
    """The API at /api/v1 and the session routes, as ``pingura serve`` mounts them, served
    over real HTTP until ``stack`` closes; the API's URL."""
    root = web.Application(client_max_size=ctx.settings.max_api_body_bytes)
    root.add_subapp("/api/v1", api_app(ctx))
    add_session_routes(root, ctx)
    server = TestServer(root)
    await server.start_server()
    stack.push_async_callback(server.close)
    return str(server.make_url("/api/v1"))


def _revision(event) -> int:
    return getattr(event, "revision", 0) or getattr(event, "updated_ms", 0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(store, clickhouse_settings, tmp_path_factory) -> Api:
    """The API sub-app mounted at /api/v1, and the session routes, as ``pingura serve``
    mounts them (see ``services.query.service``), over a real LocalBus on disk, real views
    and the session's HistoryStore. The admin project ``prj_admin`` holds ``API_KEY`` as a
    legacy project key (a hash on the project record).

    Module-scoped: a Hypothesis test runs hundreds of requests against one server.
    Tests that use it run on the session loop (the store's), see ``pytestmark`` there.
    """
    data_dir = tmp_path_factory.mktemp("api")
    # No throttle: one address sends thousands of wrong keys here on purpose (the property
    # tests); tests/services/query/auth/test_throttle.py runs an instance with one.
    settings = clickhouse_settings.replace(data_dir=data_dir, auth_failures_per_minute=0)
    topics = Topics()
    async with AsyncExitStack() as stack:
        bus = LocalBus(data_dir / "bus.sqlite3")
        await bus.start()
        stack.push_async_callback(bus.close)
        await bus.ensure_topics(topics.specs(1))
        started = starter(stack)

        projects = await started(ProjectsView(bus, topics.projects))
        projects.put(ProjectConfig(id="prj_admin", name="admin", api_key_hashes=[hash_api_key(API_KEY)],
                                   admin=True, created_ms=0))  # fmt: skip
        keys = await started(
            KeyIndex(bus, topics.keys, projects, failures_per_minute=settings.auth_failures_per_minute)
        )
        monitors = await started(WatchedConfigView(bus, topics.monitors, MonitorConfig, _revision))
        statuses = await started(StatusView(bus, topics))
        senders = Senders(settings)
        stack.push_async_callback(senders.close)
        ctx = ApiContext(
            settings=settings, bus=bus, topics=topics, monitors=monitors,
            channels=await started(ConfigView(bus, topics.channels, ChannelConfig, _revision)),
            projects=projects, statuses=statuses, keys=keys,
            sessions=Sessions(load_secret(settings), settings.session_ttl_s,
                              await started(RevokedSessions(bus, topics.revoked_sessions))),
            senders=senders, maintenance=await started(MaintenanceView(bus, topics.maintenance)),
            users=await started(UsersView(bus, topics.users)),
            memberships=await started(MembershipsView(bus, topics.memberships)),
            invitations=await started(InvitationsView(bus, topics.invitations)),
            account_tokens=await started(AccountTokensView(bus, topics.account_tokens)),
        )  # fmt: skip
        ctx.started(store, Catalog(monitors, statuses))
        url = await serve_api(stack, ctx)
        http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"})
        stack.push_async_callback(http.close)
        yield Api(url, http, ctx)
