import ipaddress
import json
import re
from urllib.parse import parse_qsl

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from multidict import CIMultiDict, MultiDict

from services.ingest.logic import (
    QUERY_READ,
    PingRejected,
    check_slug,
    client_ip,
    header_text,
    parse_kuma_query,
    parse_metadata,
    parse_outcome,
    parse_run_id,
    query_fields,
    refuse_undecodable,
    refuse_undecodable_query,
    slug_monitor_id,
)


@pytest.mark.parametrize(
    "suffix, outcome",
    [
        ("", ("success", None)),
        ("fail", ("fail", None)),
        ("0", ("success", 0)),
        ("1", ("fail", 1)),
        ("255", ("fail", 255)),
        ("start", ("start", None)),
        ("log", ("log", None)),
        ("run", ("start", None)),
        ("complete", ("success", None)),
    ],
)
def test_the_url_says_success_failure_start_log_or_exit_code(suffix, outcome):
    assert parse_outcome(suffix) == outcome


@pytest.mark.parametrize(
    "state, kind", [("run", "start"), ("complete", "success"), ("fail", "fail"), ("ok", "success")]
)
def test_cronitors_state_says_what_happened(state, kind):
    assert parse_outcome("", state) == (kind, None)


@pytest.mark.parametrize("suffix, state, words", [("", "tick", "state must be"), ("fail", "run", "not both")])
def test_a_state_ingest_cannot_read_is_refused(suffix, state, words):
    with pytest.raises(PingRejected) as exc:
        parse_outcome(suffix, state)
    assert exc.value.status == 400 and words in exc.value.reason
    assert exc.value.healthchecks == (400, "invalid url format")


def test_leading_zeros_do_not_change_an_exit_code():
    assert parse_outcome("007") == ("fail", 7)
    assert parse_outcome("0000") == ("success", 0)


@pytest.mark.parametrize(
    "suffix, words",
    [
        ("256", "out of range"),
        ("Start", "invalid URL"),
        ("-1", "invalid URL"),
        ("0256", "out of range"),
        ("9" * 5000, "out of range"),  # int() would refuse it: 500
        ("\u00b2", "invalid URL"),  # isdigit() but not int()
        ("\u0663", "invalid URL"),  # int() reads it as 3
        ("\uff11", "invalid URL"),  # fullwidth 1
        ("Fail", "invalid URL"),
    ],
)
def test_other_suffixes_are_rejected_with_a_reason(suffix, words):
    with pytest.raises(PingRejected) as exc:
        parse_outcome(suffix)
    assert exc.value.status == 400 and words in exc.value.reason
    # Healthchecks: no route for a word it does not know (404), "invalid url format" past 255
    assert exc.value.healthchecks == ((400, "invalid url format") if "range" in words else (404, "not found"))


def test_a_run_id_is_a_uuid_kept_in_lower_case_or_cronitors_series():
    rid = "3F2A4B1C-0D5E-4F60-8A7B-9C0D1E2F3A4B"
    assert parse_run_id({"rid": rid}) == rid.lower()
    assert parse_run_id({"series": "1732720000.123"}) == "1732720000.123"
    assert parse_run_id({"rid": rid, "series": "s"}) == rid.lower()
    assert parse_run_id({}) is None and parse_run_id({"series": ""}) is None


@pytest.mark.parametrize(
    "query",
    [
        {"rid": "12345"},
        {"rid": "684e2e73-017e-465f-8149-d70b7c5aaa490"},
        {"rid": "{3f2a4b1c-0d5e-4f60-8a7b-9c0d1e2f3a4b}"},
        {"rid": ""},
        {"series": "s" * 101},
    ],
)
def test_a_run_id_that_is_neither_is_refused(query):
    with pytest.raises(PingRejected) as exc:
        parse_run_id(query)
    assert exc.value.status == 400
    if "rid" in query:
        assert exc.value.healthchecks == (400, "invalid uuid format")


