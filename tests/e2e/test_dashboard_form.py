"""The heartbeat form and the API follow one rule: a new heartbeat needs an interval (or a
cron schedule); the form's message, beside the interval field, says what to type. Dependencies
are picked by name (or given as tags) and flapping set in the same form; a cycle is refused
beside the field that closes it."""

from __future__ import annotations

import re

from tests.e2e.conftest import API_KEY
from tests.e2e.test_dashboard import api, expect


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


def signed_in(server, browser):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.url + "/login")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_label("API key").press("Enter")
    expect(page).to_have_url(server.url + "/")
    return page


def test_dependencies_are_picked_by_name_and_tag_and_flapping_set_in_the_form(server, browser):
    db = api(server, "POST", "/heartbeats", {"name": "Primary database", "interval": 60})
    app = api(server, "POST", "/heartbeats", {"name": "Billing job", "interval": 60})
    page = signed_in(server, browser)

    page.goto(f"{server.url}/heartbeats/{app['id']}/edit")
    dependencies = page.get_by_role("group", name="Dependencies (optional)")
    expect(dependencies).to_have_accessible_description(re.compile("down alert is held"))
    search = page.get_by_label("Depends on heartbeats")
    search.fill("datab")
    page.get_by_role("button", name="Add dependency on Primary database").click()
    expect(page.get_by_role("list", name="Heartbeats it depends on")).to_contain_text("Primary database")
    search.fill("billing")  # itself is never offered
    expect(page.get_by_role("list", name="Heartbeats found")).to_have_text(re.compile("No other heartbeat"))
    page.get_by_label("Depends on tags (comma-separated)").fill("network, storage")
    page.get_by_label("Changes before flapping (0-100)").fill("6")
    page.get_by_label("Within").fill("2h")
    page.get_by_label("Stable for").fill("45m")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("h1")).to_contain_text("Billing job")

    saved = api(server, "GET", f"/heartbeats/{app['id']}")
    assert (saved["depends_on"], saved["depends_on_tags"]) == ([db["id"]], ["network", "storage"])
    assert (saved["flap_changes"], saved["flap_window"], saved["flap_stable"]) == (6, 7200, 2700)

    # Read back into the form; emptied, the flapping settings go back to the defaults.
    page.goto(f"{server.url}/heartbeats/{app['id']}/edit")
    expect(page.get_by_role("list", name="Heartbeats it depends on")).to_contain_text("Primary database")
    expect(page.get_by_label("Within")).to_have_value("2h")
    expect(page.get_by_label("Stable for")).to_have_value("45m")
    page.get_by_label("Changes before flapping (0-100)").fill("")
    page.get_by_label("Within").fill("")
    page.get_by_label("Stable for").fill("")
    page.get_by_role("button", name="Remove dependency on Primary database").click()
    expect(page.get_by_role("list", name="Heartbeats it depends on")).to_have_text("None.")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("h1")).to_contain_text("Billing job")
    saved = api(server, "GET", f"/heartbeats/{app['id']}")
    assert (saved["depends_on"], saved["flap_changes"], saved["flap_window"], saved["flap_stable"]) == (
        [],
        None,
        None,
        None,
    )


def test_a_dependency_cycle_is_refused_beside_the_field_that_closes_it(server, browser):
    db = api(server, "POST", "/heartbeats", {"name": "Primary database", "interval": 60})
    app = api(
        server, "POST", "/heartbeats", {"name": "Billing job", "interval": 60, "depends_on": [db["id"]]}
    )
    page = signed_in(server, browser)

    page.goto(f"{server.url}/heartbeats/{db['id']}/edit")
    page.get_by_label("Depends on heartbeats").fill("billing")
    page.get_by_role("button", name="Add dependency on Billing job").click()
    page.get_by_role("button", name="Save changes").click()
    search = page.get_by_label("Depends on heartbeats")
    expect(search).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-depends_on")).to_have_text(
        "would make a cycle of dependencies: 'Primary database' -> 'Billing job' -> 'Primary database'"
    )
    expect(search).to_have_accessible_description(re.compile("would make a cycle"))
    assert api(server, "GET", f"/heartbeats/{db['id']}")["depends_on"] == []  # nothing saved

    page.get_by_label("Stable for").fill("5s")  # and a flapping setting out of range, on its own
    page.get_by_role("button", name="Remove dependency on Billing job").click()
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#err-flap_stable")).to_have_text(
        'must be a number of seconds or a duration such as "30m", from 10 seconds to 7 days'
    )
    assert app["depends_on"] == [db["id"]]
