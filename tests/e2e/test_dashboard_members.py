"""Members and invitations in a real browser against a real ``pingura serve`` mailing through
a real SMTP server (aiosmtpd on loopback): the owner invites a second person from Settings,
Members; the invitation waits in the list; the second person opens the emailed link, sees
the project and the role, chooses a name and a password and lands in the project, where the
members page is theirs to read and not to change; the owner makes them an admin; the link
then refuses a second use. Screenshots go to the test's folder (and, with
PINGURA_SCREENSHOTS_TO_DOCS=1, to docs/screenshots as members.png and invite.png)."""

from __future__ import annotations

import os
import re
import shutil

from playwright.sync_api import expect

from tests import polling
from tests.e2e.test_account_security import (
    DOCS,
    EMAIL,
    inbox,
    mailing_server,
    signed_in_owner,
)
from tests.e2e.test_dashboard_status_page import watch_errors

__all__ = ["inbox", "mailing_server"]  # fixtures, used by name
BOB = "bob@example.org"
INVITE_LINK = re.compile(r"http://\S+/invite#token=[A-Za-z0-9_-]+")
expect.set_options(timeout=10_000)


def test_an_invitation_is_sent_accepted_and_used_once_in_chromium(mailing_server, inbox, browser, tmp_path):
    server, shots = mailing_server, tmp_path / "screenshots"
    shots.mkdir()
    owner = signed_in_owner(server, browser, {"width": 1280, "height": 900})
    page = owner.new_page()
    errors = watch_errors(page)
    page.goto(server.url + "/settings/members")
    expect(page.locator("#member-rows tr")).to_have_count(1)
    expect(page.locator("#member-rows")).to_contain_text(EMAIL)
    page.get_by_label("Email").fill(BOB)
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(f"Invitation emailed to {BOB}.")).to_be_visible()
    expect(page.locator("#invitation-rows tr")).to_have_count(1)
    expect(page.locator("#invitation-rows")).to_contain_text(BOB)

    mails = polling.eventually_sync(
        lambda: [m for m in inbox.mails if m.rcpt_tos == [BOB]] or None, timeout_s=10
    )
    link = INVITE_LINK.search(mails[0].message.get_content())
    assert link is not None
    bob = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    bob_errors = watch_errors(bob)
    bob.goto(link.group(0))
    expect(bob.locator("#inv-project")).to_have_text("default")  # the first project's name
    expect(bob.locator("#inv-role")).to_have_text("member")
    expect(bob.locator("#inv-email")).to_have_text(BOB)
    assert "#token" not in bob.url  # the secret left the address bar
    bob.screenshot(path=shots / "invite.png", full_page=True)
    bob.get_by_label("Your name").fill("Bob")
    bob.get_by_label("Choose a password").fill("short")
    bob.get_by_role("button", name="Join the project").click()
    expect(bob.locator("#err-a-password")).to_contain_text("at least 10 characters")
    bob.get_by_label("Choose a password").fill("a long enough password")
    bob.get_by_role("button", name="Join the project").click()
    expect(bob).to_have_url(server.url + "/")

    bob.goto(server.url + "/settings/members")
    expect(bob.locator("#member-rows tr")).to_have_count(2)
    expect(bob.locator("#member-rows select")).to_have_count(0)  # a member reads, changes nothing
    expect(bob.locator("#member-rows button")).to_have_count(0)
    expect(bob.locator("#invitations-card")).to_be_hidden()
    expect(bob.get_by_role("button", name="Leave this project")).to_be_visible()

    page.reload()
    expect(page.locator("#member-rows tr")).to_have_count(2)
    expect(page.locator("#invitations-empty")).to_be_visible()
    page.get_by_label("Role of Bob").select_option("admin")
    expect(page.get_by_text("Bob is now admin.")).to_be_visible()
    page.screenshot(path=shots / "members.png", full_page=True)
    bob.reload()
    expect(bob.locator("#invitations-card")).to_be_visible()  # an admin now

    again = browser.new_context().new_page()
    again.goto(link.group(0))
    expect(again.locator("#page-note")).to_contain_text("used already")
    assert errors == [] and bob_errors == []
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        for name in ("members.png", "invite.png"):
            shutil.copy(shots / name, DOCS / "screenshots" / name)
