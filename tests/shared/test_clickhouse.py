"""shared.clickhouse against real chDB.

chDB binds the process to one data path, so every test here (and the query service's
tests) opens the same one: ``<pytest base temp>/clickhouse``.
"""

import os
import stat
import threading
from datetime import UTC, datetime

import pytest

from shared.clickhouse import open_client, server_options
from shared.errors import ConfigError
from shared.settings import Settings


@pytest.fixture
def settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.getbasetemp())


@pytest.fixture
async def ch(settings):
    client = open_client(settings)
    yield client
    await client.close()


async def test_it_inserts_and_queries_with_bound_parameters(ch):
    table = "t_roundtrip"
    await ch.command(f"DROP TABLE IF EXISTS {table}")
    await ch.command(
        f"CREATE TABLE {table} (id String, at DateTime64(3, 'UTC'), n Nullable(UInt8)) ENGINE = MergeTree ORDER BY id"
    )
    at = datetime(2025, 3, 1, 12, 0, 0, 123_000, tzinfo=UTC)
    await ch.insert(table, [["a", at, 1], ["b'; DROP TABLE x --", at, None]], ["id", "at", "n"])

    rows = await ch.query(
        f"SELECT id, toUnixTimestamp64Milli(at), n FROM {table} WHERE id = {{id:String}}",
        {"id": "b'; DROP TABLE x --"},
    )
    dicts = await ch.query_dicts(f"SELECT id, n FROM {table} ORDER BY id")

    assert rows == [("b'; DROP TABLE x --", int(at.timestamp() * 1000), None)]
    assert dicts == [{"id": "a", "n": 1}, {"id": "b'; DROP TABLE x --", "n": None}]


async def test_every_call_runs_on_one_dedicated_thread(ch):
    # The client is synchronous: the event loop's thread must never run it.
    threads = {await ch._run(threading.current_thread) for _ in range(5)}
    assert len(threads) == 1
    assert threads.pop() is not threading.current_thread()


async def test_clients_of_one_process_share_its_chdb_engine(settings, ch):
    other = open_client(settings)
    await other.command("CREATE TABLE IF NOT EXISTS t_shared (x UInt8) ENGINE = Memory")
    await other.close()

    # Closing one client leaves the engine, and its tables, to the others.
    assert await ch.query("SELECT count() FROM system.tables WHERE name = 't_shared'") == [(1,)]


async def test_a_second_chdb_path_in_one_process_is_refused(ch, tmp_path):
    with pytest.raises(ConfigError, match=r"^data_dir: chDB allows one engine per process"):
        open_client(Settings(data_dir=tmp_path))


async def test_a_closed_client_refuses_further_calls(settings):
    client = open_client(settings)
    await client.close()
    await client.close()  # twice is harmless
    with pytest.raises(RuntimeError, match=r"closed"):
        await client.query("SELECT 1")


async def test_opening_chdb_takes_group_and_other_permissions_off_its_folder(settings):
    # Job output lives there. Under ``pingura serve`` the data dir was made private already;
    # a query service on Kafka with chDB has only this (and the umask 077 every ``pingura``
    # command runs under, for the files chDB makes later: tests/services/test_datadir.py).
    folder = settings.data_dir / "clickhouse"
    client = open_client(settings)
    await client.command("CREATE TABLE IF NOT EXISTS t_private (x UInt8) ENGINE = MergeTree ORDER BY x")
    await client.command("INSERT INTO t_private VALUES (1)")
    await client.close()
    files = [
        os.path.join(d, name)
        for d, _, names in os.walk(folder)
        for name in names
        if not os.path.islink(os.path.join(d, name))  # noqa: ASYNC240 - a test's look at a folder
    ]
    folder.chmod(0o755)
    os.chmod(files[0], 0o644)
    client = open_client(settings)
    await client.close()
    loose = {
        path: oct(stat.S_IMODE(os.lstat(path).st_mode))
        for d, dirs, names in os.walk(folder)
        for path in (os.path.join(d, n) for n in dirs + names)
        if not os.path.islink(path)  # noqa: ASYNC240 - as above
        and stat.S_IMODE(os.lstat(path).st_mode) & 0o077
    }
    assert (oct(stat.S_IMODE(folder.stat().st_mode)), loose) == (oct(0o700), {})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://pingura:s%40cret@ch.internal:8123/history",
            {
                "host": "ch.internal",
                "port": 8123,
                "username": "pingura",
                "password": "s@cret",
                "database": "history",
                "secure": False,
            },
        ),
        (
            "https://ch.example.com",
            {
                "host": "ch.example.com",
                "port": 8443,
                "username": "default",
                "password": "",
                "database": None,
                "secure": True,
            },
        ),
        (
            "http://u@localhost/",
            {
                "host": "localhost",
                "port": 8123,
                "username": "u",
                "password": "",
                "database": None,
                "secure": False,
            },
        ),
    ],
)
def test_a_server_url_becomes_client_options(url, expected):
    assert server_options(url) == expected


@pytest.mark.parametrize("url", ["clickhouse://host:9000/db", "http://", "http://host:port/db"])
def test_a_malformed_server_url_names_the_setting(url):
    with pytest.raises(ConfigError, match=r"^clickhouse_url: "):
        server_options(url)
