"""Whatever arrives at the ping endpoints: a 2xx or a 4xx, never a 5xx; a refused ping
leaves nothing on the bus; an accepted one is stored exactly as it was sent.

Generated paths (Pingura's token URLs, Healthchecks' ``/ping`` token and slug URLs, with
every word after them), query strings (metadata, run ids, Cronitor's words), headers and
bodies go as raw bytes over real HTTP to ingest as ``pingura serve`` runs it (guarded
runner, LocalBus on disk). The oracle below restates the rules of docs/semantics.md
("What a ping reply means") independently of services/ingest/logic.py.

The CI profile keeps the module well under a minute; for a long hunt run
``PINGURA_HYPOTHESIS_PROFILE=thorough pytest tests/services/ingest/test_properties.py``.
"""

from __future__ import annotations

import base64
import codecs
import gzip
import ipaddress
import os
import uuid
from urllib.parse import quote, unquote_to_bytes, urlencode

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.durations import parse_duration_s
from shared.events import Ping, ProjectConfig, decode, encode
from shared.settings import Settings
from tests.services.ingest.support import (
    SECRET,
    TOKEN,
    TOPICS,
    add_monitor,
    exchange,
    ping_count,
    request,
    serve,
    status_of,
)

# Module-local rather than registered: other modules register profiles of the same names.
_COMMON = dict(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
PROFILE = {"ci": settings(max_examples=150, **_COMMON), "thorough": settings(max_examples=4000, **_COMMON)}[
    os.environ.get("PINGURA_HYPOTHESIS_PROFILE", "ci")
]

METADATA = ("status", "message", "duration")
FORM = "application/x-www-form-urlencoded"
MAX_BODY = Settings().max_body_bytes
MAX_OUTPUT = Settings().max_output_bytes
KEPT = max(MAX_OUTPUT, 64 * 1024)  # a body up to this size is read as metadata; a larger one only as output
PING_KEY, SLUG = "k" * 22, "backup-db"
BODY_TIMEOUT_S = 1.0  # a header may promise more body than is sent


@pytest.fixture
async def served(tmp_path):
    settings = Settings(
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),), ping_body_timeout_s=BODY_TIMEOUT_S
    )
    served = await serve(tmp_path, settings)
    await add_monitor(served.bus, TOKEN, slug=SLUG, project_id="p")
    project = ProjectConfig(id="p", name="p", created_ms=0, ping_key=PING_KEY)
    await served.bus.publish(TOPICS.projects, project.id, encode(project))
    await served.index.sync()
    reader = served.bus.reader([(TOPICS.pings, p) for p in range(2)])
    await reader.start()
    yield served, reader
    await reader.close()
    await served.close()


# what clients send ------------------------------------------------------------------
TOKENS = {
    "known": TOKEN,
    "unknown": "A" * 32,
    "standard alphabet": base64.b64encode(SECRET).decode(),
    "padded": TOKEN + "=",
    "short": TOKEN[:-1],
}


