"""The dashboard's audit log page (/settings/audit) in a real browser against a real
``pingura serve``: a heartbeat edited through the API shows as ``heartbeat.update``, made by
the key, opens to a diff of its name and interval before and after (its token masked, and
folded among the unchanged fields); a filter narrows the list and is kept in the page's URL;
the CSV export downloads the filtered entries. A screenshot goes to the test's folder (and,
with PINGURA_SCREENSHOTS_TO_DOCS=1, to docs/screenshots/audit-log.png as well)."""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

from tests import polling
from tests.e2e.conftest import API_KEY
from tests.e2e.test_dashboard import api, expect

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def test_the_audit_log_shows_a_heartbeat_edit_as_a_diff_and_exports_it(server, browser, tmp_path):
    made = api(server, "POST", "/heartbeats", {"name": "Nightly backup", "interval": 3600})
    assert made is not None
    api(server, "PATCH", f"/heartbeats/{made['id']}", {"name": "Nightly DB backup", "interval": 7200})

    def written() -> bool:  # the history writer copies the entry into ClickHouse in the background
        page = api(server, "GET", "/audit?action=heartbeat.update")
        return page is not None and len(page["entries"]) == 1

    polling.eventually_sync(written, timeout_s=15)

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.on(
        "console", lambda msg: page_errors.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    page.goto(server.url + "/login")
    key_field = page.get_by_role("textbox", name="API key")
    key_field.fill(API_KEY)
    key_field.press("Enter")
    expect(page).to_have_url(server.url + "/")
    page.goto(server.url + "/settings")
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(server.url + "/settings/audit")

    edit = page.locator("#rows tr[data-action='heartbeat.update']")
    expect(edit).to_have_count(1)
    expect(edit).to_contain_text(made["id"])
    expect(edit).to_contain_text("API key")
    expect(edit).to_contain_text("127.0.0.1")
    expect(page.locator("#rows tr[data-action='heartbeat.create']")).to_have_count(1)
    diff = page.locator(f"#diff-{edit.get_attribute('data-entry')}")
    expect(diff).to_be_hidden()
    edit.get_by_role("button", name="Show changes").click()
    expect(diff).to_be_visible()
    name = diff.locator("tr[data-field='name']").first
    expect(name.locator(".audit-before")).to_have_text("Nightly backup")
    expect(name.locator(".audit-after")).to_have_text("Nightly DB backup")
    interval = diff.locator("tr[data-field='interval_s']").first
    expect(interval.locator(".audit-before")).to_have_text("3600")
    expect(interval.locator(".audit-after")).to_have_text("7200")
    unchanged = diff.locator("details.audit-unchanged")
    expect(unchanged.locator("summary")).to_contain_text("unchanged")
    unchanged.locator("summary").click()
    expect(unchanged.locator("tr[data-field='token'] td").first).to_have_text("****" + made["token"][-4:])
    assert made["token"] not in page.content()
    page.screenshot(path=str(tmp_path / "audit-log.png"), full_page=True)
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        shutil.copy(tmp_path / "audit-log.png", DOCS / "audit-log.png")

    # A filter: only the creations; kept in the URL, and in the export links.
    page.get_by_label("Action").fill("heartbeat.create")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/settings/audit\?action=heartbeat\.create$"))
    expect(page.locator("#rows tr[data-action='heartbeat.update']")).to_have_count(0)
    expect(page.locator("#rows tr[data-action='heartbeat.create']")).to_have_count(1)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV", exact=True).click()
    table = list(csv.reader(Path(download_info.value.path()).read_text().splitlines()))
    assert table[0][:2] == ["id", "at"] and [row[6] for row in table[1:]] == ["heartbeat.create"], table
    page.get_by_role("link", name="Clear").click()
    expect(page.locator("#rows tr[data-action='heartbeat.update']")).to_have_count(1)
    assert page_errors == []
    context.close()
