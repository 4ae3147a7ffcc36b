import ipaddress
import json

import pytest
from multidict import CIMultiDict

from services.ingest.logic import (
    PingRejected,
    client_ip,
    header_text,
    parse_metadata,
    parse_outcome,
    refuse_undecodable,
)


@pytest.mark.parametrize("suffix, outcome", [("", ("success", None)), ("fail", ("fail", None)),
                                             ("0", ("success", 0)), ("1", ("fail", 1)), ("255", ("fail", 255))])
def test_the_url_says_success_failure_or_exit_code(suffix, outcome):
    assert parse_outcome(suffix) == outcome


def test_leading_zeros_do_not_change_an_exit_code():
    assert parse_outcome("007") == ("fail", 7)
    assert parse_outcome("0000") == ("success", 0)


@pytest.mark.parametrize("suffix, words", [
    ("256", "out of range"), ("start", "invalid URL"), ("-1", "invalid URL"), ("0256", "out of range"),
    ("9" * 5000, "out of range"),  # int() would refuse it: 500
    ("\u00b2", "invalid URL"),  # isdigit() but not int()
    ("\u0663", "invalid URL"),  # int() reads it as 3
    ("\uff11", "invalid URL"),  # fullwidth 1
    ("Fail", "invalid URL"),
])
def test_other_suffixes_are_rejected_with_a_reason(suffix, words):
    with pytest.raises(PingRejected) as exc:
        parse_outcome(suffix)
    assert exc.value.status == 400 and words in exc.value.reason


def test_the_body_wins_over_the_query_string():
    fields = parse_metadata({"status": "q", "message": "from query"}, b'{"status": "b"}', "application/json")
    assert fields == {"status": "b", "message": "from query"}


def test_a_numeric_duration_is_seconds_and_the_raw_text_is_kept():
    fields = parse_metadata({}, b'{"duration": 2.5}', "application/json")
    assert fields == {"duration_s": 2.5, "duration_raw": "2.5"}


def test_a_plain_text_body_becomes_the_message():
    assert parse_metadata({}, b"backup done: 3 files", "text/plain") == {"message": "backup done: 3 files"}


@pytest.mark.parametrize("body, ctype, words", [
    (b"[1]", "application/json", "object"),
    (b'{"message": 5}', "application/json", "message must be a string"),
    (b'{"duration": "fast"}', "application/json", "cannot read duration"),
    (b"message=" + b"x" * 10_001, "application/x-www-form-urlencoded", "message is longer"),
])
def test_malformed_metadata_is_rejected(body, ctype, words):
    with pytest.raises(PingRejected) as exc:
        parse_metadata({}, body, ctype)
    assert exc.value.status == 400 and words in exc.value.reason


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
    assert parse_metadata({}, b"backup done: 3 files", form) == {"message": "backup done: 3 files"}
    assert parse_metadata({}, b'{"status": "ok"}', form) == {"status": "ok"}
    assert parse_metadata({}, b"status=ok&duration=2s", form) == {
        "status": "ok", "duration_s": 2.0, "duration_raw": "2s"}


@pytest.mark.parametrize("ctype", ["", "application/octet-stream", "application/x-www-form-urlencoded"])
def test_an_undeclared_body_is_metadata_only_when_it_is_a_valid_metadata_object(ctype):
    assert parse_metadata({}, b'{"message": "hi", "duration": 3}', ctype) == {
        "message": "hi", "duration_s": 3.0, "duration_raw": "3"}
    for text in (b"{not json", b'{"message": 5}', b'{"other": 1}', b'{"duration": "fast"}', b"[1]", b"{"):
        assert parse_metadata({}, text, ctype) == {"message": text.decode()}


def test_a_declared_text_body_is_the_message_even_when_it_looks_like_json():
    assert parse_metadata({}, b'{"status": "ok"}', "text/plain") == {"message": '{"status": "ok"}'}


def test_a_declared_json_body_must_be_valid_json():
    with pytest.raises(PingRejected) as exc:
        parse_metadata({}, b"{not json", "application/json")
    assert exc.value.status == 400
    assert parse_metadata({}, b'{"status": "ok"}', "application/vnd.pingura+json") == {"status": "ok"}


def test_text_that_is_not_utf_8_is_kept_with_replacement_characters():
    assert parse_metadata({}, b"caf\xe9 \xff", "text/plain") == {"message": "caf\ufffd \ufffd"}
    assert parse_metadata({}, b"caf\xe9=1", "application/x-www-form-urlencoded") == {"message": "caf\ufffd=1"}


def test_a_query_message_wins_over_a_text_body():
    assert parse_metadata({"message": "q"}, b"body", "text/plain") == {"message": "q"}


def test_other_media_types_count_as_pings_without_reading_the_body():
    assert parse_metadata({}, b"\x89PNG...", "image/png") == {}


@pytest.mark.parametrize("body, words", [
    (b"[" * 20_000, "not valid JSON"),  # deeper than the decoder recurses
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "not valid JSON"),
    (b'{"message": "\xff"}', "not valid JSON"),
    (b'{"message": "\\ud800"}', "not valid JSON"),  # a lone surrogate cannot become UTF-8
    (b'{"duration": 1e400}', "not valid JSON"),
    (b'{"duration": ' + b"9" * 5000 + b"}", "not valid JSON"),  # beyond what the decoder takes
    (b'{"duration": ' + b"9" * 4299 + b"}", "longer than 400 days"),  # not given to str(), which takes fewer
    (b'{"duration": ' + b"9" * 40 + b"}", "longer than 400 days"),
    (b'{"duration": 1e300}', "longer than 400 days"),
    ('{"duration": "\u0663s"}'.encode(), "cannot read duration"),
    (b'{"duration": true}', "duration must be"),
])
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


@pytest.mark.parametrize("headers, status", [
    ({"Content-Encoding": "gzip"}, 415),
    ({"Content-Encoding": "identity, br"}, 415),
    ({"Content-Encoding": "x-custom"}, 415),
    ({"Transfer-Encoding": "gzip, chunked"}, 400),
    ({"Transfer-Encoding": "identity"}, 400),
])
def test_a_body_ingest_cannot_read_as_sent_is_refused(headers, status):
    with pytest.raises(PingRejected) as exc:
        refuse_undecodable(CIMultiDict(headers))
    assert exc.value.status == status


@pytest.mark.parametrize("headers", [{}, {"Content-Encoding": "identity"}, {"Content-Encoding": ""},
                                     {"Transfer-Encoding": "Chunked"}])
def test_plain_bodies_pass(headers):
    refuse_undecodable(CIMultiDict(headers))
