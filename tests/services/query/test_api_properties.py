"""Whatever a client sends, the JSON API answers 2xx or a 4xx with a one-line JSON reason.

Generated paths, query strings, headers and bodies go over real HTTP to the real API
(LocalBus on disk, config views, chDB). A 5xx would mean Pingura itself is broken, and
nothing here breaks it.

The CI profile keeps the module well under a minute; for a long hunt run
``PINGURA_HYPOTHESIS_PROFILE=thorough pytest tests/services/query/test_api_properties.py``.
"""

import base64
import json
import os
import string
from urllib.parse import quote

import pytest
import pytest_asyncio
import yarl
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.query.store import encode_cursor

pytestmark = pytest.mark.asyncio(loop_scope="session")

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
settings.register_profile("ci", max_examples=40, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
# Applied per test rather than loaded globally: other modules keep their own settings.
PROFILE = settings.get_profile(os.environ.get("PINGURA_HYPOTHESIS_PROFILE", "ci"))


# what clients can send ------------------------------------------------------------
class Raw(str):
    """JSON text put into a body as is: numbers no float holds, lone surrogates, nesting."""


def dump(value) -> str:
    if isinstance(value, Raw):
        return value
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


def nested(depth: int, kind: str) -> Raw:
    return Raw("[" * depth + "]" * depth) if kind == "[" else Raw('{"a":' * depth + "1" + "}" * depth)


digit_strings = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=8)
duration_strings = st.from_regex(r"\A-?[0-9\u0660-\u0669\u00b2.]{0,6}(e[0-9]{1,3})?(ms|s|m|h|d|y)?\Z")
raw_literals = st.one_of(
    st.sampled_from(["1e400", "-1e400", "1e-400", "NaN", "Infinity", "-0", "01", "1.", '"\\ud800"', '"x\\udc00"',
                     '"\\ud83d\\ude00"', '"\\u0000"']),
    st.integers(300, 5000).map(lambda n: "1" + "0" * n),
    st.builds(nested, st.integers(1, 3000), st.sampled_from("[{")),
).map(Raw)  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400), st.floats(allow_nan=False, allow_infinity=False),
    st.text(), digit_strings, duration_strings, raw_literals,
)  # fmt: skip
trees = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                     max_leaves=12)  # fmt: skip
values = scalars | trees


def with_extra_keys(fields: st.SearchStrategy[dict]) -> st.SearchStrategy:
    """Mostly the fields the endpoint knows, sometimes unknown ones, sometimes not an object at all."""
    extra = st.dictionaries(st.text(), values, max_size=2)
    return st.one_of(fields, st.builds(lambda a, b: {**a, **b}, fields, extra), values)


monitor_bodies = with_extra_keys(st.fixed_dictionaries({}, optional={
    "name": st.text() | values, "interval": values, "grace": values,
    "max_consecutive_misses": st.integers(-3, 12) | values,
    "channels": st.lists(st.text()) | values, "tags": st.lists(st.text(max_size=60), max_size=25) | values,
}))  # fmt: skip
urls = st.one_of(
    st.builds("{}://{}{}/{}".format, st.sampled_from(["http", "https", "ftp", "HTTP", ""]),
              st.sampled_from(["example.com", "127.0.0.1", "[::1]", "xn--a", "a\x00b", "", "169.254.169.254"]) | st.text(),
              st.sampled_from(["", ":0", ":99999", ":443", ":x"]), st.text()),
    values,
)  # fmt: skip
channel_bodies = with_extra_keys(st.fixed_dictionaries({}, optional={
    "kind": st.sampled_from(["webhook", "email", ""]) | values, "name": st.text() | values,
    "config": st.fixed_dictionaries({}, optional={
        "url": urls, "headers": st.dictionaries(st.text(), st.text() | values, max_size=3) | values,
    }) | values,
}))  # fmt: skip
project_bodies = with_extra_keys(st.fixed_dictionaries({}, optional={"name": st.text() | values}))