def test_cronitors_duration_metric_is_the_duration_unless_one_is_given():
    assert query_fields(MultiDict([("metric", "count:3"), ("metric", "duration:12.5")])) == {
        "duration": "12.5"
    }
    assert query_fields(MultiDict([("duration", "2s"), ("metric", "duration:9")])) == {"duration": "2s"}
    assert query_fields(MultiDict([("message", "a"), ("message", "b"), ("x", "y")])) == {"message": "a"}


@pytest.mark.parametrize(
    "query, kind, fields",
    [
        ({}, "success", {}),
        ({"status": "up", "msg": "OK", "ping": "123"}, "success", {"message": "OK", "duration": "123ms"}),
        ({"status": "down", "msg": "disk full"}, "fail", {"message": "disk full"}),
        ({"status": "pending"}, "fail", {}),  # Kuma: anything but up is down
        ({"status": ""}, "success", {}),
        ({"ping": "12.5ms"}, "success", {"duration": "12.5ms"}),  # what parseFloat reads of it
        ({"ping": ".5"}, "success", {"duration": "0.5ms"}),
        ({"ping": "fast"}, "success", {}),
    ],
)
def test_uptime_kumas_push_words(query, kind, fields):
    assert parse_kuma_query(query) == (kind, fields)


@pytest.mark.parametrize("ping", ["-1", str(400 * 86400 * 1000 + 1), "1" * 70])
def test_a_kuma_ping_out_of_range_is_404_as_kuma_answers_it(ping):
    with pytest.raises(PingRejected) as exc:
        parse_kuma_query({"ping": ping})
    assert exc.value.status == 404


def test_a_slug_is_lower_case_letters_digits_dash_and_underscore():
    check_slug("backup-db_01")
    check_slug("x" * 100)
    for slug, status in (
        ("Backup", 400),
        ("back up", 404),
        ("x" * 101, 404),
        ("caf\u00e9", 404),
        ("a.b", 404),
    ):
        with pytest.raises(PingRejected) as exc:
            check_slug(slug)
        assert exc.value.status == status, slug


def test_a_slugs_heartbeat_id_is_derived_from_project_and_slug():
    assert slug_monitor_id("prj_1", "backup-a") == slug_monitor_id("prj_1", "backup-a")
    assert (
        len({slug_monitor_id("prj_1", "a"), slug_monitor_id("prj_2", "a"), slug_monitor_id("prj_1", "a", 1)})
        == 3
    )
    assert re.fullmatch(r"hb_[0-9a-f]{16}", slug_monitor_id("prj_1", "a"))


def test_the_body_wins_over_the_query_string():
    fields = parse_metadata({"status": "q", "message": "from query"}, b'{"status": "b"}', "application/json")
    assert fields == {"status": "b", "message": "from query"}


def test_a_numeric_duration_is_seconds_and_the_raw_text_is_kept():
    fields = parse_metadata({}, b'{"duration": 2.5}', "application/json")
    assert fields == {"duration_s": 2.5, "duration_raw": "2.5"}


def test_a_plain_text_body_is_the_output_and_the_message():
    assert parse_metadata({}, b"backup done: 3 files", "text/plain") == {
        "message": "backup done: 3 files",
        "output": "backup done: 3 files",
    }


def test_a_text_too_long_for_a_message_is_output_only_not_refused():
    text = b"line\n" * 3000
    assert parse_metadata({}, text, "text/plain") == {"output": text.decode()}


def test_output_keeps_the_first_bytes_and_says_it_was_cut():
    fields = parse_metadata({}, b"x" * 150_000, "", max_output_bytes=100 * 1024)
    assert fields == {"output": "x" * 102_400, "output_truncated": True}
    # what was kept of a longer body: the same, without a message
    kept = parse_metadata({}, b"x" * 65_536, "text/plain", size=900_000, max_output_bytes=1000)
    assert kept == {"output": "x" * 1000, "output_truncated": True}


