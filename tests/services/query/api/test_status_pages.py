"""Public status pages over real HTTP: set up by read-write keys only, naming only the project's
own heartbeats, bounded; read by anyone with the key in the URL, showing only what was chosen
(labels, states, daily uptime computed from known history, recent changes), and a rotated or
removed key is a 404."""

from __future__ import annotations

import json
import time
import uuid

import aiohttp
import pytest
import pytest_asyncio

from services.query.api.schemas.status_pages import DAYS, MAX_GROUPS, MAX_ITEMS, MAX_TITLE_CHARS
from services.query.api.status_pages import day_spans, overall
from services.query.status_view import CurrentStatus
from shared.clock import iso_ms
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.factories import a_status_change

on_session_loop = pytest.mark.asyncio(loop_scope="session")

PAGE = "/projects/me/status-page"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous():
    async with aiohttp.ClientSession() as http:
        yield http


async def public(api, anonymous, key: str) -> tuple[int, dict, str]:
    async with anonymous.get(f"{api.url}/status-page/{key}") as r:
        return r.status, dict(r.headers), await r.text()


async def heartbeat(tenant: Tenant, name: str, status: str | None = None, **fields) -> dict:
    made = await tenant.ok("POST", "/heartbeats", 201, json={"name": name, "interval": "1h", **fields})
    if status is not None:
        tenant.api.ctx.statuses.put(
            made["id"],
            CurrentStatus(status=status, since_ms=1_700_000_000_000, reason="secret reason", last_ping_ms=1,
                          next_expected_ms=None),
        )  # fmt: skip
    return made


def one_group(*items: tuple[str, str], title: str = "Acme status") -> dict:
    return {
        "title": title,
        "groups": [{"name": "Jobs", "items": [{"heartbeat_id": i, "label": la} for i, la in items]}],
    }


# configuring ------------------------------------------------------------------------------------
@on_session_loop
async def test_a_project_has_no_page_until_it_puts_one_and_the_key_stays_across_puts(api, anonymous):
    tenant = await new_tenant(api)
    status, body = await tenant.call("GET", PAGE)
    assert status == 404 and "no status page" in body["error"]
    hb = await heartbeat(tenant, "Nightly backup")
    made = await tenant.ok(
        "PUT", PAGE, json={**one_group((hb["id"], "  Backups  ")), "intro": "Line one\nLine two"}
    )
    assert (
        made["url"] == f"/status/{made['key']}" and made["data_url"] == f"/api/v1/status-page/{made['key']}"
    )
    assert len(made["key"]) == 22
    assert made["groups"] == [{"name": "Jobs", "items": [{"heartbeat_id": hb["id"], "label": "Backups"}]}]
    assert made["intro"] == "Line one\nLine two"
    again = await tenant.ok("PUT", PAGE, json=one_group(title="Renamed"))
    assert again["key"] == made["key"] and again["title"] == "Renamed" and again["groups"][0]["items"] == []
    assert await tenant.ok("GET", PAGE) == again


@on_session_loop
async def test_another_projects_heartbeat_is_refused_in_one_line(api):
    mine, theirs = await new_tenant(api), await new_tenant(api)
    foreign = await heartbeat(theirs, "Their job")
    status, body = await mine.call("PUT", PAGE, json=one_group((foreign["id"], "Stolen")))
    assert status == 400 and body == {
        "error": f"groups: unknown heartbeat id {foreign['id']!r}",
        "field": "groups",
    }
    status, body = await mine.call("PUT", PAGE, json=one_group(("hb_nonexistent", "Nothing")))
    assert status == 400 and "unknown heartbeat id" in body["error"]
    assert (await mine.call("GET", PAGE))[0] == 404  # nothing was saved


