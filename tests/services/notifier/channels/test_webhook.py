import hashlib
import hmac
import json
import socket

import pytest

from services.notifier.channels import ChannelConfigError, TransportError
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.logic import webhook_payload
from services.notifier.messages import alert_url
from services.notifier.safety import guarded_session
from services.notifier.sending import Senders, try_send
from tests.services.notifier.channels.vendor import vendor  # noqa: F401 (fixture)
from tests.services.notifier.support import make_alert, make_channel, make_ingest_alert

webhook = WebhookChannel()


def default_payload(alert, settings) -> dict:
    """The body a webhook without a template sends."""
    return webhook_payload(alert, alert_url(alert, settings.ping_base_url))


@pytest.fixture
async def http(settings):
    session = guarded_session(settings)
    yield session
    await session.close()


async def test_it_posts_the_alert_as_json_with_an_idempotency_key(receiver, http, settings):
    alert = make_alert("m1", "down")
    config = webhook.validate(
        {"url": receiver.url("/hook"), "headers": {"Authorization": "Bearer s3cret"}}, settings
    )

    await webhook.send(alert, config, http, settings)

    [request] = receiver.received("/hook")
    assert request.body == default_payload(alert, settings)
    assert request.headers["Idempotency-Key"] == alert.id
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (500, False),
        (503, False),
        (408, False),
        (429, False),
        (400, True),
        (404, True),
        (410, True),
        (301, True),
    ],
)
async def test_server_errors_are_retried_and_client_errors_are_not(
    receiver, http, settings, status, permanent
):
    receiver.answer("/hook", status)

    with pytest.raises(TransportError) as failure:
        await webhook.send(make_alert(), {"url": receiver.url("/hook")}, http, settings)

    assert failure.value.permanent is permanent
    assert str(status) in str(failure.value)


async def test_a_slow_receiver_times_out_and_may_be_retried(receiver, http, settings):
    receiver.delay("/slow", 0.5)

    with pytest.raises(TransportError) as failure:
        await webhook.send(
            make_alert(), {"url": receiver.url("/slow")}, http, settings.replace(webhook_timeout_s=0.1)
        )

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
        (
            {"url": "https://example.com", "token": "x"},
            "config.token: unknown field (known: url, headers, method, body, content_type, secret,",
        ),
        ({"url": "https://example.com", "headers": ["X-A: b"]}, "config.headers: must be an object"),
        (
            {"url": "https://example.com", "headers": {"Host": "internal"}},
            "config.headers.Host: set by Pingura",
        ),
        (
            {"url": "https://example.com", "headers": {"content-length": "1"}},
            "config.headers.content-length: set by",
        ),
        ({"url": "https://example.com", "headers": {"X-A": 1}}, "config.headers.X-A: must be a string"),
        (
            {"url": "https://example.com", "headers": {"X-A": "a\r\nHost: x"}},
            "config.headers.X-A: must not contain",
        ),
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


# method, body template, signing --------------------------------------------------------------


async def test_a_body_template_is_filled_in_with_json_escaped_values(vendor, http, settings):
    template = '{"text": "{{heartbeat.name}} is {{status}}: {{reason}}", "at": "{{at}}", "n": {{incident}}, "link": "{{heartbeat.url}}"}'
    config = webhook.validate({"url": vendor.url("/hook"), "method": "PUT", "body": template}, settings)
    alert = make_alert("m1", "down", monitor_name='db "prod"\nbackup', reason="exit code 3: C:\\temp full")

    await webhook.send(alert, config, http, settings)

    [request] = vendor.requests
    assert request.method == "PUT"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == alert.id
    assert json.loads(request.raw) == {
        "text": 'db "prod"\nbackup is down: exit code 3: C:\\temp full',
        "at": "2023-11-14T22:13:20.123Z",
        "n": 1,
        "link": "http://localhost:8080/heartbeats/m1",
    }


async def test_a_form_template_url_encodes_its_values(vendor, http, settings):
    config = webhook.validate(
        {"url": vendor.url("/hook"), "body": "name={{heartbeat.name}}&status={{status}}",
         "content_type": "application/x-www-form-urlencoded"},
        settings,
    )  # fmt: skip

    await webhook.send(make_alert(monitor_name="a&b=c"), config, http, settings)

    assert vendor.requests[0].form == {"name": "a&b=c", "status": "down"}


async def test_a_signed_request_carries_the_hmac_of_its_timestamp_and_exact_body(vendor, http, settings):
    config = webhook.validate({"url": vendor.url("/hook"), "secret": "sh4red"}, settings)

    await webhook.send(make_alert(), config, http, settings)

    [request] = vendor.requests
    timestamp = request.headers["X-Pingura-Timestamp"]
    assert timestamp.isdigit()
    expected = hmac.new(b"sh4red", timestamp.encode() + b"." + request.raw, hashlib.sha256).hexdigest()
    assert request.headers["X-Pingura-Signature"] == f"sha256={expected}"
    assert json.loads(request.raw) == default_payload(make_alert(), settings)


