"""The rules that catch subtler failures on the dashboard, in a real browser against a real
``pingura serve``.

The heartbeat form has a section per rule, folded away while the rule is off, each field with
its help; what is filled in is what the API saves, a refusal lands beside the field it names,
and a rule switched off on an edit is saved off. A fleet with instances missing says "3 of 5
reported" and names them, missing ones first, and an instance is removed from its panel
(confirmed; write keys only). The timing graph shades the usual run time and rings the run far
from it; a check-in shows what a rule found in it ("too fast", "keyword: ERROR").

Screenshots go to the test's folder (and, with PINGURA_SCREENSHOTS_TO_DOCS=1, to
docs/screenshots/ as well).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from tests import polling
from tests.e2e.conftest import API_KEY
from tests.e2e.test_dashboard import api, expect

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ORANGE_AT = """([x, y]) => {
    // Whether the canvas holds the outlier ring's orange (#bc4c00) within 7 CSS px of (x, y) in the plot.
    const canvas = document.querySelector("#chart canvas");
    const over = document.querySelector("#chart .u-over").getBoundingClientRect();
    const r = canvas.getBoundingClientRect();
    const scale = canvas.width / r.width;
    const left = Math.round((over.left - r.left + x - 7) * scale), top = Math.round((over.top - r.top + y - 7) * scale);
    const d = canvas.getContext("2d").getImageData(left, top, Math.round(14 * scale), Math.round(14 * scale)).data;
    for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 200 && d[i] > 150 && d[i] - d[i + 1] > 60 && d[i + 1] - d[i + 2] > 30) return true;
    }
    return false;
}"""
PIXEL_AT = """([x, y]) => {
    // The canvas's [r, g, b, a] at (x, y) CSS px in the plot.
    const canvas = document.querySelector("#chart canvas");
    const over = document.querySelector("#chart .u-over").getBoundingClientRect();
    const r = canvas.getBoundingClientRect();
    const scale = canvas.width / r.width;
    return Array.from(canvas.getContext("2d").getImageData(
        Math.round((over.left - r.left + x) * scale), Math.round((over.top - r.top + y) * scale), 1, 1).data);
}"""


@pytest.fixture
def shots(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        for shot in folder.glob("*.png"):
            shutil.copy(shot, SCREENSHOTS / shot.name)


def signed_in(server, browser, key: str = API_KEY, viewport=(1280, 900)):
    """A page signed in with ``key``, and the errors (scripts, CSP) it raises."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(server.url + "/login")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    expect(page).to_have_url(server.url + "/")
    return page, errors


