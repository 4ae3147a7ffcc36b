import socket

import pytest

from services.notifier.channels import ChannelConfigError, TransportError
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.logic import webhook_payload
from services.notifier.safety import guarded_session
from tests.services.notifier.support import make_alert

webhook = WebhookChannel()


@pytest.fixture
async def http(settings):
    session = guarded_session(settings)
    yield session
    await session.close()


async def test_it_posts_the_alert_as_json_with_an_idempotency_key(receiver, http, settings):
    alert = make_alert("m1", "down")
    config = webhook.validate({"url": receiver.url("/hook"), "headers": {"Authorization": "Bearer s3cret"}}, settings)

    await webhook.send(alert, config, http, settings)

    [request] = receiver.received("/hook")
    assert request.body == webhook_payload(alert)
    assert request.headers["Idempotency-Key"] == alert.id
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (503, False), (408, False), (429, False), (400, True), (404, True), (410, True), (301, True)],
)
async def test_server_errors_are_retried_and_client_errors_are_not(receiver, http, settings, status, permanent):
    receiver.answer("/hook", status)

    with pytest.raises(TransportError) as failure:
        await webhook.send(make_alert(), {"url": receiver.url("/hook")}, http, settings)

    assert failure.value.permanent is permanent
    assert str(status) in str(failure.value)


async def test_a_slow_receiver_times_out_and_may_be_retried(receiver, http, settings):
    receiver.delay("/slow", 0.5)

    with pytest.raises(TransportError) as failure:
        await webhook.send(make_alert(), {"url": receiver.url("/slow")}, http, settings.replace(webhook_timeout_s=0.1))

    assert failure.value.permanent is False
    assert "timed out after 0.1 s" in str(failure.value)


async def test_a_refused_connection_may_be_retried(http, settings):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(TransportError) as failure:
        await webhook.send(make_alert(), {"url": f"http://127.0.0.1:{port}/hook"}, http, settings)

    assert failure.value.permanent is False


def test_it_normalizes_a_valid_config(settings):
    assert webhook.validate({"url": "https://example.com/hooks/1"}, settings) == {
        "url": "https://example.com/hooks/1",
        "headers": {},
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "config.url: required"),
        ({"url": None}, "config.url: required"),
        ({"url": "ftp://example.com/x"}, "config.url: must be an http(s) URL"),
        ({"url": "https://"}, "config.url: must be an http(s) URL"),
        ({"url": 42}, "config.url: must be a URL"),
        ({"url": "   "}, "config.url: required, must be an http(s) URL"),
        ({"url": "https://example.com", "token": "x"}, "config.token: unknown field (known: url, headers)"),
        ({"url": "https://example.com", "headers": ["X-A: b"]}, "config.headers: must be an object"),
        ({"url": "https://example.com", "headers": {"Host": "internal"}}, "config.headers.Host: set by Pingura"),
        ({"url": "https://example.com", "headers": {"content-length": "1"}}, "config.headers.content-length: set by"),
        ({"url": "https://example.com", "headers": {"X-A": 1}}, "config.headers.X-A: must be a string"),
        ({"url": "https://example.com", "headers": {"X-A": "a\r\nHost: x"}}, "config.headers.X-A: must not contain"),
    ],
)
def test_an_invalid_config_is_refused_naming_the_bad_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        webhook.validate(config, settings)

    assert str(failure.value).startswith(message)


async def test_it_does_not_follow_redirects(receiver, http, settings):
    receiver.answer("/moved", 302)

    with pytest.raises(TransportError) as failure:
        await webhook.send(make_alert(), {"url": receiver.url("/moved")}, http, settings)

    assert failure.value.permanent is True
    assert [r.path for r in receiver.received()] == ["/moved"]