content_types = st.sampled_from([
    None, "application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8",
    "application/json; charset=latin-1", "application/json; charset=bogus", "application/x-www-form-urlencoded",
    "text/plain", "multipart/form-data", "application/problem+json", "", ";", "application/json; charset=",
])  # fmt: skip


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def bodies(objects: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    """Bodies as bytes: the objects above as JSON, and bytes that are not JSON or not UTF-8."""
    broken = st.builds(
        lambda head, junk: head + junk + b'"}', st.just(b'{"name": "'), st.binary(min_size=1, max_size=8)
    )
    return st.one_of(objects.map(dump).map(utf8), st.binary(max_size=64), broken)


time_values = st.one_of(
    st.integers(-(10**20), 10**20).map(str), st.integers(0, 253_402_300_799_999).map(str),
    st.datetimes().map(lambda d: d.isoformat()), st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["+14:00", "-12:00", "+05:30"]).flatmap(lambda tz: st.datetimes().map(lambda d: d.isoformat() + tz)),
    digit_strings, st.integers(4000, 6000).map(lambda n: "9" * n), st.text(),
)  # fmt: skip
cursors = st.one_of(
    st.builds(encode_cursor, st.integers(-(2**63), 2**63 - 1), st.text()),
    trees.map(dump).map(lambda t: base64.urlsafe_b64encode(utf8(t)).rstrip(b"=").decode()),
    st.text(string.ascii_letters + string.digits + "-_=", max_size=60), st.text(),
)  # fmt: skip
query_values = {
    "from": time_values,
    "to": time_values,
    "limit": st.integers(-5, 2000).map(str) | digit_strings | st.text(),
    "before": cursors,
    "bucket": duration_strings | digit_strings | st.text(),
    "format": st.sampled_from(["csv", "json", "CSV", "xml", ""]) | st.text(),
    "tag": st.text(),
}
queries = st.fixed_dictionaries({}, optional=query_values).flatmap(
    lambda known: st.dictionaries(st.text(), st.text(), max_size=2).map(lambda extra: {**extra, **known})
)
# aiohttp's HTTP parser refuses longer request lines itself (a plain-text 400), before any app runs.
MAX_URL_CHARS = 8000
safe_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


