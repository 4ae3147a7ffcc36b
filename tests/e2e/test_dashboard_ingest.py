"""The dashboard during an ingest incident, in a real browser against a real ``pingura serve``:
every page shows the banner "Ingestion collapsed since …: misses are held as unknown" while
one is open, the heartbeats show ``Unknown``, and the banner goes when pings come back.

The watch is shortened through the environment, as an operator would set it: a 2 s window
and 5 overdue check-ins; 20 heartbeats every 2 s (grace 6 s) pinged each second by a thread.
"""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest

from tests import polling
from tests.e2e.conftest import API_KEY, Server
from tests.e2e.test_dashboard import POLL_S, expect

FLEET = 20
WATCH = {"PINGURA_INGEST_WATCH_WINDOW_S": "2", "PINGURA_INGEST_WATCH_MIN_OVERDUE": "5"}


def api(server, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


class Pinger:
    """Pings the tokens it is given once a second, from a thread (the jobs of a fleet)."""

    def __init__(self, server: Server, tokens: list[str]):
        self.server, self.tokens = server, tokens
        self.pinging = True
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0 if self.rounds == 0 else 1.0):  # a job's own cadence, not a wait to count
            if self.pinging:
                for token in self.tokens:
                    request = urllib.request.Request(
                        f"{self.server.url}/api/heartbeat/{token}", method="POST"
                    )
                    with urllib.request.urlopen(request, timeout=10):
                        pass
            self.rounds += 1

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)


@pytest.fixture
def watched(tmp_path):
    server = Server(tmp_path / "data", tmp_path / "serve.log", env=WATCH)
    server.start()
    yield server
    server.stop()


def incidents(server) -> list[dict]:
    return api(server, "GET", "/ingest-incidents")["incidents"]


def test_every_page_shows_the_ingest_banner_while_pings_stop_reaching_pingura(watched, browser, tmp_path):
    server = watched
    shots = tmp_path / "screenshots"
    shots.mkdir()
    made = [api(server, "POST", "/heartbeats", {"name": f"edge job {i:02d}", "interval": 2, "grace": 6})
            for i in range(FLEET)]  # fmt: skip
    with Pinger(server, [m["token"] for m in made]) as pinger:
        polling.eventually_sync(
            lambda: api(server, "GET", "/heartbeats")["counts"].get("up") == FLEET, timeout_s=30
        )
        start = pinger.rounds
        polling.eventually_sync(
            lambda: pinger.rounds >= start + 4, timeout_s=30
        )  # the watch learns the volume
        assert incidents(server) == []

        pinger.pinging = False  # the load balancer in front of ingest breaks
        [incident] = polling.eventually_sync(lambda: incidents(server), timeout_s=30)
        assert incident["scope"] == ""
        polling.eventually_sync(
            lambda: api(server, "GET", "/heartbeats")["counts"].get("unknown") == FLEET, timeout_s=30
        )

        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        page.goto(server.url + "/login")
        page.get_by_label("API key").fill(API_KEY)
        page.get_by_label("API key").press("Enter")
        expect(page).to_have_url(server.url + "/")
        banner = page.get_by_role("status").filter(has_text="Ingestion collapsed since")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("misses are held as unknown")
        expect(banner).to_contain_text(f"({FLEET} heartbeats held so far)")
        expect(page.locator(".status-unknown").first).to_be_visible(timeout=(POLL_S + 5) * 1000)
        page.screenshot(path=shots / "ingest-banner-list.png", full_page=True)
        for path in ("/channels", "/maintenance", f"/heartbeats/{made[0]['id']}", "/heartbeats/new"):
            page.goto(server.url + path)
            expect(banner).to_be_visible()
        page.goto(server.url + f"/heartbeats/{made[0]['id']}")
        expect(banner).to_be_visible()
        page.screenshot(path=shots / "ingest-banner-detail.png", full_page=True)

        pinger.pinging = True  # fixed: every job's pings arrive again
        polling.eventually_sync(lambda: incidents(server) == [], timeout_s=30)
        page.goto(server.url + "/")
        expect(page.get_by_role("heading", name="Heartbeats")).to_be_visible()
        expect(page.locator("#ingest-banner")).to_be_hidden()
        assert page_errors == []