@pytest.mark.parametrize(("body", "says"), [
    ({"title": ""}, "title"),
    ({"title": "   "}, "title: must not be empty"),
    ({"title": "x" * (MAX_TITLE_CHARS + 1)}, "title"),
    ({"title": "t", "intro": "x" * 1001}, "intro"),
    ({"title": "t", "intro": "bidi \u202e trick"}, "intro: must not hold control"),
    ({"title": "t", "groups": [{"name": "g", "items": []}] * (MAX_GROUPS + 1)}, "groups"),
    ({"title": "t", "groups": [{"name": "g", "items": [{"heartbeat_id": "a", "label": ""}]}]}, "label"),
    ({"title": "t", "groups": [{"name": "g", "items": [{"heartbeat_id": "a", "label": "l"}] * 2}]}, "twice"),
    ({"title": "t", "groups": [{"name": "g", "items": [{"heartbeat_id": f"h{i}", "label": "l"} for i in range(60)]}]
      * 2}, f"at most {MAX_ITEMS}"),
    ({"title": "t", "token": "x"}, "token"),
])  # fmt: skip
@on_session_loop
async def test_bad_pages_are_refused_with_the_field(api, body, says):
    tenant = await new_tenant(api)
    status, answer = await tenant.call("PUT", PAGE, json=body)
    assert status == 400 and says in answer["error"], answer
    assert "\n" not in answer["error"]


@on_session_loop
async def test_a_read_only_key_sees_the_page_but_cannot_change_it(api):
    tenant = await new_tenant(api)
    made = await tenant.ok("PUT", PAGE, json=one_group())
    reader = tenant.with_key((await tenant.new_key(read_only=True))[0])
    assert (await reader.ok("GET", PAGE))["key"] == made["key"]
    for method, path in (("PUT", PAGE), ("DELETE", PAGE), ("POST", PAGE + "/key")):
        status, body = await reader.call(method, path, json=one_group(title="Hijacked"))
        assert status == 403 and "read-only" in body["error"], (method, body)
    assert (await tenant.ok("GET", PAGE))["title"] == "Acme status"


@on_session_loop
async def test_a_rotated_key_and_a_removed_page_are_404(api, anonymous):
    tenant = await new_tenant(api)
    old = (await tenant.ok("PUT", PAGE, json=one_group()))["key"]
    assert (await public(api, anonymous, old))[0] == 200
    new = (await tenant.ok("POST", PAGE + "/key"))["key"]
    assert new != old
    status, _, text = await public(api, anonymous, old)
    assert status == 404 and json.loads(text) == {"error": "no such status page"}
    assert (await public(api, anonymous, new))[0] == 200
    assert (await tenant.call("DELETE", PAGE))[0] == 204
    assert (await public(api, anonymous, new))[0] == 404
    assert (await tenant.call("POST", PAGE + "/key"))[0] == 404
    for wrong in ("x", "a" * 22, "a" * 5000):
        assert (await public(api, anonymous, wrong))[0] == 404


# the public answer ------------------------------------------------------------------------------
@on_session_loop
async def test_the_public_answer_shows_only_what_was_chosen(api, anonymous):
    tenant = await new_tenant(api)
    shown = await heartbeat(tenant, "Secret internal name", "down", tags=["hidden-tag"], slug="secret-slug")
    hidden = await heartbeat(tenant, "Not chosen at all", "up")
    hour_ago = time.time_ns() // 1_000_000 - HOUR_MS
    await api.ctx.store.insert_events(
        [a_status_change(tenant.project_id, m["id"], hour_ago, "down", "up", reason=f"reason of {m['name']}")
         for m in (shown, hidden)], f"t-status-page-{uuid.uuid4().hex}",
    )  # fmt: skip
    key = (await tenant.ok("PUT", PAGE, json=one_group((shown["id"], "Billing export"))))["key"]
    await tenant.ok("PATCH", f"/heartbeats/{shown['id']}", json={"name": "Renamed later, still secret"})
    status, headers, text = await public(api, anonymous, key)
    assert status == 200 and headers["Cache-Control"] == "public, max-age=30"
    assert headers["Content-Type"].startswith("application/json")
    page = json.loads(text)
    assert page["title"] == "Acme status" and page["state"] == "down"
    [item] = page["groups"][0]["items"]
    assert (item["label"], item["state"]) == ("Billing export", "down")
    assert [(c["label"], c["state"]) for c in page["changes"]] == [("Billing export", "down")]
    assert set(page["changes"][0]) == {"label", "at", "state"}
    for secret in (
        shown["token"],
        hidden["token"],
        shown["id"],
        hidden["id"],
        "Secret internal name",
        "Not chosen",
        "Renamed later",
        "hidden-tag",
        "secret-slug",
        "reason",
        tenant.project_id,
    ):
        assert secret not in text, secret  # fmt: skip
    # the cached answer is not the project's either: a new label shows at once (the PUT changes it)
    key2 = (await tenant.ok("PUT", PAGE, json=one_group((shown["id"], "Exports"))))["key"]
    assert key2 == key and "Exports" in (await public(api, anonymous, key))[2]


