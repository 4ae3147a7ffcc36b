import pytest

from services.notifier.channels import ChannelConfigError, validate_channel
from services.notifier.channels.rocketchat import RocketChatChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

rocketchat = RocketChatChannel()
HOOK = "/hooks/6571a2/Zx9T0k3n"


async def test_a_down_alert_is_text_with_a_coloured_attachment(vendor, http, settings):
    await rocketchat.send(make_alert("m1", "down"), {"url": vendor.url(HOOK)}, http, settings)

    [request] = vendor.requests
    assert (request.method, request.path) == ("POST", HOOK)
    body = request.json
    assert body["text"] == "DOWN: backup m1"
    [attachment] = body["attachments"]
    assert (attachment["title"], attachment["title_link"], attachment["color"]) == (
        "DOWN: backup m1", "http://localhost:8080/heartbeats/m1", "#d32f2f",
    )  # fmt: skip
    assert all(set(field) == {"short", "title", "value"} for field in attachment["fields"])


async def test_an_up_alert_is_green(vendor, http, settings):
    await rocketchat.send(make_alert("m1", "up"), {"url": vendor.url(HOOK)}, http, settings)

    assert vendor.requests[0].json["text"] == "UP: backup m1"
    assert vendor.requests[0].json["attachments"][0]["color"] == "#2e7d32"


async def test_failures_are_classified(vendor, http, settings):
    await assert_failures_are_classified(
        rocketchat, {"url": vendor.url(HOOK)}, make_alert(), http, settings, vendor
    )


def test_the_webhook_url_is_required_and_an_http_url(settings):
    with pytest.raises(ChannelConfigError, match=r"^config\.url: required"):
        validate_channel("rocketchat", {}, settings)
    with pytest.raises(ChannelConfigError, match=r"^config\.url: must be a URL"):
        validate_channel("rocketchat", {"url": 3}, settings)
