"""Runs the real ``pingura serve`` as a child process, with a webhook receiver on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests import polling
from tests.real_services import missing_tool

API_KEY = "pk_test_" + "k" * 40
CHROMIUM = os.environ.get("PINGURA_CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_process(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    """Signal a child we started, wait for it, and kill it if it does not go in 30 s."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Server:
    """One ``pingura serve`` process; can be stopped (gracefully or by SIGKILL) and restarted."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.log_path = log_path
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True) -> None:
        """Start it and wait until it listens, and with ``wait_ready`` until every service in
        it is ready (the port opens before the views are built)."""
        env = {
            **os.environ,
            "PINGURA_BOOTSTRAP_API_KEY": API_KEY,
            "PINGURA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "PINGURA_DELIVERY_RETRY_INITIAL_S": "0.2",
            "PINGURA_LATENESS_MS": "500",
            "PINGURA_CHECKPOINT_INTERVAL_MS": "200",
            "PINGURA_LOG_LEVEL": "debug",
            **self.extra_env,
        }
        env.pop("PINGURA_KAFKA_BOOTSTRAP", None)
        with self.log_path.open("ab") as log:  # the child writes to its own copy; ours closes here
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc
        try:
            polling.eventually_sync(lambda: self._up(proc, wait_ready), timeout_s=60, interval_s=0.1)
        except AssertionError:
            raise RuntimeError(
                f"pingura serve did not get ready: {self.log_path.read_text()[-3000:]}"
            ) from None

    def _up(self, proc: subprocess.Popen, wait_ready: bool) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"pingura serve exited: {self.log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return not wait_ready or self.ready()
        except OSError:
            return False

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                return True  # 200: every service is ready (503 until then)
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc is not None:
            end_process(self.proc, sig)
        self.proc = None

    def logs(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def browser():
    """Headless Chromium (Debian's), driven by Playwright; see ``missing_tool`` when absent."""
    if not Path(CHROMIUM).exists():
        missing_tool(f"no Chromium at {CHROMIUM} (Debian package `chromium`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "data", tmp_path / "serve.log")
    srv.start()
    yield srv
    srv.stop()


class Receiver:
    """A webhook receiver on loopback that records every request body."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        return web.Response(text="ok")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def kinds(self) -> list[str]:
        return [b["kind"] for b in self.bodies]


@pytest.fixture
async def alert_receiver():
    """The notifier tests' webhook receiver on 127.0.0.1 (``tests.services.notifier.support``):
    for the end-to-end tests that read alerts as a webhook channel gets them."""
    from tests.services.notifier.support import Receiver as AlertReceiver

    receiver = AlertReceiver()
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture
async def receiver():
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = site._server.sockets[0].getsockname()[1]
    yield rec
    await runner.cleanup()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as session:
        yield session


async def eventually(check, timeout_s: float = 15.0, interval_s: float = 0.1):
    """``tests.polling.eventually`` with the end-to-end bounds: a whole process answers in seconds."""
    return await polling.eventually(check, timeout_s=timeout_s, interval_s=interval_s)
