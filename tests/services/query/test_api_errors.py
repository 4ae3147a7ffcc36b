"""The JSON API answers bad input with a 4xx and a one-line reason, never a 5xx.

One test per input that once reached a server error, plus the shape every refusal has.
"""

import asyncio
import dataclasses
import json

import aiohttp
import pytest
import pytest_asyncio
import yarl
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from services.query.app import api_app
from tests.services.query.conftest import API_KEY

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() says yes, int() says no
ARABIC_INDIC_123 = "\u0661\u0662\u0663"  # int() reads these as 123
THOUSANDS_OF_DIGITS = "9" * 5000  # past int()'s 4300-digit limit


async def send(api, method: str, path: str, **kwargs) -> tuple[int, object, aiohttp.ClientResponse]:
    async with api.http.request(method, api.url + path, **kwargs) as response:
        raw = await response.read()
        try:
            body = await response.json(content_type=None) if raw else None
        except ValueError:
            body = raw
        return response.status, body, response


def assert_refused(status: int, body, expected: int, field: str | None = None) -> None:
    assert status == expected, body
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    assert body["error"] and len(body["error"].splitlines()) == 1, body
    if field is not None:
        assert body.get("field") == field, body


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def heartbeat(api) -> str:
    status, body, _ = await send(api, "POST", "/heartbeats", json={"name": "nightly", "interval": "1d"})
    assert status == 201, body
    return body["id"]


# time ranges -----------------------------------------------------------------
@pytest.mark.parametrize("resource", ["timings", "export"])
@pytest.mark.parametrize("field", ["from", "to"])
@pytest.mark.parametrize(
    "value",
    [SUPERSCRIPT_TWO, ARABIC_INDIC_123, THOUSANDS_OF_DIGITS, str(10**23), "-1", "0001-01-01T00:00:00Z",
     "99999-01-01", "1e3", "12:00", "\x00", "2024-13-01", "now"],
)  # fmt: skip
async def test_it_refuses_a_time_outside_epoch_ms_or_iso_8601_in_1970_to_9999(
    api, heartbeat, resource, field, value
):
    status, body, _ = await send(api, "GET", f"/heartbeats/{heartbeat}/{resource}", params={field: value})
    assert_refused(status, body, 400, field)


@pytest.mark.parametrize("resource", ["timings", "export"])
async def test_it_refuses_from_after_to(api, heartbeat, resource):
    params = {"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}
    status, body, _ = await send(api, "GET", f"/heartbeats/{heartbeat}/{resource}", params=params)
    assert_refused(status, body, 400, "from")


@pytest.mark.parametrize("resource", ["timings", "export"])
@pytest.mark.parametrize("params", [
    {"from": "0", "to": "253402300799999"},  # the whole accepted range
    {"to": "0"},  # a default "from" must not fall before 1970
    {"from": "2024-01-01T00:00:00+14:00", "to": "2024-01-01T00:00:00-12:00"},
    {"from": "1700000000000", "to": "1700000000000"},
])  # fmt: skip
async def test_it_answers_any_range_inside_1970_to_9999(api, heartbeat, resource, params):
    if resource == "timings":
        params = {**params, "bucket": "400d"}  # 8030 years in 400-day buckets is still too many
    status, body, _ = await send(api, "GET", f"/heartbeats/{heartbeat}/{resource}", params=params)
    if status != 200:
        assert_refused(status, body, 400, "bucket")


async def test_it_reads_epoch_milliseconds_and_iso_8601_alike(api, heartbeat):
    path = f"/heartbeats/{heartbeat}/timings"
    as_ms = await send(
        api, "GET", path, params={"from": "1704067200000", "to": "1704672000000", "bucket": "1d"}
    )
    as_iso = await send(
        api, "GET", path, params={"from": "2024-01-01", "to": "2024-01-08T00:00:00Z", "bucket": "1d"}
    )
    assert as_ms[0] == as_iso[0] == 200
    assert as_ms[1] == as_iso[1]


@pytest.mark.parametrize(
    "bucket",
    ["1e400", "nan", "inf", "-1m", " ", "0", "59s", "1ms", SUPERSCRIPT_TWO, "9" * 5000, "401d", "1 h 1"],
)
async def test_it_refuses_a_bucket_that_is_not_a_duration_from_1m_to_400d(api, heartbeat, bucket):
    status, body, _ = await send(api, "GET", f"/heartbeats/{heartbeat}/timings", params={"bucket": bucket})
    assert_refused(status, body, 400, "bucket")


@pytest.mark.parametrize("fmt", ["", "CSV", "xml", "csv\n", "json;", SUPERSCRIPT_TWO])
async def test_it_refuses_an_export_format_other_than_csv_or_json(api, heartbeat, fmt):
    status, body, _ = await send(api, "GET", f"/heartbeats/{heartbeat}/export", params={"format": fmt})
    assert_refused(status, body, 400, "format")


# paging ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "limit", [SUPERSCRIPT_TWO, ARABIC_INDIC_123, THOUSANDS_OF_DIGITS, "1_0", " 5", "", "0", "1001"]
)
async def test_it_refuses_a_limit_that_is_not_1_to_1000_in_ascii_digits(api, heartbeat, limit):
    status, body, _ = await send(api, "GET", f"/heartbeats/{heartbeat}/checkins", params={"limit": limit})
    assert_refused(status, body, 400, "limit")