async def test_a_get_sends_no_body(vendor, http, settings):
    config = webhook.validate({"url": vendor.url("/ping?source=pingura"), "method": "GET"}, settings)

    await webhook.send(make_alert(), config, http, settings)

    [request] = vendor.requests
    assert (request.method, request.query, request.raw) == ("GET", {"source": "pingura"}, b"")


async def test_a_digest_sends_each_alert_with_its_own_idempotency_key(vendor, http, settings):
    alerts = [make_alert("m1"), make_alert("m2")]

    await webhook.send_digest(alerts, {"url": vendor.url("/hook")}, http, settings)

    assert [r.headers["Idempotency-Key"] for r in vendor.requests] == ["m1:1:down", "m2:1:down"]


async def test_a_rate_limited_webhook_says_when_to_come_back(vendor, http, settings):
    vendor.answer(429, Retry_After="30")

    with pytest.raises(TransportError) as failure:
        await webhook.send(make_alert(), {"url": vendor.url("/hook")}, http, settings)

    assert failure.value.permanent is False and failure.value.retry_after_s == 30.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"body": "{{heartbeat.nmae}}"}, "config.body: unknown placeholder {{heartbeat.nmae}} (known: {{heartbeat.id}}"),
        ({"body": '{"a": "{{status}}"'}, "config.body: not valid JSON once filled in"),
        ({"method": "DELETE"}, "config.method: must be one of POST, PUT, PATCH, GET"),
        ({"method": "GET", "body": "x"}, "config.body: a GET request has no body"),
        ({"content_type": "json"}, "config.content_type: must be a media type"),
        ({"secret": ""}, "config.secret: must not be empty"),
        ({"headers": {"X-Pingura-Signature": "x"}}, "config.headers.X-Pingura-Signature: set by Pingura"),
        ({"headers": {"Content-Type": "text/plain"}, "content_type": "text/plain"},
         "config.headers.Content-Type: set it with config.content_type only"),
    ],
)  # fmt: skip
def test_an_invalid_template_or_method_is_refused_naming_the_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        webhook.validate({"url": "https://example.com/hook", **config}, settings)

    assert str(failure.value).startswith(message)


def test_a_content_type_header_becomes_the_content_type_setting(settings):
    config = webhook.validate(
        {"url": "https://example.com/hook", "headers": {"Content-Type": "text/plain"}, "body": "{{text}}"},
        settings,
    )

    assert (config["headers"], config["content_type"], config["body"]) == ({}, "text/plain", "{{text}}")


# custom headers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["X\tA", "X(A)", "X A", "X:A", "X/A", "X@A", 'X"A', "Ä-Header", "X\x00A", "X,A", ""]
)
def test_a_header_name_must_be_an_http_token(settings, name):
    with pytest.raises(ChannelConfigError) as failure:
        webhook.validate({"url": "https://example.com", "headers": {name: "v"}}, settings)

    assert str(failure.value).startswith(f"config.headers: {name!r} is not a valid header name")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("a\x00b", "U+0000"), ("a\x0bb", "U+000B"), ("a\x7fb", "U+007F"), ("a\x1bb", "U+001B"), ("a\x85b", "U+0085"),
     ("a\nb", "U+000A"), ("a\rb", "U+000D")],
)  # fmt: skip
def test_a_header_value_with_a_control_character_is_refused_naming_the_header(settings, value, shown):
    with pytest.raises(ChannelConfigError) as failure:
        webhook.validate({"url": "https://example.com", "headers": {"X-Token": value}}, settings)

    assert str(failure.value).startswith(
        f"config.headers.X-Token: must not contain control characters ({shown})"
    )


async def test_tokens_tabs_and_text_beyond_ascii_are_sent_as_given(receiver, http, settings):
    headers = {"X-Odd_Name.v1!#$%&'*+^`|~": "a\tb", "X-Text": "naïve €", "X-Padded": "  v  "}
    config = webhook.validate({"url": receiver.url("/hook"), "headers": headers}, settings)

    await webhook.send(make_alert(), config, http, settings)

    [request] = receiver.received("/hook")
    assert request.headers["X-Odd_Name.v1!#$%&'*+^`|~"] == "a\tb"
    assert request.headers["X-Text"] == "naïve €"
    assert request.headers["X-Padded"] == "v"  # a field value has no surrounding whitespace (RFC 9110 5.5)