def mostly(common: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """``common`` about four times in five: enough pings must get through to check what is stored."""
    return st.integers(0, 4).flatmap(lambda n: common if n else rare)


suffixes = mostly(
    st.sampled_from([None, "fail", "0", "1", "255", "007", "start", "log", "run", "complete"]),
    st.sampled_from(["", "256", "\u00b2", "\u0663", "FAIL", "Start", "tick", "9" * 5000])
    | st.integers(0, 300).map(str)
    | st.text(max_size=12),
)
durations = mostly(
    st.sampled_from(["12.5s", "350ms", "1m30s", "2h", "1d", "42", "0.5", "1e-05", "1h 2m"])
    | st.integers(0, 10**6)
    | st.floats(0, 10**6),
    st.sampled_from(["fast", "-5", "\u0663s", "1_000", "inf", "nan", "401d", "", " "])
    | st.integers()
    | st.floats()
    | st.text(max_size=70)
    | st.booleans()
    | st.lists(st.integers(), max_size=2),
)
statuses = mostly(st.text(max_size=100), st.text(min_size=101, max_size=110) | st.integers())
messages = mostly(st.text(max_size=200), st.integers(9_990, 10_010).map(lambda n: "m" * n) | st.booleans())
field_values = {
    "status": statuses | st.none(),
    "message": messages | st.none(),
    "duration": durations | st.none(),
}
RID = "3F2A4B1C-0d5e-4f60-8a7b-9c0d1e2f3a4b"
signal_values = {  # what else a query may say, Cronitor's words among it
    "rid": mostly(
        st.just(RID), st.sampled_from(["12345", RID + "0", "{" + RID + "}", ""]) | st.text(max_size=40)
    ),
    "series": mostly(st.text(max_size=100), st.text(min_size=101, max_size=105)),
    "state": mostly(st.sampled_from(["run", "complete", "fail", "ok"]), st.sampled_from(["", "RUN", "tick"])),
    "metric": st.sampled_from(["count:3", "duration:", "error_count:1"])
    | durations.map(lambda d: f"duration:{d}"),
}
# Bytes (percent-escaped) that may not be UTF-8: a field ingest reads must be, others need not.
escaped_bytes = st.binary(max_size=6) | st.sampled_from(
    [b"caf\xe9", b"\xed\xa0\x80", b"\xef\xbf\xbd", b"\xc3"]
)
query_pairs = st.one_of(
    st.tuples(st.sampled_from((*METADATA, "x")), st.text(max_size=40)),
    st.tuples(st.sampled_from((*METADATA, "x", "series")), escaped_bytes),
    *(st.tuples(st.just(name), values) for name, values in signal_values.items()),
)
objects = st.fixed_dictionaries({}, optional={**field_values, "other": st.text(max_size=10)})
json_bodies = objects.map(msgspec.json.encode)
form_bodies = st.lists(
    st.tuples(st.sampled_from((*METADATA, "x")), st.text(max_size=40) | escaped_bytes), max_size=4
).map(lambda pairs: urlencode(pairs, quote_via=quote).encode())
raw_form_bodies = st.lists(
    st.tuples(
        st.sampled_from((*METADATA, "x")),  # bytes as they are, unescaped
        st.binary(max_size=8).map(lambda b: bytes(c for c in b if c not in b"&=%+")),
    ),
    min_size=1,
    max_size=3,
).map(lambda pairs: b"&".join(k.encode() + b"=" + v for k, v in pairs))
bodies = st.one_of(
    st.just(b""),
    json_bodies,
    form_bodies,
    raw_form_bodies,
    st.text(max_size=300).map(str.encode),
    st.text(max_size=100).map(lambda t: ("{" + t).encode()),
    st.binary(max_size=300),
    st.integers(1, 16_000).map(lambda n: b"[" * n),
    st.integers(MAX_BODY - 2, MAX_BODY + 2).map(lambda n: b"x" * n),
    st.integers(MAX_OUTPUT - 3, MAX_OUTPUT + 3).map(lambda n: ("\u00e9" * n).encode()[:n]),
    st.integers(KEPT - 1, KEPT + 1).map(lambda n: b"message=" + b"x" * (n - 8)),
)
# header value -> the media type aiohttp reads from it ("" when there is no header)
CONTENT_TYPES = {
    None: "",
    "": "application/octet-stream",
    "application/json": "application/json",
    "application/json; charset=utf-8": "application/json",
    "APPLICATION/JSON": "application/json",
    "application/vnd.pingura+json": "application/vnd.pingura+json",
    "text/plain": "text/plain",
    "text/plain; charset=latin-1": "text/plain",
    "text/csv": "text/csv",
    FORM: FORM,
    "application/octet-stream": "application/octet-stream",
    "multipart/form-data; boundary=x": "multipart/form-data",
    "image/png": "image/png",
}
ENCODINGS = [None, "identity", "gzip", "GZIP", "deflate", "x-custom", "identity, gzip"]
header_bytes = st.binary(max_size=250).map(
    lambda b: bytes(c for c in b if c == 9 or 0x20 <= c != 0x7F)
)  # what HTTP allows in a value
forwarded = st.one_of(
    st.none(), st.sampled_from(["198.51.100.1", "198.51.100.1, 127.0.0.5", "127.0.0.9"]), header_bytes
)


FAMILIES = {  # URL of a token (or of the known slug) -> the URL its pings are sent to
    "pingura": lambda token: f"/api/heartbeat/{quote(token, safe='')}",
    "healthchecks": lambda token: f"/ping/{quote(token, safe='')}",
    "slug": lambda token: f"/ping/{PING_KEY}/{SLUG}" if token == TOKEN else f"/ping/{'u' * 22}/{SLUG}",
}


@st.composite
def pings(draw):
    token = draw(mostly(st.just("known"), st.sampled_from(sorted(TOKENS))))
    family = draw(st.sampled_from(sorted(FAMILIES)))
    suffix = draw(suffixes)
    path = FAMILIES[family](TOKENS[token]) + ("" if suffix is None else "/" + quote(suffix, safe=""))
    query = draw(st.lists(query_pairs, max_size=5))
    body = draw(bodies)
    encoding = draw(mostly(st.sampled_from([None, "identity"]), st.sampled_from(ENCODINGS)))
    sent = gzip.compress(body) if encoding and "gzip" in encoding.lower() and draw(st.booleans()) else body
    methods = ["POST", "GET", "HEAD"] + (["PUT", "DELETE", "OPTIONS"] if family != "pingura" else [])
    return dict(
        method=draw(st.sampled_from(methods)),
        token=token,
        family=family,
        suffix=suffix,
        target=path + ("?" + urlencode(query, quote_via=quote) if query else ""),
        query=query,
        body=body,
        sent=sent,
        content_type=draw(st.sampled_from(list(CONTENT_TYPES))),
        encoding=encoding,
        chunks=draw(st.none() | st.integers(1, 5000)),
        user_agent=draw(st.none() | header_bytes),
        forwarded=draw(forwarded),
    )


def raw_request(ping: dict) -> bytes:
    headers: dict[str, str | bytes] = {}
    for name, key in (
        ("Content-Type", "content_type"),
        ("Content-Encoding", "encoding"),
        ("User-Agent", "user_agent"),
        ("X-Forwarded-For", "forwarded"),
    ):
        if ping[key] is not None:
            headers[name] = ping[key]
    body, size = ping["sent"], ping["chunks"]
    if size is None:
        return request(ping["method"], ping["target"], headers, body)
    headers["Transfer-Encoding"] = "chunked"
    size = max(size, len(body) // 2000)  # a megabyte in one-byte chunks would only test patience
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    )
    return request(ping["method"], ping["target"], headers, chunked + b"0\r\n\r\n", length=False)


# what ingest must make of it --------------------------------------------------------
WORDS = {"fail": "fail", "start": "start", "log": "log", "run": "start", "complete": "success"}
STATES = {"run": "start", "complete": "success", "fail": "fail", "ok": "success"}


READ_FROM_QUERY = (*METADATA, "rid", "series", "state", "metric", "msg", "ping")


def is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def readable_query(query: list[tuple[str, str | bytes]]) -> list[tuple[str, str]] | None:
    """The query as text; None when a parameter ingest reads is not UTF-8 (refused: it
    could only be stored with U+FFFD in place of what was sent)."""
    if any(isinstance(v, bytes) and k in READ_FROM_QUERY and not is_utf8(v) for k, v in query):
        return None
    return [(k, v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in query]


def form_fields(body: bytes) -> dict[str, bytes]:
    """The metadata fields of a form, as bytes: split at ``&`` and ``=``, ``+`` a space,
    percent-escapes unescaped; the last of a repeated field counts (as a dict keeps it)."""
    fields = {}
    for part in body.split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            name = unquote_to_bytes(name.replace(b"+", b" "))
            if name in (b"status", b"message", b"duration"):
                fields[name.decode()] = unquote_to_bytes(value.replace(b"+", b" "))
    return fields


def first(query: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in query if key == name), None)


def outcome(suffix: str | None, state: str | None = None) -> tuple[str, int | None] | None:
    if state is not None:
        return (STATES[state], None) if suffix is None and state in STATES else None
    if suffix is None:
        return "success", None
    if suffix in WORDS:
        return WORDS[suffix], None
    if (
        suffix
        and suffix.isascii()
        and suffix.isdigit()
        and len(suffix.lstrip("0")) <= 3
        and int(suffix) <= 255
    ):
        return ("success" if int(suffix) == 0 else "fail"), int(suffix)
    return None


def run_id(query: list[tuple[str, str]]) -> tuple[bool, str | None]:
    """(accepted, the run id stored)"""
    rid = first(query, "rid")
    if rid is not None:
        try:
            ok = str(uuid.UUID(rid)) == rid.lower()  # the 8-4-4-4-12 spelling only, any case
        except ValueError:
            ok = False
        return ok, rid.lower() if ok else None
    series = first(query, "series")
    return (len(series) <= 100, series) if series else (True, None)


def output_of(body: bytes) -> tuple[str, bool]:
    if len(body) <= MAX_OUTPUT:
        return body.decode("utf-8", "replace"), False
    return codecs.getincrementaldecoder("utf-8")("replace").decode(body[:MAX_OUTPUT]), True


def json_object(body: bytes) -> dict | None:
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def metadata(fields: dict) -> dict | None:
    """What is stored from the fields, or None if they are refused."""
    stored = {}
    for name, limit in (("status", 100), ("message", 10_000)):
        if fields.get(name) is not None:
            if not isinstance(fields[name], str) or len(fields[name]) > limit:
                return None
            stored[name] = fields[name]
    if fields.get("duration") is not None:
        raw = fields["duration"]
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)) or len(str(raw)) > 64:
            return None
        try:
            parse_duration_s(str(raw))
        except ValueError:
            return None
        stored["duration_raw"] = str(raw)
    return stored


