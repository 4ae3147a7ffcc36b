import pytest

from services.query.uptime import uptime_percent

START_MS, NOW_MS = 1_000, 11_000  # a 10 s window: each second is 10 %

CASES = [
    # (transitions, initial status, expected %)
    ([], "up", 100.0),
    ([], "down", 0.0),
    ([], "new", None),
    ([], "paused", None),
    ([(6_000, "down")], "up", 50.0),
    ([(6_000, "late")], "up", 100.0),  # late is still up
    ([(3_000, "down"), (4_000, "up")], "up", 90.0),
    # paused time is not observed: 2 s down of 6 observed seconds
    ([(3_000, "paused"), (7_000, "down"), (9_000, "up")], "up", round(100 * 4 / 6, 3)),
    ([(1_000, "paused"), (5_000, "up"), (8_000, "down")], "new", 50.0),
    ([(6_000, "up")], "new", 100.0),  # the time before the first ping is not observed
    # changes before the window only decide the status it starts in
    ([(0, "down"), (500, "up"), (900, "down")], "new", 0.0),
    ([(0, "down"), (6_000, "up")], "up", 50.0),
    # changes at or after now are ignored
    ([(11_000, "down"), (12_000, "paused")], "up", 100.0),
    ([(2_000, "down"), (2_000, "up")], "up", 100.0),  # a zero-length outage weighs nothing
    ([(4_000, "down")], "up", 30.0),
    ([(START_MS + 1, "down")], "up", round(100 * 1 / 10_000, 3)),  # three decimals
]


@pytest.mark.parametrize(("transitions", "initial_status", "expected"), CASES)
def test_uptime_weights_each_status_by_its_time(transitions, initial_status, expected):
    assert uptime_percent(transitions, initial_status, START_MS, NOW_MS) == expected


def test_an_empty_or_inverted_window_has_no_uptime():
    assert uptime_percent([], "up", NOW_MS, NOW_MS) is None
    assert uptime_percent([(5_000, "down")], "up", NOW_MS, START_MS) is None


def test_narrower_windows_reuse_the_same_transitions():
    transitions = [(2_000, "down"), (8_000, "up")]
    assert uptime_percent(transitions, "up", 7_000, NOW_MS) == 75.0
    assert uptime_percent(transitions, "up", 9_000, NOW_MS) == 100.0