async def test_a_bad_header_saved_before_this_check_fails_the_delivery_with_its_reason(
    receiver, settings, caplog
):
    channel = make_channel(config={"url": receiver.url("/hook"), "headers": {"X-Token": "a\x0bb"}})

    async with Senders(settings) as senders:
        result = await try_send(channel, [make_alert()], senders, settings)

    assert (result.ok, result.permanent) == (False, True)
    assert result.error.startswith(
        "invalid channel config: config.headers.X-Token: must not contain control characters"
    )
    assert receiver.received("/hook") == []
    assert "Traceback" not in caplog.text


# the heartbeat's link and the last check-in (issue 15, item 19) ---------------------------
async def test_the_default_body_links_the_heartbeat_and_says_what_the_last_check_in_said(
    receiver, http, settings
):
    alert = make_alert("m1", "down", last_ping_ms=1_699_999_000_000, last_ping_kind="fail", last_ping_exit_code=3,
                       last_ping_message="disk full")  # fmt: skip

    await webhook.send(alert, {"url": receiver.url("/hook")}, http, settings)

    [request] = receiver.received("/hook")
    assert request.body["url"] == f"{settings.ping_base_url.rstrip('/')}/heartbeats/m1"
    assert request.body["last_checkin"] == {
        "at": "2023-11-14T21:56:40.000Z", "at_ms": 1_699_999_000_000, "kind": "fail", "exit_code": 3,
        "message": "disk full",
    }  # fmt: skip
    assert request.body["last_ping_at"] == "2023-11-14T21:56:40.000Z"  # still there, for existing receivers
    assert request.body == default_payload(alert, settings)


def test_the_default_body_of_a_heartbeat_that_never_checked_in_has_no_last_check_in(settings):
    assert default_payload(make_alert(last_ping_ms=None), settings)["last_checkin"] is None


def test_an_alert_from_before_the_check_in_was_carried_says_only_when(settings):
    checkin = default_payload(make_alert(last_ping_ms=1_699_999_000_000), settings)["last_checkin"]
    assert checkin == {"at": "2023-11-14T21:56:40.000Z", "at_ms": 1_699_999_000_000, "kind": None,
                       "exit_code": None, "message": None}  # fmt: skip


def test_a_test_notification_links_the_channels_page(settings):
    from services.notifier.logic import alert_for_test

    body = default_payload(alert_for_test(make_channel(), "test-1", 1_700_000_000_000), settings)
    assert body["url"] == f"{settings.ping_base_url.rstrip('/')}/channels" and body["last_checkin"] is None


async def test_a_template_can_say_what_the_last_check_in_said(vendor, http, settings):
    body = '{"code": "{{last_checkin.exit_code}}", "said": "{{last_checkin.message}}", "was": "{{last_checkin.kind}}"}'
    config = webhook.validate({"url": vendor.url("/hook"), "body": body}, settings)
    alert = make_alert(last_ping_kind="fail", last_ping_exit_code=3, last_ping_message='said "no"')

    await webhook.send(alert, config, http, settings)

    assert json.loads(vendor.requests[0].raw) == {"code": "3", "said": 'said "no"', "was": "fail"}


# issue 17: held alerts, the recovery message, operator alerts ------------------------------
async def test_a_template_can_say_why_an_alert_was_held_and_what_was_missed(vendor, http, settings):
    body = '{"held": "{{held}}", "missed": {{missed_runs}}, "since": "{{down_since}}", "deps": "{{dependents_held}}"}'
    config = webhook.validate({"url": vendor.url("/hook"), "body": body}, settings)
    alert = make_alert(kind="up", down_since_ms=1_699_992_500_123, missed_runs=7, dependents_held=["a", "b"],
                       held="maintenance window 'db' until 2023-11-14T22:30:00.000Z")  # fmt: skip

    await webhook.send(alert, config, http, settings)

    assert json.loads(vendor.requests[0].raw) == {
        "held": "held during maintenance window 'db' until 2023-11-14 22:30:00 UTC", "missed": 7,
        "since": "2023-11-14T20:08:20.123Z", "deps": "a, b",
    }  # fmt: skip


async def test_an_ingest_alert_links_the_dashboard_in_its_body_and_its_template(vendor, http, settings):
    config = webhook.validate({"url": vendor.url("/hook"), "body": '{"link": "{{heartbeat.url}}"}'}, settings)
    alert = make_ingest_alert()

    await webhook.send(alert, config, http, settings)

    root = f"{settings.ping_base_url.rstrip('/')}/"
    assert json.loads(vendor.requests[0].raw) == {"link": root}
    body = default_payload(alert, settings)
    assert (body["kind"], body["url"], body["ingest"]["arrived"]) == ("ingest_down", root, 3)
