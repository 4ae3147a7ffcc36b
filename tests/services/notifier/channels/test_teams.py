import pytest

from services.notifier.channels import ChannelConfigError, validate_channel
from services.notifier.channels.teams import TeamsChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

teams = TeamsChannel()
FLOW = "/workflows/abc/triggers/manual/paths/invoke"


async def test_a_down_alert_is_an_adaptive_card_with_a_link_action(vendor, http, settings):
    vendor.default.status = 202  # what a Workflows webhook answers

    await teams.send(
        make_alert("m1", "down"), {"url": vendor.url(FLOW + "?api-version=1&sig=s3cr3t")}, http, settings
    )

    [request] = vendor.requests
    assert (request.method, request.path, request.query["sig"]) == ("POST", FLOW, "s3cr3t")
    body = request.json
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, text, facts = card["body"]
    assert (
        title["type"] == "TextBlock" and title["text"] == "DOWN: backup m1" and title["color"] == "Attention"
    )
    assert text["type"] == "TextBlock" and text["wrap"] is True
    assert facts["type"] == "FactSet" and {"title": "Tags", "value": "nightly"} in facts["facts"]
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open in Pingura", "url": "http://localhost:8080/heartbeats/m1"}
    ]


async def test_an_up_alert_is_good_news(vendor, http, settings):
    await teams.send(make_alert("m1", "up"), {"url": vendor.url(FLOW)}, http, settings)

    title = vendor.requests[0].json["attachments"][0]["content"]["body"][0]
    assert (title["text"], title["color"]) == ("UP: backup m1", "Good")


async def test_failures_are_classified(vendor, http, settings):
    await assert_failures_are_classified(
        teams, {"url": vendor.url(FLOW)}, make_alert(), http, settings, vendor
    )


def test_the_workflow_url_is_required(settings):
    with pytest.raises(ChannelConfigError, match=r"^config\.url: required"):
        validate_channel("teams", {"url": "  "}, settings)
