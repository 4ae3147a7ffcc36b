"""The web dashboard in a real browser, against a real ``pingura serve``.

Signs in with the key, creates a heartbeat through the form (a bad interval first),
pings it with the product's curl lines, and watches the detail page show the history
with metadata, the timing graph, the status going down and back up, and the CSV
export; then the channels page and signing out. Screenshots of every page go to the
test's folder (and, with PINGURA_SCREENSHOTS_TO_DOCS=1, the list and detail pages to
docs/ as well).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests import polling
from tests.e2e.conftest import API_KEY

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = "Nightly Database Backup"
EXPORT_HEADER = [
    "id",
    "received_at",
    "kind",
    "exit_code",
    "status",
    "message",
    "duration",
    "duration_raw",
    "source_ip",
    "user_agent",
    "method",
    "measured_duration",
    "rid",
    "output",
    "output_truncated",
    "instance",
    "verdicts",
    "verdict_reason",
    "alerted",
    "keyword",
]
POLL_S = 5  # the pages refresh themselves this often
# Generous for a page that polls every 5 s; the whole test still ends well under a minute.
expect.set_options(timeout=12_000)


def seed_curl_lines(base: str) -> list[str]:
    """The product description's examples, verbatim but for the URL."""
    return [
        f"curl -X POST {base}",
        f"curl -X POST {base}/fail",
        f"curl -X POST {base}/0",
        f"curl -X POST {base}/1",
        f'curl -X POST "{base}?status=completed&message=Processed+1247+records&duration=12.5s"',
        f"curl -X POST {base} \\\n"
        '-H "Content-Type: application/json" \\\n'
        '-d \'{"status": "completed", "message": "Processed 1247 records", "duration": "12.5s"}\'',
    ]


def api(server, method: str, path: str, body: dict | None = None) -> dict | None:
    """The JSON API with the key, for what the test sets up outside the pages."""
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


BROWSER_ZONE = (
    "new Intl.DateTimeFormat(undefined, {timeZoneName: 'short'}).formatToParts(new Date())"
    ".find((p) => p.type === 'timeZoneName').value"
)
RED_COLUMNS = """([from, to]) => {
    // The page x of each canvas column between page x from and to holding reddish pixels
    // (the Failed bars).
    const canvas = document.querySelector("#chart canvas");
    const r = canvas.getBoundingClientRect();
    const scale = canvas.width / r.width;
    const ctx = canvas.getContext("2d");
    const found = [];
    for (let c = Math.floor((from - r.left) * scale); c <= Math.ceil((to - r.left) * scale); c++) {
        const d = ctx.getImageData(c, 0, 1, canvas.height).data;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i] > 180 && d[i] - d[i + 1] > 50) { found.push(r.left + c / scale); break; }
        }
    }
    return found;
}"""