def expected(ping: dict) -> dict | None:
    """The stored fields of an accepted ping; None if it must be refused."""
    query = readable_query(ping["query"])
    if query is None or ping["token"] != "known" or outcome(ping["suffix"], first(query, "state")) is None:
        return None
    if len(ping["body"]) > MAX_BODY or ping["encoding"] not in (None, "identity") or not run_id(query)[0]:
        return None
    fields: dict = {}
    for name, value in query:
        if name in METADATA:
            fields.setdefault(name, value)  # the first of repeated parameters
    metric = next((v for k, v in query if k == "metric" and v.startswith("duration:")), None)
    if "duration" not in fields and metric is not None:
        fields["duration"] = metric.removeprefix("duration:")
    body, media_type = ping["body"], CONTENT_TYPES[ping["content_type"]]
    text = None
    if not body:
        pass
    elif media_type == "application/json" or media_type.endswith("+json"):
        data = json_object(body) if len(body) <= KEPT else None
        if data is None:
            return None
        fields.update({k: data[k] for k in METADATA if data.get(k) is not None})
    elif media_type in ("", "application/octet-stream", FORM):
        found = {}
        if media_type == FORM and len(body) <= KEPT:
            raw = form_fields(body)
            if not all(is_utf8(v) for v in raw.values()):
                return None  # a field not UTF-8 is refused, as in a query string
            found = {k: v.decode() for k, v in raw.items()}
        if not found and body.lstrip().startswith(b"{") and len(body) <= KEPT:
            data = json_object(body) or {}
            candidate = {k: data[k] for k in METADATA if data.get(k) is not None}
            found = candidate if candidate and metadata(candidate) is not None else {}
        if found:
            fields.update(found)
        else:
            text = body
    elif media_type.startswith("text/"):
        text = body
    stored = metadata(fields)
    if stored is None:
        return None
    if text is not None:
        message = text.decode("utf-8", "replace")
        if "message" not in fields and len(message) <= 10_000:
            stored["message"] = message  # too long for a message: output only, not refused
        stored["output"], stored["output_truncated"] = output_of(text)
    stored["rid"] = run_id(query)[1]
    return stored