@pytest.mark.parametrize("before", [
    "garbage", "%%%", "\u00e9t\u00e9", "W1tdXQ", "WzEsMl0",  # [[]], [1,2]
    "Wy0xLCJ4Il0",  # [-1,"x"]
    "Wzk5OTk5OTk5OTk5OTk5OTk5LCJ4Il0",  # a time past year 9999
    "WzEsIlx1ZDgwMCJd",  # [1,"\ud800"]: a lone surrogate
    "A" * 4000,
])  # fmt: skip
async def test_it_refuses_a_cursor_it_did_not_issue(api, heartbeat, before):
    status, body, _ = await send(api, "GET", f"/heartbeats/{heartbeat}/checkins", params={"before": before})
    assert_refused(status, body, 400, "before")


async def test_an_empty_cursor_means_the_first_page_as_on_every_list(api, heartbeat):
    status, body, _ = await send(api, "GET", f"/heartbeats/{heartbeat}/checkins", params={"before": ""})
    assert status == 200 and body["next"] is None


# bodies ----------------------------------------------------------------------------
CREATE_PATHS = ["/projects", "/heartbeats", "/channels"]


@pytest.mark.parametrize("path", CREATE_PATHS)
@pytest.mark.parametrize("depth", [100, 1000, 20_000])
async def test_it_refuses_json_nested_too_deeply(api, path, depth):
    status, body, _ = await send(
        api, "POST", path, data="[" * depth + "]" * depth, headers={"Content-Type": "application/json"}
    )
    assert_refused(status, body, 400)


@pytest.mark.parametrize("path", CREATE_PATHS)
@pytest.mark.parametrize("raw", [
    b'{"name": "\xff\xfe"}', b'{"name": "\xed\xa0\x80"}', b'{"name": "\\ud800"}', b'\xef\xbb\xbf{"name": "bom"}',
    b"{'name': 1}", b"", b"\x00",
])  # fmt: skip
async def test_it_refuses_a_body_that_is_not_utf_8_json(api, path, raw):
    status, body, _ = await send(api, "POST", path, data=raw, headers={"Content-Type": "application/json"})
    assert_refused(status, body, 400, "body")


@pytest.mark.parametrize("path", CREATE_PATHS)
@pytest.mark.parametrize("raw", [b"[]", b'"name"', b"1", b"null", b"true"])
async def test_it_refuses_json_that_is_not_an_object(api, path, raw):
    status, body, _ = await send(api, "POST", path, data=raw, headers={"Content-Type": "application/json"})
    assert_refused(status, body, 400, "body")


async def test_it_refuses_json_that_is_not_an_object_on_patch(api, heartbeat):
    status, body, _ = await send(
        api, "PATCH", f"/heartbeats/{heartbeat}", data=b"[1]", headers={"Content-Type": "application/json"}
    )
    assert_refused(status, body, 400, "body")


