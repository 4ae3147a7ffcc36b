"""The data dir is its owner's alone: 0700 folders and 0600 files whatever the umask, an
existing looser one tightened at start; and one process at a time owns it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from services.datadir import DataDirBusy, owning
from tests.e2e.conftest import Server
from tests.polling import eventually


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, str]:
    """Every path under ``root`` (itself as ".") -> its permission bits, in octal."""
    found = {".": oct(stat.S_IMODE(root.lstat().st_mode))}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            with contextlib.suppress(FileNotFoundError):  # a file chDB or SQLite removed while we looked
                found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def loose(root: Path) -> dict[str, str]:
    """What of ``modes(root)`` is not private: a folder other than 0700, a file other than 0600.
    Symbolic links (chDB makes some) have no permissions of their own on Linux."""
    out = {}
    for name, mode in modes(root).items():
        path = root / name
        if path.is_symlink():
            continue
        want = 0o700 if path.is_dir() else 0o600
        if int(mode, 8) != want:
            out[name] = mode
    return out


def test_it_creates_the_data_dir_0700_and_what_is_made_in_it_0600_under_umask_022(tmp_path):
    data_dir = tmp_path / "data"
    with umask(0o022):
        with owning(data_dir):
            (data_dir / "bus.sqlite3").write_bytes(b"x")  # as SQLite or chDB would: mode 0666 less the umask
            (data_dir / "clickhouse" / "store").mkdir(parents=True)
            (data_dir / "clickhouse" / "store" / "part.bin").write_bytes(b"x")
        assert os.umask(0o022) == 0o022  # the process's own umask is back once the block ends
    assert loose(data_dir) == {}
    assert modes(data_dir)["."] == oct(0o700)


def test_it_tightens_an_existing_0755_dir_with_0644_files_and_says_what_it_changed_in_one_line(tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "clickhouse").mkdir(parents=True)
    for name in ("bus.sqlite3", "bus.sqlite3-wal", "admin-api-key", "clickhouse/data.bin"):
        (data_dir / name).write_bytes(b"secret")
        (data_dir / name).chmod(0o644)
    outside = tmp_path / "outside"
    outside.write_bytes(b"not ours to change")
    outside.chmod(0o644)
    os.symlink(outside, data_dir / "link")  # a link is left alone: chmod would change what it points at
    data_dir.chmod(0o755)
    (data_dir / "clickhouse").chmod(0o755)
    with capture_logs() as logs, owning(data_dir):
        pass
    assert loose(data_dir) == {}
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    (line,) = [entry for entry in logs if entry["event"] == "datadir.tightened"]
    assert line["count"] == 6 and line["path"] == str(data_dir)
    assert ". 0755->0700" in line["changed"] and "admin-api-key 0644->0600" in line["changed"]


def test_it_says_nothing_when_the_data_dir_is_already_private(tmp_path):
    data_dir = tmp_path / "data"
    with owning(data_dir):
        (data_dir / "bus.sqlite3").write_bytes(b"x")
    with capture_logs() as logs, owning(data_dir):
        pass
    assert [entry for entry in logs if entry["event"].startswith("datadir.")] == []


def test_a_second_owner_is_refused_while_the_first_holds_it(tmp_path):
    with owning(tmp_path / "data"), pytest.raises(DataDirBusy), owning(tmp_path / "data"):
        pass


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["one process", "ingest process"])
async def test_every_file_a_serving_pingura_writes_is_private_under_umask_022(layout):
    """The whole data dir of a real ``pingura serve`` that took a ping and wrote history
    (bus, WAL, chDB, admin key, snapshots, sockets), while it runs and after it stopped."""
    root = Path(tempfile.mkdtemp(prefix="pgr"))  # short: a Unix socket's path must fit in 107 bytes
    env = {"PINGURA_INGEST_PROCESS": "1"} if layout == "ingest process" else {}
    server = Server(root / "data", root / "serve.log", env={**env, "PINGURA_BOOTSTRAP_API_KEY": ""})
    try:
        with umask(0o022):  # the server inherits it, as from a login shell
            await asyncio.to_thread(server.start)
        key = (root / "data" / "admin-api-key").read_text().strip()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            async with http.post(
                f"{server.url}/api/v1/heartbeats", json={"name": "db", "interval": "1h"}
            ) as r:
                assert r.status == 201, await r.text()
                made = await r.json()
            async with http.post(f"{server.url}/api/heartbeat/{made['token']}", data=b"backup done") as r:
                assert r.status == 200

            async def stored() -> list:  # the history writer stored the ping in chDB
                async with http.get(f"{server.url}/api/v1/heartbeats/{made['id']}/checkins") as r:
                    return (await r.json())["checkins"]

            await eventually(stored, timeout_s=10, interval_s=0.1)
        running = loose(root / "data")
        await asyncio.to_thread(server.stop)
        assert running == {}, server.logs()[-2000:]
        assert loose(root / "data") == {}
        assert {"bus.sqlite3", "admin-api-key", "clickhouse"} <= set(modes(root / "data"))
    finally:
        server.stop()
        await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)


@pytest.mark.parametrize("command", ["serve", "query"])
def test_every_pingura_command_runs_under_umask_077(monkeypatch, tmp_path, command):
    """What chDB makes later (a query service on Kafka owns no data dir) and anything else."""
    import services.cli as cli

    seen = []

    async def run(settings, services):
        seen.append(os.umask(0o077))

    monkeypatch.setattr(cli, "_run", run)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `serve` would install it for the whole test session
    monkeypatch.setenv("PINGURA_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    with umask(0o022):
        assert cli.main([command, "--data-dir", str(tmp_path)]) == 0
    assert seen == [0o077]