def check_the_timing_graph(page, server, shots) -> None:
    """The 24 hours view: the axis spans the whole range (rounded out to whole buckets) in the
    buckets the page asked for;
    each failure's bar is drawn over the failure's own time; the legend shows the range's
    totals, or the hovered bucket's figures."""
    chart = page.locator("#chart")
    failed = page.locator(".u-legend tr", has_text="Failed").locator(".u-value")
    expect(failed).to_have_text("2")  # not hovering: the whole range (one /fail, one /1)
    axis_from, axis_to = (datetime.fromisoformat(chart.get_attribute(a)) for a in ("data-from", "data-to"))
    assert chart.get_attribute("data-bucket-s") == "300"
    bucket = timedelta(minutes=5)
    assert timedelta(hours=24) <= axis_to - axis_from <= timedelta(hours=24) + bucket, (axis_from, axis_to)
    assert axis_from.timestamp() % 300 == axis_to.timestamp() % 300 == 0, (axis_from, axis_to)
    assert timedelta(0) <= axis_to - datetime.now(axis_to.tzinfo) <= bucket, axis_to  # up to now

    heartbeat_id = page.url.rsplit("/", 1)[1]
    fails = api(server, "GET", f"/heartbeats/{heartbeat_id}/checkins?kind=fail")["checkins"]
    assert len(fails) == 2, fails
    chart.scroll_into_view_if_needed()
    over = page.locator("#chart .u-over").bounding_box()
    span_s = (axis_to - axis_from).total_seconds()
    page.screenshot(
        path=shots / "graph.png",
        clip={
            "x": over["x"] - 80,
            "y": over["y"] - 10,
            "width": over["width"] + 120,
            "height": over["height"] + 110,
        },
    )

    def page_x(at: datetime) -> float:
        return over["x"] + (at - axis_from).total_seconds() / span_s * over["width"]

    for fail in fails:
        at = datetime.fromisoformat(fail["received_at"])
        start = datetime.fromtimestamp(int(at.timestamp()) // 300 * 300, at.tzinfo)
        left, right = page_x(start), page_x(start + bucket)
        # The bar covers the failure's time and stays in its bucket (not drawn from 8:55 for 8:59).
        red = page.evaluate(
            RED_COLUMNS, [max(left - 8, over["x"]), min(right + 8, over["x"] + over["width"])]
        )
        assert red and left - 1.5 <= min(red) and max(red) <= right + 1.5, (left, right, red)
        assert any(abs(x - page_x(at)) <= 1.5 for x in red), (page_x(at), red)
        page.mouse.move((left + right) / 2, over["y"] + over["height"] - 5)
        in_bucket = sum(start <= datetime.fromisoformat(f["received_at"]) < start + bucket for f in fails)
        expect(failed).to_have_text(str(in_bucket))
        shown = page.locator(".u-legend tr", has_text="Bucket").locator(".u-value")
        expect(shown).to_contain_text("–")  # noqa: RUF001 - the en dash the legend draws between two times
        expect(shown).to_contain_text(page.evaluate(BROWSER_ZONE))
    page.screenshot(
        path=shots / "graph-hover.png",
        clip={
            "x": over["x"] - 80,
            "y": over["y"] - 10,
            "width": over["width"] + 120,
            "height": over["height"] + 110,
        },
    )
    page.mouse.move(1, 1)
    expect(failed).to_have_text("2")


def curl(command: str) -> None:
    out = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.strip() == "OK", (command, out.stdout, out.stderr)


@pytest.fixture
def shots(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def test_a_user_signs_in_creates_pings_and_watches_a_heartbeat_go_down_and_up(server, browser, shots):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.on(
        "console", lambda msg: page_errors.append(msg.text) if "Content Security Policy" in msg.text else None
    )

    # Signed out, every page sends us to the sign-in page: one field, submitted with Enter.
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("API key").fill("pk_wrong")
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_text("That key was not accepted.")).to_be_visible()
    page.screenshot(path=shots / "login.png")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_label("API key").press("Enter")
    expect(page).to_have_url(server.url + "/")
    expect(page.get_by_role("heading", name="Heartbeats")).to_be_visible()

    # The form: a bad interval gets the API's message beside that field.
    page.get_by_role("link", name="Create Heartbeat").click()
    expect(page).to_have_url(re.compile(r"/heartbeats/new$"))
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Expected interval").fill("5 parsecs")
    page.get_by_label("Grace period").fill("1s")
    page.get_by_label("Max consecutive misses").fill("1")
    page.get_by_role("textbox", name="Tags (comma-separated)", exact=True).fill("backups, production")
    page.get_by_role("button", name="Create Heartbeat").click()
    interval = page.get_by_label("Expected interval")
    expect(interval).to_have_attribute("aria-invalid", "true")
    expect(interval).to_have_accessible_description(re.compile("parsecs"))
    expect(page.locator("#err-interval")).to_be_visible()
    page.screenshot(path=shots / "form-error.png", full_page=True)
    interval.fill("2s")
    page.get_by_role("button", name="Create Heartbeat").click()
    expect(page).to_have_url(re.compile(r"/heartbeats/hb_[A-Za-z0-9_-]+$"))

    # From the list, its name opens the detail page.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Heartbeats").click()
    page.get_by_role("link", name=NAME).click()
    expect(page.get_by_role("heading", name=NAME)).to_be_visible()
    ping_url = page.locator("#ping-url").text_content()
    assert ping_url and "/api/heartbeat/" in ping_url
    expect(page.get_by_role("tab", name="curl")).to_be_visible()
    for language in ("Python", "PHP", "Node.js"):
        page.get_by_role("tab", name=language).click()
        expect(page.get_by_role("tabpanel")).to_contain_text(ping_url)
    base = f"{server.url}/api/heartbeat/{ping_url.rsplit('/', 1)[1]}"  # on 127.0.0.1, as the source IP shows

    for command in seed_curl_lines(base):
        curl(command)

    # History: every ping, with its metadata and source IP, newest first.
    rows = page.locator("#checkin-rows tr")
    with_metadata = rows.filter(has_text="Processed 1247 records")
    expect(with_metadata).to_have_count(2)
    expect(with_metadata.first).to_contain_text("12.5 s")
    expect(with_metadata.first).to_contain_text("127.0.0.1")
    expect(rows.filter(has_text="exit code 1")).to_have_count(1)
    expect(rows.filter(has_text="exit code 0")).to_have_count(1)
    with_metadata.first.get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Processed 1247 records")
    expect(dialog).to_contain_text("12.5s")
    expect(dialog).to_contain_text("127.0.0.1")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # The timing graph is drawn.
    canvas = page.locator("#chart canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100, box
    check_the_timing_graph(page, server, shots)

    # Uptime: the 24 hours card is the selected range (one figure, not two that may differ).
    expect(page.locator("#uptime .uptime-range")).to_have_count(1)
    expect(page.locator("#uptime .uptime-range")).to_contain_text("24 hours (selected range)")
    expect(page.locator("#uptime")).not_to_contain_text("Selected range")
    # Every exact time says its zone (here the browser's: the machine's).
    zone = page.evaluate(BROWSER_ZONE)
    for text in page.locator("#checkin-rows time").all_text_contents():
        assert text.endswith(" " + zone), (text, zone)

    # The CSV of the chosen range: the header, then the six pings.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV", exact=True).click()
    exported = Path(download_info.value.path()).read_text()
    table = list(csv.reader(exported.splitlines()))
    assert table[0] == EXPORT_HEADER
    pings = [dict(zip(table[0], row, strict=False)) for row in table[1:] if row[2] != "missed"]
    assert len(pings) == 6, exported
    assert [p["message"] for p in pings].count("Processed 1247 records") == 2
    assert {p["source_ip"] for p in pings} == {"127.0.0.1"}
    assert [p["exit_code"] for p in pings if p["exit_code"]] == ["0", "1"]

    # Silence: missed windows take it down (the page refreshes by itself), with the reason.
    status_line = page.locator("#status-line")
    expect(status_line).to_contain_text("Down", timeout=(3 + 2 * POLL_S) * 1000)
    expect(status_line).to_contain_text("since")
    expect(page.locator("#status-reason")).not_to_be_empty()
    expect(rows.filter(has_text="missed").first).to_be_visible()
    page.screenshot(path=shots / "detail.png", full_page=True)

    # Back on schedule (a ping a second, as the 2 s interval wants) brings it back up.
    def pinged_and_shown_up() -> bool:
        curl(f"curl -X POST {base}")
        return "Up" in (status_line.text_content() or "")

    polling.eventually_sync(pinged_and_shown_up, timeout_s=2 * POLL_S + 5, interval_s=1.0)

    # The list: each status with its word (and why, when down), counts that filter; usable on a phone.
    api(
        server,
        "POST",
        "/heartbeats",
        {"name": "Weekly invoice run", "interval": "7d", "grace": "1h", "tags": ["billing"]},
    )
    paused = api(server, "POST", "/heartbeats", {"name": "Hourly cache warm-up", "interval": "1h"})
    api(server, "POST", f"/heartbeats/{paused['id']}/pause")
    page.goto(server.url + "/")
    row = page.locator("#rows tr", has_text=NAME)
    expect(row).to_contain_text("Down", timeout=(3 + 2 * POLL_S) * 1000)  # silent again
    expect(row.locator(".reason")).not_to_be_empty()  # and why
    expect(page.locator("#rows tr", has_text="Hourly cache warm-up")).to_contain_text("Paused")
    expect(page.locator("#rows tr", has_text="Weekly invoice run")).to_contain_text("New")
    page.screenshot(path=shots / "list.png", full_page=True)
    # Problems first by default (by name it would be "Hourly…" first); any other order on request.
    expect(page.get_by_label("Sort")).to_have_value("status")
    expect(page.locator("#rows tr").first).to_contain_text(NAME)
    page.get_by_label("Sort").select_option("name")
    expect(page).to_have_url(re.compile(r"\?sort=name$"))
    expect(page.locator("#rows tr").first).to_contain_text("Hourly cache warm-up")
    page.get_by_label("Sort").select_option("status")
    expect(page).to_have_url(server.url + "/")
    expect(page.locator("#rows tr").first).to_contain_text(NAME)
    page.get_by_role("button", name=re.compile(r"^Down\s+1$")).click()
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"\?status=down$"))
    page.get_by_role("button", name=re.compile(r"^All\s+3$")).click()
    expect(page.locator("#rows tr")).to_have_count(3)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.screenshot(path=shots / "list-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 860})

    # Channels: the add form comes from the server's kinds; a test send shows its outcome.
    page.get_by_role("link", name="Channels").click()
    expect(page.get_by_role("heading", name="Channels")).to_be_visible()
    # No SMTP server here: email is offered, disabled, with the reason.
    expect(page.get_by_label("Kind").locator("option[value=email]")).to_be_disabled()
    expect(page.locator("#kinds-unavailable")).to_contain_text("Email is unavailable")
    expect(page.locator("#kinds-unavailable")).to_contain_text("PINGURA_SMTP_URL")
    page.get_by_label("Kind").select_option("webhook")  # the form redraws for the kind picked
    page.get_by_label("Name", exact=True).fill("ops")
    page.get_by_label("URL", exact=True).fill(f"{server.url}/hook-nowhere")
    page.get_by_role("button", name="Add channel").click()
    channel = page.locator("#rows tr", has_text="ops")
    expect(channel).to_be_visible()
    channel.get_by_role("button", name="Send test").click()
    expect(channel.locator(".test-result")).to_have_text(re.compile(r"[✓✗] \S"))
    page.screenshot(path=shots / "channels.png", full_page=True)

    # Signing out ends the session.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))

    assert not page_errors, page_errors
    context.close()
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        shutil.copy(shots / "list.png", DOCS / "dashboard-list.png")
        shutil.copy(shots / "detail.png", DOCS / "dashboard-detail.png")
