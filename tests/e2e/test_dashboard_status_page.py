"""The status page in a real browser against a real ``pingura serve``: set up on the Settings
page (two groups, heartbeats picked under labels of their own), badges made there; then the
public page read with no session, on a desktop and on a phone-sized screen, showing the chosen
labels, states and 90 (on the phone 30) daily bars and nothing else of the project; a new address
retires the old one; a read-only key sees the settings and cannot change them.

Screenshots go to the test's folder (and, with PINGURA_SCREENSHOTS_TO_DOCS=1, to
docs/screenshots/ as status-page.png, status-page-phone.png and settings.png).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

from playwright.sync_api import expect

from tests.e2e.conftest import API_KEY
from tests.e2e.test_dashboard import DOCS, api

SECRET_NAME = "Internal payroll sync"
DAY_MS, HOUR_MS, MINUTE_MS = 86_400_000, 3_600_000, 60_000
SEED = """
import asyncio, json, sys
from pathlib import Path
from services.query.store import HistoryStore
from shared.clickhouse import open_client
from shared.events import StatusChanged
from shared.settings import Settings

async def main(data_dir, project_id, changes):
    ch = open_client(Settings(data_dir=Path(data_dir)))
    store = HistoryStore(ch, Settings().history_retention_days)
    await store.migrate()
    events = [StatusChanged(id=f"seed:{m}:{at}", project_id=project_id, monitor_id=m, status=s, previous=p,
                            at_ms=at, reason="seeded") for m, at, s, p in changes]
    await store.insert_events(events, "seed")
    await ch.close()