# what every answer must look like -------------------------------------------------------
async def answer(api, method: str, url, **kwargs) -> tuple[int, bytes]:
    async with api.http.request(method, url, **kwargs) as response:
        body = await response.read()  # all of it: an export that broke mid-stream fails here
        assert response.status < 500, (method, str(url), response.status, body[:500])
        if response.status >= 400 and method != "HEAD":
            assert response.content_type == "application/json", (response.status, body[:500])
            error = json.loads(body)
            assert isinstance(error, dict) and isinstance(error.get("error"), str), body[:500]
            assert error["error"] and len(error["error"].splitlines()) == 1, error
            assert isinstance(error.get("field", ""), str), error
        return response.status, body


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def heartbeat(api) -> str:
    status, body = await answer(
        api, "POST", api.url + "/heartbeats", json={"name": "fuzzed", "interval": "1d", "tags": ["t"]}
    )
    assert status == 201
    return json.loads(body)["id"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def channel(api) -> str:
    body = {"kind": "webhook", "config": {"url": "https://hooks.example.com/x"}}
    status, raw = await answer(api, "POST", api.url + "/channels", json=body)
    assert status == 201
    return json.loads(raw)["id"]


def headers_for(content_type: str | None) -> dict:
    return {} if content_type is None else {"Content-Type": content_type}


# bodies ----------------------------------------------------------------------------------
@PROFILE
@given(body=bodies(monitor_bodies), content_type=content_types)
async def test_any_heartbeat_body_is_created_or_refused_with_a_reason(api, body, content_type):
    status, _ = await answer(api, "POST", api.url + "/heartbeats", data=body, headers=headers_for(content_type),
                             skip_auto_headers=["Content-Type"])  # fmt: skip
    assert status in (201, 400, 413, 415)


@PROFILE
@given(body=bodies(monitor_bodies), content_type=content_types)
async def test_any_heartbeat_patch_is_applied_or_refused_with_a_reason(api, heartbeat, body, content_type):
    status, _ = await answer(api, "PATCH", f"{api.url}/heartbeats/{heartbeat}", data=body,
                             headers=headers_for(content_type), skip_auto_headers=["Content-Type"])  # fmt: skip
    assert status in (200, 400, 413, 415)


@PROFILE
@given(body=bodies(channel_bodies), content_type=content_types)
async def test_any_channel_body_is_created_or_refused_with_a_reason(api, body, content_type):
    status, _ = await answer(api, "POST", api.url + "/channels", data=body, headers=headers_for(content_type),
                             skip_auto_headers=["Content-Type"])  # fmt: skip
    assert status in (201, 400, 413, 415)


@PROFILE
@given(body=bodies(project_bodies), content_type=content_types)
async def test_any_project_body_is_created_or_refused_with_a_reason(api, body, content_type):
    status, _ = await answer(api, "POST", api.url + "/projects", data=body, headers=headers_for(content_type),
                             skip_auto_headers=["Content-Type"])  # fmt: skip
    assert status in (201, 400, 413, 415)


# query strings ---------------------------------------------------------------------------
@PROFILE
@given(
    resource=st.sampled_from(["checkins", "timings", "export", "uptime", "status-changes", "deliveries"]),
    query=queries,
)
async def test_any_history_query_is_answered_or_refused_with_a_reason(api, heartbeat, resource, query):
    url = yarl.URL(f"{api.url}/heartbeats/{heartbeat}/{resource}").with_query(query)
    assume(len(str(url)) < MAX_URL_CHARS)
    status, body = await answer(api, "GET", url)
    assert status in (200, 400)
    if status == 200 and query.get("format", "csv") == "json" and resource == "export":
        json.loads(body)


@PROFILE
@given(query=queries)
async def test_any_list_query_is_answered_or_refused_with_a_reason(api, query):
    url = yarl.URL(api.url + "/heartbeats").with_query(query)
    assume(len(str(url)) < MAX_URL_CHARS)
    status, _ = await answer(api, "GET", url)
    assert status in (200, 400)  # a limit, status, sort or cursor (before) it cannot use is refused


# paths, methods, headers -------------------------------------------------------------
@PROFILE
@given(
    method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"]),
    segments=st.lists(st.sampled_from(["heartbeats", "channels", "projects", "me", "checkins", "timings", "export",
                                       "uptime", "pause", "resume", "rotate-token", "status-changes", "deliveries",
                                       "keys", "session", "channel-kinds", "openapi.json", "..", ".", "", "%", "{id}",
                                       "HB", "CH"]) | st.text(max_size=20), max_size=4),
)  # fmt: skip
async def test_any_path_and_method_is_answered_or_refused_with_a_reason(
    api, heartbeat, channel, method, segments
):
    ids = {"HB": heartbeat, "CH": channel}
    path = "/".join(quote(ids.get(s, s), safe="") for s in segments)
    url = yarl.URL(f"{api.url}/{path}", encoded=True)
    data = b"{}" if method in ("POST", "PATCH") else None
    await answer(api, method, url, data=data)


@PROFILE
@given(
    authorization=st.one_of(
        st.none(), st.just("VALID"), safe_header_text, safe_header_text.map("Bearer ".__add__)
    ),
    api_key=st.none() | safe_header_text,
    extra=st.dictionaries(st.from_regex(r"\AX-[A-Za-z0-9-]{1,20}\Z"), safe_header_text, max_size=3),
    accept=st.none() | safe_header_text,
)
async def test_any_headers_are_answered_or_refused_with_a_reason(
    api, heartbeat, authorization, api_key, extra, accept
):
    headers = dict(extra)
    for name, value in (("X-Api-Key", api_key), ("Accept", accept)):
        if value is not None:
            headers[name] = value
    if authorization != "VALID":
        headers["Authorization"] = authorization or ""
    status, _ = await answer(api, "GET", f"{api.url}/heartbeats/{heartbeat}/checkins", headers=headers)
    assert status in (200, 401)