@pytest.mark.parametrize("field", ["interval", "grace"])
@pytest.mark.parametrize("raw", ["1" + "0" * 400, "1e308", "-1e308", "0.5", "-1", "31536001", "1e-3"])
async def test_it_refuses_a_period_out_of_range_however_large(api, field, raw):
    period = "" if field == "interval" else '"interval": 60, '
    data = f'{{"name": "x", {period}"{field}": {raw}}}'
    status, body, _ = await send(
        api, "POST", "/heartbeats", data=data, headers={"Content-Type": "application/json"}
    )
    assert_refused(status, body, 400, field)


@pytest.mark.parametrize("raw", ["1e400", "-1e400", "1" + "0" * 5000])
async def test_it_refuses_a_number_json_cannot_hold_as_a_bad_body(api, raw):
    # The decoder refuses these (no float is that large) before any field is looked at.
    data = f'{{"name": "x", "interval": {raw}}}'
    status, body, _ = await send(
        api, "POST", "/heartbeats", data=data, headers={"Content-Type": "application/json"}
    )
    assert_refused(status, body, 400, "body")


@pytest.mark.parametrize("value", ["1" + "0" * 400, "1e308", "1.5", '"3"', "true"])
async def test_it_refuses_max_consecutive_misses_that_is_not_1_to_10(api, value):
    data = f'{{"name": "x", "interval": 60, "max_consecutive_misses": {value}}}'
    status, body, _ = await send(
        api, "POST", "/heartbeats", data=data, headers={"Content-Type": "application/json"}
    )
    assert_refused(status, body, 400, "max_consecutive_misses")


@pytest.mark.parametrize("interval", [SUPERSCRIPT_TWO, "9" * 5000 + "s", "1e400s", "nan", "-inf", "1m-1s"])
async def test_it_refuses_a_duration_string_it_cannot_read(api, interval):
    status, body, _ = await send(api, "POST", "/heartbeats", json={"name": "x", "interval": interval})
    assert_refused(status, body, 400, "interval")


async def test_it_names_an_unknown_field_on_one_line(api):
    status, body, _ = await send(api, "POST", "/heartbeats", json={"name": "x", "line\nbreak\u2028" * 50: 1})
    assert_refused(status, body, 400)
    assert body["field"].startswith("line")


@pytest.mark.parametrize("path", CREATE_PATHS)
async def test_it_answers_a_body_too_large_with_413_json(api, path):
    data = b'{"name": "' + b"x" * (api.ctx.settings.max_api_body_bytes + 1) + b'"}'
    status, body, _ = await send(api, "POST", path, data=data, headers={"Content-Type": "application/json"})
    assert_refused(status, body, 413, "body")


@pytest.mark.parametrize("path", CREATE_PATHS)
@pytest.mark.parametrize("content_type", [
    "text/html", "multipart/form-data; boundary=x", "application/json; charset=nonsense",
    "application/json; charset=latin-1", "application/octet-stream",
])  # fmt: skip
async def test_it_refuses_a_body_that_says_it_is_not_utf_8_json(api, path, content_type):
    status, body, _ = await send(
        api, "POST", path, data=b'{"name": "x"}', headers={"Content-Type": content_type}
    )
    assert_refused(status, body, 415, "body")


