"""Channel kinds over real HTTP: the declared settings a form is drawn from, validation by
the same declaration, and secret settings never shown back in full once saved."""

from __future__ import annotations

import pytest

from services.notifier.channels import CHANNELS
from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "Bearer 0123456789abcdef"


async def test_every_kind_is_listed_with_its_declared_settings(api):
    tenant = await new_tenant(api)

    body = await tenant.ok("GET", "/channel-kinds")

    assert [k["kind"] for k in body["kinds"]] == sorted(CHANNELS)
    [webhook] = [k for k in body["kinds"] if k["kind"] == "webhook"]
    assert webhook["label"] == "Webhook"
    settings = {s["name"]: s for s in webhook["settings"]}
    assert {n: (s["type"], s["required"], s["secret"]) for n, s in settings.items()} == {
        "url": ("url", True, False), "headers": ("map", False, True), "method": ("string", False, False),
        "body": ("text", False, False), "content_type": ("string", False, False), "secret": ("string", False, True),
        "rate_limit_per_minute": ("integer", False, False), "digest": ("boolean", False, False),
    }  # fmt: skip
    assert all(s["help"] for s in settings.values())
    # choices are listed only for settings that have them
    assert [n for n, s in settings.items() if "choices" in s] == ["method"]


async def test_a_saved_channel_never_shows_its_secret_settings_in_full(api):
    tenant = await new_tenant(api)
    config = {"url": "https://example.com/hooks/1", "headers": {"Authorization": SECRET, "X-Env": "prod"}}

    created = await tenant.ok("POST", "/channels", 201, json={"kind": "webhook", "config": config})
    read = await tenant.ok("GET", f"/channels/{created['id']}")
    listed = await tenant.ok("GET", "/channels")

    shown = {"url": "https://example.com/hooks/1", "headers": {"Authorization": "****cdef", "X-Env": "****"}}
    assert created["config"] == read["config"] == listed["channels"][0]["config"] == shown
    # What the notifier sends with is the whole value.
    assert api.ctx.channels.get(created["id"]).config["headers"]["Authorization"] == SECRET


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "config.url"),
        ({"url": None}, "config.url"),
        ({"url": 42}, "config.url"),
        ({"url": "ftp://example.com/x"}, "config.url"),
        ({"url": "https://example.com", "token": "x"}, "config.token"),
        ({"url": "https://example.com", "headers": "X-A: b"}, "config.headers"),
        ({"url": "https://example.com", "headers": {"X-A": 1}}, "config.headers.X-A"),
    ],
)
async def test_a_config_off_the_declaration_is_refused_naming_the_setting(api, config, field):
    tenant = await new_tenant(api)

    status, body = await tenant.call("POST", "/channels", json={"kind": "webhook", "config": config})

    assert status == 400, body
    assert body["field"] == field and body["error"].startswith(field + ": ")


async def test_email_is_listed_as_unavailable_with_the_reason_when_no_smtp_server_is_set(api):
    tenant = await new_tenant(api)
    assert api.ctx.settings.smtp is None

    kinds = {k["kind"]: k for k in (await tenant.ok("GET", "/channel-kinds"))["kinds"]}

    assert kinds["email"]["available"] is False
    assert "PINGURA_SMTP_URL" in kinds["email"]["unavailable_reason"]
    assert all(
        k["available"] and "unavailable_reason" not in k for name, k in kinds.items() if name != "email"
    )


async def test_email_is_available_once_an_smtp_server_is_set(api, monkeypatch):
    tenant = await new_tenant(api)
    with_smtp = api.ctx.settings.replace(
        smtp_url="smtp://127.0.0.1:2525?security=none", smtp_from="p@example.com"
    )
    monkeypatch.setattr(api.ctx, "settings", with_smtp)

    kinds = {k["kind"]: k for k in (await tenant.ok("GET", "/channel-kinds"))["kinds"]}

    assert kinds["email"]["available"] is True and "unavailable_reason" not in kinds["email"]


async def test_an_email_channel_without_an_smtp_server_is_refused_saying_why(api):
    tenant = await new_tenant(api)

    status, body = await tenant.call(
        "POST", "/channels", json={"kind": "email", "config": {"to": ["a@example.com"]}}
    )

    assert status == 400, body
    assert (
        body["field"] == "config.to"
        and "no SMTP server" in body["error"]
        and "PINGURA_SMTP_URL" in body["error"]
    )
