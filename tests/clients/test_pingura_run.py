"""``pingura run`` as a job's crontab line runs it: a real subprocess around real jobs, pinging a
recording HTTP server on 127.0.0.1 (and, once, a real ``pingura serve``)."""

from __future__ import annotations

import asyncio
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import eventually, server  # noqa: F401  (the e2e fixture, used below)

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
KEPT = 100 * 1024


@dataclass
class Ping:
    method: str
    path: str
    rid: str
    body: bytes


@dataclass
class Receiver:
    """Records every ping; answers 503 to the first ``failures`` of them."""

    failures: int = 0
    pings: list[Ping] = field(default_factory=list)
    refused: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ping/check-token"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if rec.refused < rec.failures:
                rec.refused += 1
                self.send_response(503)
            else:
                path, _, query = self.path.partition("?")
                rid = dict(part.split("=", 1) for part in query.split("&") if "=" in part).get("rid", "")
                rec.pings.append(Ping(self.command, path, rid, body))
                self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield rec
    httpd.shutdown()
    httpd.server_close()


def wrap(*args: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pingura_run", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,  # type: ignore[call-overload]
    )


def finished(proc: subprocess.Popen, timeout_s: float = 20) -> tuple[int, bytes, bytes]:
    out, err = proc.communicate(timeout=timeout_s)
    return proc.returncode, out, err


def test_a_failing_job_is_reported_as_start_then_its_exit_code_with_its_output_under_one_run_id(receiver):
    code, out, err = finished(wrap("--url", receiver.url, "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"))
    assert code == 3
    assert (out, err) == (b"hi\n", b"oops\n")
    start, end = receiver.pings
    assert (start.method, start.path, end.method, end.path) == (
        "POST",
        "/ping/check-token/start",
        "POST",
        "/ping/check-token/3",
    )
    assert re.fullmatch(UUID, start.rid) and end.rid == start.rid
    assert start.body == b""
    assert end.body in (b"hi\noops\n", b"oops\nhi\n")  # two pipes: their order between them is the OS's


def test_each_run_has_a_fresh_run_id(receiver):
    for _ in range(2):
        assert finished(wrap("--url", receiver.url, "--", "true"))[0] == 0
    assert [p.path.rsplit("/", 1)[1] for p in receiver.pings] == ["start", "0", "start", "0"]
    assert receiver.pings[0].rid != receiver.pings[2].rid


def test_a_job_printing_more_than_100_kib_is_passed_through_whole_and_reported_by_its_last_100_kib(receiver):
    # 3000 numbered lines of 60 bytes: 180,000 bytes, nothing repeated.
    script = "i=0; while [ $i -lt 3000 ]; do printf '%059d\\n' $i; i=$((i+1)); done"
    code, out, _ = finished(wrap("--url", receiver.url, "--", "sh", "-c", script))
    assert code == 0
    assert len(out) == 3000 * 60 and out.startswith(b"0" * 59 + b"\n")
    assert receiver.pings[-1].path.endswith("/0")
    assert receiver.pings[-1].body == out[-KEPT:]


def test_sigterm_to_the_wrapper_reaches_the_job_and_the_run_reports_143(receiver):
    proc = wrap("--url", receiver.url, "--", "sh", "-c", "echo ready; exec sleep 30")
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # the job runs (and the wrapper's handlers are in)
    proc.send_signal(signal.SIGTERM)
    code, _, _ = finished(proc)
    assert code == 128 + signal.SIGTERM
    assert [p.path for p in receiver.pings] == ["/ping/check-token/start", "/ping/check-token/143"]
    assert receiver.pings[1].body == b"ready\n"


def test_a_hung_job_is_killed_at_its_timeout_and_reported_as_timed_out_with_124(receiver):
    proc = wrap(
        "--url",
        receiver.url,
        "--timeout",
        "0.5",
        "--kill-after",
        "1",
        "--",
        "sh",
        "-c",
        "echo working; sleep 30; echo never",
    )
    code, out, err = finished(proc)
    assert code == 124
    assert out == b"working\n"
    assert b"timed out after 0.5 s" in err
    end = receiver.pings[-1]
    assert end.path == "/ping/check-token/124"
    assert end.body.startswith(b"working\n") and b"pingura run: timed out after 0.5 s" in end.body


def test_a_job_ignoring_sigterm_at_its_timeout_is_killed_after_the_grace(receiver):
    proc = wrap("--url", receiver.url, "--timeout", "0.3", "--kill-after", "0.5", "--",
                "sh", "-c", "trap '' TERM; echo stubborn; sleep 30")  # fmt: skip
    code, out, _ = finished(proc)
    assert (code, out) == (124, b"stubborn\n")
    assert receiver.pings[-1].path == "/ping/check-token/124"


def test_a_missing_command_is_reported_as_127_with_the_error_as_output(receiver):
    code, _, err = finished(wrap("--url", receiver.url, "--", "/no/such/job", "--full"))
    assert code == 127
    assert b"cannot run /no/such/job" in err
    start, end = receiver.pings
    assert end.path == "/ping/check-token/127" and end.rid == start.rid
    assert b"cannot run /no/such/job: No such file or directory" in end.body


