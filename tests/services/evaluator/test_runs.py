"""Runs: a start, then the success or failure that ends it; measured durations, overlapping
run ids, and the maximum run time."""

from services.evaluator.logic.runs import MAX_OPEN_RUNS
from shared.events import Alert, RunMeasured, StatusChanged
from tests.services.evaluator.harness import H, M, Monitor, S


def test_a_start_then_a_success_measures_the_run():
    hb = Monitor().ping(0).start(1 * H).ping(1 * H + 90 * S)
    assert hb.measured == [("", 90.0)]
    run = hb.of(RunMeasured)[0]
    assert (run.id, run.ping_id, run.started_ms, run.ended_ms) == (
        "m1:run:success-3690000",
        "success-3690000",
        1 * H,
        1 * H + 90 * S,
    )
    assert hb.statuses == ["up", "running", "up"]
    assert hb.status == "up"


def test_a_start_shows_running_until_the_run_ends():
    hb = Monitor().start(0)
    assert hb.status == "running"
    assert hb.of(StatusChanged)[-1].reason == "run started"
    hb.ping(10 * S)
    assert hb.status == "up"


def test_a_start_then_a_failure_measures_the_run_and_counts_a_problem():
    hb = Monitor().ping(0).start(1 * H).fail(1 * H + 30 * S)
    assert hb.measured == [("", 30.0)]
    assert hb.alerts == [("down", 1 * H + 30 * S)]
    assert hb.status == "down"


def test_a_failure_below_the_limit_ends_the_run_and_is_up_again():
    hb = Monitor(max_consecutive_misses=2).ping(0).start(1 * H).fail(1 * H + 30 * S)
    assert hb.alerts == [] and hb.status == "up"
    assert hb.of(StatusChanged)[-1].reason == "run ended (a failure)"


def test_a_success_without_a_start_is_just_a_success():
    hb = Monitor().ping(0).ping(1 * H)
    assert hb.measured == [] and hb.statuses == ["up"]
    assert hb.state.extra is None  # and costs nothing


def test_the_duration_the_job_sent_is_kept_and_none_is_measured():
    hb = Monitor().start(0).ping(100 * S, duration_s=42.0)
    assert hb.measured == []
    assert hb.status == "up" and hb.state.extra is None


def test_overlapping_runs_with_run_ids_are_measured_separately():
    hb = Monitor().start(0, rid="a").start(10 * S, rid="b").ping(25 * S, rid="a")
    assert hb.status == "running"  # b is still going
    hb.ping(70 * S, rid="b")
    assert hb.measured == [("a", 25.0), ("b", 60.0)]
    assert hb.status == "up"


def test_an_end_with_an_unknown_run_id_measures_nothing_and_closes_nothing():
    hb = Monitor().start(0, rid="a").ping(5 * S, rid="zzz")
    assert hb.measured == []
    assert hb.status == "running"
    hb.ping(9 * S, rid="a")
    assert hb.measured == [("a", 9.0)]


def test_a_start_with_the_run_id_of_an_open_run_restarts_it():
    hb = Monitor().start(0, rid="a").start(20 * S, rid="a").ping(30 * S, rid="a")
    assert hb.measured == [("a", 10.0)]


def test_at_most_ten_runs_stay_open_and_the_oldest_is_dropped():
    hb = Monitor()
    for i in range(MAX_OPEN_RUNS + 2):
        hb.start(i * S, rid=f"r{i}")
    assert [run[0] for run in hb.state.extra.runs] == [f"r{i}" for i in range(2, 12)]
    hb.ping(100 * S, rid="r0")  # dropped: just a success
    assert hb.measured == []


def test_log_pings_change_nothing():
    plain = Monitor().ping(0)
    logged = Monitor().ping(0).ping(5 * M, "log").ping(6 * M, "log")
    assert logged.outputs == plain.outputs
    assert logged.state.last_ping_ms == 0 and logged.state.deadline_ms == plain.state.deadline_ms
    assert logged.state.extra is None
    logged.start(10 * M).ping(11 * M, "log")
    assert logged.status == "running"  # a log line does not end a run


def test_a_run_past_its_maximum_run_time_counts_one_problem_and_alerts():
    hb = Monitor(max_runtime_s=300).ping(0).start(1 * H)
    hb.ticks(1 * H, 1 * H + 300 * S)
    assert hb.alerts == []  # lateness: not before 5 min + 1 s
    hb.ticks(1 * H + 301 * S, 1 * H + 30 * M, 10 * S)
    assert hb.alerts == [("down", 1 * H + 300 * S)]
    down = hb.of(Alert)[0]
    assert down.reason.endswith("latest: started at 1970-01-01T01:00:00.000Z, still running after 5m")
    assert hb.state.problems == 1


def test_an_overrun_below_the_limit_is_late_and_counts_once():
    hb = Monitor(max_runtime_s=300, max_consecutive_misses=2).ping(0).start(1 * H)
    hb.ticks(1 * H, 1 * H + 50 * M, 10 * S)
    assert hb.alerts == [] and hb.state.problems == 1
    assert hb.status == "late"
    assert hb.of(StatusChanged)[-1].reason == "a run overran its maximum run time"


def test_a_hung_job_alerts_before_its_next_window_is_due():
    # hourly, grace 10 min: without a run limit the hang would show at 2h10m.
    hb = Monitor(max_runtime_s=15 * 60).ping(0).start(1 * H).ticks(1 * H, 2 * H, 10 * S)
    assert hb.alerts == [("down", 1 * H + 15 * M)]


def test_the_maximum_run_time_defaults_to_the_grace_period():
    hb = Monitor(grace_s=120).ping(0).start(1 * H).ticks(1 * H, 1 * H + 119 * S)
    assert hb.alerts == []
    hb.ticks(1 * H + 120 * S, 1 * H + 125 * S)
    assert hb.alerts == [("down", 1 * H + 120 * S)]


def test_an_overran_run_that_ends_is_still_measured():
    hb = Monitor(max_runtime_s=60, max_consecutive_misses=5).start(0).ticks(0, 100 * S, 10 * S).ping(200 * S)
    assert hb.measured == [("", 200.0)]
    assert hb.status == "up" and hb.state.problems == 0


def test_a_start_restarts_the_window_so_a_long_run_is_not_a_miss():
    # hourly with 10 min grace; the job starts on time and runs 40 min (limit 50 min)
    hb = Monitor(max_runtime_s=50 * 60).ping(0).start(1 * H).ticks(1 * H, 1 * H + 40 * M, 10 * S)
    hb.ping(1 * H + 40 * M).ticks(1 * H + 40 * M, 2 * H + 45 * M, 10 * S)
    assert hb.misses == [] and hb.alerts == []
    assert hb.next_expected_ms == 2 * H + 40 * M


def test_a_start_while_down_keeps_it_down_and_its_success_recovers():
    hb = Monitor().ping(0).ticks(0, 2 * H, 10 * S)
    assert hb.status == "down"
    hb.start(3 * H)
    assert hb.status == "down"
    hb.ping(3 * H + 5 * S)
    assert hb.alerts == [("down", 1 * H + 10 * M), ("up", 3 * H + 5 * S)]
    assert hb.status == "up"


def test_pings_to_a_paused_monitor_open_no_run():
    hb = Monitor(paused=True).start(0).ticks(0, 5 * H, 60 * S)
    assert hb.status == "paused" and hb.state.extra is None and hb.alerts == []