@on_session_loop
async def test_daily_uptime_comes_from_the_known_history(api, anonymous):
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant, "Backups", "up")
    other = await heartbeat(tenant, "Never watched")
    spans = day_spans(time.time_ns() // 1_000_000)
    day = [start for start, _ in spans]
    d = lambda n: day[-1 - n]  # noqa: E731 - the start of the day n days ago
    history = [(d(5), "up"), (d(3) + 6 * HOUR_MS, "down"), (d(3) + 12 * HOUR_MS, "up"), (d(2), "paused"),
               (d(1), "up")]  # fmt: skip
    previous = ["new"] + [status for _, status in history]
    await api.ctx.store.insert_events(
        [a_status_change(tenant.project_id, hb["id"], at, status, prev) for (at, status), prev in
         zip(history, previous, strict=False)], f"t-status-page-{uuid.uuid4().hex}",
    )  # fmt: skip
    key = (await tenant.ok("PUT", PAGE, json=one_group((hb["id"], "Backups"), (other["id"], "Idle"))))["key"]
    _, _, text = await public(api, anonymous, key)
    page = json.loads(text)
    assert page["days"] == [iso_ms(start)[:10] for start in day]  # UTC dates, oldest first
    backups, idle = page["groups"][0]["items"]
    assert backups["days"][: DAYS - 6] == [None] * (DAYS - 6)  # before its first change
    today_ms = spans[-1][1] - spans[-1][0]
    assert backups["days"][DAYS - 6 :] == [100.0, 100.0, 75.0, None, 100.0, 100.0 if today_ms else None]
    observed = 3 * DAY_MS + DAY_MS + today_ms  # d5, d4, d3, d1 and today; d2 paused
    assert backups["uptime"] == round(100 * (observed - 6 * HOUR_MS) / observed, 3)
    assert idle["days"] == [None] * DAYS and idle["uptime"] is None and idle["state"] == "new"
    assert [c["state"] for c in page["changes"]] == ["up", "paused", "up", "down", "up"]
    assert {c["label"] for c in page["changes"]} == {"Backups"}


@pytest.mark.parametrize(("states", "expected"), [
    ([], "up"), (["up", "new", "paused", "running"], "up"), (["up", "late"], "degraded"),
    (["unknown"], "degraded"), (["maintenance", "up"], "maintenance"), (["late", "down", "maintenance"], "down"),
])  # fmt: skip
def test_the_overall_state_is_the_worst(states, expected):
    assert overall(states) == expected


def test_day_spans_are_90_utc_days_ending_now():
    now = 1_700_000_123_456
    spans = day_spans(now)
    assert len(spans) == DAYS and spans[-1] == (now - now % DAY_MS, now)
    assert all(b - a == DAY_MS for a, b in spans[:-1]) and all(a % DAY_MS == 0 for a, _ in spans)
