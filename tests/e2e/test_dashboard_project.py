"""Settings, Project and API keys and API keys, and editing a channel, in a real browser against a real
``pingura serve``: the project renamed; the ping key made, then replaced after a warning (slug
URLs with the old key answer 404); an API key made, its secret shown once in a dialog and
nowhere after a reload, then revoked (refused at once); the key in use cannot revoke itself and
the page says why; a read-only key sees no write control and no ping key. A channel is edited
(its URL changed, its secret header kept, its signing secret removed) and lists the heartbeat alerting to it.

Screenshots go to the test's folder (and, with PINGURA_SCREENSHOTS_TO_DOCS=1, to
docs/screenshots/ as settings-project.png and channels-edit.png).
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import API_KEY, Server
from tests.e2e.test_dashboard import DOCS, api
from tests.e2e.test_dashboard_status_page import sign_in, watch_errors


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for this module's two tests (each works in its own names)."""
    data = tmp_path_factory.mktemp("project-settings")
    srv = Server(data / "data", data / "serve.log")
    srv.start()
    yield srv
    srv.stop()


def status_of(url: str, key: str | None = None, method: str = "GET") -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method=method, headers=headers), timeout=10
        ) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def confirm(page, says: str, button: str) -> None:
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(says)
    dialog.get_by_role("button", name=button).click()


