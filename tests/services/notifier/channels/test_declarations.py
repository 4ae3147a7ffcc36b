"""Every channel kind declares its settings; validation, the API's form and masking follow it."""

import pytest

from services.notifier.channels import CHANNELS, ChannelConfigError, channel_kinds, shown_config
from services.notifier.channels.base import ConfigField, check_declared, mask_config, mask_value

FIELDS = (
    ConfigField("to", "string", required=True, help="who"),
    ConfigField("mode", "string", choices=("html", "text")),
    ConfigField("port", "integer"),
    ConfigField("tls", "boolean"),
    ConfigField("token", "string", secret=True),
    ConfigField("headers", "map", secret=True),
)


def test_every_registered_kind_declares_a_label_and_its_settings():
    for kind, channel in CHANNELS.items():
        described = channel.describe()
        assert described["kind"] == kind and described["label"]
        assert described["settings"], kind
        for setting in described["settings"]:
            assert set(setting) >= {"name", "type", "required", "secret", "help"}
            assert setting["help"], (kind, setting["name"])


def test_the_webhook_declares_a_required_url_and_secret_headers():
    [webhook] = [k for k in channel_kinds() if k["kind"] == "webhook"]

    assert (webhook["kind"], webhook["label"]) == ("webhook", "Webhook")
    assert webhook["settings"][:2] == [
        {
            "name": "url",
            "type": "url",
            "required": True,
            "secret": False,
            "help": webhook["settings"][0]["help"],
        },
        {
            "name": "headers",
            "type": "map",
            "required": False,
            "secret": True,
            "help": webhook["settings"][1]["help"],
        },
    ]
    assert {s["name"]: s["secret"] for s in webhook["settings"][2:6]} == {
        "method": False, "body": False, "content_type": False, "secret": True,
    }  # fmt: skip


def test_choices_are_listed_only_when_declared():
    assert FIELDS[1].describe()["choices"] == ["html", "text"]
    assert "choices" not in FIELDS[0].describe()


def test_a_config_of_the_declared_shape_passes_without_absent_settings():
    config = {"to": "ops", "mode": "text", "port": 25, "tls": True, "token": None, "headers": {"X-A": "b"}}

    assert check_declared(FIELDS, config) == {"to": "ops", "mode": "text", "port": 25, "tls": True,
                                              "headers": {"X-A": "b"}}  # fmt: skip


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "config.to: required"),
        ({"to": None}, "config.to: required"),
        ({"to": "ops", "cc": "x"}, "config.cc: unknown field (known: to, mode, port, tls, token, headers)"),
        ({"to": 7}, "config.to: must be a string"),
        ({"to": "ops", "mode": "pdf"}, "config.mode: must be one of html, text"),
        ({"to": "ops", "port": "25"}, "config.port: must be a whole number"),
        ({"to": "ops", "port": True}, "config.port: must be a whole number"),
        ({"to": "ops", "tls": 1}, "config.tls: must be true or false"),
        ({"to": "ops", "headers": ["X-A: b"]}, "config.headers: must be an object of name -> string value"),
        ({"to": "ops", "headers": {"X-A": 1}}, "config.headers.X-A: must be a string"),
    ],
)
def test_a_config_off_the_declaration_is_refused_naming_the_setting(config, message):
    with pytest.raises(ChannelConfigError) as failure:
        check_declared(FIELDS, config)

    assert str(failure.value) == message
    assert failure.value.field == message.partition(": ")[0]


def test_secret_settings_show_only_their_last_four_characters():
    saved = {
        "to": "ops",
        "token": "tok_0123456789abcdef",
        "headers": {"Authorization": "Bearer s3cret-token-xyz"},
    }

    assert mask_config(FIELDS, saved) == {
        "to": "ops", "token": "****cdef", "headers": {"Authorization": "****-xyz"},
    }  # fmt: skip
    assert saved["token"] == "tok_0123456789abcdef"  # the saved config is left alone


@pytest.mark.parametrize("value", ["", "short", "eleven-char", 12345])
def test_a_short_or_odd_secret_is_masked_whole(value):
    assert mask_value(value) == "****"


def test_a_saved_webhook_is_shown_with_its_url_and_masked_header_values():
    config = {
        "url": "https://example.com/hook",
        "headers": {"Authorization": "Bearer 0123456789", "X-Env": "prod"},
    }

    assert shown_config("webhook", config) == {
        "url": "https://example.com/hook", "headers": {"Authorization": "****6789", "X-Env": "****"},
    }  # fmt: skip


def test_a_kind_no_longer_registered_shows_nothing_of_its_config():
    assert shown_config("pigeon", {"loft": "north", "key": "secret"}) == {"loft": "****", "key": "****"}
