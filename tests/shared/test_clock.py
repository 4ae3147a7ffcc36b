import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.clock import MAX_ISO_MS, MIN_ISO_MS, iso_ms, now_ms


def test_it_spells_a_known_instant():
    assert iso_ms(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"


def test_it_spells_the_epoch_and_the_millisecond_before_it():
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(-1) == "1969-12-31T23:59:59.999Z"


def test_it_spells_both_ends_of_the_range_with_four_digit_years():
    assert iso_ms(MIN_ISO_MS) == "0001-01-01T00:00:00.000Z"
    assert iso_ms(MAX_ISO_MS) == "9999-12-31T23:59:59.999Z"


@pytest.mark.parametrize("ms", [MIN_ISO_MS - 1, MAX_ISO_MS + 1, 10**18, -(10**18)])
def test_it_refuses_instants_beyond_four_digit_years(ms):
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        iso_ms(ms)


@given(st.datetimes(timezones=st.just(UTC)))
def test_it_agrees_with_datetime_to_the_millisecond(moment):
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    m = moment
    spelled = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    assert iso_ms(ms) == f"{spelled}.{m.microsecond // 1000:03d}Z"
    assert datetime.fromisoformat(iso_ms(ms)) == moment


def test_it_reads_the_wall_clock_in_milliseconds():
    before = time.time_ns() // 1_000_000
    reading = now_ms()
    after = time.time_ns() // 1_000_000
    assert isinstance(reading, int)
    assert before <= reading <= after