def test_the_project_its_ping_key_and_api_keys_are_managed_in_settings(server, browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors = watch_errors(page)
    sign_in(page, server, API_KEY)
    page.goto(server.url + "/settings/project")

    # The project's name.
    name = page.locator("#p-name")  # "Name" labels the new key's name too
    expect(name).to_be_enabled()
    name.fill("Acme operations")
    page.get_by_role("button", name="Save project").click()
    expect(page.locator("#project-note")).to_have_text("Saved.")
    assert api(server, "GET", "/projects/me")["name"] == "Acme operations"

    # The ping key: made, then replaced after a warning that slug URLs with the old one stop.
    expect(page.get_by_text("No ping key yet.")).to_be_visible()
    page.get_by_role("button", name="Make ping key").click()
    confirm(page, "Slug URLs", "Make key")
    expect(page.locator("#ping-key-note")).to_have_text("Ping key made.")
    old_key = page.locator("#ping-key").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", old_key), old_key
    assert status_of(f"{server.url}/ping/{old_key}/db-backup?create=1", method="POST") == 201  # created
    page.get_by_role("button", name="New ping key").click()
    confirm(page, "stops working at once", "New key")
    expect(page.locator("#ping-key")).not_to_have_text(old_key)
    new_key = page.locator("#ping-key").inner_text()
    assert status_of(f"{server.url}/ping/{old_key}/db-backup", method="POST") == 404
    assert status_of(f"{server.url}/ping/{new_key}/db-backup", method="POST") == 200

    # An API key: its secret shown once, with a warning and a copy button.
    page.locator("#k-name").fill("grafana")
    page.get_by_label("Read-only").uncheck()
    page.get_by_role("button", name="Create key").click()
    dialog = page.locator("#secret-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("shown only this once")
    secret = dialog.locator("#secret-key").inner_text()
    assert secret.startswith("pk_") and status_of(f"{server.url}/api/v1/session", secret) == 200
    dialog.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.screenshot(path=shots / "settings-project-secret.png")
    dialog.get_by_role("button", name="Done").click()
    row = page.locator("#key-rows tr", has_text="grafana")
    expect(row).to_contain_text("read-write")
    page.reload()
    expect(page.locator("#key-rows tr", has_text="grafana")).to_be_visible()
    assert secret not in page.content()
    page.screenshot(path=shots / "settings-project.png", full_page=True)

    # Revoked: refused at once.
    page.locator("#key-rows tr", has_text="grafana").get_by_role("button", name="Revoke").click()
    confirm(page, "“grafana” is refused from now on", "Revoke")
    expect(page.locator("#keys-note")).to_have_text("Revoked “grafana”.")
    expect(page.locator("#key-rows tr", has_text="grafana")).to_have_count(0)
    assert status_of(f"{server.url}/api/v1/session", secret) == 401

    # The key in use cannot revoke itself: the page gives the API's reason.
    made = api(server, "POST", "/keys", {"name": "laptop"})
    own = browser.new_context().new_page()
    sign_in(own, server, made["key"])
    own.goto(server.url + "/settings/project")
    own.locator("#key-rows tr", has_text="laptop").get_by_role("button", name="Revoke").click()
    confirm(own, "“laptop”", "Revoke")
    expect(own.locator("#keys-note")).to_contain_text("cannot revoke itself")
    assert status_of(f"{server.url}/api/v1/session", made["key"]) == 200

    # A read-only key reads the project, without write controls, the ping key or the keys.
    reader_key = api(server, "POST", "/keys", {"name": "wallboard", "read_only": True})["key"]
    reader = browser.new_context().new_page()
    reader_errors = watch_errors(reader)
    sign_in(reader, server, reader_key)
    reader.goto(server.url + "/settings/project")
    expect(reader.locator("#p-name")).to_have_value("Acme operations")
    expect(reader.locator("#p-name")).to_be_disabled()
    expect(reader.get_by_text("a read-only key does not see it")).to_be_visible()
    expect(reader.get_by_text("Only the project's admins see its API keys.")).to_be_visible()
    for control in ("Save project", "New ping key", "Make ping key", "Create key"):
        expect(reader.get_by_role("button", name=control)).to_have_count(0)
    assert new_key not in reader.content()
    assert errors == [] and reader_errors == []
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        shutil.copy(shots / "settings-project.png", DOCS / "screenshots" / "settings-project.png")


def test_a_channel_is_edited_keeping_its_secret_and_lists_its_heartbeats(server, browser, tmp_path):
    header = "Bearer very-secret-token-7731"
    channel = api(server, "POST", "/channels", {"kind": "webhook", "name": "Ops hook", "config": {
        "url": "https://hooks.example.com/old", "headers": {"Authorization": header},
        "secret": "signing-secret-0042"}})  # fmt: skip
    beat = api(server, "POST", "/heartbeats", {"name": "Nightly DB backup", "interval": 3600,
                                               "channels": [channel["id"]]})  # fmt: skip
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors = watch_errors(page)
    sign_in(page, server, API_KEY)
    page.goto(server.url + "/channels")
    row = page.locator("#rows tr", has_text="Ops hook")
    expect(row.get_by_role("link", name="Nightly DB backup")).to_have_attribute(
        "href", f"/heartbeats/{beat['id']}"
    )

    row.get_by_role("button", name="Edit Ops hook").click()
    expect(page.get_by_role("heading", name="Edit “Ops hook”")).to_be_visible()
    expect(page.get_by_label("Kind")).to_be_disabled()
    url = page.get_by_label("URL", exact=True)
    expect(url).to_have_value("https://hooks.example.com/old")
    page.screenshot(path=tmp_path / "channels-edit.png", full_page=True)
    url.fill("ftp://hooks.example.com/new")  # refused by the kind, beside the field
    page.get_by_role("button", name="Save channel").click()
    expect(url).to_have_attribute("aria-invalid", "true")
    url.fill("https://hooks.example.com/new")
    page.get_by_label("Name", exact=True).fill("Ops pager hook")
    expect(page.get_by_label("Secret (optional)")).to_have_attribute("placeholder", "unchanged (****0042)")
    page.get_by_label("Remove the saved secret").check()  # left empty alone, it would be kept
    page.get_by_role("button", name="Save channel").click()
    expect(page.locator("#form-note")).to_have_text("Saved “Ops pager hook”.")
    expect(page.get_by_role("heading", name="Add a channel")).to_be_visible()
    expect(page.locator("#rows tr", has_text="Ops pager hook")).to_contain_text(
        "https://hooks.example.com/new"
    )

    saved = api(server, "GET", f"/channels/{channel['id']}")
    assert saved["config"]["url"] == "https://hooks.example.com/new"
    assert saved["config"]["headers"] == {"Authorization": "****7731"}  # kept, not replaced by its mask
    assert "secret" not in saved["config"]
    assert saved["heartbeats"] == [{"id": beat["id"], "name": "Nightly DB backup"}]
    assert header not in page.content() and errors == []
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        shutil.copy(tmp_path / "channels-edit.png", DOCS / "screenshots" / "channels-edit.png")