def test_output_is_cut_on_a_character_boundary():
    fields = parse_metadata({}, "\u00e9".encode() * 10 + "\u20ac".encode(), "text/plain", max_output_bytes=22)
    assert fields["output"] == "\u00e9" * 10 and fields["output_truncated"] is True
    assert parse_metadata({}, b"ab\xff", "text/plain", max_output_bytes=2)["output"] == "ab"
    assert parse_metadata({}, "\U0001f600".encode() * 2, "", max_output_bytes=7)["output"] == "\U0001f600"


def test_no_output_is_kept_when_the_limit_is_zero():
    assert parse_metadata({}, b"done", "text/plain", max_output_bytes=0) == {"message": "done"}


def test_a_json_body_not_kept_whole_is_refused():
    with pytest.raises(PingRejected) as exc:
        parse_metadata({}, b'{"message": "' + b"x" * 100, "application/json", size=2_000_000)
    assert exc.value.status == 413


def test_an_undeclared_body_not_kept_whole_is_output_even_if_it_starts_like_metadata():
    fields = parse_metadata({}, b"status=ok&" + b"x" * 100, FORM, size=500_000, max_output_bytes=10)
    assert fields == {"output": "status=ok&", "output_truncated": True}


def test_without_body_metadata_a_json_body_is_not_read_and_text_is_output():
    assert parse_metadata({"message": "q"}, b'{"status": "b"}', "application/json", body_metadata=False) == {
        "message": "q"
    }
    assert parse_metadata({}, b"status=x", FORM, body_metadata=False) == {
        "message": "status=x",
        "output": "status=x",
    }


@pytest.mark.parametrize(
    "body, ctype, words",
    [
        (b"[1]", "application/json", "object"),
        (b'{"message": 5}', "application/json", "message must be a string"),
        (b'{"duration": "fast"}', "application/json", "cannot read duration"),
        (b"message=" + b"x" * 10_001, "application/x-www-form-urlencoded", "message is longer"),
    ],
)
def test_malformed_metadata_is_rejected(body, ctype, words):
    with pytest.raises(PingRejected) as exc:
        parse_metadata({}, body, ctype)
    assert exc.value.status == 400 and words in exc.value.reason


FORM = "application/x-www-form-urlencoded"
PROXY = (ipaddress.ip_network("10.0.0.0/8"),)


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer():
    assert client_ip("203.0.113.9", "198.51.100.1", PROXY) == "203.0.113.9"


def test_x_forwarded_for_from_a_trusted_proxy_gives_the_client():
    assert client_ip("10.0.0.2", "198.51.100.1, 10.0.0.7", PROXY) == "198.51.100.1"


def test_a_spoofed_first_hop_does_not_win():
    # The client prepended a fake address; the proxy appended the real one.
    assert client_ip("10.0.0.2", "1.2.3.4, 198.51.100.1", PROXY) == "198.51.100.1"


def test_a_form_body_without_metadata_is_text_sent_by_curl_d():
    form = "application/x-www-form-urlencoded"
    assert parse_metadata({}, b"backup done: 3 files", form) == {
        "message": "backup done: 3 files",
        "output": "backup done: 3 files",
    }
    assert parse_metadata({}, b'{"status": "ok"}', form) == {"status": "ok"}
    assert parse_metadata({}, b"status=ok&duration=2s", form) == {
        "status": "ok",
        "duration_s": 2.0,
        "duration_raw": "2s",
    }


@pytest.mark.parametrize("ctype", ["", "application/octet-stream", "application/x-www-form-urlencoded"])
def test_an_undeclared_body_is_metadata_only_when_it_is_a_valid_metadata_object(ctype):
    assert parse_metadata({}, b'{"message": "hi", "duration": 3}', ctype) == {
        "message": "hi",
        "duration_s": 3.0,
        "duration_raw": "3",
    }
    for text in (b"{not json", b'{"message": 5}', b'{"other": 1}', b'{"duration": "fast"}', b"[1]", b"{"):
        assert parse_metadata({}, text, ctype) == {"message": text.decode(), "output": text.decode()}


