"""`pingura serve` started for real, pinged the way existing tools ping: borgmatic's
Healthchecks hook with its log, slug URLs that create their heartbeat, Uptime Kuma's push,
Cronitor's words; history and export show the run ids and the output."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid

import aiohttp

from tests.e2e.conftest import eventually
from tests.e2e.test_embedded import create_monitor, history


async def rows_when(http, server, monitor_id, count):
    rows = await history(http, server, monitor_id)
    return rows if len(rows) >= count else None


async def test_borgmatics_healthchecks_hook_with_a_150_kb_log(server, http):
    monitor = await create_monitor(http, server)
    ping = f"{server.url}/ping/{monitor['token']}"
    log = "".join(f"{i:06d} borg create: archived /srv/file-{i}\n" for i in range(5000))[:150_000].encode()
    async with aiohttp.ClientSession(headers={"User-Agent": "borgmatic"}) as borgmatic:
        async with borgmatic.post(f"{ping}/start", data=b"") as r:
            assert (r.status, await r.text()) == (200, "OK")
            assert r.headers["Ping-Body-Limit"] == str(100 * 1024)
        async with borgmatic.post(ping, data=log) as r:  # no Content-Type, as requests sends bytes
            assert (r.status, await r.text()) == (200, "OK")

    finished, started = await eventually(lambda: rows_when(http, server, monitor["id"], 2))
    assert (started["kind"], finished["kind"]) == ("start", "success")
    assert (
        finished["output"] == log[:2000].decode() and finished["output_truncated"] is True
    )  # a page's preview
    async with http.get(f"{server.url}/api/v1/heartbeats/{monitor['id']}/checkins/{finished['id']}") as r:
        whole = await r.json()
    assert whole["output"] == log[: 100 * 1024].decode() and whole["output_truncated"] is True
    assert finished["message"] is None


async def test_runitor_style_start_and_end_share_a_run_id_in_history_and_export(server, http):
    monitor = await create_monitor(http, server)
    rid = str(uuid.uuid4())
    ping = f"{server.url}/api/heartbeat/{monitor['token']}"
    async with aiohttp.ClientSession() as runitor:
        async with runitor.post(f"{ping}/start?rid={rid}") as r:
            assert r.status == 200
        async with runitor.post(
            f"{ping}/1?rid={rid}", data=b"error: disk full\n", headers={"Content-Type": "text/plain"}
        ) as r:
            assert r.status == 200
        async with runitor.post(f"{ping}/log", data=b"cleanup done\n") as r:
            assert r.status == 200

    rows = await eventually(lambda: rows_when(http, server, monitor["id"], 3))
    by_kind = {row["kind"]: row for row in rows}
    assert by_kind["start"]["rid"] == by_kind["fail"]["rid"] == rid
    assert (by_kind["fail"]["exit_code"], by_kind["fail"]["output"]) == (1, "error: disk full\n")
    assert by_kind["log"]["output"] == "cleanup done\n"
    async with http.get(f"{server.url}/api/v1/heartbeats/{monitor['id']}/export?format=csv") as r:
        exported = list(csv.DictReader(io.StringIO(await r.text())))
    assert [(row["kind"], row["rid"], row["output"]) for row in exported] == [
        ("start", rid, ""),
        ("fail", rid, "error: disk full\n"),
        ("log", "", "cleanup done\n"),
    ]


async def test_a_thousand_hosts_style_slug_urls_create_their_heartbeat_once(server, http):
    async with http.post(f"{server.url}/api/v1/projects/me/ping-key") as r:
        assert r.status == 200, await r.text()
        key = (await r.json())["ping_key"]
    url = f"{server.url}/ping/{key}/backup-web1"
    async with aiohttp.ClientSession() as hosts:
        async with hosts.get(url) as r:
            assert (r.status, await r.text()) == (404, "not found")  # no ?create=1: unknown

        async def first_ping():
            async with hosts.post(f"{url}/start?create=1") as r:
                return r.status

        statuses = await asyncio.gather(*(first_ping() for _ in range(20)))
        assert sorted(statuses) == [200] * 19 + [201]
        async with hosts.post(url, data=b"backup done") as r:
            assert (r.status, await r.text()) == (200, "OK")

    async with http.get(f"{server.url}/api/v1/heartbeats?q=backup-web1") as r:
        [made] = (await r.json())["heartbeats"]
    assert (made["name"], made["slug"], made["interval"], made["grace"]) == (
        "backup-web1",
        "backup-web1",
        86400,
        3600,
    )
    rows = await eventually(lambda: rows_when(http, server, made["id"], 21))
    assert next(row["kind"] for row in rows) == "success" and rows[0]["output"] == "backup done"

    async with http.patch(f"{server.url}/api/v1/projects/me", json={"auto_create": False}) as r:
        assert r.status == 200

    async def refused():
        async with (
            aiohttp.ClientSession() as host,
            host.get(f"{server.url}/ping/{key}/backup-web2?create=1") as r,
        ):
            return r.status == 404

    await eventually(refused)  # ingest sees the change within milliseconds


async def test_uptime_kuma_push_and_cronitor_words_reach_history(server, http):
    monitor = await create_monitor(http, server)
    token = monitor["token"]
    async with aiohttp.ClientSession() as tools:
        async with tools.get(f"{server.url}/api/push/{token}?status=up&msg=OK&ping=250") as r:
            assert (r.status, await r.json()) == (200, {"ok": True})
        async with tools.get(f"{server.url}/api/push/{'A' * 32}?status=up") as r:
            assert r.status == 404 and (await r.json())["ok"] is False
        async with tools.get(f"{server.url}/ping/{token}/run") as r:  # borgmatic's cronitor hook
            assert r.status == 200
        async with tools.get(
            f"{server.url}/api/heartbeat/{token}?state=complete&series=s-1&metric=duration:7&message=3+files"
        ) as r:
            assert r.status == 200

    rows = await eventually(lambda: rows_when(http, server, monitor["id"], 3))
    complete, run, push = rows
    assert (push["kind"], push["message"], push["duration"], push["duration_raw"]) == (
        "success",
        "OK",
        0.25,
        "250ms",
    )
    assert run["kind"] == "start"
    assert (complete["kind"], complete["rid"], complete["duration"], complete["message"]) == (
        "success",
        "s-1",
        7.0,
        "3 files",
    )