@pytest.mark.parametrize("content_type", [
    None, "application/json", "application/json; charset=UTF-8", "application/merge-patch+json",
    "application/x-www-form-urlencoded",  # what `curl -d` sends, as in the README
])  # fmt: skip
async def test_it_reads_json_under_the_content_types_clients_actually_send(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    async with api.http.post(api.url + "/heartbeats", data=b'{"name": "x", "interval": 60}', headers=headers,
                             skip_auto_headers=["Content-Type"]) as response:  # fmt: skip
        assert response.status == 201, await response.text()


# channels --------------------------------------------------------------------
@pytest.mark.parametrize("config", [
    {"url": "http://a\x00b/"}, {"url": "http://\udc80/"}, {"url": "http://a:99999/"}, {"url": "http://[::1/"},
    {"url": "http://" + "a" * 300 + "/"}, {"url": "http://.../"}, {"url": "http://xn--a/"},
    {"url": "https://example.com/", "headers": {"X": "\x00"}}, {"url": "https://example.com/", "headers": []},
    {"url": "https://example.com/", "headers": {"X\u00e9": "v"}}, {"url": ["http://example.com"]},
])  # fmt: skip
async def test_it_refuses_a_webhook_config_it_cannot_use(api, config):
    data = json.dumps({"kind": "webhook", "config": config})
    status, body, _ = await send(
        api, "POST", "/channels", data=data, headers={"Content-Type": "application/json"}
    )
    if status != 201:
        assert_refused(status, body, 400)


# headers and routes ---------------------------------------------------------------
@pytest.mark.parametrize("header", ["Authorization", "X-Api-Key"])
async def test_it_answers_401_to_a_key_that_is_not_utf_8(api, header):
    value = b"Bearer \xff\xfe".decode("latin-1") if header == "Authorization" else "\xff"
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(api.url + "/heartbeats", headers={header: value}) as response,
    ):
        assert_refused(response.status, await response.json(), 401)


async def test_it_answers_401_to_raw_header_bytes_that_are_not_utf_8(api):
    url = yarl.URL(api.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(b"GET /api/v1/heartbeats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\x80\r\n"
                 b"Connection: close\r\n\r\n")  # fmt: skip
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer
    assert_refused(401, json.loads(body), 401)


@pytest.mark.parametrize("path", ["/no/such/thing", "/", "", "/heartbeats/x/y/z", "/%FF"])
async def test_it_answers_an_unknown_route_with_json_404(api, path):
    status, body, _ = await send(api, "GET", path)
    assert_refused(status, body, 404)


async def test_it_answers_a_wrong_method_with_json_405_and_allow(api, heartbeat):
    status, body, response = await send(api, "PUT", f"/heartbeats/{heartbeat}")
    assert_refused(status, body, 405)
    assert "PATCH" in response.headers["Allow"]


# the last resort ------------------------------------------------------------------
class BrokenStore:
    def __getattr__(self, name):
        async def fail(*args, **kwargs):
            raise RuntimeError("storage on fire; user said: secret-input")

        return fail


async def test_it_answers_a_broken_store_with_a_fixed_500_that_echoes_nothing(api, heartbeat):
    root = web.Application()
    ctx = dataclasses.replace(api.ctx)
    ctx.started(BrokenStore(), api.ctx.catalog)  # a stand-in for the store
    root.add_subapp("/api/v1", api_app(ctx))
    async with TestServer(root) as server, aiohttp.ClientSession() as http:
        # The uptime reads ClickHouse (the heartbeat list no longer does).
        url = server.make_url(f"/api/v1/heartbeats/{heartbeat}/uptime?tag=secret-input")
        with capture_logs() as logs:
            async with http.get(url, headers={"Authorization": f"Bearer {API_KEY}"}) as response:
                status, text = response.status, await response.text()
    assert status == 500
    assert "secret" not in text and json.loads(text)["error"]
    [error] = [e for e in logs if e["event"] == "query.api.error"]
    assert error["route"] == "/api/v1/heartbeats/{id}/uptime" and "secret" not in str(error)


async def test_a_public_route_that_fails_logs_its_pattern_not_the_secret_in_its_path(api, monkeypatch):
    from services.query.api import badges

    async def on_fire(*args, **kwargs):
        raise RuntimeError("badge lookup on fire")

    monkeypatch.setattr(badges, "_state", on_fire)
    async with aiohttp.ClientSession() as http:
        with capture_logs() as logs:
            async with http.get(f"{api.url}/badge/secret-badge-key/nightly.svg") as response:
                status = response.status
    assert status == 500
    [error] = [e for e in logs if e["event"] == "query.api.error"]
    assert "secret-badge-key" not in str(error) and error["route"].endswith("/badge/{badge_key}/{what}.svg")
