"""`pingura serve` restarted with a few thousand heartbeats: the port opens before the views
are built, a ping meanwhile is answered 200 or 503 with Retry-After (never 404 for a token
that exists), and every heartbeat, token and status is there afterwards."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from services.query.auth.sessions import COOKIE
from shared.bus.local import LocalBus
from shared.events import MonitorConfig, encode
from shared.ids import new_token
from shared.topics import Topics
from tests.e2e.conftest import API_KEY, eventually

pytestmark = pytest.mark.slow

SEEDED = 4_000


async def seed(data_dir, project_id: str) -> list[str]:
    """Heartbeats written straight to the stopped server's log, as the API would have."""
    bus = LocalBus(data_dir / "bus.sqlite3")
    await bus.start()
    tokens, batch = [], []
    for i in range(SEEDED):
        token = new_token()
        cfg = MonitorConfig(
            id=f"hb_seed{i:08d}",
            project_id=project_id,
            name=f"seeded {i}",
            token=token,
            interval_s=3600,
            grace_s=600,
            created_ms=1,
            updated_ms=1,
        )
        tokens.append(token)
        batch.append((cfg.id, encode(cfg)))
    await bus.publish_many(Topics().monitors, batch)
    await bus.close()
    return tokens


async def ping(http, server, token: str) -> tuple[int, str | None]:
    async with http.post(f"{server.url}/api/heartbeat/{token}") as r:
        return r.status, r.headers.get("Retry-After")


async def healthz(http, server) -> dict:
    async with http.get(f"{server.url}/healthz") as r:
        body = await r.json()
        assert (r.status, r.headers.get("Retry-After")) == ((200, None) if body["ready"] else (503, "2"))
        return body


async def test_a_restart_answers_pings_while_it_builds_its_views_and_keeps_everything(server, http):
    made = []
    for i in range(3):
        async with http.post(
            f"{server.url}/api/v1/heartbeats", json={"name": f"job {i}", "interval": 60, "grace": 60}
        ) as r:
            assert r.status == 201
            made.append(await r.json())
    for monitor in made:
        assert (await ping(http, server, monitor["token"]))[0] == 200
    for monitor in made:
        await eventually(lambda m=monitor: _status_is(http, server, m["id"], "up"))
    async with http.get(f"{server.url}/api/v1/projects/me") as r:
        project_id = (await r.json())["id"]
    server.stop()
    seeded = await seed(server.data_dir, project_id)
    tokens = [m["token"] for m in made] + seeded

    server.start(wait_ready=False)  # returns as soon as the port accepts
    answers, unknown, health, api, login = [], [], [], [], []
    while True:
        health.append(await healthz(http, server))
        if health[-1]["ready"]:
            break
        answers.extend(await asyncio.gather(*(ping(http, server, t) for t in random.sample(seeded, 8))))
        unknown.append(await ping(http, server, new_token()))
        async with http.get(f"{server.url}/api/v1/heartbeats?limit=1") as r:
            api.append((r.status, r.headers.get("Retry-After")))
        async with http.post(f"{server.url}/login", data={"key": "pk_wrong"}, allow_redirects=False) as r:
            login.append((r.status, r.headers.get("Retry-After")))

    assert not health[0]["ready"], "the port should accept before the views are built"
    assert set(health[0]["services"]) == {"ingest", "query", "evaluator", "notifier"}
    assert {status for status, _ in answers} <= {200, 503}
    assert all(after == "2" for status, after in answers + unknown if status == 503)
    assert {status for status, _ in unknown} <= {404, 503}
    # The API and the sign-in wait for their views the same way: 503, never another 5xx or a 401
    # (a wrong key tried every round is throttled, 429, once it has failed often enough).
    assert {status for status, _ in api} <= {200, 503} and {status for status, _ in login} <= {303, 429, 503}
    assert all(after == "2" for status, after in api + login if status == 503)
    log = server.logs()
    restart = log.rindex("serve.listening")
    assert restart < log.index("serve.ready", restart) < log.index("service=query", restart)
    print(
        f"\nduring start-up: {len(health)} health checks, pings answered {sorted(_count(answers).items())},"
        f" unknown tokens {sorted(_count(unknown).items())}, API {sorted(_count(api).items())},"
        f" sign-in {sorted(_count(login).items())}"
    )
    for monitor in made:  # as the evaluator left them: not pinged since the restart
        async with http.get(f"{server.url}/api/v1/heartbeats/{monitor['id']}") as r:
            after = await r.json()
        assert (after["token"], after["name"], after["status"]) == (monitor["token"], monitor["name"], "up")

    started = time.monotonic()
    for at in range(0, len(tokens), 50):
        statuses = await asyncio.gather(*(ping(http, server, t) for t in tokens[at : at + 50]))
        assert {status for status, _ in statuses} == {200}
    assert (await ping(http, server, new_token()))[0] == 404
    print(f"{len(tokens)} heartbeats pinged in {time.monotonic() - started:.1f}s after it was ready")
    async with http.get(f"{server.url}/api/v1/heartbeats?limit=1") as r:
        assert sum((await r.json())["counts"].values()) == len(tokens)


async def test_a_signed_out_cookie_stays_refused_after_a_restart(server, http):
    async def sign_in() -> dict[str, str]:
        async with http.post(
            f"{server.url}/login", data={"key": API_KEY}, allow_redirects=False, headers={"Authorization": ""}
        ) as r:
            assert r.status == 303
            return {"Authorization": "", "Cookie": f"{COOKIE}={r.cookies[COOKIE].value}"}

    async def status(browser: dict[str, str]) -> int:
        async with http.get(f"{server.url}/api/v1/heartbeats", headers=browser) as r:
            return r.status

    signed_out, kept = await sign_in(), await sign_in()
    async with http.get(f"{server.url}/api/v1/session", headers=signed_out) as r:
        csrf = (await r.json())["csrf_token"]
    async with http.post(f"{server.url}/logout", headers={**signed_out, "X-CSRF-Token": csrf}) as r:
        assert r.status == 204
    assert (await status(signed_out), await status(kept)) == (401, 200)
    server.stop()
    server.start()
    assert (await status(signed_out), await status(kept)) == (401, 200)


def _count(answers) -> dict[int, int]:
    counts: dict[int, int] = {}
    for status, _ in answers:
        counts[status] = counts.get(status, 0) + 1
    return counts


async def _status_is(http, server, monitor_id, status):
    async with http.get(f"{server.url}/api/v1/heartbeats/{monitor_id}") as r:
        return r.status == 200 and (await r.json())["status"] == status
