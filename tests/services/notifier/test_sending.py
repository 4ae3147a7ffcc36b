"""One measured try, as the notifier's lanes, the test button and a resend make it."""

from services.notifier.channels import CHANNELS, Channel
from services.notifier.sending import Senders, rate_limit_per_minute, try_send, wants_digest
from tests.services.notifier.support import make_alert, make_channel


async def test_a_success_is_measured_with_the_receivers_status(receiver, settings):
    async with Senders(settings) as senders:
        result = await try_send(make_channel("c1", receiver.url("/hook")), [make_alert()], senders, settings)

    assert (result.ok, result.status_code, result.error) == (True, 200, "")
    assert result.latency_ms >= 0


async def test_a_failure_says_whether_to_try_again_and_when(receiver, settings):
    receiver.answer("/busy", (429, {"Retry-After": "7"}))
    receiver.answer("/bad", 400)
    async with Senders(settings) as senders:
        busy = await try_send(make_channel("c1", receiver.url("/busy")), [make_alert()], senders, settings)
        bad = await try_send(make_channel("c2", receiver.url("/bad")), [make_alert()], senders, settings)

    assert (busy.ok, busy.permanent, busy.status_code, busy.retry_after_s) == (False, False, 429, 7.0)
    assert (bad.ok, bad.permanent, bad.status_code) == (False, True, 400)
    assert "400" in bad.error


async def test_a_receiver_that_does_not_answer_in_time_is_a_transient_failure(receiver, settings):
    receiver.hang("/hang")
    async with Senders(settings) as senders:
        result = await try_send(make_channel("c1", receiver.url("/hang")), [make_alert()], senders,
                                settings.replace(webhook_timeout_s=0.2))  # fmt: skip
    receiver.release()

    assert (result.ok, result.permanent, result.status_code) == (False, False, None)
    assert "timed out" in result.error


async def test_an_internal_address_stays_refused_and_no_request_leaves(receiver, settings):
    refused = settings.replace(webhook_allowed_networks=())
    async with Senders(refused) as senders:
        result = await try_send(make_channel("c1", receiver.url()), [make_alert()], senders, refused)

    assert (result.ok, result.permanent) == (False, True) and "internal address" in result.error
    assert receiver.received() == []


async def test_an_unknown_kind_or_a_bad_config_fails_for_good(settings):
    async with Senders(settings) as senders:
        unknown = await try_send(make_channel("c1", kind="carrier-pigeon"), [make_alert()], senders, settings)
        bad = await try_send(make_channel("c2", config={"url": 7}), [make_alert()], senders, settings)

    assert unknown.permanent and "carrier-pigeon" in unknown.error
    assert bad.permanent and "config.url" in bad.error


def test_chat_kinds_send_a_digest_as_one_message_the_webhook_and_incident_tools_send_each_alert():
    one_by_one = {kind for kind, impl in CHANNELS.items() if impl.digest_one_by_one}

    assert one_by_one == {"webhook", "pagerduty", "opsgenie", "kafka"}
    assert wants_digest(
        make_channel(kind="mattermost", config={"url": "https://x.example.com", "digest": True})
    )
    assert not wants_digest(make_channel(kind="mattermost", config={"url": "https://x.example.com"}))
    assert not wants_digest(
        make_channel(kind="webhook", config={"url": "https://x.example.com", "digest": True})
    )


def test_every_kind_that_sends_a_digest_as_one_message_can_send_a_message():
    for kind, impl in CHANNELS.items():
        if not impl.digest_one_by_one:
            assert type(impl).send_message is not Channel.send_message, kind


def test_a_channels_own_rate_limit_wins_over_its_kinds_default():
    own = make_channel(config={"url": "https://x.example.com", "rate_limit_per_minute": 30})
    default = make_channel(config={"url": "https://x.example.com"})

    assert rate_limit_per_minute(own) == 30
    assert rate_limit_per_minute(default) == CHANNELS["webhook"].default_rate_limit_per_minute