def test_a_declared_text_body_is_the_message_even_when_it_looks_like_json():
    assert parse_metadata({}, b'{"status": "ok"}', "text/plain") == {
        "message": '{"status": "ok"}',
        "output": '{"status": "ok"}',
    }


def test_a_declared_json_body_must_be_valid_json():
    with pytest.raises(PingRejected) as exc:
        parse_metadata({}, b"{not json", "application/json")
    assert exc.value.status == 400
    assert parse_metadata({}, b'{"status": "ok"}', "application/vnd.pingura+json") == {"status": "ok"}


def test_text_that_is_not_utf_8_is_kept_with_replacement_characters():
    assert parse_metadata({}, b"caf\xe9 \xff", "text/plain") == {
        "message": "caf\ufffd \ufffd",
        "output": "caf\ufffd \ufffd",
    }
    assert parse_metadata({}, b"caf\xe9=1", "application/x-www-form-urlencoded") == {
        "message": "caf\ufffd=1",
        "output": "caf\ufffd=1",
    }


def test_a_query_message_wins_over_a_text_body():
    assert parse_metadata({"message": "q"}, b"body", "text/plain") == {"message": "q", "output": "body"}


def test_other_media_types_count_as_pings_without_reading_the_body():
    assert parse_metadata({}, b"\x89PNG...", "image/png") == {}


@pytest.mark.parametrize(
    "body, words",
    [
        (b"[" * 20_000, "not valid JSON"),  # deeper than the decoder recurses
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "not valid JSON"),
        (b'{"message": "\xff"}', "not valid JSON"),
        (b'{"message": "\\ud800"}', "not valid JSON"),  # a lone surrogate cannot become UTF-8
        (b'{"duration": 1e400}', "not valid JSON"),
        (b'{"duration": ' + b"9" * 5000 + b"}", "not valid JSON"),  # beyond what the decoder takes
        (
            b'{"duration": ' + b"9" * 4299 + b"}",
            "longer than 400 days",
        ),  # not given to str(), which takes fewer
        (b'{"duration": ' + b"9" * 40 + b"}", "longer than 400 days"),
        (b'{"duration": 1e300}', "longer than 400 days"),
        ('{"duration": "\u0663s"}'.encode(), "cannot read duration"),
        (b'{"duration": true}', "duration must be"),
    ],
)
def test_hostile_json_is_a_400_with_a_one_line_reason(body, words):
    with pytest.raises(PingRejected) as exc:
        parse_metadata({}, body, "application/json")
    assert exc.value.status == 400 and words in exc.value.reason and "\n" not in exc.value.reason


def test_a_header_value_with_undecodable_bytes_keeps_what_it_can():
    # how aiohttp hands over the bytes b"caf\xe9/1.0"
    assert header_text(b"caf\xe9/1.0".decode("utf-8", "surrogateescape"), 200) == "caf\ufffd/1.0"
    assert header_text("curl/8.5.0", 4) == "curl"
    assert json.dumps(header_text("\udcff" * 300, 200), ensure_ascii=False).encode()


def test_a_garbled_forwarded_address_from_a_trusted_proxy_is_kept_as_valid_text():
    forwarded = b"\xff\xfe, 10.0.0.7".decode("utf-8", "surrogateescape")
    assert client_ip("10.0.0.2", forwarded, PROXY) == "\ufffd\ufffd"


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"Content-Encoding": "gzip"}, 415),
        ({"Content-Encoding": "identity, br"}, 415),
        ({"Content-Encoding": "x-custom"}, 415),
        ({"Transfer-Encoding": "gzip, chunked"}, 400),
        ({"Transfer-Encoding": "identity"}, 400),
    ],
)
def test_a_body_ingest_cannot_read_as_sent_is_refused(headers, status):
    with pytest.raises(PingRejected) as exc:
        refuse_undecodable(CIMultiDict(headers))
    assert exc.value.status == status


