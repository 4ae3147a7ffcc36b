"""Single sign-on in Chromium, against the real ``pingura serve`` and a real OpenID provider
(panva's certified ``oidc-provider`` under Node on loopback: tests/oidc).

The sign-in page shows "Sign in with Test IdP"; clicking it goes to the provider, whose
sign-in page the browser submits; the provider sends it back, and the dashboard opens
signed in, with the admin role the ``ops`` group maps to. Then the browser replays the
callback (its state, with the sign-in's cookie put back) and is refused with a page saying
so; and a sign-in whose authorization request carries the earlier sign-in's nonce is refused.
Screenshots of the sign-in page with its button and of a refusal go to the test's folder
(and, with PINGURA_SCREENSHOTS_TO_DOCS=1, to docs/screenshots/ as well).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import API_KEY, Server
from tests.oidc.provider import USER, Client, Provider, query_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SECRET = "pingura-e2e-client-secret"
CALLBACK = "/api/v1/sso/oidc/callback"
expect.set_options(timeout=10_000)


def project_id(server: Server) -> str:
    request = urllib.request.Request(
        f"{server.url}/api/v1/projects/me", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["id"]


@pytest.fixture
def sso_server(tmp_path: Path):
    """``pingura serve`` with OpenID Connect on, ``ops`` -> admin of its first project, and
    the provider whose client it is. Started once without single sign-on to learn that
    project's id, then again with it."""
    server = Server(tmp_path / "data", tmp_path / "serve.log")
    provider = Provider([Client("pingura", SECRET, [server.url + CALLBACK])], tmp_path)
    provider.start()
    try:
        server.start()
        first = project_id(server)
        server.stop()
        server.extra_env = {
            "PINGURA_PUBLIC_URL": server.url,
            "PINGURA_OIDC_ISSUER": provider.issuer,
            "PINGURA_OIDC_CLIENT_ID": "pingura",
            "PINGURA_OIDC_CLIENT_SECRET": SECRET,
            "PINGURA_OIDC_SCOPES": "openid email profile groups",
            "PINGURA_OIDC_PROVIDER_NAME": "Test IdP",
            "PINGURA_OIDC_ROLES": f"ops={first}:admin,staff={first}:viewer",
        }
        server.start()
        yield server, provider
    finally:
        server.stop()
        provider.stop()
    assert SECRET not in server.logs()  # the client secret is never logged


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**query_of(url), **changes})))


def test_a_sign_in_through_the_provider_in_chromium_and_its_replays_refused(browser, sso_server, tmp_path):
    server, provider = sso_server
    context = browser.new_context()
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))

    page.goto(f"{server.url}/login")
    button = page.get_by_role("link", name="Sign in with Test IdP")
    expect(button).to_be_visible()
    page.screenshot(path=str(tmp_path / "login-sso.png"), full_page=True)
    button.click()
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    assert page.url.startswith(provider.issuer)
    [sign_in_cookie] = [c for c in context.cookies() if c["name"] == "pingura_oidc"]
    assert sign_in_cookie["httpOnly"] and sign_in_cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/")

    who = page.evaluate("fetch('/api/v1/session').then((r) => r.json())")
    assert who["key_name"] == USER["email"] and who["read_only"] is False
    keys = page.evaluate("fetch('/api/v1/keys').then((r) => r.status)")
    assert keys == 200  # the admin role the ops group maps to (keys are for admins)

    # The callback again, with the sign-in's cookie put back: its state is spent.
    [callback] = [url for url in seen if url.startswith(server.url + CALLBACK)]
    context.add_cookies([sign_in_cookie])
    answer = page.goto(callback)
    assert answer is not None and answer.status == 400
    expect(page.locator("#sso-error")).to_contain_text("used already (a replayed state)")
    page.screenshot(path=str(tmp_path / "sso-refused.png"), full_page=True)
    page.get_by_role("link", name="Back to sign-in").click()
    page.wait_for_url(f"{server.url}/login")

    # A new sign-in (another browser) whose authorization request carries the first one's nonce.
    [first_request] = [url for url in seen if url.startswith(provider.issuer + "/auth?")]
    earlier_nonce = query_of(first_request)["nonce"]
    context.close()
    context = browser.new_context()
    page = context.new_page()
    started = context.request.get(
        f"{server.url}/api/v1/sso/oidc/start", max_redirects=0
    )  # the context's cookies
    assert started.status == 302
    page.goto(with_query(started.headers["location"], nonce=earlier_nonce))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sso-error")).to_contain_text("nonce")
    assert page.url.startswith(server.url + CALLBACK)
    assert not [c for c in context.cookies() if c["name"] == "pingura_session"]
    context.close()
    if os.environ.get("PINGURA_SCREENSHOTS_TO_DOCS") == "1":
        for name in ("login-sso.png", "sso-refused.png"):
            shutil.copy(tmp_path / name, DOCS / name)