@given(ping=pings())
@PROFILE
async def test_every_ping_is_refused_whole_or_stored_exactly_as_sent(served, ping):
    served, reader = served
    before = ping_count(served.bus)
    response = await exchange(served.port, raw_request(ping), head=ping["method"] == "HEAD")
    status = status_of(response)
    stored = expected(ping)
    event(f"answered {status}")  # --hypothesis-show-statistics: how much got through
    if stored is None:
        assert status is not None and 400 <= status < 500, response[:300]
        assert ping_count(served.bus) == before
        return
    assert status == 200, response[:300]
    if ping["family"] != "pingura" and ping["method"] != "HEAD":
        assert response.endswith(b"\r\n\r\nOK"), response[-300:]  # what Healthchecks' clients compare
    [record] = await reader.poll(timeout_ms=1000)
    on_bus = decode(record.value)
    assert isinstance(on_bus, Ping)
    assert (on_bus.kind, on_bus.exit_code) == outcome(
        ping["suffix"], first(readable_query(ping["query"]), "state")
    )
    shown = ("status", "message", "duration_raw", "output", "rid")
    assert tuple(getattr(on_bus, k) for k in shown) == tuple(stored.get(k) for k in shown)
    assert on_bus.output_truncated == stored.get("output_truncated", False)
    assert on_bus.method == ping["method"]
    ua = (ping["user_agent"] or b"").strip(b" \t")
    assert on_bus.user_agent == ua.decode("utf-8", "replace")[:200]
    if ping["forwarded"] is None:
        assert on_bus.source_ip == "127.0.0.1"


header_names = st.sampled_from(
    [
        "Content-Length",
        "Transfer-Encoding",
        "Content-Encoding",
        "Content-Type",
        "Host",
        "User-Agent",
        "X-Forwarded-For",
        "Connection",
        "Expect",
        "Upgrade",
        "Cookie",
    ]
)
header_lines = st.lists(
    st.tuples(header_names | st.text("abcXYZ-_!#", min_size=1, max_size=8), header_bytes), max_size=6
)