def test_pings_answered_503_are_retried_until_they_arrive(receiver):
    receiver.failures = 3
    code, _, err = finished(wrap("--url", receiver.url, "--", "sh", "-c", "exit 0"))
    assert code == 0 and err == b""
    assert receiver.refused == 3
    assert [p.path.rsplit("/", 1)[1] for p in receiver.pings] == ["start", "0"]


def test_a_server_down_at_the_start_ping_is_reached_once_it_comes_up(receiver):
    port_now_closed = receiver.port
    # The server comes up while the start ping is being retried: it binds the same port.
    listening = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    free_port = listening.server_address[1]
    listening.server_close()
    url = f"http://127.0.0.1:{free_port}/ping/check-token"
    proc = wrap("--url", url, "--ping-timeout", "15", "--", "sh", "-c", "echo done")
    pings: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            pings.append(self.path.encode())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    assert proc.stdout is not None
    assert proc.stdout.readline() == b"done\n"  # the job ran without waiting for the server
    late = http.server.ThreadingHTTPServer(("127.0.0.1", free_port), Handler)
    threading.Thread(target=late.serve_forever, daemon=True).start()
    try:
        code, _, err = finished(proc)
    finally:
        late.shutdown()
        late.server_close()
    assert code == 0 and err == b""
    assert [p.split(b"?")[0] for p in pings] == [b"/ping/check-token/start", b"/ping/check-token/0"]
    assert port_now_closed == receiver.port


def test_with_the_server_unreachable_the_job_still_runs_and_exits_with_its_code():
    with http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    proc = wrap("--url", f"http://127.0.0.1:{port}/ping/secret-token", "--ping-timeout", "0.5",
                "--", "sh", "-c", "echo still ran; exit 7")  # fmt: skip
    code, out, err = finished(proc)
    assert (code, out) == (7, b"still ran\n")
    lines = err.decode().splitlines()
    assert len(lines) == 2 and all(
        line.startswith("pingura run: could not ping http://127.0.0.1") for line in lines
    )
    assert "secret-token" not in err.decode()  # the token stays out of job logs


def test_the_url_can_come_from_the_environment_or_from_a_ping_key_and_slug(receiver):
    env = {**os.environ, "PINGURA_URL": receiver.url}
    assert finished(wrap("--", "true", env=env))[0] == 0
    base = f"http://127.0.0.1:{receiver.port}"
    assert (
        finished(wrap("--ping-key", "k3y", "--slug", "nightly-backup", "--server", base, "--", "false"))[0]
        == 1
    )
    assert [p.path for p in receiver.pings] == [
        "/ping/check-token/start", "/ping/check-token/0",
        "/ping/k3y/nightly-backup/start", "/ping/k3y/nightly-backup/1",
    ]  # fmt: skip


def test_without_a_url_it_refuses_to_start_with_2(receiver):
    proc = subprocess.run([sys.executable, "-m", "pingura_run", "--", "true"], capture_output=True,
                          env={"PATH": "/usr/bin:/bin"}, timeout=20)  # fmt: skip
    assert proc.returncode == 2 and b"no ping URL" in proc.stderr


def test_the_main_cli_runs_it_as_pingura_run(receiver):
    proc = subprocess.run([sys.executable, "-m", "services.cli", "run", "--url", receiver.url, "--", "sh", "-c", "exit 5"],
                          capture_output=True, timeout=20)  # fmt: skip
    assert proc.returncode == 5
    assert [p.path for p in receiver.pings] == ["/ping/check-token/start", "/ping/check-token/5"]


async def test_against_pingura_serve_the_run_is_in_the_check_in_history_with_its_output_exit_code_and_duration(
    server,
):
    import aiohttp

    from tests.e2e.conftest import API_KEY

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        async with http.post(
            f"{server.url}/api/v1/heartbeats", json={"name": "nightly export", "interval": 3600, "grace": 600}
        ) as r:
            assert r.status == 201, await r.text()
            heartbeat = await r.json()
        url = f"{server.url}/ping/{heartbeat['token']}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pingura_run", "--url", url, "--", "sh", "-c", "echo exported 42 rows; sleep 0.3; exit 4",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate()
        assert proc.returncode == 4, err
        assert out == b"exported 42 rows\n"

        async def ended() -> list[dict] | None:
            async with http.get(f"{server.url}/api/v1/heartbeats/{heartbeat['id']}/checkins") as r:
                assert r.status == 200, await r.text()
                rows = list(reversed((await r.json())["checkins"]))
            done = rows and rows[-1]["kind"] != "start" and rows[-1]["measured_duration"] is not None
            return rows if done else None

        start, end = await eventually(ended)
    assert start["kind"] == "start"
    assert end["kind"] == "fail" and end["exit_code"] == 4, end
    assert end["rid"] == start["rid"]
    assert end["output"] == "exported 42 rows\n"
    # Measured from the start ping to the end ping, as the server received them.
    assert 0 < end["measured_duration"] <= (end["received_at_ms"] - start["received_at_ms"]) / 1000 + 0.01, (
        end
    )
    assert end["user_agent"].startswith("pingura-run/")
