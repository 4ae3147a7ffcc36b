import pytest

from services.notifier.channels import ChannelConfigError, validate_channel
from services.notifier.channels.googlechat import GoogleChatChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

chat = GoogleChatChannel()
SPACE = "/v1/spaces/AAAA1234/messages"


async def test_a_down_alert_is_text_and_a_card_with_a_link_button(vendor, http, settings):
    await chat.send(
        make_alert("m1", "down"), {"url": vendor.url(SPACE + "?key=k3y&token=t0k")}, http, settings
    )

    [request] = vendor.requests
    assert (request.method, request.path, request.query) == ("POST", SPACE, {"key": "k3y", "token": "t0k"})
    assert request.headers["Content-Type"] == "application/json; charset=UTF-8"
    body = request.json
    assert body["text"] == "DOWN: backup m1"
    [card] = body["cardsV2"]
    assert card["cardId"] and card["card"]["header"]["title"] == "DOWN: backup m1"
    widgets = card["card"]["sections"][0]["widgets"]
    assert widgets[0]["textParagraph"]["text"].startswith(
        '<b><a href="http://localhost:8080/heartbeats/m1">backup m1</a></b>'
    )
    assert {"decoratedText": {"topLabel": "Tags", "text": "nightly", "wrapText": True}} in widgets
    assert widgets[-1]["buttonList"]["buttons"][0]["onClick"] == {
        "openLink": {"url": "http://localhost:8080/heartbeats/m1"}
    }


async def test_an_up_alert_says_so(vendor, http, settings):
    await chat.send(make_alert("m1", "up"), {"url": vendor.url(SPACE)}, http, settings)

    assert vendor.requests[0].json["text"] == "UP: backup m1"


async def test_failures_are_classified(vendor, http, settings):
    await assert_failures_are_classified(
        chat, {"url": vendor.url(SPACE)}, make_alert(), http, settings, vendor
    )


def test_the_webhook_url_is_required(settings):
    with pytest.raises(ChannelConfigError, match=r"^config\.url: required"):
        validate_channel("googlechat", {}, settings)
