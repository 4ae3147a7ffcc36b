"""Public status badges over real HTTP: a project's badge key in the URL, no credentials;
SVG (two and three states), JSON and the Shields.io endpoint format, per heartbeat, per tag
and for the whole project; status only, cacheable for a minute, and every unknown thing the
same 404."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.query.api.badges import NOT_FOUND, badge_state, render_svg, text_width, worst
from services.query.status_view import CurrentStatus
from shared.events import STATUSES
from tests.services.query.api.tenants import Tenant, new_tenant

on_session_loop = pytest.mark.asyncio(loop_scope="session")

SVG = "{http://www.w3.org/2000/svg}"


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous():
    async with aiohttp.ClientSession() as http:
        yield http


async def fetch(api, anonymous, path: str) -> tuple[int, aiohttp.typedefs.LooseHeaders, str]:
    async with anonymous.get(api.url + path) as r:
        return r.status, r.headers, await r.text()


async def badge_key(tenant: Tenant) -> str:
    return (await tenant.ok("POST", "/projects/me/badge-key"))["badge_key"]


async def heartbeat(tenant: Tenant, status: str | None, **fields) -> dict:
    made = await tenant.ok(
        "POST", "/heartbeats", 201, json={"name": "secret name", "interval": "1h", **fields}
    )
    if status is not None:
        tenant.api.ctx.statuses.put(
            made["id"],
            CurrentStatus(status=status, since_ms=1, reason=None, last_ping_ms=1, next_expected_ms=None),
        )
    return made


def svg_says(text: str) -> tuple[str, str]:
    """The two texts an SVG badge shows (label, state); parsing fails on malformed XML."""
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    label, state = (node.text for node in root.iter(f"{SVG}text"))
    return label, state


# the mapping -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "two", "three"),
    [("up", "up", "up"), ("running", "up", "up"), ("new", "up", "up"), ("paused", "up", "up"),
     ("late", "up", "late"), ("unknown", "up", "late"), ("down", "down", "down")],
)  # fmt: skip
def test_each_status_shows_as_up_late_or_down(status, two, three):
    assert (badge_state(status, 2), badge_state(status, 3)) == (two, three)


def test_every_status_has_a_badge_state():
    assert {badge_state(status, 3) for status in STATUSES} == {"up", "late", "down"}


def test_the_worst_wins_and_nothing_is_up():
    assert worst(["up", "late", "up"]) == "late"
    assert worst(["late", "down", "up"]) == "down"
    assert worst([]) == "up"


def test_wider_text_makes_a_wider_badge():
    assert text_width("WWW") > text_width("ABC") > text_width("abc") > text_width("ijl") > 0


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(label=st.text(max_size=80), state=st.sampled_from(["up", "late", "down"]))
def test_any_label_makes_well_formed_svg(label, state):
    root = ET.fromstring(render_svg(label, state))
    assert root.find(f"{SVG}title").text.endswith(f": {state}")


# per heartbeat -----------------------------------------------------------------------------------
@on_session_loop
@pytest.mark.parametrize(
    ("status", "states", "shown"),
    [("up", 2, "up"), ("down", 2, "down"), ("late", 2, "up"), ("late", 3, "late"), ("up", 3, "up"),
     ("down", 3, "down"), ("paused", 3, "up"), ("unknown", 3, "late"), (None, 3, "up")],
)  # fmt: skip
async def test_an_svg_badge_names_the_heartbeats_state(api, anonymous, status, states, shown):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    await heartbeat(tenant, status, slug="nightly")
    code, headers, text = await fetch(api, anonymous, f"/badge/{key}/nightly.svg?states={states}")
    assert code == 200, text
    assert headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=60"
    assert "script" not in text.lower() and headers["Content-Security-Policy"] == "default-src 'none'"
    assert svg_says(text) == ("nightly", shown)


@on_session_loop
async def test_json_and_shields_say_the_state_and_the_label(api, anonymous):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    await heartbeat(tenant, "late", slug="db-backup")
    code, headers, text = await fetch(api, anonymous, f"/badge/{key}/db-backup.json?states=3")
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "public, max-age=60"
    assert json.loads(text) == {"status": "late", "label": "db-backup"}
    code, headers, text = await fetch(api, anonymous, f"/badge/{key}/db-backup.shields?states=3")
    assert code == 200 and headers["Cache-Control"] == "public, max-age=60"
    assert json.loads(text) == {
        "schemaVersion": 1, "label": "db-backup", "message": "late", "color": "orange"
    }  # fmt: skip
    _, _, text = await fetch(api, anonymous, f"/badge/{key}/db-backup.shields")
    assert json.loads(text)["message"] == "up"  # two states: late is not down yet


@on_session_loop
async def test_a_heartbeat_asked_for_by_id_shows_no_name(api, anonymous):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    made = await heartbeat(tenant, "down")
    code, _, text = await fetch(api, anonymous, f"/badge/{key}/{made['id']}.json")
    assert code == 200 and json.loads(text) == {"status": "down", "label": "status"}
    assert "secret name" not in text and made["token"] not in text


@on_session_loop
async def test_the_label_is_the_callers_to_choose_and_is_escaped(api, anonymous):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    await heartbeat(tenant, "up", slug="web")
    hostile = '<script>"&</script>'
    async with anonymous.get(f"{api.url}/badge/{key}/web.svg", params={"label": hostile}) as r:
        assert r.status == 200
        text = await r.text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert svg_says(text) == (hostile, "up")
    async with anonymous.get(f"{api.url}/badge/{key}/web.svg", params={"label": "a\x1bb"}) as r:
        assert r.status == 400 and (await r.json())["field"] == "label"


# aggregates --------------------------------------------------------------------------------------
@on_session_loop
async def test_a_tag_badge_shows_the_worst_of_its_heartbeats(api, anonymous):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    await heartbeat(tenant, "up", tags=["prod"])
    await heartbeat(tenant, "late", tags=["prod", "db"])
    await heartbeat(tenant, "down", tags=["staging"])
    code, _, text = await fetch(api, anonymous, f"/badge/{key}/tag/prod.json?states=3")
    assert code == 200 and json.loads(text) == {"status": "late", "label": "prod"}
    _, _, text = await fetch(api, anonymous, f"/badge/{key}/tag/prod.svg")
    assert svg_says(text) == ("prod", "up")
    _, _, text = await fetch(api, anonymous, f"/badge/{key}/tag/staging.shields")
    assert json.loads(text)["message"] == "down"


@on_session_loop
async def test_a_project_badge_shows_the_worst_of_all_and_up_when_empty(api, anonymous):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    _, _, text = await fetch(api, anonymous, f"/badge/{key}/project.json?states=3")
    assert json.loads(text) == {"status": "up", "label": "status"}
    await heartbeat(tenant, "up")
    await heartbeat(tenant, "late")
    _, _, text = await fetch(api, anonymous, f"/badge/{key}/project.json?states=3")
    assert json.loads(text)["status"] == "late"
    made = await heartbeat(tenant, "down")
    _, _, text = await fetch(api, anonymous, f"/badge/{key}/project.svg")
    assert svg_says(text) == ("status", "down")
    await tenant.ok("POST", f"/heartbeats/{made['id']}/pause")
    _, _, text = await fetch(api, anonymous, f"/badge/{key}/project.svg?states=3")
    assert svg_says(text) == ("status", "late")  # paused no longer counts as down


# not found, alike ----------------------------------------------------------------------------------
@on_session_loop
async def test_a_wrong_key_a_wrong_slug_and_a_wrong_tag_are_the_same_404(api, anonymous):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    await heartbeat(tenant, "up", slug="real", tags=["prod"])
    answers = set()
    for path in (f"/badge/{'x' * len(key)}/real.svg", f"/badge/{key}/unreal.svg", f"/badge/{key}/tag/none.svg",
                 f"/badge/{key[:-1]}/project.json", f"/badge/{key}/tag/none.shields"):  # fmt: skip
        code, headers, text = await fetch(api, anonymous, path)
        answers.add((code, headers["Content-Type"], text))
    assert answers == {(404, "application/json; charset=utf-8", f'{{"error": "{NOT_FOUND}"}}')}


@on_session_loop
async def test_another_projects_heartbeat_is_404_through_this_key(api, anonymous):
    tenant, other = await new_tenant(api), await new_tenant(api)
    key = await badge_key(tenant)
    theirs = await heartbeat(other, "down", slug="theirs", tags=["theirs"])
    for what in ("theirs", theirs["id"], "tag/theirs"):
        code, _, _ = await fetch(api, anonymous, f"/badge/{key}/{what}.json")
        assert code == 404, what


@on_session_loop
async def test_no_badge_key_no_badges(api, anonymous):
    tenant = await new_tenant(api)
    assert (await tenant.ok("GET", "/projects/me"))["badge_key"] is None
    code, _, _ = await fetch(api, anonymous, "/badge/None/project.json")
    assert code == 404


@on_session_loop
async def test_a_new_badge_key_retires_the_old_urls(api, anonymous):
    tenant = await new_tenant(api)
    old = await badge_key(tenant)
    assert (await tenant.ok("GET", "/projects/me"))["badge_key"] == old
    assert (await fetch(api, anonymous, f"/badge/{old}/project.svg"))[0] == 200
    new = await badge_key(tenant)
    assert new != old and len(new) >= 22
    assert (await fetch(api, anonymous, f"/badge/{old}/project.svg"))[0] == 404
    assert (await fetch(api, anonymous, f"/badge/{new}/project.svg"))[0] == 200


@on_session_loop
async def test_only_a_key_that_may_write_makes_a_badge_key_and_every_key_sees_it(api):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    read_only = tenant.with_key((await tenant.new_key(read_only=True))[0])
    status, _ = await read_only.call("POST", "/projects/me/badge-key")
    assert status == 403
    assert (await read_only.ok("GET", "/projects/me"))["badge_key"] == key


@on_session_loop
@pytest.mark.parametrize(
    "what",
    [
        "x" * 5000,
        "..",
        "%2e%2e",
        "../../projects/me",
        "caf\u00e9",
        "\U0001f600",
        "%00",
        "a%2Fb",
        "project.svg",
    ],
)
async def test_hostile_paths_are_4xx_never_5xx(api, anonymous, what):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    for path in (f"/badge/{key}/{what}.svg", f"/badge/{key}/tag/{what}.json", f"/badge/{what}/project.svg"):
        code, _, text = await fetch(api, anonymous, path)
        assert 400 <= code < 500, (path, code, text)


@on_session_loop
@pytest.mark.parametrize("query", ["states=4", "states=one", "states=", "label=", "label=" + "x" * 65])
async def test_a_bad_query_is_400(api, anonymous, query):
    tenant = await new_tenant(api)
    key = await badge_key(tenant)
    code, _, text = await fetch(api, anonymous, f"/badge/{key}/project.svg?{query}")
    assert code == 400, text
