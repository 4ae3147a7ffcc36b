"""One ClickHouse for the whole test session: a server from testcontainers when a Docker
daemon answers, otherwise chDB in-process (chDB allows one engine per process).

Tests share its tables and stay apart by using fresh project and monitor ids.
``tests/shared/test_clickhouse.py`` opens the same path, so it shares this engine too.
"""

import time
import uuid

import pytest
import pytest_asyncio

from services.query.store import HistoryStore
from shared.clickhouse import ClickHouse, open_client
from shared.settings import Settings
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
        url = f"http://{server.username}:{server.password}@{server.get_container_host_ip()}:" \
              f"{server.get_exposed_port(8123)}/{server.dbname}"
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
