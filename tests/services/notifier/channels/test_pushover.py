import pytest

from services.notifier.channels import ChannelConfigError, TransportError, validate_channel
from services.notifier.channels.pushover import PushoverChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

pushover = PushoverChannel()
TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
PATH = "/1/messages.json"


def config_for(vendor, **changes) -> dict:
    return {"token": TOKEN, "user": USER, "url": vendor.url(PATH), **changes}


async def test_a_down_alert_is_a_form_post_with_html_a_link_and_the_alert_time(vendor, http, settings):
    config = pushover.validate(config_for(vendor, priority=1, sound="siren"), settings)

    await pushover.send(make_alert("m1", "down"), config, http, settings)

    [request] = vendor.requests
    assert (request.method, request.path) == ("POST", PATH)
    form = request.form
    assert (form["token"], form["user"]) == (TOKEN, USER)
    assert form["title"] == "DOWN: backup m1"
    assert form["message"].startswith(
        '<b><a href="http://localhost:8080/heartbeats/m1">backup m1</a></b> is down'
    )
    assert form["html"] == "1"
    assert form["url"] == "http://localhost:8080/heartbeats/m1" and form["url_title"] == "Open in Pingura"
    assert form["timestamp"] == "1700000000"
    assert (form["priority"], form["sound"]) == ("1", "siren")
    assert "retry" not in form


async def test_an_emergency_repeats_until_acknowledged_but_a_recovery_does_not(vendor, http, settings):
    config = pushover.validate(config_for(vendor, priority=2, retry_s=120), settings)

    await pushover.send(make_alert("m1", "down"), config, http, settings)
    await pushover.send(make_alert("m1", "up"), config, http, settings)

    down, up = (r.form for r in vendor.requests)
    assert (down["priority"], down["retry"], down["expire"]) == ("2", "120", "3600")
    assert up["priority"] == "0" and "retry" not in up and up["title"] == "UP: backup m1"


async def test_failures_are_classified_and_never_show_the_keys(vendor, http, settings):
    await assert_failures_are_classified(pushover, config_for(vendor), make_alert(), http, settings, vendor)

    vendor.answer(400, f'{{"user":"{USER}","errors":["user identifier is invalid"],"status":0}}')
    with pytest.raises(TransportError) as failure:
        await pushover.send(make_alert(), config_for(vendor), http, settings)
    assert USER not in str(failure.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"user": USER}, "config.token: required"),
        ({"token": TOKEN}, "config.user: required"),
        ({"token": "short", "user": USER}, "config.token: must be a 30-character Pushover key"),
        ({"token": TOKEN, "user": USER, "priority": 3}, "config.priority: must be from -2 to 2"),
        ({"token": TOKEN, "user": USER, "priority": 2, "retry_s": 10}, "config.retry_s: must be at least 30"),
        (
            {"token": TOKEN, "user": USER, "priority": 2, "expire_s": 99999},
            "config.expire_s: must be from 1 to 10800",
        ),
        ({"token": TOKEN, "user": USER, "sound": "a b"}, "config.sound: must be a Pushover sound name"),
    ],
)
def test_an_invalid_config_is_refused_naming_the_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("pushover", config, settings)
    assert str(failure.value).startswith(message)
