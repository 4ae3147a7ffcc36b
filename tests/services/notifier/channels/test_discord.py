import pytest

from services.notifier.channels import ChannelConfigError, TransportError, validate_channel
from services.notifier.channels.chat import ZERO_WIDTH_SPACE as ZW
from services.notifier.channels.discord import DiscordChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

discord = DiscordChannel()
HOOK = "/api/webhooks/1234567890/tok3n"


async def test_a_down_alert_is_a_red_embed_that_pings_no_one(vendor, http, settings):
    vendor.default.status = 204  # Discord's answer without ?wait
    alert = make_alert("m1", "down", monitor_name="backup @everyone")

    await discord.send(alert, {"url": vendor.url(HOOK)}, http, settings)

    [request] = vendor.requests
    assert (request.method, request.path, request.query) == ("POST", HOOK, {})
    body = request.json
    assert body["content"] == f"DOWN: backup @{ZW}everyone"  # not even shown as a mention
    assert body["allowed_mentions"] == {"parse": []}
    [embed] = body["embeds"]
    assert embed["title"] == f"DOWN: backup @{ZW}everyone"
    assert embed["url"] == "http://localhost:8080/heartbeats/m1"
    assert embed["color"] == 0xD32F2F
    assert embed["timestamp"] == "2023-11-14T22:13:20.123Z"
    assert embed["description"].startswith(f"backup @{ZW}everyone is down since")
    assert {"name": "Down since", "value": "2023-11-14 22:13:20 UTC", "inline": True} in embed["fields"]


async def test_wait_asks_discord_to_confirm_and_an_up_alert_is_green(vendor, http, settings):
    config = discord.validate({"url": vendor.url(HOOK), "wait": True}, settings)

    await discord.send(make_alert("m1", "up"), config, http, settings)

    [request] = vendor.requests
    assert request.query == {"wait": "true"}
    assert request.json["embeds"][0]["color"] == 0x2E7D32
    assert request.json["embeds"][0]["title"] == "UP: backup m1"


async def test_a_rate_limit_wait_is_read_from_the_body_without_a_header(vendor, http, settings):
    vendor.answer(429, '{"message": "You are being rate limited.", "retry_after": 0.75, "global": false}')

    with pytest.raises(TransportError) as failure:
        await discord.send(make_alert(), {"url": vendor.url(HOOK)}, http, settings)

    assert failure.value.permanent is False and failure.value.retry_after_s == 0.75


async def test_failures_are_classified(vendor, http, settings):
    await assert_failures_are_classified(
        discord, {"url": vendor.url(HOOK)}, make_alert(), http, settings, vendor
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [({}, "config.url: required"), ({"url": "https://discord.com/api/webhooks/1/x", "wait": "yes"},
                                    "config.wait: must be true or false")],
)  # fmt: skip
def test_an_invalid_config_is_refused_naming_the_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("discord", config, settings)
    assert str(failure.value).startswith(message)
