"""borgmatic, unchanged, reporting to the real ``pingura serve`` through its Healthchecks hook.

A real Borg repository on disk, a small source folder, and borgmatic's own
``healthchecks: ping_url:`` pointed at ``/ping/<token>``: it sends ``/start`` when a
backup begins, ``/log`` with its log, then the bare URL (success) or ``/fail``, each end
with its log as the body. A good run is recorded as a start and a success carrying the
log and a measured duration; a run whose source folder has gone is a failure, the
heartbeat goes down and one alert reaches the webhook.

Borg and borgmatic are required in CI (``.ci/run`` installs Borg; borgmatic is a test
dependency): there a missing one fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Receiver, Server, eventually
from tests.real_services import missing_tool

BORGMATIC = Path(sys.executable).parent / "borgmatic"
RUN_TIMEOUT_S = 60


@pytest.fixture
def tools() -> tuple[str, str]:
    """(borg, borgmatic): both, or a failure in CI and a skip elsewhere."""
    borg = shutil.which("borg")
    borgmatic = str(BORGMATIC) if BORGMATIC.exists() else shutil.which("borgmatic")
    missing = [
        name for name, path in (("borg (Debian: borgbackup)", borg), ("borgmatic", borgmatic)) if not path
    ]
    if missing:
        missing_tool(f"needs {' and '.join(missing)} on PATH")
    return borg, borgmatic


class Backup:
    """A source folder, a Borg repository and a borgmatic config, all under ``root``, with
    a home of their own so that nothing reads or writes the real one."""

    def __init__(self, root: Path, borg: str, borgmatic: str, ping_url: str):
        self.borgmatic = borgmatic
        self.source = root / "source"
        self.repository = root / "repo.borg"
        self.config = root / "borgmatic.yaml"
        home = root / "home"
        self.env = {
            **os.environ,
            "HOME": str(home),
            "BORG_BASE_DIR": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_RUNTIME_DIR": str(root / "run"),
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        }
        for folder in (home, root / "run", self.source / "db"):
            folder.mkdir(parents=True)
        (root / "run").chmod(0o700)
        (self.source / "db" / "dump.sql").write_text("INSERT INTO invoices VALUES (1, 'paid');\n" * 200)
        (self.source / "notes.txt").write_text("nightly\n")
        self.config.write_text(
            "source_directories:\n"
            f"  - {self.source}\n"
            "repositories:\n"
            f"  - path: {self.repository}\n"
            "    label: local\n"
            "healthchecks:\n"
            f"  ping_url: {ping_url}\n"
            "  send_logs: true\n"
        )
        init = subprocess.run(
            [borg, "init", "--encryption=none", str(self.repository)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert init.returncode == 0, init.stderr

    async def create(self) -> subprocess.CompletedProcess:
        """``borgmatic create``, as a cron job would run it (off the event loop: the server
        and the webhook receiver keep answering)."""
        command = [self.borgmatic, "--config", str(self.config), "create", "--verbosity", "1"]
        return await asyncio.to_thread(
            subprocess.run, command, env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )


async def checkins(http, server: Server, heartbeat: str) -> list[dict]:
    """The heartbeat's history, oldest first."""
    async with http.get(f"{server.url}/api/v1/heartbeats/{heartbeat}/checkins", params={"limit": "100"}) as r:
        assert r.status == 200, await r.text()
        return list(reversed((await r.json())["checkins"]))


async def heartbeat_json(http, server: Server, heartbeat: str) -> dict:
    async with http.get(f"{server.url}/api/v1/heartbeats/{heartbeat}") as r:
        assert r.status == 200, await r.text()
        return await r.json()


def ended(rows: list[dict], kind: str) -> list[dict] | None:
    """The rows, once one of ``kind`` has its measured duration (the evaluator adds it)."""
    last = rows[-1] if rows else None
    return rows if last and last["kind"] == kind and last["measured_duration"] is not None else None


async def test_borgmatic_reports_a_good_backup_and_a_failed_one_through_its_healthchecks_hook(
    tools, server: Server, http, receiver: Receiver, tmp_path
):
    borg, borgmatic = tools
    async with http.post(
        f"{server.url}/api/v1/channels",
        json={"kind": "webhook", "name": "ops", "config": {"url": receiver.url}},
    ) as r:
        assert r.status == 201, await r.text()
        channel = (await r.json())["id"]
    async with http.post(f"{server.url}/api/v1/heartbeats", json={
        "name": "Nightly Borg backup", "schedule": "0 3 * * *", "timezone": "Europe/Berlin", "grace": "1h",
        "max_consecutive_misses": 1, "channels": [channel],
    }) as r:  # fmt: skip
        assert r.status == 201, await r.text()
        monitor = await r.json()
    heartbeat = monitor["id"]
    backup = Backup(tmp_path / "backup", borg, borgmatic, f"{server.url}/ping/{monitor['token']}")

    # A good run: a start, then a success carrying borgmatic's log, timed from the start.
    run = await backup.create()
    assert run.returncode == 0, run.stderr
    assert "Pinging Healthchecks finish" in run.stderr + run.stdout
    rows = await eventually(lambda: _ended(http, server, heartbeat, "success"))
    kinds = [c["kind"] for c in rows]
    assert kinds[0] == "start" and kinds[-1] == "success" and set(kinds[1:-1]) <= {"log"}, kinds
    start, success = rows[0], rows[-1]
    assert {c["user_agent"] for c in rows} == {"borgmatic"}
    assert "Creating archive" in success["output"], success
    assert not success["output_truncated"]
    started_ms, ended_ms = start["received_at_ms"], success["received_at_ms"]
    assert 0 < success["measured_duration"] <= (ended_ms - started_ms) / 1000 + 0.01, (success, start)
    assert (await eventually(lambda: _status(http, server, heartbeat, "up")))["status"] == "up"

    # A failed run (the source folder is gone): borgmatic says /fail with the reason, the
    # heartbeat goes down, and the webhook gets exactly one alert.
    shutil.rmtree(backup.source)
    run = await backup.create()
    assert run.returncode != 0
    assert "Pinging Healthchecks fail" in run.stderr + run.stdout
    rows = await eventually(lambda: _ended(http, server, heartbeat, "fail"))
    failure = rows[-1]
    assert str(backup.source) in failure["output"], failure
    assert "do not exist" in failure["output"], failure
    assert rows[len(kinds)]["kind"] == "start", rows
    down = await eventually(lambda: _status(http, server, heartbeat, "down"))
    assert "failure" in (down["status_reason"] or ""), down
    await eventually(lambda: _received(receiver))
    alert = receiver.bodies[0]
    assert alert["monitor"]["id"] == heartbeat
    assert "do not exist" in alert["reason"], alert

    # One alert only: a success after it brings the `up`, and a monitor's alerts go out in
    # order, so a second `down` would have arrived before it.
    async with http.post(f"{server.url}/ping/{monitor['token']}") as r:
        assert r.status == 200, await r.text()
    await eventually(lambda: _received(receiver, 2))
    assert receiver.kinds() == ["down", "up"], receiver.bodies


async def _ended(http, server: Server, heartbeat: str, kind: str) -> list[dict] | None:
    return ended(await checkins(http, server, heartbeat), kind)


async def _status(http, server: Server, heartbeat: str, status: str) -> dict | None:
    body = await heartbeat_json(http, server, heartbeat)
    return body if body["status"] == status else None


async def _received(receiver: Receiver, count: int = 1) -> list[dict] | None:
    return receiver.bodies if len(receiver.bodies) >= count else None
