"""The dashboard's maintenance page and mute control, in a real browser against a real
``pingura serve``.

Plans a one-off window in another time zone than the browser's (its times are read on that
zone's clocks) over a tag, after a refused recurring one (the API's message beside the
field), and a recurring one over the whole project; a heartbeat going down inside the first
shows "in maintenance until …" in the list and on its page; the window is ended early and
deleted. On the heartbeat's page it is muted for an hour, then until unmuted, then unmuted.
Screenshots of each page go to the test's folder.
"""

from __future__ import annotations

import re
import urllib.request
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.e2e.conftest import API_KEY
from tests.e2e.test_dashboard import api, expect

BROWSER = "Europe/Berlin"
WINDOW_ZONE = "America/New_York"


def ping(server, token: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(f"{server.url}/api/heartbeat/{token}", method="POST"),
                                timeout=10) as response:  # fmt: skip
        assert response.status == 200


def wall(at: datetime, zone: str) -> str:
    """``at`` on the clocks of ``zone``, as a datetime-local input takes it."""
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def test_maintenance_windows_are_planned_ended_and_deleted_and_a_heartbeat_is_muted(
    server, browser, tmp_path
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    db = api(
        server, "POST", "/heartbeats", {"name": "Nightly DB dump", "interval": 1, "grace": 1, "tags": ["db"]}
    )
    web = api(server, "POST", "/heartbeats", {"name": "Web check", "interval": 3600, "tags": ["web"]})
    assert db is not None and web is not None
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=BROWSER)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.on(
        "console", lambda msg: page_errors.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    page.goto(server.url + "/login")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_label("API key").press("Enter")
    expect(page).to_have_url(server.url + "/")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Maintenance").click()
    expect(page).to_have_url(server.url + "/maintenance")
    expect(page.get_by_text("No maintenance windows.")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value(BROWSER)  # the browser's, unless changed

    # A recurring one with a duration the API refuses: its message, beside the field.
    page.get_by_label("Name").fill("Sunday backups")
    page.get_by_role("radio", name="On a schedule").check()
    expect(page.get_by_label("Starts", exact=True)).to_be_hidden()
    page.get_by_label("Starts at (cron)").fill("0 2 * * 0")
    page.get_by_label("Lasts").fill("40d")
    page.get_by_label("Every heartbeat of the project").check()
    page.get_by_role("button", name="Plan window").click()
    expect(page.locator("#err-duration")).to_have_text("must be from 1 minute to 31 days")
    page.get_by_label("Lasts").fill("2h")
    page.get_by_role("button", name="Plan window").click()
    expect(page.get_by_text("Planned “Sunday backups”.")).to_be_visible()
    sunday = page.locator("#rows tr", has_text="Sunday backups")
    expect(sunday).to_contain_text("0 2 * * 0")
    expect(sunday).to_contain_text("every heartbeat")
    expect(sunday).to_contain_text("next in")

    # A one-off one, read on New York's clocks, over the tag "db".
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    end = start + timedelta(hours=2)
    page.get_by_label("Name").fill("DB upgrade")
    page.get_by_role("radio", name="Once").check()
    page.get_by_label("Time zone").fill(WINDOW_ZONE)
    page.get_by_label("Starts", exact=True).fill(wall(start, WINDOW_ZONE))
    page.get_by_label("Ends").fill(wall(end, WINDOW_ZONE))
    page.get_by_label("Every heartbeat of the project").uncheck()
    page.get_by_label("Tags").fill("db")
    page.get_by_role("button", name="Plan window").click()
    upgrade = page.locator("#rows tr", has_text="DB upgrade")
    expect(upgrade).to_contain_text("on until")
    expect(upgrade).to_contain_text(WINDOW_ZONE)
    [made] = [w for w in api(server, "GET", "/maintenance")["windows"] if w["name"] == "DB upgrade"]
    assert (made["starts_at"], made["ends_at"]) == (
        start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        end.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    assert made["covering"] == {"heartbeats": [], "tags": ["db"], "whole_project": False}
    page.screenshot(path=shots / "maintenance.png", full_page=True)

    # The heartbeat goes down inside it: the list and its page say until when.
    ping(server, db["token"])
    page.goto(server.url + "/")
    db_row = page.locator("#rows tr", has_text="Nightly DB dump")
    expect(db_row.locator(".status")).to_have_text("Down")
    expect(db_row).to_contain_text("in maintenance until")
    expect(page.locator("#rows tr", has_text="Web check")).not_to_contain_text("in maintenance")
    page.screenshot(path=shots / "list-maintenance.png", full_page=True)
    db_row.get_by_role("link", name="Nightly DB dump").click()
    expect(page.locator("#holds")).to_contain_text("in maintenance until")
    expect(page.locator("#facts")).to_contain_text("Depends on")
    page.screenshot(path=shots / "detail-maintenance.png", full_page=True)

    # Ended early, then deleted, from the maintenance page.
    page.goto(server.url + "/maintenance")
    upgrade.get_by_role("button", name="End now").click()
    expect(upgrade).to_contain_text("ended early")
    expect(upgrade.get_by_role("button", name="End now")).to_have_count(0)
    page.locator("#rows tr", has_text="Sunday backups").get_by_role("button", name="Delete").click()
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    expect(page.locator("#rows tr", has_text="Sunday backups")).to_have_count(0)
    assert [w["name"] for w in api(server, "GET", "/maintenance")["windows"]] == ["DB upgrade"]

    # Muting, on the heartbeat's page: for an hour, until unmuted, then unmuted.
    page.goto(f"{server.url}/heartbeats/{db['id']}")
    expect(page.locator("#holds")).not_to_contain_text("in maintenance")
    mute = page.get_by_role("group", name="Mute alerts")
    mute.get_by_role("button", name="for 1 h").click()
    expect(page.locator("#holds")).to_contain_text("muted until")
    until = datetime.fromisoformat(api(server, "GET", f"/heartbeats/{db['id']}")["muted_until"])
    assert timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
    mute.get_by_role("button", name="until unmuted").click()
    expect(page.locator("#holds")).to_contain_text("muted until unmuted")
    assert api(server, "GET", f"/heartbeats/{db['id']}")["muted_until"] == "forever"
    page.screenshot(path=shots / "detail-muted.png", full_page=True)
    page.reload()
    expect(page.locator("#holds")).to_contain_text("muted until unmuted")  # from the server, not the click
    mute.get_by_role("button", name="Unmute", exact=True).click()
    expect(page.locator("#holds .hold-muted")).to_have_count(0)
    expect(mute.get_by_role("button", name="Unmute", exact=True)).to_be_hidden()
    assert api(server, "GET", f"/heartbeats/{db['id']}")["muted_until"] is None
    page.goto(server.url + "/")
    expect(page.locator("#rows tr", has_text="Nightly DB dump")).not_to_contain_text(
        re.compile("muted|maintenance")
    )
    assert page_errors == []
    context.close()
