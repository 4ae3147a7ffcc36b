import pytest

from shared.durations import format_duration_s, parse_duration_s


@pytest.mark.parametrize(
    "text, seconds",
    [("12.5s", 12.5), ("350ms", 0.35), ("1m30s", 90.0), ("2h", 7200.0), ("42", 42.0), ("0.5", 0.5), ("1d", 86400.0),
     ("1h 2m", 3720.0), ("5M", 300.0)],
)
def test_it_reads_the_duration_forms_people_write(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "12x", "s", "-5", "1m30", "nan", "inf", "1000d"])
def test_it_rejects_what_is_not_a_duration(text):
    with pytest.raises(ValueError):
        parse_duration_s(text)


def test_it_formats_seconds_shortly():
    assert format_duration_s(90) == "1m30s"
    assert format_duration_s(3600) == "1h"
    assert format_duration_s(0) == "0s"