@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Encoding": "identity"}, {"Content-Encoding": ""}, {"Transfer-Encoding": "Chunked"}],
)
def test_plain_bodies_pass(headers):
    refuse_undecodable(CIMultiDict(headers))


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "body, field",
    [
        (b"message=caf%E9", "message"),  # Latin-1, percent-escaped
        (b"status=caf\xe9&message=ok", "status"),  # Latin-1, raw
        (b"duration=%ED%A0%80", "duration"),  # a surrogate spelled in UTF-8's way: not UTF-8
        (b"message=ok&message=%FF", "message"),  # the one that counts (the last in a form)
    ],
)
def test_a_form_field_that_is_not_utf_8_is_refused_naming_it(body, field):
    # A 200 means stored as sent: read leniently, it would be stored with U+FFFD instead.
    with pytest.raises(PingRejected) as exc:
        parse_metadata({}, body, FORM)
    assert (exc.value.status, exc.value.reason) == (400, f"{field} in the form body is not UTF-8")


def test_a_form_is_read_as_utf_8_raw_or_percent_escaped_and_what_it_does_not_use_is_not_checked():
    assert parse_metadata({}, b"message=caf%C3%A9&x=%FF", FORM) == {"message": "caf\u00e9"}
    assert parse_metadata({}, "status=caf\u00e9+ok&\xe9=1".encode("utf-8") + b"\xff", FORM) == {
        "status": "caf\u00e9 ok"
    }
    assert parse_metadata({}, b"message=%EF%BF%BD", FORM) == {"message": "\ufffd"}  # sent as such: kept


@pytest.mark.parametrize(
    "raw, field",
    [
        ("message=%FF", "message"),
        ("x=1&status=caf%E9", "status"),
        ("series=%ED%A0%80", "series"),
        ("metric=duration:%C3", "metric"),
        ("msg=%FE", "msg"),
        ("rid=%FF", "rid"),
    ],
)
def test_a_query_parameter_ingest_reads_that_is_not_utf_8_is_refused_naming_it(raw, field):
    with pytest.raises(PingRejected) as exc:
        refuse_undecodable_query(raw)
    assert (exc.value.status, exc.value.reason) == (400, f"{field} in the query string is not UTF-8")


@pytest.mark.parametrize(
    "raw", ["", "message=ok", "x=%FF&message=caf%C3%A9", "message=%EF%BF%BD", "%FF=1", "utm_source=%E9t%E9"]
)
def test_query_parameters_in_utf_8_or_not_read_pass(raw):
    refuse_undecodable_query(raw)


def _refused_by_full_parse(raw: str) -> str | None:
    """What the check decided before its fast path: every parameter parsed and looked at."""
    if "%" not in raw:
        return None
    for name, value in parse_qsl(raw, keep_blank_values=True, errors="surrogateescape"):
        if name in QUERY_READ:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"{name} in the query string is not UTF-8"
    return None


_VALUE_PIECES = st.sampled_from(
    ["ok", "caf", "+", "%", "%2", "%20", "%3A", "%26", "%3D", "%7F", "%80", "%C3", "%A9", "%c3%a9", "%FF",
     "%e9", "%ED%A0%80", "\u00e9", "\udce9", ";"]
)  # fmt: skip
_PARAMS = st.tuples(
    st.sampled_from(["message", "msg", "status", "rid", "x", "utm", "%FF", ""]),
    st.lists(_VALUE_PIECES, max_size=6).map("".join),
).map("=".join)


@example("msg=\udce9%20")  # a raw byte that was not UTF-8, beside an escape of an ASCII one
@example("x=%FF&msg=%C3")
@given(st.lists(_PARAMS, max_size=5).map("&".join))
def test_the_query_check_decides_as_parsing_every_parameter_does(raw):
    expected = _refused_by_full_parse(raw)
    if expected is None:
        refuse_undecodable_query(raw)
    else:
        with pytest.raises(PingRejected) as exc:
            refuse_undecodable_query(raw)
        assert exc.value.reason == expected