asyncio.run(main(*json.loads(sys.argv[1])))
"""


def seed_history(server, project_id: str, outages: dict[str, tuple[int, list[tuple[int, int]]]]) -> None:
    """Give heartbeats months of history, as the evaluator would have written it: for each, up
    since ``days`` ago, down for each (days ago, minutes) outage. Written into the server's own
    ClickHouse (chDB, one process at a time) while it is stopped; it is started again after."""
    today = time.time_ns() // 1_000_000 // DAY_MS * DAY_MS
    changes = []
    for monitor_id, (since_days, downs) in outages.items():
        changes.append((monitor_id, today - since_days * DAY_MS + HOUR_MS, "up", "new"))
        for days_ago, minutes in downs:
            start = today - days_ago * DAY_MS + 9 * HOUR_MS
            changes += [
                (monitor_id, start, "down", "up"),
                (monitor_id, start + minutes * MINUTE_MS, "up", "down"),
            ]
    server.stop()
    subprocess.run([sys.executable, "-c", SEED, json.dumps([str(server.data_dir), project_id, changes])],
                   check=True, timeout=60)  # fmt: skip
    server.start()


def ping(server, token: str, kind: str = "") -> None:
    request = urllib.request.Request(f"{server.url}/api/heartbeat/{token}{kind}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    return errors


def sign_in(page, server, key: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    expect(page).to_have_url(server.url + "/")


def test_a_status_page_is_set_up_in_settings_and_read_in_public(server, browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    backup = api(
        server, "POST", "/heartbeats", {"name": "Nightly DB backup", "interval": 3600, "tags": ["db"]}
    )
    billing = api(server, "POST", "/heartbeats", {"name": "Billing export", "interval": 1, "grace": 1})
    search = api(
        server, "POST", "/heartbeats", {"name": "Search reindex", "interval": 3600, "slug": "search"}
    )
    payroll = api(
        server, "POST", "/heartbeats", {"name": SECRET_NAME, "interval": 3600, "tags": ["payroll-team"]}
    )
    assert backup and billing and search and payroll
    project_id = api(server, "GET", "/projects/me")["id"]
    seed_history(server, project_id, {
        search["id"]: (89, [(41, 180)]),
        backup["id"]: (89, [(63, 5), (12, 20)]),
        billing["id"]: (60, [(5, 40)]),
        payroll["id"]: (89, [(3, 600)]),  # not on the page: nothing of it may show
    })  # fmt: skip
    for made in (backup, billing, search, payroll):
        ping(server, made["token"])
    ping(server, billing["token"], "/fail")  # down now

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch_errors(page)
    sign_in(page, server, API_KEY)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(server.url + "/settings")
    expect(page.get_by_text("The project has no status page.")).to_be_visible()

    page.get_by_role("button", name="Set up a status page").click()
    page.get_by_label("Title").fill("Acme services")
    page.get_by_label("Introduction").fill("Scheduled jobs behind Acme's services.\nUpdated every minute.")
    page.get_by_label("Group name").fill("Data")
    page.get_by_label("Add a heartbeat").select_option(label="Nightly DB backup")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_label("Label for Nightly DB backup")).to_have_value(
        "Nightly DB backup"
    )  # the name, to edit
    page.get_by_label("Label for Nightly DB backup").fill("Database backups")
    page.get_by_label("Add a heartbeat").select_option(label="Search reindex")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_label("Label for Search reindex").fill("Search index")
    page.get_by_role("button", name="Add group").click()
    page.get_by_label("Group name").nth(1).fill("Customer-facing")
    page.get_by_label("Add a heartbeat").nth(1).select_option(label="Billing export")
    page.get_by_role("button", name="Add", exact=True).nth(1).click()
    page.get_by_label("Label for Billing export").fill("Invoices")
    page.get_by_role("button", name="Move Search index up").click()  # now first in its group
    page.get_by_role("button", name="Save status page").click()
    expect(page.get_by_text("Saved. The public page shows it within a minute.")).to_be_visible()
    saved = api(server, "GET", "/projects/me/status-page")
    assert saved is not None
    assert [[(i["heartbeat_id"], i["label"]) for i in g["items"]] for g in saved["groups"]] == [
        [(search["id"], "Search index"), (backup["id"], "Database backups")],
        [(billing["id"], "Invoices")],
    ]
    public_url = server.url + saved["url"]
    expect(page.get_by_role("link", name="Open public page")).to_have_attribute("href", saved["url"])

    # Badges: a key, a preview, snippets; a tag's badge.
    page.get_by_role("button", name="Make badge key").click()
    expect(page.get_by_text("Badge key made")).to_be_visible()
    badge_key = api(server, "GET", "/projects/me")["badge_key"]
    expect(page.locator(".snippet", has_text="Markdown")).to_contain_text(
        f"/api/v1/badge/{badge_key}/project.svg"
    )
    page.get_by_label("Badge for").select_option(label="Tag: db")
    page.get_by_label("Shows").select_option(label="up, late or down")
    expect(page.locator(".snippet", has_text="Shields.io")).to_contain_text("img.shields.io/endpoint?url=")
    expect(page.locator("#badge-img")).to_have_attribute(
        "src", f"{server.url}/api/v1/badge/{badge_key}/tag/db.svg?states=3"
    )
    page.wait_for_function("document.getElementById('badge-img').naturalWidth > 0")
    page.screenshot(path=shots / "settings.png", full_page=True)

    # The public page, with no session at all.
    public = browser.new_context(viewport={"width": 1280, "height": 900})
    reader = public.new_page()
    reader_errors = watch_errors(reader)
    response = reader.goto(public_url)
    assert response is not None and response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-robots-tag"] == "noindex"
    expect(reader.get_by_role("heading", name="Acme services", level=1)).to_be_visible()
    expect(reader.locator("#sp-overall")).to_contain_text("Some systems are down")
    expect(reader.get_by_role("heading", name="Customer-facing")).to_be_visible()
    invoices = reader.locator(".sp-item", has_text="Invoices")
    expect(invoices.locator(".sp-state")).to_have_text("Down")
    expect(reader.locator(".sp-item", has_text="Database backups").locator(".sp-state")).to_have_text(
        "Operational"
    )
    expect(reader.locator(".sp-label")).to_have_text(["Search index", "Database backups", "Invoices"])
    expect(invoices.get_by_role("listitem")).to_have_count(90)
    expect(invoices.get_by_role("list", name="Daily uptime of Invoices, oldest first")).to_be_visible()
    expect(reader.locator("#sp-change-list")).to_contain_text("Invoices went down")
    text = reader.locator("body").inner_text()
    for hidden in (
        SECRET_NAME,
        "Nightly DB backup",
        "Billing export",
        "payroll-team",
        billing["token"],
        billing["id"],
    ):
        assert hidden not in text, hidden
    reader.screenshot(path=shots / "status-page.png", full_page=True)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    small = phone.new_page()
    small_errors = watch_errors(small)
    small.goto(public_url)
    bars = small.locator(".sp-item", has_text="Invoices").locator(".sp-bar")
    expect(bars.last).to_be_visible()
    expect(bars.first).to_be_hidden()  # the phone shows the last 30 days
    assert sum(bars.nth(i).is_visible() for i in range(90)) == 30
    assert small.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    small.screenshot(path=shots / "status-page-phone.png", full_page=True)

    # A new address: the old one says there is no such page.
    page.get_by_role("button", name="New address").click()
    page.get_by_role("button", name="New address").last.click()  # the dialog's
    expect(page.get_by_text("The status page has a new address")).to_be_visible()
    stale = browser.new_context().new_page()  # a visitor's browser keeps the answer up to 30 s
    gone = stale.goto(public_url)
    assert gone is not None and gone.status == 404
    expect(stale.get_by_role("heading", name="No such status page")).to_be_visible()
    expect(stale.get_by_role("alert")).to_have_text(
        "This status page does not exist, or its address has changed."
    )
    stale.context.close()
    new_url = server.url + api(server, "GET", "/projects/me/status-page")["url"]
    assert new_url != public_url
    reader.goto(new_url)
    expect(reader.get_by_role("heading", name="Acme services", level=1)).to_be_visible()

    # A read-only key sees the settings, changes nothing.
    key = api(server, "POST", "/keys", {"name": "viewer", "read_only": True})["key"]
    viewer = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(viewer, server, key)
    viewer.goto(server.url + "/settings")
    expect(viewer.get_by_label("Title")).to_have_value("Acme services")
    expect(viewer.get_by_label("Title")).to_be_disabled()
    expect(viewer.get_by_label("Label for Billing export")).to_be_disabled()
    for name in ("Save status page", "New address", "Turn off", "Add group", "New badge key", "Remove group"):
        expect(viewer.get_by_role("button", name=name)).to_have_count(0)
    expect(viewer.locator(".snippet", has_text="Markdown")).to_contain_text(badge_key)

    assert not errors and not reader_errors and not small_errors, (errors, reader_errors, small_errors)
    for ctx in (context, public, phone, viewer.context):
        ctx.close()
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        for name in ("status-page.png", "status-page-phone.png", "settings.png"):
            shutil.copy(shots / name, DOCS / "screenshots" / name)
