"""The dashboard with cron schedules and runs, in a real browser against a real ``pingura serve``.

Creates a heartbeat on a cron schedule through the form (the time zone defaults to the
browser's; a bad expression and a bad slug get the API's message beside their fields),
then runs a job against its Healthchecks URL: ``/start`` shows it running (blue, since when,
in the list too), ``/log`` and the end carry output, and the history shows the run id,
the measured duration and the output, read whole in the check-in's dialog. Editing keeps
to the mode shown: a schedule heartbeat is saved without an interval, and the other way round.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid

from tests.e2e.conftest import API_KEY
from tests.e2e.test_dashboard import BROWSER_ZONE, POLL_S, expect

NAME = "Nightly Postgres dump"
ZONE = "Europe/Berlin"
RUNNING_BLUE = "rgb(9, 105, 218)"  # --running in app.css
LOG_LINE = "2026-01-01 03:00:{:02d} INFO dumped table invoices_{:05d}: 1247 rows, 312 KiB\n"


def ping(url: str, body: str = "") -> None:
    request = urllib.request.Request(
        url, method="POST", data=body.encode(), headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.read()


def job_output(lines: int) -> str:
    return "".join(LOG_LINE.format(i % 60, i) for i in range(lines))


def test_a_scheduled_job_runs_with_its_output_and_is_edited_in_its_own_mode(server, browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=ZONE)
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

    # The form in cron mode: the zone is the browser's; errors land beside their fields.
    page.goto(server.url + "/heartbeats/new")
    expect(page.get_by_label("Expected interval")).to_be_visible()
    expect(page.get_by_label("Cron expression")).to_be_hidden()
    page.get_by_role("radio", name="Cron schedule").check()
    expect(page.get_by_label("Expected interval")).to_be_hidden()
    expect(page.get_by_label("Time zone")).to_have_value(ZONE)
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Cron expression").fill("0 25 * * *")
    page.get_by_label("Grace period").fill("1h")
    page.get_by_label("Max run time").fill("30m")
    page.get_by_label("Recovery threshold").fill("2")
    page.get_by_label("Reminder interval").fill("4h")
    page.get_by_label("Slug").fill("Nightly DB")
    # Two fields are wrong: the server names one at a time (the slug's pattern is part of the
    # declared type, so it is refused before the cron expression is parsed), and the form
    # marks the field it names and clears the mark of one fixed.
    page.get_by_role("button", name="Create Heartbeat").click()
    expect(page.get_by_label("Slug")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-slug")).to_contain_text("lower-case")
    page.get_by_label("Slug").fill("nightly-db")
    page.get_by_role("button", name="Create Heartbeat").click()
    cron = page.get_by_label("Cron expression")
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-schedule")).to_be_visible()
    expect(page.locator("#err-slug")).to_be_hidden()
    page.screenshot(path=shots / "form-cron.png", full_page=True)
    cron.fill("0 3 * * *")
    page.get_by_role("button", name="Create Heartbeat").click()
    expect(page).to_have_url(re.compile(r"/heartbeats/hb_[A-Za-z0-9_-]+$"))

    # The detail page: schedule, zone, the limits, the next run; the Healthchecks URL.
    facts = page.locator("#facts")
    expect(facts).to_contain_text("0 3 * * *")
    expect(facts).to_contain_text(ZONE)
    expect(facts).to_contain_text("30m")
    expect(facts).to_contain_text("every 4h")
    expect(facts).to_contain_text("2 good check-ins")
    expect(facts).to_contain_text("nightly-db")
    # The next 03:00 in Berlin is minutes or hours away, depending on when the test runs.
    expect(facts.locator(".fact", has_text="Next expected")).to_contain_text(re.compile(r"in \d+ (h|min)\b"))
    hc_url = page.locator("#hc-url").text_content()
    assert hc_url and re.fullmatch(r"http://[^/]+/ping/[A-Za-z0-9_-]+", hc_url), hc_url
    hc_url = server.url + hc_url[hc_url.index("/ping/") :]  # as pinged from this machine

    # /start: running, in blue, since the start; the list says so too.
    rid = str(uuid.uuid4())
    started = time.monotonic()
    ping(f"{hc_url}/start?rid={rid}")
    status_line = page.locator("#status-line")
    expect(status_line).to_contain_text("Running", timeout=(2 + 2 * POLL_S) * 1000)
    expect(status_line).to_contain_text("started at")
    expect(status_line.locator(".status")).to_have_css("color", RUNNING_BLUE)
    page.locator("#status-panel").screenshot(path=shots / "detail-running.png")
    page.goto(server.url + "/")
    expect(page.locator("#rows tr", has_text=NAME)).to_contain_text("Running")
    expect(page.get_by_role("button", name=re.compile(r"^Running\s+1$"))).to_be_visible()
    page.go_back()

    # /log, then the end: both with output, the end's too long to keep whole.
    ping(f"{hc_url}/log?rid={rid}", "pg_dump: starting\n")
    time.sleep(
        max(0.0, 1.5 - (time.monotonic() - started))
    )  # a run of 1.5 s at least: the duration under test
    long_output = job_output(1600)  # ~110 KiB: more than the 100 KiB kept
    assert len(long_output.encode()) > 100 * 1024
    ping(f"{hc_url}?rid={rid}", long_output)
    rows = page.locator("#checkin-rows tr")
    expect(rows).to_have_count(3, timeout=(2 + 2 * POLL_S) * 1000)
    expect(status_line).to_contain_text("Up", timeout=(2 + 2 * POLL_S) * 1000)
    end, log, start = rows.nth(0), rows.nth(1), rows.nth(2)
    # Times are the browser's (Berlin's here), and every one says so; so does the graph.
    zone = page.evaluate(BROWSER_ZONE)
    assert zone and zone != "UTC", zone
    expect(status_line.locator("time").first).to_have_text(re.compile(" " + re.escape(zone) + "$"))
    times = rows.locator("time").all_text_contents()
    assert len(times) == 3 and all(t.endswith(" " + zone) for t in times), (times, zone)
    expect(page.locator("#chart")).to_have_attribute("aria-label", re.compile(re.escape(zone)))
    expect(start).to_contain_text("start")
    expect(log).to_contain_text("log")
    for row in (start, log, end):
        expect(row).to_contain_text(rid[:8])
    expect(log.locator(".output-mark")).to_contain_text("B")
    expect(end.locator(".output-mark")).to_contain_text("+")  # a page has the start of it only
    measured = end.locator("td[title^=Measured]")
    expect(measured).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
    assert 1.5 <= float(measured.text_content().split()[0]) <= time.monotonic() - started + 0.5

    # The kind filter has start and log.
    kind = page.get_by_label("Kind")
    kind.select_option("start")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("start")
    kind.select_option("log")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("log")
    kind.select_option("")
    expect(rows).to_have_count(3)

    # The end's details: its measured duration and the output, scrollable, marked truncated.
    end.get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Measured duration")
    expect(dialog).to_contain_text(rid)
    output = dialog.locator("pre.output")
    expect(output).to_be_visible()
    expect(output).to_contain_text(LOG_LINE.format(0, 0).strip())
    expect(dialog).to_contain_text("(truncated")  # by ingest: the job sent more than 100 KiB
    assert output.evaluate("n => n.textContent.length") > 90 * 1024  # all that was kept, not a page's start
    assert output.evaluate("n => n.scrollHeight > n.clientHeight && getComputedStyle(n).overflowY === 'auto'")
    page.screenshot(path=shots / "detail-run-output.png")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.screenshot(path=shots / "detail-run.png", full_page=True)

    # Editing a schedule heartbeat sends the schedule, never an interval...
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("radio", name="Cron schedule")).to_be_checked()
    expect(page.get_by_label("Cron expression")).to_have_value("0 3 * * *")
    expect(page.get_by_label("Time zone")).to_have_value(ZONE)
    expect(page.get_by_label("Max run time")).to_have_value("30m")
    expect(page.get_by_label("Recovery threshold")).to_have_value("2")
    expect(page.get_by_label("Slug")).to_have_value("nightly-db")
    page.get_by_label("Reminder interval").fill("")
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        page.get_by_role("button", name="Save changes").click()
    body = sent.value.post_data_json
    assert "interval" not in body and body["schedule"] == "0 3 * * *" and body["timezone"] == ZONE, body
    assert body["reminder_interval"] is None, body
    expect(page).to_have_url(re.compile(r"/heartbeats/hb_[A-Za-z0-9_-]+$"))
    expect(facts.locator(".fact", has_text="Reminders")).to_contain_text("none")

    # ...and switching it to a period sends the interval, never a schedule.
    page.get_by_role("link", name="Edit").click()
    # The form fills itself in once the heartbeat (and the project's heartbeats for dependencies)
    # are read: switch the mode only after that, or the load switches it back.
    expect(page.get_by_label("Cron expression")).to_have_value("0 3 * * *")
    page.get_by_role("radio", name="Period").check()
    page.get_by_label("Expected interval").fill("1h")
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        page.get_by_role("button", name="Save changes").click()
    body = sent.value.post_data_json
    assert body["interval"] == "1h" and "schedule" not in body and "timezone" not in body, body
    expect(page).to_have_url(re.compile(r"/heartbeats/hb_[A-Za-z0-9_-]+$"))
    expect(facts).to_contain_text("every 1h")
    expect(facts).not_to_contain_text("0 3 * * *")

    assert not page_errors, page_errors
    context.close()
