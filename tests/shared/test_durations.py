import pytest

from shared.durations import human_duration, parse_duration_s


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("12.5s", 12.5),
        ("350ms", 0.35),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("42", 42.0),
        ("0.5", 0.5),
        ("1d", 86400.0),
        ("1h 2m", 3720.0),
        ("5M", 300.0),
    ],
)
def test_it_reads_the_duration_forms_people_write(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "12x", "s", "-5", "1m30", "nan", "inf", "1000d"])
def test_it_rejects_what_is_not_a_duration(text):
    with pytest.raises(ValueError):
        parse_duration_s(text)


@pytest.mark.parametrize(
    ("duration_ms", "shown"),
    [(0, "0 s"), (999, "0 s"), (-5000, "0 s"), (45_000, "45 s"), (65_000, "1 min 5 s"), (3_900_000, "1 h 5 min"),
     (3_600_000, "1 h"), (86_400_000, "1 day"), (3 * 86_400_000 + 4 * 3_600_000 + 5_000, "3 days 4 h")],
)  # fmt: skip
def test_it_shows_a_duration_in_its_two_largest_units(duration_ms, shown):
    assert human_duration(duration_ms) == shown


@pytest.mark.parametrize(
    "text, seconds", [("1e3", 1000.0), ("1e-05", 0.00001), ("2.", 2.0), (".5s", 0.5), (" 12.5s ", 12.5)]
)
def test_it_reads_numbers_as_programs_print_them(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "\u0663",
        "\u0663s",
        "\u00b2",
        "1\u0660s",
        "1_000",
        "+5",
        "infinity",
        "1e400",
        "9" * 5000,
        "9" * 400 + "d",
        "1e9999999999",
        "\u212as",
    ],
)
def test_it_refuses_what_float_would_take_but_no_one_means(text):
    with pytest.raises(ValueError) as exc:
        parse_duration_s(text)
    assert len(str(exc.value)) < 120  # one line, the input cut short
