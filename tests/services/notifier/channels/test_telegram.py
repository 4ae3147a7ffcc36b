import pytest

from services.notifier.channels import ChannelConfigError, TransportError, validate_channel
from services.notifier.channels.telegram import TelegramChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

telegram = TelegramChannel()
TOKEN = "123456789:AAE-x_yz0123456789abcdefghijklmnopq"


def config_for(vendor) -> dict:
    return {"bot_token": TOKEN, "chat_id": "-100200300", "url": vendor.url()}


async def test_a_down_alert_is_an_html_message_to_the_chat(vendor, http, settings):
    await telegram.send(
        make_alert("m1", "down", monitor_name="db <prod> & co"), config_for(vendor), http, settings
    )

    [request] = vendor.requests
    assert (request.method, request.path) == ("POST", f"/bot{TOKEN}/sendMessage")
    body = request.json
    assert body["chat_id"] == "-100200300"
    assert body["parse_mode"] == "HTML"
    assert body["disable_web_page_preview"] is True and body["link_preview_options"] == {"is_disabled": True}
    assert body["text"].startswith(
        '<b>DOWN: db &lt;prod&gt; &amp; co</b>\n<b><a href="http://localhost:8080/heartbeats/m1">db &lt;prod&gt; &amp; co</a></b>'
    )


async def test_an_up_alert_says_so(vendor, http, settings):
    await telegram.send(make_alert("m1", "up"), config_for(vendor), http, settings)

    assert vendor.requests[0].json["text"].startswith("<b>UP: backup m1</b>")


async def test_a_long_digest_is_cut_at_a_line_within_telegrams_limit(vendor, http, settings):
    alerts = [make_alert(f"m{i}", reason="x" * 290) for i in range(25)]

    await telegram.send_digest(alerts, config_for(vendor), http, settings)

    text = vendor.requests[0].json["text"]
    assert len(text) <= 4096 and text.endswith("\n…")


async def test_failures_are_classified_and_never_show_the_token(vendor, http, settings):
    await assert_failures_are_classified(telegram, config_for(vendor), make_alert(), http, settings, vendor)

    vendor.answer(
        429, '{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":9}}'
    )
    with pytest.raises(TransportError) as failure:
        await telegram.send(make_alert(), config_for(vendor), http, settings)
    assert failure.value.retry_after_s == 9.0
    assert TOKEN not in str(failure.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"chat_id": "1"}, "config.bot_token: required"),
        ({"bot_token": TOKEN}, "config.chat_id: required"),
        ({"bot_token": "nope", "chat_id": "1"}, "config.bot_token: must be a bot token"),
        (
            {"bot_token": TOKEN, "chat_id": "my chat"},
            "config.chat_id: must be a numeric chat id or @channelusername",
        ),
        ({"bot_token": TOKEN, "chat_id": 42}, "config.chat_id: must be a string"),
    ],
)
def test_an_invalid_config_is_refused_naming_the_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("telegram", config, settings)
    assert str(failure.value).startswith(message)