def ping(server, token: str, query: str = "", body: str = "") -> None:
    request = urllib.request.Request(
        f"{server.url}/api/heartbeat/{token}{query}",
        method="POST",
        data=body.encode(),
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.read()


def test_each_rule_is_set_in_its_own_section_and_saved_as_filled_in(server, browser, shots):
    page, errors = signed_in(server, browser)
    page.goto(server.url + "/heartbeats/new")
    page.get_by_label("Name").fill("Nightly backup on every web host")
    page.get_by_label("Expected interval").fill("1d")

    # Off, a rule's fields are folded away; its section says what it does.
    fleet = page.get_by_role("group", name="Fleet of instances")
    expect(fleet).to_have_accessible_description(re.compile("names its instance"))
    expect(page.get_by_label("At least this many instances")).to_be_hidden()
    page.get_by_label("Expect this job from several instances").check()
    least = page.get_by_label("At least this many instances")
    expect(least).to_be_visible()
    expect(least).to_have_accessible_description(re.compile("Fewer instances reporting"))
    least.fill("38")
    page.get_by_label("Or this share of them (%)").fill("150")
    page.get_by_label("Declared instances (one per line, optional)").fill("web-1\nweb-2\n\n")
    page.get_by_label("Forget an instance silent for").fill("3d")

    page.get_by_label("Judge how long each run took").check()
    page.get_by_label("Shortest acceptable run").fill("5m")
    page.get_by_label("Longest acceptable run").fill("2h")
    page.get_by_label("A run outside these limits").select_option("mark")
    page.get_by_label("Far from the usual run time").select_option("alert")
    expect(page.get_by_label("Far from the usual run time")).to_have_accessible_description(
        re.compile("last 20 measured runs")
    )

    page.get_by_label("Judge when runs come").check()
    page.get_by_label("Too early by more than").fill("10m")
    page.get_by_label("Most runs per period").fill("1")

    page.get_by_label("Alert on the share of failed runs").check()
    page.get_by_label("Down at failed runs (%)").fill("30")
    page.get_by_label("Counted over the last (runs)").fill("12")
    page.get_by_label("Only runs of the last (optional)").fill("1d")
    page.get_by_label("Up again under (%)").fill("15")

    page.get_by_label("Read the job's output for keywords").check()
    # Every field of every rule says what it does, in its help.
    undescribed = page.evaluate("""() => Array.from(document.querySelectorAll(
        "#rules-section .rule-fields input, #rules-section .rule-fields select, #rules-section .rule-fields textarea"))
        .filter((field) => !(field.getAttribute("aria-describedby") || "").split(" ")
            .some((id) => document.getElementById(id)?.classList.contains("hint")
                && document.getElementById(id).textContent.trim().length > 20))
        .map((field) => field.id)""")
    assert undescribed == [], undescribed
    page.get_by_label("Failure keywords (one per line)").fill("ERROR\nTraceback")
    page.get_by_label("Success keywords (one per line)").fill("backup complete")
    page.get_by_label("Start keywords (one per line)").fill("starting")
    page.get_by_label("When no keyword matches").select_option("ignore")

    # The API refuses the share: its message stands beside that field, not the rule's switch.
    page.get_by_role("button", name="Create Heartbeat").click()
    share = page.get_by_label("Or this share of them (%)")
    expect(share).to_have_attribute("aria-invalid", "true")
    expect(share).to_have_accessible_description(re.compile("must be a whole number from 1 to 100"))
    expect(page).to_have_url(server.url + "/heartbeats/new")
    fleet.screenshot(path=shots / "rules-form-fleet.png")
    page.get_by_role("region", name="Rules that catch subtler failures").screenshot(
        path=shots / "rules-form.png"
    )
    share.fill("95")
    # A fleet is not judged for cadence: said beside the cadence's switch; it stays off for now.
    page.get_by_role("button", name="Create Heartbeat").click()
    expect(page.locator("#err-cadence")).to_contain_text("not judged for cadence")
    expect(share).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Judge when runs come").uncheck()
    page.get_by_role("button", name="Create Heartbeat").click()
    expect(page).to_have_url(re.compile(r"/heartbeats/hb_[A-Za-z0-9_-]+$"))
    heartbeat_id = page.url.rsplit("/", 1)[1]

    saved = api(server, "GET", f"/heartbeats/{heartbeat_id}")
    assert saved["fleet"] == {
        "min_instances": 38,
        "min_percent": 95,
        "instances": ["web-1", "web-2"],
        "expiry": 3 * 86400,
    }
    assert saved["run_time"] == {"min": 300, "max": 7200, "limits": "mark", "baseline": "alert"}
    assert saved["cadence"] is None
    assert saved["failure_rate"] == {"percent": 30, "runs": 12, "window": 86400, "recover_percent": 15}
    assert saved["keywords"] == {
        "success": ["backup complete"],
        "failure": ["ERROR", "Traceback"],
        "start": ["starting"],
        "unmatched": "ignore",
    }
    facts = page.locator("#facts")
    expect(facts.locator(".fact", has_text="Fleet")).to_contain_text("at least 38 and 95%")
    expect(facts.locator(".fact", has_text="Run duration")).to_contain_text("far from usual alerts")
    expect(facts.locator(".fact", has_text="Keywords")).to_contain_text("Traceback")

    # Read back into the form; a rule switched off is saved off (null), one switched on with what
    # was typed into it before, the others as they were.
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Forget an instance silent for")).to_have_value("3d")
    expect(page.get_by_label("Shortest acceptable run")).to_have_value("5m")
    expect(page.get_by_label("Declared instances (one per line, optional)")).to_have_value("web-1\nweb-2")
    expect(page.get_by_label("When no keyword matches")).to_have_value("ignore")
    expect(page.get_by_label("Too early by more than")).to_be_hidden()
    page.get_by_label("Expect this job from several instances").uncheck()
    expect(page.get_by_label("At least this many instances")).to_be_hidden()
    page.get_by_label("Judge when runs come").check()
    page.get_by_label("Too early by more than").fill("10m")
    page.get_by_label("Most runs per period").fill("1")
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        page.get_by_role("button", name="Save changes").click()
    assert sent.value.post_data_json["fleet"] is None
    expect(page).to_have_url(re.compile(r"/heartbeats/hb_[A-Za-z0-9_-]+$"))
    saved = api(server, "GET", f"/heartbeats/{heartbeat_id}")
    assert saved["fleet"] is None and saved["cadence"] == {"early_tolerance": 600, "max_runs_per_interval": 1}
    assert saved["failure_rate"]["percent"] == 30 and saved["run_time"]["min"] == 300, saved
    expect(facts.locator(".fact", has_text="Too early or often")).to_contain_text("early by 10m")
    assert errors == []


def test_a_fleet_with_instances_missing_says_how_many_reported_and_names_them(server, browser, shots):
    made = api(
        server,
        "POST",
        "/heartbeats",
        {
            "name": "Log rotation on every web host",
            "interval": 2,
            "grace": 1,
            "fleet": {"min_instances": 4, "instances": ["web-5"]},
        },
    )
    token, heartbeat_id = made["token"], made["id"]
    for n in range(1, 5):  # web-4 checks in once, then stops
        ping(server, token, f"?instance=web-{n}")
    stop = threading.Event()

    def web_1_to_3_keep_checking_in() -> None:
        while not stop.wait(0.5):
            for n in range(1, 4):
                ping(server, token, f"?instance=web-{n}")

    pinger = threading.Thread(target=web_1_to_3_keep_checking_in, daemon=True)
    pinger.start()
    try:
        page, errors = signed_in(server, browser)
        page.goto(f"{server.url}/heartbeats/{heartbeat_id}")
        panel = page.get_by_role("region", name="Instances")
        summary = panel.locator("#fleet-summary")
        expect(summary).to_contain_text("3 of 5 reported", timeout=20_000)
        expect(summary).to_contain_text("at least 4 needed")
        expect(summary).to_contain_text("Missing: web-4, web-5")
        rows = panel.locator("#instance-rows tr")
        expect(rows).to_have_count(5)
        # Missing first, each with its status and last check-in.
        expect(rows.nth(0)).to_contain_text("web-4")
        expect(rows.nth(0)).to_contain_text("Missing")
        expect(rows.nth(1)).to_contain_text("web-5")
        expect(rows.nth(1)).to_contain_text("Never reported")
        expect(rows.nth(1)).to_contain_text("declared")
        expect(rows.nth(1)).to_contain_text("never")
        expect(rows.filter(has_text="web-1")).to_contain_text("Reporting")
        assert re.search(r"\d{2}:\d{2}", rows.nth(0).locator("td").nth(1).text_content() or "")
        # The history says which instance sent each check-in.
        checkins = page.locator("#checkin-rows tr")
        expect(page.locator("#checkins th", has_text="Instance")).to_be_visible()
        expect(checkins.first.locator(".instance-name")).to_have_text(re.compile(r"^web-[1-4]$"))
        page.get_by_label("Show", exact=True).select_option("missing")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("web-4")
        page.get_by_label("Show", exact=True).select_option("")
        expect(rows).to_have_count(5)
        panel.screenshot(path=shots / "rules-instances.png")

        # Phone-sized: the panel and the page fit the width.
        page.set_viewport_size({"width": 390, "height": 844})
        expect(summary).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        page.screenshot(path=shots / "rules-detail-phone.png")
        panel.scroll_into_view_if_needed()
        page.screenshot(path=shots / "rules-instances-phone.png")
        page.set_viewport_size({"width": 1280, "height": 900})

        # A read-only key sees the instances, but no way to remove one.
        reader = api(server, "POST", "/keys", {"name": "viewer", "read_only": True})
        viewer, viewer_errors = signed_in(server, browser, reader["key"])
        viewer.goto(f"{server.url}/heartbeats/{heartbeat_id}")
        expect(viewer.locator("#instance-rows tr")).to_have_count(5)
        expect(viewer.get_by_role("button", name=re.compile("^Remove instance"))).to_have_count(0)

        # Removed (after a confirmation), web-4 leaves the fleet: 3 of 4 at the next deadline. The
        # declared web-5 is taken out by editing the rule, not here.
        expect(rows.filter(has_text="web-5").get_by_role("button")).to_have_count(0)
        page.get_by_role("button", name="Remove instance web-4").click()
        confirm = page.get_by_role("dialog")
        expect(confirm).to_contain_text("Remove instance web-4?")
        confirm.get_by_role("button", name="Remove").click()
        expect(rows.filter(has_text="web-4")).to_have_count(0)
        expect(summary).to_contain_text("3 of 4 reported", timeout=20_000)
        expect(summary).to_contain_text("Missing: web-5")
        names = [i["name"] for i in api(server, "GET", f"/heartbeats/{heartbeat_id}/instances")["items"]]
        assert names == ["web-1", "web-2", "web-3", "web-5"], names
    finally:
        stop.set()
        pinger.join(10)
    assert errors == [] and viewer_errors == []


def test_the_graph_shades_the_usual_run_time_and_rings_the_run_far_from_it(server, browser, shots):
    made = api(
        server,
        "POST",
        "/heartbeats",
        {
            "name": "Nightly database backup",
            "interval": 3600,
            "run_time": {"baseline": "mark"},
            "keywords": {"failure": ["ERROR"]},
        },
    )
    token, heartbeat_id = made["token"], made["id"]
    for n in range(12):  # about 40 s each, as it reports them
        ping(server, token, f"?duration={38 + n % 5}")

    def learned() -> bool:
        return api(server, "GET", f"/heartbeats/{heartbeat_id}")["usual_run_time"] is not None

    polling.eventually_sync(learned, timeout_s=15, interval_s=0.2)
    ping(server, token, "?duration=3")  # backed up nothing
    ping(server, token, body="dumped 12 tables\nERROR: could not write to /backup: disk full\n")

    page, errors = signed_in(server, browser)
    page.goto(f"{server.url}/heartbeats/{heartbeat_id}")
    rows = page.locator("#checkin-rows tr")
    expect(rows).to_have_count(14)
    expect(page.locator("#status-line")).to_contain_text("Down")  # the exit-0 run that printed ERROR
    # What the rules found, on each check-in: the exit-0 run that printed ERROR, the 3 s run.
    expect(rows.nth(0).locator(".verdict")).to_have_text("keyword: ERROR")
    expect(rows.nth(1).locator(".verdict")).to_have_text("too fast")
    expect(rows.nth(1).locator(".verdict")).to_have_attribute("title", re.compile("3 s"))
    expect(rows.nth(2).locator(".verdict")).to_have_count(0)
    page.get_by_label("Kind").select_option("flagged")  # only what the rules found something in
    expect(rows).to_have_count(2)
    page.get_by_label("Kind").select_option("")
    expect(rows).to_have_count(14)
    rows.nth(1).get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Rules found")
    expect(dialog).to_contain_text("Marked only")
    page.keyboard.press("Escape")
    page.locator("#checkins").screenshot(path=shots / "rules-checkins.png")

    # The band: from the usual low to high, shaded on the canvas, named in the legend.
    chart = page.locator("#chart")
    usual = api(server, "GET", f"/heartbeats/{heartbeat_id}")["usual_run_time"]
    expect(chart).to_have_attribute("data-band-low-s", str(usual["low_s"]).removesuffix(".0"))
    expect(chart).to_have_attribute("data-band-high-s", str(usual["high_s"]).removesuffix(".0"))
    expect(page.locator("#band-legend")).to_contain_text("usual run time now")
    top, bottom = (float(chart.get_attribute(a) or "nan") for a in ("data-band-top", "data-band-bottom"))
    assert 0 <= top < bottom, (top, bottom)
    # The heading at the top of the window: the graph and its legend are in view below it.
    page.get_by_role("heading", name="Timing").evaluate("h => h.scrollIntoView({block: 'start'})")
    over = page.locator("#chart .u-over").bounding_box()
    assert over
    r, g, b, a = page.evaluate(PIXEL_AT, [over["width"] * 0.13, top + (bottom - top) * 0.3])
    assert a > 0 and g > r and g > b, (r, g, b, a)  # the band's green tint

    # The 3 s run: one ring, below the band, in orange; the legend names it on hover.
    outliers = page.locator("#chart-outliers li")
    expect(outliers).to_have_count(1)
    expect(outliers.first).to_contain_text("too fast (3 s)")
    expect(outliers.first).to_contain_text("marked")
    expect(outliers.first).to_have_attribute("data-y", re.compile(r"\d"))
    x, y = (float(outliers.first.get_attribute(a) or "nan") for a in ("data-x", "data-y"))
    assert y > bottom, (y, bottom)
    assert page.evaluate(ORANGE_AT, [x, y])
    assert not page.evaluate(ORANGE_AT, [x, (top + bottom) / 2])
    legend = page.locator(".u-legend tr", has_text="Too fast or slow").locator(".u-value")
    expect(legend).to_have_text("1")

    def hovering_the_ring() -> bool:
        # Measured again each time (the page above may have grown). The cursor snaps to the
        # nearest 5-minute bucket, ~3 px wide here: within a pixel or two of the ring's centre
        # (and inside the plot when a run of just now puts it at the edge) is its bucket.
        plot = page.locator("#chart .u-over").bounding_box()
        assert plot
        for dx in (0, -1, 1, -2, 2):
            page.mouse.move(
                plot["x"] + min(x + dx, plot["width"] - 1.5), plot["y"] + min(y, plot["height"] - 4)
            )
            if legend.text_content() == "too fast (3 s)":
                return True
        return False

    polling.eventually_sync(hovering_the_ring, timeout_s=10, interval_s=0.2)
    # The graph with its legend and the heading above it, hovered over the ring.
    heading = page.get_by_role("heading", name="Timing").bounding_box()
    whole = chart.bounding_box()
    assert heading and whole
    page.screenshot(
        path=shots / "rules-timing-graph.png",
        clip={
            "x": whole["x"] - 10,
            "y": heading["y"] - 10,
            "width": whole["width"] + 20,
            "height": whole["y"] + whole["height"] - heading["y"] + 20,
        },
    )
    assert usual["runs"] >= 10 and errors == []
