import ipaddress

import pytest

from services.ingest.logic import PingRejected, client_ip, parse_metadata, parse_outcome


@pytest.mark.parametrize("suffix, outcome", [("", ("success", None)), ("fail", ("fail", None)),
                                             ("0", ("success", 0)), ("1", ("fail", 1)), ("255", ("fail", 255))])
def test_the_url_says_success_failure_or_exit_code(suffix, outcome):
    assert parse_outcome(suffix) == outcome


@pytest.mark.parametrize("suffix, words", [("256", "out of range"), ("start", "invalid URL"), ("-1", "invalid URL")])
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
