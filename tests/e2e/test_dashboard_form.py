"""The heartbeat form and the API follow one rule: a new heartbeat needs an interval (or a
cron schedule); the form's message, beside the interval field, says what to type."""

from __future__ import annotations

import re

from tests.e2e.conftest import API_KEY
from tests.e2e.test_dashboard import expect


def test_a_heartbeat_without_an_interval_is_refused_beside_the_field_saying_what_to_type(server, browser):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.url + "/login")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_label("API key").press("Enter")
    expect(page).to_have_url(server.url + "/")

    page.goto(server.url + "/heartbeats/new")
    interval = page.get_by_label("Expected interval")
    expect(interval).to_have_accessible_description(re.compile("Required: how often"))
    page.get_by_label("Name").fill("Nightly backup")
    page.get_by_role("button", name="Create Heartbeat").click()

    expect(interval).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-interval")).to_have_text(
        'required (e.g. "5m", "1h" or seconds), unless a schedule is given'
    )
    expect(page).to_have_url(server.url + "/heartbeats/new")  # nothing made
    interval.fill("5m")
    page.get_by_role("button", name="Create Heartbeat").click()
    expect(page.locator("h1")).to_contain_text("Nightly backup")
