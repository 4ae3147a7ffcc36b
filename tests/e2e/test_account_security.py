"""Account security in a real browser against a real ``pingura serve`` that mails through a
real SMTP server (aiosmtpd on loopback): the first account verifies its address from the
emailed link, turns on two-factor sign-in by scanning nothing but reading the key (pyotp
plays the authenticator app), saves its recovery codes, signs in again with password and
code, resets a forgotten password from the emailed link; wrong codes run the account's
allowance out (429) and its owner gets a notice. Afterwards no secret is in the server's
log nor in clear in its data directory (the bus). Screenshots go to the test's folder (and,
with PINGURA_SCREENSHOTS_TO_DOCS=1, to docs/screenshots)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyotp
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import expect

from tests import polling
from tests.e2e.conftest import Server
from tests.e2e.test_dashboard_status_page import watch_errors
from tests.services.notifier.channels.test_email import Inbox, free_port

DOCS = Path(__file__).resolve().parents[2] / "docs"
EMAIL, NAME = "ada@example.org", "Ada"
PASSWORD, NEW_PASSWORD = "first long password", "second long password"
SETUP_LINK = re.compile(r"/setup#token=([A-Za-z0-9_-]+)")
expect.set_options(timeout=10_000)


@pytest.fixture
def inbox():
    received, port = Inbox(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    received.port = port  # type: ignore[attr-defined]
    yield received
    controller.stop()


@pytest.fixture
def mailing_server(tmp_path, inbox):
    srv = Server(tmp_path / "data", tmp_path / "serve.log")
    srv.extra_env = {
        "PINGURA_SMTP_URL": f"smtp://127.0.0.1:{inbox.port}?security=none",
        "PINGURA_SMTP_FROM": "Pingura <pingura@example.org>",
        "PINGURA_PUBLIC_URL": srv.url,
        "PINGURA_AUTH_FAILURES_PER_MINUTE": "3",
    }
    srv.start()
    yield srv
    srv.stop()


def post(server: Server, path: str, body: dict) -> tuple[int, dict, str]:
    """A JSON POST with no credentials: status, body, Set-Cookie."""
    request = urllib.request.Request(f"{server.url}/api/v1{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null"), r.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), ""


def signed_in_owner(server: Server, browser, viewport: dict):
    """The first account, made through the setup link the server logged, signed in: a browser
    context holding its session cookie."""
    found = polling.eventually_sync(lambda: SETUP_LINK.search(server.logs()), timeout_s=10)
    status, _, cookie = post(server, "/setup", {"token": found.group(1), "email": EMAIL, "name": NAME,
                                                "password": PASSWORD})  # fmt: skip
    assert status == 200 and cookie.startswith("pingura_session=")
    context = browser.new_context(viewport=viewport)
    context.add_cookies([{"name": "pingura_session", "value": cookie.split(";")[0].split("=", 1)[1],
                          "url": server.url}])  # fmt: skip
    return context


def emailed_link(inbox: Inbox, subject: str) -> str:
    def arrived():
        return [m for m in inbox.mails if m.message["Subject"] == subject]

    [mail] = polling.eventually_sync(arrived, timeout_s=10)
    found = re.search(r"http://\S+", mail.message.get_content())
    assert found is not None
    return found.group(0)


def sign_in_with_code(page, server: Server, password: str, code: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label(re.compile("code", re.I)).first.fill(code)
    page.get_by_label(re.compile("code", re.I)).first.press("Enter")
    expect(page).to_have_url(server.url + "/")


def test_two_factor_enrolment_sign_in_and_a_reset_in_chromium(mailing_server, inbox, browser, tmp_path):
    server, shots = mailing_server, tmp_path / "screenshots"
    shots.mkdir()
    context = signed_in_owner(server, browser, {"width": 1280, "height": 1000})
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(server.url + "/account")
    expect(page.locator("#email")).to_have_text(EMAIL)
    expect(page.locator("#email-state")).to_have_text("not verified")
    page.get_by_role("button", name="Send a verification email").click()
    expect(page.get_by_text(f"A link is on its way to {EMAIL}.")).to_be_visible()
    from_mail = context.new_page()  # the link, opened from the mail in a new tab
    from_mail.goto(emailed_link(inbox, "Verify your email address for Pingura"))
    expect(from_mail.get_by_text(f"Thank you: {EMAIL} is verified.")).to_be_visible()
    expect(from_mail.locator("#email-state")).to_have_text("verified")
    assert "#verify" not in from_mail.url  # the secret left the address bar
    from_mail.close()
    page.reload()

    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("img", name="QR code holding the two-factor secret")).to_be_visible()
    page.screenshot(path=shots / "account-totp-enrol.png", full_page=True)
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    app = pyotp.TOTP(secret)
    step = int(time.time() // 30)
    page.get_by_label("The six-digit code the app shows").fill(app.at(step * 30))
    page.get_by_role("button", name="Turn on", exact=True).click()
    codes = page.locator("#recovery-codes code")
    expect(codes).to_have_count(10)
    recovery = codes.all_inner_texts()
    page.screenshot(path=shots / "account-recovery-codes.png", full_page=True)
    page.get_by_role("button", name="I have saved them").click()
    expect(page.locator("#totp-state")).to_contain_text("On: signing in asks for a code")
    expect(page.locator("#recovery-codes code")).to_have_count(0)
    page.screenshot(path=shots / "account.png", full_page=True)
    assert errors == []

    fresh = browser.new_context().new_page()
    sign_in_with_code(fresh, server, PASSWORD, app.at((step + 1) * 30))  # the next step's code

    # A forgotten password: the link by email, a new password, sign in with it and a recovery code.
    stranger = browser.new_context().new_page()
    reset_errors = watch_errors(stranger)
    stranger.goto(server.url + "/reset-password")
    stranger.get_by_label("Email").fill(EMAIL)
    stranger.get_by_role("button", name="Send the link").click()
    expect(stranger.get_by_text("If an account has this address")).to_be_visible()
    stranger = stranger.context.new_page()  # the link, opened from the mail in a new tab
    link_errors = watch_errors(stranger)
    stranger.goto(emailed_link(inbox, "Reset your Pingura password"))
    expect(stranger.get_by_label("New password")).to_be_visible()
    assert "#token" not in stranger.url
    stranger.get_by_label("New password").fill(NEW_PASSWORD)
    stranger.get_by_label("The same again").fill(NEW_PASSWORD)
    stranger.screenshot(path=shots / "reset-password.png", full_page=True)
    stranger.get_by_role("button", name="Set the new password").click()
    expect(stranger.get_by_text("Your password is changed. Sign in with it.")).to_be_visible()
    assert reset_errors == [] and link_errors == []
    page.reload()  # the sessions from before the reset ended
    expect(page).to_have_url(re.compile(r"/login$"))
    sign_in_with_code(stranger, server, NEW_PASSWORD, recovery[0])

    # Wrong codes: the third runs the account's allowance out; its owner is told.
    status, first_step, _ = post(server, "/auth/sign-in", {"email": EMAIL, "password": NEW_PASSWORD})
    assert status == 200 and first_step["second_factor"] == "totp"
    answers = [post(server, "/auth/sign-in/totp", {"ticket": first_step["ticket"], "code": "000000"})[0]
               for _ in range(4)]  # fmt: skip
    assert answers[:3] == [401, 401, 401] and answers[3] == 429
    notice = polling.eventually_sync(
        lambda: [m for m in inbox.mails if m.message["Subject"] == "Failed sign-ins to your Pingura account"],
        timeout_s=10,
    )
    assert len(notice) == 1

    logged = server.logs()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    reset_secret = emailed_link(inbox, "Reset your Pingura password").rpartition("=")[2]
    for text in (secret, *recovery, PASSWORD, NEW_PASSWORD, reset_secret):
        assert text not in logged, text
        assert text.encode() not in stored, text
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        for name in ("account.png", "account-totp-enrol.png", "reset-password.png"):
            shutil.copy(shots / name, DOCS / "screenshots" / name)
