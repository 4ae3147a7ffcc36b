import pytest

from services.notifier.channels import ChannelConfigError, validate_channel
from services.notifier.channels.chat import ZERO_WIDTH_SPACE as ZW
from services.notifier.channels.slack import SlackChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

slack = SlackChannel()
HOOK = "/services/T000/B000/XXXXXXXX"


async def test_a_down_alert_is_a_block_kit_message_with_a_text_fallback_and_a_link_button(
    vendor, http, settings
):
    config = slack.validate({"url": vendor.url(HOOK)}, settings)

    await slack.send(
        make_alert("m1", "down", monitor_name="Nightly <!channel> backup"), config, http, settings
    )

    [request] = vendor.requests
    assert (request.method, request.path) == ("POST", HOOK)
    body = request.json
    assert body["text"] == "DOWN: Nightly &lt;!channel&gt; backup"  # no one gets pinged by a name
    header, section, context, actions = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": f"DOWN: Nightly <{ZW}!channel> backup"},
    }
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].startswith(
        "<http://localhost:8080/heartbeats/m1|Nightly &lt;!channel&gt; backup> is down since"
    )
    assert [f["text"].split("\n")[0] for f in section["fields"]] == [
        "*Down since*",
        "*Last check-in*",
        "*Tags*",
    ]
    assert context["type"] == "context" and "2023-11-14T22:13:20.123Z" in context["elements"][0]["text"]
    [button] = actions["elements"]
    assert button == {"type": "button", "text": {"type": "plain_text", "text": "Open in Pingura"},
                      "url": "http://localhost:8080/heartbeats/m1"}  # fmt: skip


async def test_an_up_alert_says_so(vendor, http, settings):
    await slack.send(
        make_alert("m1", "up", reason="ping received after being down"),
        {"url": vendor.url(HOOK)},
        http,
        settings,
    )

    body = vendor.requests[0].json
    assert body["text"] == "UP: backup m1"
    assert "recovered at 2023-11-14 22:13:20 UTC" in body["blocks"][1]["text"]["text"]


async def test_a_digest_is_one_message_listing_the_alerts(vendor, http, settings):
    alerts = [make_alert(f"m{i}") for i in range(3)]

    await slack.send_digest(alerts, {"url": vendor.url(HOOK)}, http, settings)

    [request] = vendor.requests
    assert request.json["text"] == "3 heartbeats changed state: 3 down, 0 up"
    assert request.json["blocks"][1]["text"]["text"].count("• DOWN:") == 3


async def test_failures_are_classified(vendor, http, settings):
    await assert_failures_are_classified(
        slack, {"url": vendor.url(HOOK)}, make_alert(), http, settings, vendor
    )


async def test_an_error_never_shows_the_webhook_url(vendor, http, settings):
    vendor.answer(404, f"no such hook {HOOK}")

    with pytest.raises(Exception) as failure:
        await slack.send(make_alert(), {"url": vendor.url(HOOK)}, http, settings)

    assert HOOK not in str(failure.value)


def test_the_webhook_url_is_required_checked_and_secret(settings):
    for config, message in [
        ({}, "config.url: required"),
        ({"url": "hooks.slack.com"}, "config.url: must be an http(s) URL"),
    ]:
        with pytest.raises(ChannelConfigError) as failure:
            validate_channel("slack", config, settings)
        assert str(failure.value).startswith(message)
    assert slack.config_fields[0].secret is True


async def test_a_test_notification_is_a_plain_message(vendor, http, settings):
    from services.notifier.logic import alert_for_test
    from tests.services.notifier.support import make_channel

    await slack.send(
        alert_for_test(make_channel(), "test-1", 1_700_000_000_000), {"url": vendor.url(HOOK)}, http, settings
    )

    body = vendor.requests[0].json
    assert body["text"] == "TEST: Pingura test notification"
    assert body["blocks"][1]["text"]["text"].startswith("Test notification from Pingura, sent at")
