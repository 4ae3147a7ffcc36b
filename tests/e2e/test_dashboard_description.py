"""A heartbeat's description in the dashboard (real Chromium): written in the form's textarea,
shown on its page as the text it is (lines kept, markup never read as HTML), edited, cleared."""

from __future__ import annotations

from tests.e2e.test_dashboard import expect
from tests.e2e.test_dashboard_form import signed_in

TEXT = 'Dumps the database to S3.\nIf it fails:\n\tcheck db1\'s disk <img src=x onerror="window.owned=1"> <b>now</b>'


def test_a_description_is_written_in_the_form_and_shown_as_plain_text(server, browser):
    page = signed_in(server, browser)
    page.goto(server.url + "/heartbeats/new")
    page.get_by_label("Name").fill("Nightly backup")
    page.get_by_label("Expected interval").fill("1d")
    field = page.get_by_label("Description (optional)")
    expect(field).to_have_accessible_description(
        "What the job is and what to do when it fails, for whoever gets the alert. Plain text, up to 10,000 "
        "characters; shown as written."
    )
    field.fill(TEXT)
    page.get_by_role("button", name="Create Heartbeat").click()

    shown = page.locator("#hb-description")
    expect(shown).to_be_visible()
    expect(shown).to_have_text(TEXT)  # as text: the markup is characters, not elements
    assert shown.locator("img, b").count() == 0 and page.evaluate("window.owned") is None
    assert shown.evaluate("n => n.textContent") == TEXT  # its newlines and tab kept

    page.get_by_role("link", name="Edit").click()
    field = page.get_by_label("Description (optional)")
    expect(field).to_have_value(TEXT)
    field.fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_contain_text("Nightly backup")
    expect(page.locator("#hb-description")).to_be_hidden()
