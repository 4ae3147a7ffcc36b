"""``pingura keys``: beside a running ``pingura serve`` (through its control socket) and alone."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from services.datadir import owning
from services.query.auth.accounts import Accounts
from services.query.auth.keys import KeyIndex, ProjectsView
from shared.bus.local import LocalBus
from shared.topics import Topics
from tests.e2e.conftest import API_KEY, Server, end_process, free_port
from tests.polling import eventually_sync

TOPICS = Topics()


def pingura(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGURA_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def keys_in(data_dir: Path) -> dict:
    """What the data dir holds: key id -> key record (live ones), read the way a server would."""

    async def read():
        bus = LocalBus(data_dir / "bus.sqlite3")
        await bus.start()
        projects = ProjectsView(bus, TOPICS.projects)
        await projects.start()
        keys = KeyIndex(bus, TOPICS.keys, projects)
        await keys.start()
        found = {k.id: (k, projects[k.project_id]) for p in projects.values() for k in keys.of_project(p.id)}
        await keys.close()
        await projects.close()
        await bus.close()
        return found

    return asyncio.run(read())


@pytest.fixture
def data_dir():
    """A data dir as a first ``pingura serve`` leaves it: an admin project with one key.
    Short path: a Unix socket's path must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pgr"))

    async def seed():
        bus = LocalBus(path / "bus.sqlite3")
        await bus.start()
        await bus.ensure_topics(TOPICS.specs(1))
        projects = ProjectsView(bus, TOPICS.projects)
        keys = KeyIndex(bus, TOPICS.keys, projects)
        accounts = Accounts(bus, TOPICS, projects, keys)
        project = await accounts.create_project("default", admin=True)
        await accounts.create_key(project.id, "admin")
        await bus.close()

    asyncio.run(seed())
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


# no server running -------------------------------------------------------------------
def test_without_a_server_create_writes_the_data_dir_and_prints_only_the_key(data_dir):
    made = pingura("keys", "create", "--data-dir", str(data_dir), "--read-only", "--name", "grafana")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert made.stdout == key + "\n" and key.startswith("pk_")
    ((record, project),) = [found for found in keys_in(data_dir).values() if found[0].name == "grafana"]
    assert record.read_only and project.name == "default" and project.admin
    assert key not in (data_dir / "bus.sqlite3").read_bytes().decode(errors="replace")


def test_without_a_server_create_makes_the_named_project_once_when_told_to(data_dir):
    for _ in range(2):
        made = pingura(
            "keys", "create", "--data-dir", str(data_dir), "--project", "other", "--create-project"
        )
        assert made.returncode == 0, made.stderr
    projects = {project.name: project.id for _, project in keys_in(data_dir).values()}
    assert set(projects) == {"default", "other"}
    assert sum(1 for _, p in keys_in(data_dir).values() if p.name == "other") == 2


def test_a_key_for_an_unknown_project_is_refused_listing_the_projects_and_makes_nothing(data_dir):
    before = keys_in(data_dir)

    made = pingura("keys", "create", "--data-dir", str(data_dir), "--project", "ops")

    assert (made.returncode, made.stdout) == (1, "")
    assert made.stderr.count("\n") == 1
    assert "no project called 'ops'" in made.stderr and "'default'" in made.stderr
    assert "--create-project" in made.stderr
    assert keys_in(data_dir).keys() == before.keys()
    assert "ops" not in {p.name for _, p in keys_in(data_dir).values()}


@pytest.mark.parametrize(("args", "field"), [
    (["--name", "ci\x1b[2J"], "name"),
    (["--project", "ops\u202e", "--create-project"], "project"),
    (["--project", "", "--create-project"], "project"),
])  # fmt: skip
def test_a_key_or_project_name_follows_the_apis_name_rule(data_dir, args, field):
    made = pingura("keys", "create", "--data-dir", str(data_dir), *args)
    assert (made.returncode, made.stdout) == (1, ""), made.stderr
    assert made.stderr.startswith(f"pingura keys create: {field}: ") and made.stderr.count("\n") == 1