@given(
    method=st.sampled_from(["POST", "GET", "HEAD", "PUT", "OPTIONS"]),
    suffix=suffixes,
    lines=header_lines,
    body=bodies,
)
@PROFILE
async def test_strange_headers_get_an_answer_below_500_and_store_at_most_what_was_accepted(
    served, method, suffix, lines, body
):
    served, reader = served
    before = ping_count(served.bus)
    target = f"/api/heartbeat/{TOKEN}" + ("" if suffix is None else "/" + quote(suffix, safe=""))
    head = [f"{method} {target} HTTP/1.1".encode(), b"Host: pingura.test", b"Connection: close"]
    head += [name.encode() + b": " + value for name, value in lines]
    response = await exchange(
        served.port,
        b"\r\n".join(head) + b"\r\n\r\n" + body,
        head=method == "HEAD",
        timeout_s=BODY_TIMEOUT_S + 5,
    )
    status = status_of(response)
    assert status is None or status < 500, response[:300]  # None: aiohttp may just close on garbage
    assert ping_count(served.bus) == before + (status == 200)
    if status == 200:
        await reader.poll(timeout_ms=1000)  # keep the reader at the end for the next example


# Uptime Kuma's push URL: its own words, the same rules for bodies -------------------------
MAX_KUMA_PING_MS = 400 * 86400 * 1000
kuma_pings = st.sampled_from(
    ["123", "12.5ms", " 7", "-1", "-0", "abc", ".5", "5.", "+3", "1e3", "", "99999999999"]
) | st.text(max_size=8)
kuma_pairs = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(["up", "down", "", "pending", "UP"])),
    st.tuples(st.just("msg"), st.text(max_size=60) | escaped_bytes),  # a request line holds 8 KiB
    st.tuples(st.just("ping"), kuma_pings),
    st.tuples(st.just("x"), st.text(max_size=5)),
)


def kuma_duration_s(ping: str) -> tuple[bool, float | None]:
    """(accepted, seconds) as JavaScript's parseFloat reads the start of ``ping``, without exponents."""
    rest = ping.lstrip()
    sign = rest[:1] if rest[:1] in ("+", "-") else ""
    number = ""
    for ch in rest[len(sign) :]:
        if ch in "0123456789" or (ch == "." and "." not in number):
            number += ch
        else:
            break
    if not any(ch in "0123456789" for ch in number):
        return True, None
    value = float(number)
    if (sign == "-" and value > 0) or value > MAX_KUMA_PING_MS:
        return False, None
    return True, value / 1000


@given(
    token=mostly(st.just("known"), st.sampled_from(sorted(TOKENS))),
    query=st.lists(kuma_pairs, max_size=4),
    body=bodies,
    content_type=st.sampled_from(list(CONTENT_TYPES)),
    method=st.sampled_from(["GET", "POST", "PUT", "HEAD"]),
)
@PROFILE
async def test_every_kuma_push_is_refused_whole_or_stored_as_kuma_reads_it(
    served, token, query, body, content_type, method
):
    served, reader = served
    before = ping_count(served.bus)
    target = f"/api/push/{quote(TOKENS[token], safe='')}" + (
        "?" + urlencode(query, quote_via=quote) if query else ""
    )
    headers = {"Content-Type": content_type} if content_type is not None else {}
    response = await exchange(served.port, request(method, target, headers, body), head=method == "HEAD")
    status = status_of(response)
    readable = readable_query(query)
    query = readable or []
    accepted, seconds = kuma_duration_s(first(query, "ping") or "")
    message = first(query, "msg") or None
    if (
        readable is None
        or token != "known"
        or not accepted
        or len(body) > MAX_BODY
        or (message is not None and len(message) > 10_000)
    ):
        assert status is not None and 400 <= status < 500, response[:300]
        assert ping_count(served.bus) == before
        return
    assert status == 200, response[:300]
    if method != "HEAD":
        assert response.endswith(b'{"ok": true}'), response[-100:]
    [record] = await reader.poll(timeout_ms=1000)
    on_bus = decode(record.value)
    assert on_bus.kind == ("success" if first(query, "status") in (None, "", "up") else "fail")
    assert on_bus.duration_s == pytest.approx(seconds)
    media_type = CONTENT_TYPES[content_type]
    text = (
        body
        if body and (media_type in ("", "application/octet-stream", FORM) or media_type.startswith("text/"))
        else None
    )
    if text is not None and message is None and len(text.decode("utf-8", "replace")) <= 10_000:
        message = text.decode("utf-8", "replace")
    assert on_bus.message == message
    assert (on_bus.output, on_bus.output_truncated) == (
        output_of(text) if text is not None else (None, False)
    )
