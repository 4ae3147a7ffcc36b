"""``pingura serve`` with two ingest processes sharing the port (``PINGURA_INGEST_PROCESS=2``):
both answer pings, one that dies is started again while the other answers, all stop."""

from __future__ import annotations

import os
import re
import signal

import aiohttp
import pytest

from tests.e2e.conftest import Server, eventually
from tests.e2e.test_ingest_process import alive, create_monitor
from tests.e2e.test_metrics import scrape, total

ACCEPTED = "pingura_pings_accepted"


@pytest.fixture
def two(tmp_path):
    srv = Server(tmp_path / "data", tmp_path / "serve.log", env={"PINGURA_INGEST_PROCESS": "2"})
    srv.start()  # /healthz is 200 once both token indexes are loaded
    yield srv
    srv.stop()


def started(server) -> dict[int, list[int]]:
    """The pids each ingest process had, by index, in the order they started."""
    pids: dict[int, list[int]] = {}
    for line in server.logs().splitlines():
        if "serve.ingest_process.started" in line:
            index, pid = re.search(r"\bindex=(\d+)", line), re.search(r"\bpid=(\d+)", line)
            assert index and pid
            pids.setdefault(int(index[1]), []).append(int(pid[1]))
    return pids


async def ping_anew(url: str) -> int:
    """One ping on a connection of its own: the kernel picks which process takes it."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session, session.post(url) as r:
        return r.status


async def until_both_answered(server, url: str) -> list[int]:
    """Pings on new connections until each process took one (the scrape counts them apart);
    the answers."""
    answers: list[int] = []

    async def both_answered() -> bool:
        answers.append(await ping_anew(url))
        families = await scrape(server.url)
        return all(total(families, ACCEPTED, process=f"ingest-{i}") > 0 for i in (0, 1))

    await eventually(both_answered)  # a new connection lands on either: both within a few
    return answers


async def test_both_share_the_port_and_answer_pings_which_one_scrape_shows(two, http):
    pids = started(two)
    assert sorted(pids) == [0, 1] and all(alive(p[0]) for p in pids.values())
    assert len({two.proc.pid, pids[0][0], pids[1][0]}) == 3
    monitor = await create_monitor(http, two)
    answers = await until_both_answered(two, f"{two.url}/api/heartbeat/{monitor['token']}")
    assert set(answers) == {200}
    families = await scrape(two.url)
    counted = [total(families, ACCEPTED, process=f"ingest-{i}") for i in (0, 1)]
    assert sum(counted) == len(answers) and total(families, "pingura_scrape_upstream_ok") == 1
    assert {s.labels["process"] for s in families["process_cpu_seconds"].samples} == {
        "ingest-0",
        "ingest-1",
        "serve",
    }

    async def recorded() -> int:  # each 200 was durable: every one reaches the history
        async with http.get(f"{two.url}/api/v1/heartbeats/{monitor['id']}/checkins?limit=100") as r:
            return len((await r.json())["checkins"]) == len(answers)

    assert await eventually(recorded)


async def test_one_that_dies_is_started_again_while_the_other_answers(two, http):
    monitor = await create_monitor(http, two)
    url = f"{two.url}/api/heartbeat/{monitor['token']}"
    [victim], [survivor] = started(two)[1], started(two)[0]
    os.kill(victim, signal.SIGKILL)
    await eventually(lambda: "serve.ingest_process.exited" in two.logs())  # reaped: all of it gone
    for _ in range(10):  # its socket is closed: every new connection goes to the other one
        assert await ping_anew(url) == 200
    await eventually(lambda: len(started(two)[1]) == 2, timeout_s=30)
    assert alive(started(two)[1][1]) and alive(survivor) and not alive(victim)

    async def healthy_with_both() -> bool:
        async with http.get(f"{two.url}/healthz") as r:
            if r.status != 200:
                return False
        families = await scrape(two.url)
        return {s.labels["process"] for s in families["process_cpu_seconds"].samples} >= {
            "ingest-0",
            "ingest-1",
        }

    assert await eventually(healthy_with_both)
    assert await ping_anew(url) == 200


async def test_stopping_serve_stops_every_ingest_process(two, http):
    monitor = await create_monitor(http, two)  # a change for each token index to save
    await until_both_answered(two, f"{two.url}/api/heartbeat/{monitor['token']}")  # both know it
    pids = [p for ps in started(two).values() for p in ps]
    assert len(pids) == 2
    two.stop()
    assert not any(alive(p) for p in pids)
    logs = two.logs()
    assert logs.count("ingest.worker.stopped") == 2
    assert logs.rindex("ingest.worker.stopped") < logs.index("serve.stopped")
    left = {p.name for p in two.data_dir.iterdir()}
    assert not left & {"http.sock", "bus.sock", "ingest-0.sock", "ingest-1.sock"}
    assert {"ingest-tokens.snapshot", "ingest-tokens-1.snapshot"} <= left  # each saved its own
