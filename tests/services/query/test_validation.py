import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.query.api.errors import one_line
from services.query.api.schemas.decode import decode_body
from services.query.api.schemas.heartbeats import HeartbeatCreate
from services.query.validation import (
    MAX_TIME_MS,
    InvalidField,
    name_field,
    parse_range_ms,
    parse_time_ms,
    parse_whole_number,
)


def monitor_fields(body: dict, *, creating: bool, known_channels: set[str]) -> dict:
    """A create body checked as the API checks it (the body type, then its fields)."""
    assert creating and not known_channels
    return decode_body(body, HeartbeatCreate).monitor_fields(creating=True)


NOW_MS = 1_700_000_000_000
DAY_MS = 86_400_000


@pytest.mark.parametrize(("text", "ms"), [
    ("0", 0),
    (str(MAX_TIME_MS), MAX_TIME_MS),
    ("2024-01-01T00:00:00.001Z", 1_704_067_200_001),  # to the millisecond, no float rounding
    ("2024-01-01T01:00:00+01:00", 1_704_067_200_000),
    ("2024-01-01", 1_704_067_200_000),  # no offset: UTC
    ("9999-12-31T23:59:59.999", MAX_TIME_MS),
])  # fmt: skip
def test_it_reads_epoch_ms_and_iso_8601_from_1970_to_9999(text, ms):
    assert parse_time_ms("to", text, default=-1) == ms


@pytest.mark.parametrize("text", [
    str(MAX_TIME_MS + 1), "-1", "\u00b2", "\u0661\u0662", "9" * 5000, "1969-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.999-00:01", "0001-01-01T00:00:00+00:01", " 1", "1\n",
])  # fmt: skip
def test_it_refuses_any_other_time_naming_the_field(text):
    with pytest.raises(InvalidField) as refused:
        parse_time_ms("to", text, default=0)
    assert refused.value.field == "to" and refused.value.status == 400


def test_it_defaults_a_range_to_the_span_before_to_but_never_before_1970():
    assert parse_range_ms({}, NOW_MS, 7 * DAY_MS) == (NOW_MS - 7 * DAY_MS, NOW_MS)
    assert parse_range_ms({"to": "1000"}, NOW_MS, 7 * DAY_MS) == (0, 1000)
    assert parse_range_ms({}, NOW_MS, None) == (0, NOW_MS)


def test_it_refuses_a_range_that_ends_before_it_starts():
    with pytest.raises(InvalidField) as refused:
        parse_range_ms({"from": "2", "to": "1"}, NOW_MS, None)
    assert refused.value.field == "from"


@pytest.mark.parametrize("text", ["0", "1001", "\u0661", "1_0", "+5", "", "9" * 5000])
def test_it_takes_whole_numbers_in_ascii_digits_within_bounds_only(text):
    with pytest.raises(InvalidField):
        parse_whole_number("limit", text, 1, 1000)
    assert parse_whole_number("limit", "0050", 1, 1000) == 50


@pytest.mark.parametrize("interval", [10**400, 1e308, -1e308, float("inf"), float("nan")])
def test_it_refuses_a_period_of_any_size_without_overflowing(interval):
    with pytest.raises(InvalidField) as refused:
        monitor_fields({"name": "x", "interval": interval}, creating=True, known_channels=set())
    assert refused.value.field == "interval"


def test_an_error_message_is_one_short_line_whatever_the_input_holds():
    message = one_line("name\nwith\r\nbreaks\u2028and\x1cseparators " + "x" * 1000)
    assert len(message.splitlines()) == 1 and len(message) <= 300
    assert message.startswith("name with breaks and separators x")


@pytest.mark.parametrize("field", ["max_consecutive_misses", "recovery_threshold"])
def test_a_whole_number_written_as_a_float_counts_and_a_fraction_does_not(field):
    assert (
        monitor_fields({"name": "n", "interval": 60, field: 3.0}, creating=True, known_channels=set())[field]
        == 3
    )
    with pytest.raises(InvalidField) as refused:
        monitor_fields({"name": "n", "interval": 60, field: 3.5}, creating=True, known_channels=set())
    assert refused.value.field == field


