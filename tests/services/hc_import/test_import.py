"""``pingura import healthchecks`` end to end: Healthchecks' recorded answers served on loopback
(aiohttp, checking ``X-Api-Key`` as Healthchecks does), a real ``pingura serve``, and pings
to the imported checks' old URLs."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from services.hc_import.cli import main
from tests.e2e.conftest import API_KEY, Server, free_port
from tests.polling import eventually_sync

FIXTURES = Path(__file__).parent / "fixtures"
WRITE_KEY = "hcw_loopbackwritekey000000000000"
READ_KEY = "hcr_loopbackreadkey0000000000000"
PING_KEY = "Qm9vdHN0cmFwUGluZ0tleQ"  # the recorded project's
QUEUE_WORKER = "e9116903-34a5-4fd5-9090-0420e318bce9"
NIGHTLY = "e5a7c435-1e9e-40d3-9a0d-ca5cfbedb85e"


class FakeHealthchecks:
    """The recorded answers, served as Healthchecks serves them (hc/api/decorators.py: a key
    that is not 32 characters is "missing", another one "wrong"; the read-only key reads checks
    only, without their UUIDs). ``mode`` breaks it: "500", "garbage", "shape"."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def _key(self, request: web.Request, read: bool) -> web.Response | None:
        key = request.headers.get("X-Api-Key", "")
        if len(key) != 32:
            return web.json_response({"error": "missing api key"}, status=401)
        if key != WRITE_KEY and not (read and key == READ_KEY):
            return web.json_response({"error": "wrong api key"}, status=401)
        return None

    def _answer(self, name: str) -> web.Response:
        if self.mode == "500":
            return web.Response(status=500, text="<h1>Server Error (500)</h1>", content_type="text/html")
        if self.mode == "garbage":
            return web.Response(text="<html>a login page</html>", content_type="text/html")
        if self.mode == "shape":
            return web.json_response({"checks": "not a list", "channels": 7})
        return web.Response(body=(FIXTURES / name).read_bytes(), content_type="application/json")

    async def checks(self, request: web.Request) -> web.Response:
        refused = self._key(request, read=True)
        if refused is not None:
            return refused
        return self._answer(
            "checks_readonly.json" if request.headers["X-Api-Key"] == READ_KEY else "checks.json"
        )

    async def channels(self, request: web.Request) -> web.Response:
        return self._key(request, read=False) or self._answer("channels.json")

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v3/checks/", self.checks)
        app.router.add_get("/api/v3/channels/", self.channels)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def hc() -> Iterator[FakeHealthchecks]:
    fake = FakeHealthchecks()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def pingura(tmp_path_factory) -> Iterator[Server]:
    where = tmp_path_factory.mktemp("hc_import")
    server = Server(where / "data", where / "serve.log")
    server.start()
    yield server
    server.stop()


def run_import(hc: FakeHealthchecks, to: str, *extra: str, key: str = WRITE_KEY) -> tuple[int, str]:
    out = io.StringIO()
    argv = ["import", "healthchecks", "--url", hc.url, "--api-key", key, "--to", to, "--pingura-key", API_KEY]
    return main([*argv, *extra], out=out), out.getvalue()


