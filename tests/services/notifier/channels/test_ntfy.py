import pytest

from services.notifier.channels import ChannelConfigError, validate_channel
from services.notifier.channels.ntfy import NtfyChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

ntfy = NtfyChannel()


async def test_a_down_alert_is_published_as_json_to_the_server_root(vendor, http, settings):
    config = ntfy.validate(
        {
            "url": vendor.url("/"),
            "topic": "ops-alerts",
            "priority": "urgent",
            "tags": ["backup"],
            "token": "tk_abc123",
        },
        settings,
    )

    await ntfy.send(make_alert("m1", "down"), config, http, settings)

    [request] = vendor.requests
    assert (request.method, request.path) == ("POST", "/")
    assert request.headers["Authorization"] == "Bearer tk_abc123"
    assert request.json == {
        "topic": "ops-alerts",
        "title": "DOWN: backup m1",
        "message": request.json["message"],
        "priority": 5,
        "tags": ["rotating_light", "backup"],
        "click": "http://localhost:8080/heartbeats/m1",
    }
    assert request.json["message"].startswith("backup m1 is down since 2023-11-14 22:13:20 UTC.")


async def test_a_recovery_is_not_sent_above_default_priority(vendor, http, settings):
    config = ntfy.validate({"url": vendor.url("/"), "topic": "ops", "priority": "5"}, settings)

    await ntfy.send(make_alert("m1", "up"), config, http, settings)

    body = vendor.requests[0].json
    assert (body["priority"], body["tags"], body["title"]) == (3, ["white_check_mark"], "UP: backup m1")
    assert "Authorization" not in vendor.requests[0].headers


async def test_failures_are_classified(vendor, http, settings):
    await assert_failures_are_classified(
        ntfy, {"url": vendor.url("/"), "topic": "ops"}, make_alert(), http, settings, vendor
    )


def test_it_publishes_to_ntfy_sh_unless_told_otherwise(settings):
    assert ntfy.validate({"topic": "ops"}, settings) == {"topic": "ops", "url": "https://ntfy.sh"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "config.topic: required"),
        ({"topic": "a/b"}, "config.topic: must be 1-64 letters, digits, - or _"),
        ({"topic": "ops", "priority": "6"}, "config.priority: must be one of"),
        ({"topic": "ops", "tags": "a,b"}, "config.tags: must be a list of strings"),
        ({"topic": "ops", "tags": [1]}, "config.tags: must be a list of strings"),
        ({"topic": "ops", "token": "tk_a\nb"}, "config.token: must be an access token without spaces"),
    ],
)
def test_an_invalid_config_is_refused_naming_the_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("ntfy", config, settings)
    assert str(failure.value).startswith(message)
