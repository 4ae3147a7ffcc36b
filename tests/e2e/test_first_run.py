"""A newcomer's way in, in Chromium against a real ``pingura serve``: the setup link it prints
(a new one at each start while no account exists) makes the first account, owner of the admin
project; with a second project the header switches between them; removed from it, the next
page is the sign-in page saying why; email and password sign in again; a sign-out holds after
a restart. Screenshots go to the test's folder (and, with
PINGURA_SCREENSHOTS_TO_DOCS=1, to docs/screenshots)."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import API_KEY, Server
from tests.e2e.test_dashboard_status_page import watch_errors

DOCS = Path(__file__).resolve().parents[2] / "docs"
SETUP_LINK = re.compile(r"http://\S+/setup#token=([A-Za-z0-9_-]+)")
EMAIL, NAME, PASSWORD = "olive@example.org", "Olive", "a long first passphrase"
expect.set_options(timeout=10_000)


def call(server: Server, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def setup_links(server: Server) -> list[str]:
    return SETUP_LINK.findall(server.logs())


def test_the_setup_link_makes_the_owner_who_switches_projects_and_signs_out_for_good(tmp_path, browser):
    shots = tmp_path / "shots"
    shots.mkdir()
    server = Server(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    try:
        [first] = setup_links(server)
        server.stop()
        server.start()  # no account yet: a new link
        [_, token] = setup_links(server)
        assert token != first

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors = watch_errors(page)
        page.goto(f"{server.url}/login")
        expect(page.get_by_text("No account exists yet")).to_be_visible()
        page.goto(f"{server.url}/setup#token={token}")
        expect(page).to_have_url(f"{server.url}/setup")  # the secret leaves the address bar
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Your name").fill(NAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.screenshot(path=shots / "setup.png")
        page.get_by_role("button", name="Create account").click()
        expect(page).to_have_url(f"{server.url}/")
        who = page.locator("#who")
        expect(who.get_by_role("link", name=NAME)).to_have_attribute("href", "/account")
        expect(who.locator(".badge-role")).to_have_text("owner")
        expect(who.locator(".who-project")).to_have_text("default")

        # Set up: the page says so, and the older link makes nobody.
        other = context.new_page()
        other.goto(f"{server.url}/setup#token={first}")
        expect(other.get_by_text("Pingura is set up already")).to_be_visible()
        status, body = call(
            server, "POST", "/setup", {"token": first, "email": "x@example.org", "password": "p" * 12}
        )
        assert status == 409, body
        other.close()

        # A second project the owner joins by invitation: the header switches between them.
        admin = {"Authorization": f"Bearer {API_KEY}"}
        status, made = call(server, "POST", "/projects", {"name": "second"}, admin)
        assert status == 201, made
        status, invitation = call(
            server,
            "POST",
            "/invitations",
            {"email": EMAIL, "role": "viewer"},
            {"Authorization": f"Bearer {made['api_key']}"},
        )
        assert status == 201 and invitation["link"], invitation
        invite_token = invitation["link"].split("token=", 1)[1]
        status, body = call(
            server, "POST", "/invitations/accept", {"token": invite_token, "password": PASSWORD}
        )
        assert status == 200, body
        page.reload()
        switch = page.get_by_label("Project")
        expect(switch).not_to_have_value(made["id"])  # still in the admin project
        switch.select_option(label="second")
        expect(page).to_have_url(f"{server.url}/")
        expect(page.get_by_label("Project")).to_have_value(made["id"])
        expect(who.locator(".badge-role")).to_have_text("viewer")
        expect(page.locator("#empty")).to_have_text(
            "No heartbeats yet."
        )  # a viewer is not offered to create one
        page.screenshot(path=shots / "header-switcher.png")

        # Removed from that project, the next page goes to the sign-in page, which says why.
        second = {"Authorization": f"Bearer {made['api_key']}"}
        status, listed = call(server, "GET", "/members", headers=second)
        [me] = [m["user_id"] for m in listed["members"] if m["email"] == EMAIL]
        assert call(server, "DELETE", f"/members/{me}", headers=second)[0] == 204
        page.reload()
        expect(page).to_have_url(re.compile(r"/login\?refused=1$"))
        expect(page.get_by_text("no longer a member of that project")).to_be_visible()

        # Email and password sign in again (a wrong password first), to the project left.
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_text("Wrong email or password.")).to_be_visible()
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(f"{server.url}/")
        expect(who.locator(".who-project")).to_have_text("default")  # one project left: no switcher
        expect(who.locator(".badge-role")).to_have_text("owner")

        # Signed out, the cookie stays refused after a restart; no new setup link is made.
        [cookie] = [c["value"] for c in context.cookies() if c["name"] == "pingura_session"]
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login$"))
        expect(page.get_by_label("Email")).to_be_visible()
        page.screenshot(path=shots / "login.png")
        server.stop()
        server.start()
        assert len(setup_links(server)) == 2
        status, body = call(server, "GET", "/me", headers={"Cookie": f"pingura_session={cookie}"})
        assert status == 401 and "logged out" in body["error"], body
        assert not errors, errors
        context.close()
    finally:
        server.stop()
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        target = DOCS / "screenshots"
        target.mkdir(exist_ok=True)
        for name in ("setup.png", "login.png", "header-switcher.png"):
            shutil.copy(shots / name, target / name)