def api(server: Server, path: str) -> Any:
    request = urllib.request.Request(
        server.url + "/api/v1" + path, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.load(r)


def state(server: Server) -> tuple[list, list, Any]:
    return (
        api(server, "/heartbeats")["heartbeats"],
        api(server, "/channels")["channels"],
        api(server, "/projects/me"),
    )


def ping(server: Server, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(server.url + path, timeout=10) as r:
        return r.status, r.read().decode()


SETTINGS = [
    "--channel", 'Team Slack={"url": "https://hooks.slack.com/services/T000/B000/XXXX"}',
    "--channel", 'df2d2d6c-a9ad-4040-9bd8-1597415712de={"url": "http://127.0.0.1:9/hook"}',  # Deploy hook, by id
    "--channel", 'Ops mail={"to": ["ops@example.org"]}',  # this Pingura has no SMTP server: listed, not made
    "--ping-key", PING_KEY,
]  # fmt: skip


def test_import_keeps_ping_urls_and_a_second_run_or_a_dry_run_changes_nothing(hc, pingura):
    before = state(pingura)
    code, plan = run_import(hc, pingura.url, *SETTINGS, "--dry-run")
    assert code == 0 and plan.rstrip().endswith("dry run: nothing changed"), plan
    assert "create  heartbeat 'Nightly backup'" in plan and "create  channel 'Team Slack' (slack)" in plan
    assert "skip    'Discord': needs its settings" in plan and "skip    'Monday cleanup'" in plan
    assert (
        "skip    'Ops mail': this Pingura cannot make email channels: this server has no SMTP server" in plan
    )
    assert state(pingura) == before

    code, done = run_import(hc, pingura.url, *SETTINGS)
    assert (
        code == 0
        and "done: 5 heartbeats and 2 channels created, 0 heartbeats given new channels, 1 checks skipped, 0 failed"
        in done
    ), done
    heartbeats, channels, project = state(pingura)
    assert project["ping_key"] == PING_KEY
    slack = next(c["id"] for c in channels if c["name"] == "Team Slack")
    by_token = {h["token"]: h for h in heartbeats}
    assert set(by_token) == {c["uuid"] for c in json.loads((FIXTURES / "checks.json").read_text())["checks"]
                             if c["name"] != "Monday cleanup"}  # fmt: skip
    nightly = by_token[NIGHTLY]
    assert (nightly["schedule"], nightly["timezone"], nightly["grace"]) == (
        "30 2 * * *",
        "Europe/Berlin",
        3600,
    )
    assert (nightly["slug"], nightly["tags"], nightly["channels"]) == (
        "nightly-backup",
        ["prod", "backup"],
        [slack],
    )
    assert nightly["description"].startswith("Dumps the database to S3.\nIf it fails")

    # the jobs change the host name only: by UUID and by slug with the project's old ping key
    assert ping(pingura, f"/ping/{QUEUE_WORKER}") == (200, "OK")
    assert ping(pingura, f"/ping/{PING_KEY}/nightly-backup/fail") == (200, "OK")
    worker_id, nightly_id = by_token[QUEUE_WORKER]["id"], nightly["id"]
    eventually_sync(lambda: api(pingura, f"/heartbeats/{worker_id}/checkins")["checkins"], timeout_s=15)
    eventually_sync(lambda: api(pingura, f"/heartbeats/{nightly_id}")["status"] == "down", timeout_s=15)

    after = state(pingura)
    code, again = run_import(hc, pingura.url, *SETTINGS)
    assert (
        code == 0 and "done: 0 heartbeats and 0 channels created, 0 heartbeats given new channels" in again
    ), again
    assert f"skip    'Queue worker': already imported (heartbeat {worker_id})" in again
    assert "keep    channel 'Team Slack' (slack): exists as " + slack in again
    assert state(pingura) == after

    # an integration's settings given later: its channel is made, and the checks imported before gain it
    telegram = ["--channel", 'Oncall chat={"bot_token": "123456:ABCdef", "chat_id": "-100123"}']
    code, plan = run_import(hc, pingura.url, *SETTINGS, *telegram, "--dry-run")
    assert code == 0 and "add to it the channels made now: 'Oncall chat'" in plan and state(pingura) == after
    code, done = run_import(hc, pingura.url, *SETTINGS, *telegram)
    assert (
        code == 0 and "done: 0 heartbeats and 1 channels created, 2 heartbeats given new channels" in done
    ), done
    oncall = next(c["id"] for c in api(pingura, "/channels")["channels"] if c["name"] == "Oncall chat")
    assert api(pingura, f"/heartbeats/{nightly_id}")["channels"] == [slack, oncall]
    final = state(pingura)
    code, done = run_import(hc, pingura.url, *SETTINGS, *telegram)
    assert code == 0 and "done: 0 heartbeats and 0 channels created, 0 heartbeats given new channels" in done
    assert state(pingura) == final


@pytest.mark.parametrize(
    ("mode", "key", "said"),
    [
        ("ok", "x" * 32, "Healthchecks refused the API key (GET /api/v3/checks/: 401 wrong api key)"),
        ("ok", "short", "Healthchecks refused the API key (GET /api/v3/checks/: 401 missing api key)"),
        ("ok", READ_KEY, "the Healthchecks API key is read-only"),
        ("500", WRITE_KEY, "Healthchecks answered 500 to GET /api/v3/checks/"),
        ("garbage", WRITE_KEY, "Healthchecks's answer to GET /api/v3/checks/ is not JSON"),
        ("shape", WRITE_KEY, 'not its API v3\'s: the answer has no "checks" list'),
    ],
)
def test_a_healthchecks_that_refuses_or_answers_garbage_is_one_error_line(hc, capsys, mode, key, said):
    hc.mode = mode
    try:
        code, out = run_import(hc, f"http://127.0.0.1:{free_port()}", key=key)  # no Pingura: never reached
    finally:
        hc.mode = "ok"
    err = capsys.readouterr().err
    assert code == 1 and out == "" and err.startswith("pingura import: error: ") and said in err, err
    assert err.count("\n") == 1


def test_an_unreachable_healthchecks_is_one_error_line(capsys):
    code = main(["import", "healthchecks", "--url", f"http://127.0.0.1:{free_port()}", "--api-key", WRITE_KEY,
                 "--pingura-key", API_KEY], out=io.StringIO())  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "cannot reach Healthchecks at http://127.0.0.1:" in err and err.count("\n") == 1, err