# names -------------------------------------------------------------------------------------
REFUSED_IN_NAMES = [
    "\x00",
    "\x07",
    "\x1b",
    "\r",
    "\n",
    "\t",
    "\x7f",
    "\x85",
    "\x9b",  # C0, DEL, C1 (NEL, CSI)
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",  # bidi
    "\u200b",
    "\u2060",
    "\ufeff",
    "\u2028",
    "\u2029",  # invisible, or a line break
]


@pytest.mark.parametrize("char", REFUSED_IN_NAMES)
def test_a_name_with_a_control_bidi_or_invisible_character_is_refused_naming_the_field_and_the_character(
    char,
):
    with pytest.raises(InvalidField) as refused:
        name_field("name", f"backup{char}db")
    assert refused.value.field == "name" and refused.value.status == 400
    assert f"U+{ord(char):04X}" in str(refused.value) and len(str(refused.value).splitlines()) == 1


@pytest.mark.parametrize("name", [
    "Nightly backup", "Sauvegarde nocturne à 3h", "גיבוי לילי", "نسخ\u200fاحتياطي", "👨\u200d👩\u200d👧 family",  # noqa: RUF001 - Arabic letters on purpose: a name in any script is taken
    "می\u200cخواهم", "日次バックアップ", "x" * 200,  # noqa: RUF001 - Persian letters on purpose, as above
])  # fmt: skip
def test_a_name_in_any_script_with_emoji_and_joiners_is_taken(name):
    assert name_field("name", name) == name


def test_a_name_is_trimmed_and_must_keep_1_to_200_characters():
    assert name_field("name", "  db \n") == "db"
    for bad in ("", "  ", "x" * 201, None, 5, ["x"]):
        with pytest.raises(InvalidField, match=r"^name: required, 1-200 characters"):
            name_field("name", bad)
    assert name_field("name", "", required=False) == ""


@given(st.text(max_size=50))
def test_a_name_taken_is_stripped_text_without_any_refused_character(text):
    try:
        taken = name_field("name", text)
    except InvalidField as refused:
        assert refused.field == "name"
        return
    assert taken == text.strip() and 1 <= len(taken) <= 200
    assert not any(unicodedata.category(c) == "Cc" or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                   for c in taken)  # fmt: skip


def test_every_tag_follows_the_name_rule():
    with pytest.raises(InvalidField) as refused:
        monitor_fields({"name": "n", "interval": 60, "tags": ["ok", "ev\u202eil"]}, creating=True,
                       known_channels=set())  # fmt: skip
    assert refused.value.field == "tags" and "U+202E" in str(refused.value)


WEBHOOK = {"kind": "webhook", "config": {"url": "https://hooks.example.com/x"}}


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/heartbeats", {"name": "db\x1b[31m", "interval": "1h"}, "name"),
    ("PATCH", "/heartbeats/{hb}", {"name": "evil\u202egpj.exe"}, "name"),
    ("POST", "/heartbeats", {"name": "db", "interval": "1h", "tags": ["a\u2066b"]}, "tags"),
    ("POST", "/channels", {**WEBHOOK, "name": "ops\x07"}, "name"),
    ("POST", "/projects", {"name": "team\u200b"}, "name"),
    ("POST", "/keys", {"name": "ci\r\nX-Injected: 1"}, "name"),
])  # fmt: skip
async def test_every_name_field_of_the_api_refuses_the_same_characters(api, method, path, body, field):
    from tests.services.query.api.tenants import new_tenant

    tenant = await new_tenant(api)
    hb = await tenant.ok("POST", "/heartbeats", 201, json={"name": "ok", "interval": "1h"})
    headers = {} if path == "/projects" else tenant.headers  # projects: the admin key (the client's default)
    async with api.http.request(method, api.url + path.format(hb=hb["id"]), json=body, headers=headers) as r:
        answer = await r.json()
    assert (r.status, answer["field"]) == (400, field), answer
    assert "U+" in answer["error"]
