import socket
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from services.notifier.channels import ChannelConfigError, TransportError
from services.notifier.channels.http import (
    is_permanent,
    json_retry_after,
    parse_retry_after,
    send,
    validate_url,
)
from tests.services.notifier.channels.vendor import http, vendor  # noqa: F401 (fixtures)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), (" 5 ", 5.0), ("0", 0.0), ("-3", 0.0), ("1.5", 1.5), (None, None), ("", None), ("soon", None),
     ("nan", None)],
)  # fmt: skip
def test_retry_after_in_seconds_is_read_as_is(value, seconds):
    assert parse_retry_after(value) == seconds


def test_retry_after_as_an_http_date_is_the_wait_until_then():
    now_s = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()

    assert parse_retry_after("Wed, 01 May 2024 12:01:30 GMT", now_s=now_s) == 90.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now_s=now_s) == 0.0  # already past


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (502, False), (503, False), (408, False), (429, False), (400, True), (401, True), (403, True),
     (404, True), (422, True), (301, True), (302, True)],
)  # fmt: skip
def test_only_server_errors_timeouts_and_rate_limits_are_worth_retrying(status, permanent):
    assert is_permanent(status) is permanent


async def test_any_2xx_is_success(vendor, http, settings):
    for status in (200, 201, 202, 204):
        vendor.answer(status)
        assert await send(http, settings, vendor.url("/x"), json_body={}) == status


async def test_a_retry_after_date_header_is_turned_into_seconds(vendor, http, settings):
    later = datetime.fromtimestamp(datetime.now(UTC).timestamp() + 120, UTC)
    vendor.answer(503, Retry_After=format_datetime(later, usegmt=True))

    with pytest.raises(TransportError) as failure:
        await send(http, settings, vendor.url("/x"), json_body={})

    assert failure.value.permanent is False
    assert 100 < failure.value.retry_after_s <= 120


async def test_a_wait_in_the_error_body_is_used_when_there_is_no_header(vendor, http, settings):
    vendor.answer(429, '{"ok": false, "parameters": {"retry_after": 7}}')

    with pytest.raises(TransportError) as failure:
        await send(
            http,
            settings,
            vendor.url("/x"),
            json_body={},
            retry_after_in_body=json_retry_after(("parameters", "retry_after")),
        )

    assert failure.value.retry_after_s == 7.0


async def test_only_a_preview_of_an_error_body_is_read_and_secrets_are_blanked(vendor, http, settings):
    vendor.answer(400, "token s3cr3t-token is wrong " + "x" * 10_000)

    with pytest.raises(TransportError) as failure:
        await send(http, settings, vendor.url("/x"), json_body={}, secrets=["s3cr3t-token"])

    assert "s3cr3t-token" not in str(failure.value) and "<redacted>" in str(failure.value)
    assert len(str(failure.value)) < 300


async def test_a_blocked_literal_address_is_refused_without_a_request(vendor, http, settings):
    with pytest.raises(TransportError) as failure:
        await send(http, settings.replace(webhook_allowed_networks=()), vendor.url("/x"), json_body={})

    assert failure.value.permanent is True and "refused" in str(failure.value)
    assert vendor.requests == []


async def test_redirects_are_not_followed(vendor, http, settings):
    vendor.answer(307, Location=vendor.url("/elsewhere"))

    with pytest.raises(TransportError) as failure:
        await send(http, settings, vendor.url("/x"), json_body={})

    assert failure.value.permanent is True
    assert [r.path for r in vendor.requests] == ["/x"]


async def test_a_refused_connection_may_be_retried(http, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(TransportError) as failure:
        await send(http, settings, f"http://127.0.0.1:{port}/x", json_body={})

    assert failure.value.permanent is False


def test_a_url_setting_names_its_field_when_refused(settings):
    with pytest.raises(ChannelConfigError, match=r"^config\.endpoint: must be an http\(s\) URL"):
        validate_url("ftp://example.com", settings, field="endpoint")
    with pytest.raises(ChannelConfigError, match=r"^config\.url: host '10\.0\.0\.1' is an internal address"):
        validate_url("http://10.0.0.1/", settings)
