"""Runs too early or too often, in the evaluator's pure core (docs/semantics.md, "Runs too early or
too often")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.logic.cadence import interval_ms
from shared.events import Alert, CheckinJudged, StatusChanged
from shared.rules import CadenceRule
from tests.services.evaluator.harness import H, M, Monitor, S, local_ms

EARLY = CadenceRule(early_s=300)
OFTEN = CadenceRule(max_runs=2)


def judged(hb: Monitor) -> list[tuple[list[str], int]]:
    return [(j.verdicts, j.at_ms) for j in hb.of(CheckinJudged)]


def test_an_hourly_job_that_starts_running_every_minute_goes_down_as_too_early():
    hb = Monitor(cadence=EARLY).ping(0).ping(H).ping(H + 1 * M)
    assert hb.alerts == [("down", H + 1 * M)]
    assert hb.of(Alert)[0].reason == (
        "1 consecutive problem(s) (limit 1); latest: run came 59 min early "
        "(expected at 1970-01-01T02:00:00.000Z; tolerance 5 min) at 1970-01-01T01:01:00.000Z"
    )
    assert hb.of(CheckinJudged)[0].alerted


def test_an_hourly_job_that_starts_running_every_minute_is_too_often_on_its_third_run_in_the_hour():
    hb = Monitor(cadence=OFTEN).ping(0).ping(H).ping(H + 1 * M)
    assert hb.alerts == []  # two in an hour: allowed
    hb.ping(H + 2 * M)
    assert hb.alerts == [("down", H + 2 * M)]
    assert hb.of(Alert)[0].reason.endswith(
        "latest: 3 runs within 2 min; at most 2 expected in 1 h at 1970-01-01T01:02:00.000Z"
    )
    assert judged(hb) == [(["too_often"], H + 2 * M)]


def test_both_found_in_one_run_are_one_problem_with_both_reasons():
    hb = Monitor(cadence=CadenceRule(early_s=300, max_runs=1), max_consecutive_misses=3)
    hb.ping(0).ping(H).ping(H + 1 * M)
    assert hb.state.problems == 1
    assert hb.of(CheckinJudged)[0].verdicts == ["too_early", "too_often"]
    assert hb.of(CheckinJudged)[0].reason == (
        "run came 59 min early (expected at 1970-01-01T02:00:00.000Z; tolerance 5 min); "
        "2 runs within 1 min; at most 1 expected in 1 h"
    )


def test_a_job_that_runs_every_minute_stays_down_and_comes_back_once_it_runs_hourly_again():
    hb = Monitor(cadence=EARLY).ping(0)
    for minute in range(1, 11):
        hb.start(minute * M).ping(minute * M + 5 * S)
    assert hb.alerts == [("down", 1 * M + 5 * S)]  # no up between: the end of each run is the problem
    assert hb.status == "down"
    hb.start(10 * M + H).ping(10 * M + H + 5 * S)
    assert hb.alerts == [("down", 1 * M + 5 * S), ("up", 10 * M + H + 5 * S)]


def test_the_first_check_in_ever_is_never_early():
    hb = Monitor(cadence=CadenceRule(early_s=1, max_runs=1)).ping(5 * S)
    assert hb.alerts == [] and hb.of(CheckinJudged) == [] and hb.status == "up"


def test_a_run_within_its_tolerance_is_not_early():
    hb = Monitor(cadence=EARLY).ping(0).ping(H - 5 * M).ping(2 * H - 9 * M)
    assert hb.of(CheckinJudged) == []
    assert hb.statuses == ["up"]


def test_a_late_check_in_after_a_miss_is_late_not_early():
    hb = Monitor(cadence=EARLY, max_consecutive_misses=2).ping(0).ticks(H, H + 15 * M, 10 * S)
    assert hb.misses == [H + 10 * M] and hb.next_expected_ms == 2 * H  # the window moved on
    hb.ping(H + 15 * M)
    assert hb.of(CheckinJudged) == [] and hb.status == "up"


def test_a_check_in_arriving_out_of_order_is_not_early():
    hb = Monitor(cadence=CadenceRule(early_s=300, max_runs=3)).ping(0).ping(H)
    hb.ping(H - 30 * M, ping_id="older")  # older than the last one: delayed on its way
    assert hb.of(CheckinJudged) == []
    assert hb.state.extra.recent == (0, H - 30 * M, H)


def test_the_retry_of_a_failed_run_is_not_early():
    hb = Monitor(cadence=EARLY, max_consecutive_misses=2).ping(0).fail(H).ping(H + 2 * M)
    assert hb.of(CheckinJudged) == [] and hb.state.problems == 0


def test_a_job_that_sends_its_start_is_judged_by_its_check_in_so_its_run_time_does_not_make_it_early():
    hb = Monitor(cadence=CadenceRule(early_s=10))
    for hour in range(4):
        hb.start(hour * H).ping(hour * H + 40 * S)  # starts 40 s before the check-in expected
    assert hb.of(CheckinJudged) == [] and hb.alerts == []


def test_runs_a_few_seconds_early_each_hour_are_never_too_often():
    hb = Monitor(cadence=CadenceRule(max_runs=1))
    at = 0
    for _ in range(6):
        hb.ping(at)
        at += H - 20 * S
    assert hb.of(CheckinJudged) == []


def test_too_often_in_interval_mode_allows_the_interval_less_the_early_tolerance():
    hb = Monitor(cadence=CadenceRule(max_runs=1, early_s=15 * 60)).ping(0).ping(46 * M)
    assert hb.of(CheckinJudged) == []
    hb.ping(46 * M + 44 * M)
    assert judged(hb) == [(["too_early", "too_often"], 90 * M)]


def test_one_early_run_below_the_limit_is_a_problem_that_a_run_on_time_clears():
    hb = Monitor(cadence=EARLY, max_consecutive_misses=2).ping(0).ping(30 * M)
    assert hb.state.problems == 1 and hb.alerts == [] and hb.status == "up"
    hb.ping(30 * M + H)
    assert hb.state.problems == 0
    hb.ping(40 * M + H).ping(50 * M + H)  # two early runs in a row
    assert hb.alerts == [("down", 50 * M + H)]


def test_a_scheduled_job_run_by_hand_between_its_runs_is_too_early_and_the_next_scheduled_run_is_not():
    day = local_ms("UTC", "2025-06-02 00:00")
    hb = Monitor(schedule="0 2 * * *", cadence=CadenceRule(early_s=600), max_consecutive_misses=2)
    hb.ping(day + 2 * H + 30 * S)
    hb.ping(day + 14 * H)  # by hand, at 14:00
    assert judged(hb) == [(["too_early"], day + 14 * H)]
    hb.ping(day + 26 * H + 20 * S)  # the next night, 02:00:20
    assert len(hb.of(CheckinJudged)) == 1 and hb.state.problems == 0


def test_too_often_in_schedule_mode_counts_between_the_schedules_runs():
    day = local_ms("UTC", "2025-06-02 00:00")
    hb = Monitor(schedule="0 9,17 * * *", cadence=CadenceRule(max_runs=1))
    hb.ping(day + 9 * H).ping(day + 17 * H)  # 8 h apart: the gap of 09:00-17:00 is 8 h
    assert hb.of(CheckinJudged) == []
    hb.ping(day + 23 * H)  # 6 h after 17:00, where the gap is 16 h
    assert hb.of(CheckinJudged)[0].reason == "2 runs within 6 h; at most 1 expected in 16 h"


@pytest.mark.parametrize(("schedule", "at", "expected_ms"), [
    ("0 * * * *", "2025-06-02 10:30", H),
    ("0 * * * *", "2025-06-02 10:00", H),
    ("0 9,17 * * *", "2025-06-02 17:00", 16 * H),
    ("*/15 * * * *", "2025-06-02 10:07", 15 * M),
    ("0 9,17 * * *", "2025-06-02 10:00", 8 * H),
    ("0 9,17 * * *", "2025-06-02 18:00", 16 * H),
    ("0 9,17 * * *", "2025-06-03 08:59", 16 * H),
    ("0 2 * * 1", "2025-06-04 12:00", 7 * 24 * H),
    ("*/5 9 * * *", "2025-06-02 15:00", 23 * H + 5 * M),  # 09:55 to 09:00 the next day
])  # fmt: skip
def test_the_interval_of_a_schedule_is_the_gap_between_its_runs_around_the_run(schedule, at, expected_ms):
    hb = Monitor(schedule=schedule)
    assert interval_ms(hb.state, local_ms("UTC", at), local_ms("UTC", at)) == expected_ms


def test_the_interval_of_runs_spanning_several_gaps_of_a_schedule_is_the_shortest():
    hb = Monitor(schedule="0 9,17 * * *")
    first, last = local_ms("UTC", "2025-06-02 18:00"), local_ms("UTC", "2025-06-03 09:30")
    assert interval_ms(hb.state, first, first + 5 * H) == 16 * H  # within one gap of 16 h
    assert interval_ms(hb.state, first, last) == 8 * H  # over 17:00-09:00 and into 09:00-17:00


def test_the_interval_of_an_interval_heartbeat_is_its_own():
    assert interval_ms(Monitor(interval_s=300).state, 12 * H, 13 * H) == 5 * M


def test_it_keeps_the_times_of_one_run_more_than_it_allows_and_no_more():
    hb = Monitor(cadence=CadenceRule(max_runs=2))
    for hour in range(5):
        hb.ping(hour * H)
    assert hb.state.extra.recent == (2 * H, 3 * H, 4 * H)


def test_early_only_keeps_nothing_of_its_own():
    hb = Monitor(cadence=EARLY).ping(0).ping(H)
    assert hb.state.extra.recent == () and hb.state.extra.durations == b""


def test_a_too_early_check_in_is_counted_once_and_shows_up_with_its_reason():
    hb = Monitor(cadence=EARLY, max_consecutive_misses=3).ping(0).ping(10 * M)
    assert hb.state.last_problem == (
        "run came 50 min early (expected at 1970-01-01T01:00:00.000Z; tolerance 5 min) at 1970-01-01T00:10:00.000Z"
    )
    assert hb.of(StatusChanged)[-1].status == "up"


@settings(max_examples=40, deadline=None)
@given(
    gaps_s=st.lists(st.integers(min_value=0, max_value=5400), min_size=1, max_size=25),
    failed=st.sets(st.integers(min_value=0, max_value=24)),
    restarts=st.sets(st.integers(min_value=0, max_value=24)),
)
def test_a_restart_from_the_snapshot_changes_nothing_the_runs_are_judged_by(gaps_s, failed, restarts):
    rule = CadenceRule(early_s=600, max_runs=2)
    straight = Monitor(cadence=rule, max_consecutive_misses=2)
    restarted = Monitor(cadence=rule, max_consecutive_misses=2)
    at = 0
    for i, gap in enumerate(gaps_s):
        at += gap * S
        kind = "fail" if i in failed else "success"
        straight.ping(at, kind).tick(at)
        if i in restarts:
            restarted = restarted.restarted()
        restarted.ping(at, kind).tick(at)
    assert restarted.outputs == straight.outputs
    assert restarted.state.extra.recent == straight.state.extra.recent
