"""Run times: fixed limits, and the usual range learned from a heartbeat's own last 20 runs, in the
evaluator's pure core (docs/semantics.md, "Run times")."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.logic.run_times import spell
from shared.events import Alert, CheckinJudged, StatusChanged
from shared.rules import BASELINE_MIN_RUNS, BASELINE_RUNS, RunTimeRule, usual_band
from shared.snapshots import Extra, durations_ms
from tests.services.evaluator.harness import H, M, Monitor, S

BASELINE = RunTimeRule(baseline="alert")


def usual_runs(hb: Monitor, count: int, first_at: int = 0, seconds=(38, 40, 42, 41, 39)) -> int:
    """``count`` hourly runs of about 40 s, as the job reports them; the time of the next run."""
    at = first_at
    for i in range(count):
        hb.ping(at, duration_s=seconds[i % len(seconds)])
        at += H
    return at


def verdicts(hb: Monitor) -> list[list[str]]:
    return [judged.verdicts for judged in hb.of(CheckinJudged)]


def test_a_job_whose_runs_drop_from_40_s_to_3_s_after_20_usual_runs_goes_down_with_the_run_time_against_the_usual_range():
    hb = Monitor(run_time=BASELINE)
    at = usual_runs(hb, 20)
    assert hb.alerts == [] and hb.of(CheckinJudged) == []
    hb.ping(at, duration_s=3)
    assert hb.alerts == [("down", at)]
    down = hb.of(Alert)[0]
    assert "latest: run took 3 s; usually 20 s to 1 min 20 s (median 40 s of the last 20 runs)" in down.reason
    judged = hb.of(CheckinJudged)[0]
    assert (judged.verdicts, judged.alerted, judged.duration_s) == (["too_fast"], True, 3.0)
    assert (judged.usual_low_s, judged.usual_high_s) == (20.0, 80.0)
    assert judged.id == f"m1:judged:success-{at}"


def test_a_run_far_slower_than_usual_is_too_slow():
    hb = Monitor(run_time=BASELINE)
    at = usual_runs(hb, 12)
    hb.ping(at, duration_s=400)
    assert hb.alerts == [("down", at)]
    assert verdicts(hb) == [["too_slow"]]
    assert hb.of(CheckinJudged)[0].reason.startswith("run took 6 min 40 s; usually 20 s to 1 min 20 s")


def test_no_baseline_verdict_before_ten_runs_were_seen():
    hb = Monitor(run_time=BASELINE)
    at = usual_runs(hb, BASELINE_MIN_RUNS - 1)
    hb.ping(at, duration_s=3)  # the 10th run: judged against 9, not enough
    assert hb.alerts == [] and hb.of(CheckinJudged) == [] and hb.status == "up"
    hb.ping(at + H, duration_s=3)  # the 11th: judged against 10 (one of them already 3 s)
    assert hb.alerts == [("down", at + H)]


def test_in_mark_mode_a_run_far_from_usual_is_only_marked():
    hb = Monitor(run_time=RunTimeRule(baseline="mark"))
    at = usual_runs(hb, 20)
    hb.ping(at, duration_s=3)
    assert hb.alerts == [] and hb.status == "up" and hb.state.problems == 0
    judged = hb.of(CheckinJudged)[0]
    assert (judged.verdicts, judged.alerted) == (["too_fast"], False)
    assert judged.reason.startswith("run took 3 s; usually 20 s to 1 min 20 s")


def test_a_run_under_the_minimum_is_a_problem():
    hb = Monitor(run_time=RunTimeRule(min_s=300))
    hb.ping(0, duration_s=400).ping(H, duration_s=3)
    assert hb.alerts == [("down", H)]
    assert hb.of(Alert)[0].reason.endswith(
        "latest: run took 3 s; the minimum is 5 min at 1970-01-01T01:00:00.000Z"
    )
    assert verdicts(hb) == [["under_min"]]


def test_a_run_over_the_maximum_is_a_problem():
    hb = Monitor(run_time=RunTimeRule(max_s=60))
    hb.ping(0, duration_s=59).ping(H, duration_s=61.5)
    assert hb.alerts == [("down", H)]
    assert hb.of(CheckinJudged)[0].reason == "run took 1 min 1 s; the maximum is 1 min"


def test_limits_set_to_mark_only_mark():
    hb = Monitor(run_time=RunTimeRule(min_s=10, max_s=60, limits="mark"))
    hb.ping(0, duration_s=5).ping(H, duration_s=90).ping(2 * H, duration_s=30)
    assert hb.alerts == [] and hb.state.problems == 0
    assert [(j.verdicts, j.alerted) for j in hb.of(CheckinJudged)] == [
        (["under_min"], False),
        (["over_max"], False),
    ]


def test_a_run_outside_both_the_limit_and_the_usual_range_is_one_problem_with_both_verdicts():
    hb = Monitor(run_time=RunTimeRule(min_s=10, baseline="alert"), max_consecutive_misses=2)
    at = usual_runs(hb, 10)
    hb.ping(at, duration_s=3)
    assert hb.state.problems == 1 and hb.alerts == []
    judged = hb.of(CheckinJudged)[0]
    assert judged.verdicts == ["under_min", "too_fast"]
    assert judged.reason == (
        "run took 3 s; the minimum is 10 s; run took 3 s; usually 20 s to 1 min 20 s (median 40 s of the last 10 runs)"
    )
    assert (judged.usual_low_s, judged.usual_high_s) == (20.0, 80.0)


def test_a_run_is_measured_from_its_start_when_the_job_reports_no_duration():
    hb = Monitor(run_time=BASELINE)
    at = 0
    for _ in range(10):
        hb.start(at).ping(at + 40 * S)
        at += H
    hb.start(at).ping(at + 3 * S)
    assert hb.alerts == [("down", at + 3 * S)]
    assert hb.of(CheckinJudged)[0].duration_s == 3.0


def test_the_duration_the_job_reports_counts_rather_than_the_one_measured():
    hb = Monitor(run_time=RunTimeRule(max_s=60))
    hb.start(0).ping(10 * M, duration_s=30)  # it queued for ten minutes before it ran
    assert hb.alerts == [] and hb.of(CheckinJudged) == []


def test_a_run_that_did_not_start_and_reports_nothing_is_not_judged():
    hb = Monitor(run_time=RunTimeRule(min_s=300, baseline="alert"))
    hb.ping(0).ping(H)
    assert hb.alerts == [] and hb.of(CheckinJudged) == []
    assert durations_ms(hb.state.extra) == ()


def test_a_failed_run_is_neither_judged_nor_learned_from():
    hb = Monitor(run_time=RunTimeRule(min_s=30, baseline="alert"), max_consecutive_misses=3)
    hb.ping(0, duration_s=40).ping(H, "fail", duration_s=1)
    assert hb.of(CheckinJudged) == []
    assert durations_ms(hb.state.extra) == (40_000,)
    assert hb.state.last_problem.startswith("job reported failure")


def test_the_baseline_keeps_the_last_twenty_runs_oldest_first():
    hb = Monitor(run_time=BASELINE)
    at = 0
    for i in range(BASELINE_RUNS + 5):
        hb.ping(at, duration_s=30 + i / 10)
        at += H
    assert durations_ms(hb.state.extra) == tuple(30_000 + i * 100 for i in range(5, BASELINE_RUNS + 5))
    assert len(hb.state.extra.durations) == 4 * BASELINE_RUNS


def test_limits_alone_keep_no_baseline():
    hb = Monitor(run_time=RunTimeRule(max_s=60))
    usual_runs(hb, 5)
    assert hb.state.extra == Extra(rules=hb.state.extra.rules)  # its rules, shared, and nothing of its own


def test_a_lasting_change_becomes_the_new_normal_after_about_ten_runs_and_the_heartbeat_comes_back():
    hb = Monitor(run_time=BASELINE)
    at = usual_runs(hb, 20)
    for _ in range(12):
        hb.ping(at, duration_s=3)
        at += H
    # Outliers are learned too: the 11th run of 3 s is judged against ten of 40 s and ten of 3 s.
    assert [j.verdicts for j in hb.of(CheckinJudged)] == [["too_fast"]] * 10
    assert [kind for kind, _ in hb.alerts] == ["down", "up"]
    assert hb.status == "up"


def test_a_job_of_a_few_milliseconds_is_not_flagged_for_a_few_more():
    hb = Monitor(run_time=BASELINE)
    at = 0
    for _ in range(10):
        hb.ping(at, duration_s=0.004)
        at += H
    hb.ping(at, duration_s=0.9)
    assert hb.of(CheckinJudged) == []
    hb.ping(at + H, duration_s=2.5)
    assert verdicts(hb) == [["too_slow"]]
    assert hb.of(CheckinJudged)[0].reason.startswith("run took 2.5 s; usually 0 ms to 1 s (median 4 ms")


def test_a_heartbeat_down_for_its_run_times_comes_back_with_a_usual_run():
    hb = Monitor(run_time=BASELINE)
    at = usual_runs(hb, 20)
    hb.ping(at, duration_s=3).ping(at + H, duration_s=3).ping(at + 2 * H, duration_s=40)
    assert hb.alerts == [("down", at), ("up", at + 2 * H)]
    assert hb.of(StatusChanged)[-1].status == "up"


def test_run_times_are_spelled_for_people():
    assert [spell(ms) for ms in (350, 3000, 3500, 40_000, 80_000, 7_500_000, 20_000.4)] == [
        "350 ms", "3 s", "3.5 s", "40 s", "1 min 20 s", "2 h 5 min", "20 s",
    ]  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    durations=st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=35),
    restarts=st.sets(st.integers(min_value=0, max_value=34)),
)
def test_a_restart_from_the_snapshot_changes_nothing_the_runs_are_judged_by(durations, restarts):
    rule = RunTimeRule(min_s=1, max_s=150, baseline="alert")
    straight = Monitor(run_time=rule, max_consecutive_misses=2)
    restarted = Monitor(run_time=rule, max_consecutive_misses=2)
    for i, duration in enumerate(durations):
        straight.ping(i * H, duration_s=duration / 1000)
        if i in restarts:
            restarted = restarted.restarted()
        restarted.ping(i * H, duration_s=duration / 1000)
    assert restarted.outputs == straight.outputs
    assert durations_ms(restarted.state.extra) == durations_ms(straight.state.extra)


@given(
    st.lists(
        st.integers(min_value=0, max_value=2**32 - 1), min_size=BASELINE_MIN_RUNS, max_size=BASELINE_RUNS
    )
)
def test_the_usual_range_holds_the_median_and_at_least_a_second_either_side(durations):
    band = usual_band(durations)
    assert band is not None
    median, low, high = band
    assert low <= max(0.0, median - 1000) and high >= median + 1000
    assert 0 <= low <= median <= high


def test_a_baseline_turned_off_is_forgotten_and_one_turned_on_again_learns_afresh():
    hb = Monitor(run_time=BASELINE)
    at = usual_runs(hb, 12)
    assert len(durations_ms(hb.state.extra)) == 12

    hb.reconfigure(run_time=RunTimeRule(min_s=1))  # limits only: nothing to keep
    assert durations_ms(hb.state.extra) == ()

    hb.reconfigure(run_time=BASELINE)
    hb.ping(at, duration_s=3)  # the first run learned again: nothing to judge it against yet
    assert hb.alerts == [] and durations_ms(hb.state.extra) == (3000,)