def test_a_name_saved_before_names_were_checked_is_listed_escaped_never_driving_the_terminal(data_dir):
    async def seed():  # straight onto the bus, as an older Pingura let it through
        bus = LocalBus(data_dir / "bus.sqlite3")
        await bus.start()
        projects = ProjectsView(bus, TOPICS.projects)
        await projects.start()
        keys = KeyIndex(bus, TOPICS.keys, projects)
        accounts = Accounts(bus, TOPICS, projects, keys)
        project = await accounts.create_project("ops\u202e")
        await accounts.create_key(project.id, "evil\x1b[2J\x07")
        await projects.close()
        await bus.close()

    asyncio.run(seed())
    listed = pingura("keys", "list", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout and "\u202e" not in listed.stdout
    assert "\tops\\u202e\t" in listed.stdout and "evil\\x1b[2J\\x07" in listed.stdout


def test_create_project_without_a_project_is_a_usage_error(data_dir):
    made = pingura("keys", "create", "--data-dir", str(data_dir), "--create-project")
    assert made.returncode == 2 and "--create-project needs --project" in made.stderr


def test_without_a_server_list_and_revoke(data_dir):
    made = pingura(
        "keys",
        "create",
        "--data-dir",
        str(data_dir),
        "--project",
        "other",
        "--create-project",
        "--name",
        "ci",
    )
    listed = pingura("keys", "list", "--data-dir", str(data_dir), "--project", "other")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    key_id, project, access, created_at, name = line.split("\t")
    assert (project, access, name) == ("other", "read-write", "ci") and created_at.endswith("Z")
    assert made.stdout.strip() not in listed.stdout
    assert len(pingura("keys", "list", "--data-dir", str(data_dir)).stdout.splitlines()) == 2

    revoked = pingura("keys", "revoke", "--data-dir", str(data_dir), key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert pingura("keys", "list", "--data-dir", str(data_dir), "--project", "other").stdout == ""
    again = pingura("keys", "revoke", "--data-dir", str(data_dir), key_id)
    assert again.returncode == 1 and key_id in again.stderr


def test_it_says_so_when_the_data_dir_holds_nothing(tmp_path):
    made = pingura("keys", "create", "--data-dir", str(tmp_path / "none"))
    assert made.returncode == 1 and made.stdout == ""
    assert "no Pingura data" in made.stderr
    assert not (tmp_path / "none" / "bus.sqlite3").exists()


def test_it_does_not_write_a_data_dir_another_process_owns(data_dir):
    before = (data_dir / "bus.sqlite3").read_bytes()
    with owning(data_dir):  # a server whose control socket does not answer
        made = pingura("keys", "create", "--data-dir", str(data_dir))
    assert made.returncode == 1 and "does not answer" in made.stderr
    assert (data_dir / "bus.sqlite3").read_bytes() == before


# beside a running server ---------------------------------------------------------------
@pytest.fixture
def server():
    path = Path(tempfile.mkdtemp(prefix="pgr"))
    srv = Server(path / "data", path / "serve.log")
    srv.start()
    yield srv
    srv.stop()
    subprocess.run(["rm", "-rf", str(path)], check=False)


async def status(server, method: str, path: str, key: str) -> int:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http,
        http.request(method, f"{server.url}/api/v1{path}", json={"name": "n"}) as r,
    ):
        return r.status


@pytest.mark.slow
async def test_a_key_made_beside_a_running_server_works_at_once_and_revoking_it_ends_it_at_once(server):
    made = await asyncio.to_thread(
        pingura,
        "keys",
        "create",
        "--data-dir",
        str(server.data_dir),
        "--project",
        "other",
        "--create-project",
        "--read-only",
    )
    assert made.returncode == 0, made.stderr + server.logs()[-2000:]
    key = made.stdout.strip()
    assert made.stdout == key + "\n"
    assert await status(server, "GET", "/heartbeats", key) == 200
    assert await status(server, "POST", "/heartbeats", key) == 403
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http,
        http.get(f"{server.url}/api/v1/projects/me") as r,
    ):
        me = await r.json()
    assert me["name"] == "other" and me["read_only"] and not me["admin"]

    listed = await asyncio.to_thread(
        pingura, "keys", "list", "--data-dir", str(server.data_dir), "--project", "other"
    )
    (key_id,) = [line.split("\t")[0] for line in listed.stdout.splitlines()]
    revoked = await asyncio.to_thread(pingura, "keys", "revoke", "--data-dir", str(server.data_dir), key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert await status(server, "GET", "/heartbeats", key) == 401
    assert await status(server, "GET", "/heartbeats", API_KEY) == 200


@pytest.mark.slow
async def test_the_control_socket_is_for_the_data_dirs_owner_only(server):
    socket_path = server.data_dir / "control.sock"
    assert oct(socket_path.stat().st_mode & 0o777) == oct(0o600)


@pytest.mark.slow
def test_the_first_start_prints_the_dashboard_the_setup_link_and_the_admin_key_and_later_starts_a_new_link():
    path = Path(tempfile.mkdtemp(prefix="pgr"))
    outputs, ports = [], []
    try:
        for _ in range(2):
            port = free_port()
            ports.append(port)
            env = {k: v for k, v in os.environ.items() if not k.startswith("PINGURA_")}
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "serve",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(path / "data"),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            try:
                wait_until_ready(proc, port)
            finally:
                end_process(proc)
            outputs.append(proc.stdout.read())
        key_file = path / "data" / "admin-api-key"
        assert f"http://127.0.0.1:{ports[0]}/" in outputs[0] and str(key_file) in outputs[0]
        # No account was made: the second start prints a new setup link, and not the key again.
        links = [
            re.findall(rf"http://127\.0\.0\.1:{port}/setup#token=[A-Za-z0-9_-]{{43}}", out)
            for out, port in zip(outputs, ports, strict=True)
        ]
        assert [len(found) for found in links] == [1, 1] and links[0] != links[1]
        assert str(key_file) not in outputs[1]
        assert oct(key_file.stat().st_mode & 0o777) == oct(0o600)
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


def wait_until_ready(proc: subprocess.Popen, port: int) -> None:
    """Until every service is ready: the port opens before the views are built."""

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail("pingura serve exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return True  # 200 (503 until then)
        except OSError:
            return False

    eventually_sync(ready, timeout_s=60, interval_s=0.1)
