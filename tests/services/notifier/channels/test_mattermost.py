import pytest

from services.notifier.channels import ChannelConfigError, validate_channel
from services.notifier.channels.mattermost import MattermostChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

mattermost = MattermostChannel()


async def test_a_down_alert_is_text_with_a_red_attachment(vendor, http, settings):
    await mattermost.send(make_alert("m1", "down"), {"url": vendor.url("/hooks/abc123")}, http, settings)

    [request] = vendor.requests
    assert (request.method, request.path) == ("POST", "/hooks/abc123")
    body = request.json
    assert body["text"] == "DOWN: backup m1"
    [attachment] = body["attachments"]
    assert attachment["color"] == "#d32f2f"
    assert attachment["title"] == "DOWN: backup m1" and attachment["fallback"] == "DOWN: backup m1"
    assert attachment["title_link"] == "http://localhost:8080/heartbeats/m1"
    assert attachment["text"].startswith("backup m1 is down since 2023-11-14 22:13:20 UTC.")
    assert {"short": True, "title": "Down since", "value": "2023-11-14 22:13:20 UTC"} in attachment["fields"]
    assert {"short": False, "title": "Why", "value": "No ping for 2 intervals"} in attachment["fields"]


async def test_an_up_alert_is_green(vendor, http, settings):
    await mattermost.send(make_alert("m1", "up"), {"url": vendor.url("/hooks/abc123")}, http, settings)

    assert vendor.requests[0].json["attachments"][0]["color"] == "#2e7d32"


async def test_failures_are_classified(vendor, http, settings):
    await assert_failures_are_classified(
        mattermost, {"url": vendor.url("/hooks/x")}, make_alert(), http, settings, vendor
    )


def test_the_webhook_url_is_required(settings):
    with pytest.raises(ChannelConfigError, match=r"^config\.url: required"):
        validate_channel("mattermost", {}, settings)
