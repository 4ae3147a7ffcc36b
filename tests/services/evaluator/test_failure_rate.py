"""The failure rate in the pure core (docs/semantics.md, "Failure rate"): a heartbeat goes down when
at least ``percent`` of its last ``runs`` runs (or of those within ``window_s``) failed, even if
never ``max_consecutive_misses`` in a row, with one ``down`` alert that gives the rate; it comes
back when the rate falls under the lower mark. One incident whether failures in a row, the rate, or
both took it down; the same across a restore."""

from __future__ import annotations

from services.evaluator.logic.ingest import WatchRule
from shared.events import Alert, Ping, StatusChanged
from shared.rules import FailureRateRule
from tests.services.evaluator.harness import H, M, Monitor, S, window
from tests.services.evaluator.test_ingest import CUT, Fleet

ONE_IN_THREE = ["success", "success", "fail"] * 3
"""Nine hourly runs, one in three failing: never two failures in a row."""


def runs(hb: Monitor, kinds: list[str], start_ms: int = 0, every_ms: int = H) -> int:
    """Check-ins of these kinds ``every_ms`` apart from ``start_ms``; returns when the next is due."""
    at = start_ms
    for kind in kinds:
        if kind == "fail":
            hb.fail(at)
        else:
            hb.ping(at)
        at += every_ms
    return at


def rated(percent=30, runs_=9, window_s=None, recover_percent=None, **fields) -> Monitor:
    rule = FailureRateRule(percent=percent, runs=runs_, window_s=window_s, recover_percent=recover_percent)
    return Monitor(**{"max_consecutive_misses": 2, "failure_rate": rule, **fields})


def alerts_of(hb: Monitor) -> list[Alert]:
    return hb.of(Alert)


# going down ------------------------------------------------------------------------------------
def test_one_run_in_three_failing_goes_down_with_the_rate_though_never_two_fail_in_a_row():
    hb = rated()
    runs(hb, ONE_IN_THREE)
    assert hb.alerts == [("down", 8 * H)]  # at the ninth run, the first time nine were counted
    [down] = alerts_of(hb)
    assert down.reason.startswith(
        "3 of the last 9 runs failed (33%, limit 30%); latest: job reported failure"
    )
    assert hb.status == "down" and hb.state.status_reason == down.reason
    assert hb.state.problems == 1  # the classic rule never saw two in a row
    assert hb.state.extra is not None and hb.state.extra.rate_down


def test_no_rate_is_judged_before_runs_runs_were_counted():
    hb = rated(percent=30, runs_=10, max_consecutive_misses=3)
    runs(hb, ["fail", "success", "fail", "success", "fail", "success"])  # 50%, but 6 runs of 10
    assert hb.alerts == [] and hb.status == "up"


def test_a_rate_under_the_limit_does_not_go_down():
    hb = rated(percent=40)
    runs(hb, ONE_IN_THREE * 2)  # 33% all along
    assert hb.alerts == [] and hb.status == "up"


def test_the_outcomes_kept_are_as_many_as_runs():
    hb = rated(percent=90)
    runs(hb, ["success", "fail"] * 15)
    assert hb.state.extra is not None
    outcomes = hb.state.extra.outcomes
    assert len(outcomes) == 9
    assert outcomes == tuple(-at if n % 2 else at for n, at in ((n, n * H) for n in range(21, 30)))


# recovering ------------------------------------------------------------------------------------
def test_it_comes_back_only_when_the_rate_falls_under_the_lower_mark():
    hb = rated()  # lower mark: 15%, so at most one failure in nine
    next_at = runs(hb, ONE_IN_THREE)
    runs(hb, ["success"] * 7, start_ms=next_at)  # runs 10 to 16
    # Runs 10-14 leave two or three failures among the last nine (22-33%): still down; run 15
    # leaves one (11%): back up.
    assert hb.alerts == [("down", 8 * H), ("up", 14 * H)]
    [down, up] = alerts_of(hb)
    assert (down.id, up.id) == ("m1:1:down", "m1:1:up") and up.down_since_ms == 8 * H
    assert hb.state.problems == 0  # (while it was held down, successes cleared the failures in a row)
    assert hb.status == "up" and hb.state.extra is not None and not hb.state.extra.rate_down


def test_recover_percent_sets_the_lower_mark():
    hb = rated(recover_percent=25)
    next_at = runs(hb, ONE_IN_THREE)
    runs(hb, ["success"] * 4, start_ms=next_at)  # runs 10-12: 3, 3 and then 2 failures of 9 (22%)
    assert hb.alerts == [("down", 8 * H), ("up", 11 * H)]


def test_recovery_threshold_still_applies_once_the_rate_is_low_enough():
    hb = rated(recovery_threshold=2)
    next_at = runs(hb, ONE_IN_THREE)
    runs(hb, ["success"] * 8, start_ms=next_at)  # the rate is under the mark at run 15, two in a row at 16
    assert hb.alerts == [("down", 8 * H), ("up", 15 * H)]


def test_failures_while_down_by_the_rate_open_no_second_incident():
    hb = rated()
    next_at = runs(hb, ONE_IN_THREE)
    next_at = runs(hb, ["fail", "fail", "fail"], start_ms=next_at)  # now enough in a row too
    runs(hb, ["success"] * 9, start_ms=next_at)
    assert [kind for kind, _ in hb.alerts] == ["down", "up"]
    assert hb.state.incident == 1


# one incident with the classic rule ------------------------------------------------------------
def test_down_for_failures_in_a_row_and_for_the_rate_is_one_incident_and_one_recovery():
    hb = rated(percent=50, runs_=4, max_consecutive_misses=2)  # lower mark 25%
    next_at = runs(hb, ["success", "success", "fail", "fail"])
    assert hb.alerts == [("down", 3 * H)]
    [down] = alerts_of(hb)
    assert down.reason.startswith("2 consecutive problem(s)")  # the classic rule went first
    # A success alone would bring back a heartbeat down for failures in a row, but the rate
    # (2 of 4, then 1 of 4: not under 25%) holds it until the failures have left the last four.
    runs(hb, ["success"] * 4, start_ms=next_at)
    assert hb.alerts == [("down", 3 * H), ("up", 7 * H)]
    assert [c.status for c in hb.of(StatusChanged)] == ["up", "down", "up"]


def test_down_for_a_miss_then_a_high_rate_is_one_incident_that_waits_for_the_rate():
    hb = rated(percent=50, runs_=4, max_consecutive_misses=2)  # lower mark 25%
    runs(hb, ["success", "success", "fail"])  # last at 2h: due by 3h10m
    hb.ticks(2 * H, 3 * H + 11 * M, 10 * S)
    assert hb.alerts == [("down", 3 * H + 10 * M)]  # the failure and the miss: two in a row
    hb.fail(3 * H + 20 * M)  # 2 of the last 4 failed: the rate is at its limit, down already
    runs(hb, ["success"] * 4, start_ms=3 * H + 30 * M, every_ms=10 * M)
    # 2 of 4, 2 of 4, 1 of 4 (not under 25%), then none: back up at the fourth success.
    assert hb.alerts == [("down", 3 * H + 10 * M), ("up", 4 * H)]
    assert hb.state.incident == 1


# a window --------------------------------------------------------------------------------------
def test_with_a_window_half_of_runs_within_it_are_enough_to_judge():
    hb = rated(percent=40, runs_=10, window_s=3600, max_consecutive_misses=3, interval_s=600, grace_s=60)
    runs(hb, ["success", "success", "fail", "success", "fail"], every_ms=10 * M)
    assert hb.alerts == [("down", 40 * M)]  # 2 of 5 within the hour: 5 is half of 10 runs
    [down] = alerts_of(hb)
    assert down.reason.startswith("2 of the 5 runs within 1 h failed (40%, limit 40%)")


def test_with_a_window_the_failures_that_left_it_no_longer_count():
    hb = rated(percent=40, runs_=10, window_s=3600, max_consecutive_misses=3, interval_s=600, grace_s=60)
    next_at = runs(hb, ["success", "success", "fail", "success", "fail"], every_ms=10 * M)
    runs(hb, ["success"] * 5, start_ms=next_at, every_ms=10 * M)
    # Lower mark 20%. At 80 min the hour back to 20 min holds 7 runs, two failed (28%); at 90 min
    # the failure at 20 min has left it: 1 of 7 (14%).
    assert hb.alerts == [("down", 40 * M), ("up", 90 * M)]


def test_with_a_window_too_few_runs_within_it_are_not_judged():
    hb = rated(percent=40, runs_=10, window_s=3600, max_consecutive_misses=9, interval_s=1800, grace_s=60)
    runs(hb, ["fail", "success"] * 6, every_ms=30 * M)  # 50% failed, but 3 runs an hour: fewer than 5
    assert hb.alerts == [] and hb.status == "up"


# pause and configuration -----------------------------------------------------------------------
def test_pausing_forgets_the_rate_and_a_resumed_heartbeat_starts_afresh():
    hb = rated()
    next_at = runs(hb, ONE_IN_THREE)
    hb.reconfigure(paused=True, updated_ms=next_at).reconfigure(paused=False, updated_ms=next_at)
    assert hb.status == "up" and hb.state.extra is not None and hb.state.extra.outcomes == ()
    runs(hb, ["fail", "success", "success"] * 2, start_ms=next_at + M)  # 2 of 6: not yet 9 runs
    assert hb.alerts == [("down", 8 * H)] and hb.status == "up"


def test_turning_the_rule_off_while_down_by_the_rate_recovers_at_the_next_success():
    hb = rated()
    next_at = runs(hb, ONE_IN_THREE)
    hb.reconfigure(failure_rate=None)
    assert hb.state.extra is None or (hb.state.extra.outcomes == () and not hb.state.extra.rate_down)
    hb.ping(next_at)
    assert hb.alerts == [("down", 8 * H), ("up", next_at)]


def test_a_stricter_rule_applies_from_the_next_run():
    hb = rated(percent=50)
    next_at = runs(hb, ONE_IN_THREE)
    assert hb.alerts == []
    hb.reconfigure(failure_rate=FailureRateRule(percent=30, runs=9))
    hb.ping(next_at)  # 3 of the last 9 still
    assert hb.alerts == [("down", next_at)]


def test_a_rate_down_held_by_a_maintenance_window_is_sent_with_the_rate_when_it_ends():
    hb = rated()
    hb.outputs += hb.ev.apply_window(window(starts_ms=7 * H + 30 * M, ends_ms=9 * H, whole_project=True))
    runs(hb, ONE_IN_THREE)
    hb.ticks(8 * H, 9 * H + 30 * S, 10 * S)
    [down] = alerts_of(hb)
    assert down.held is not None and "maintenance window" in down.held
    assert down.reason.startswith("3 of the last 9 runs failed (33%, limit 30%)")


# restarts --------------------------------------------------------------------------------------
def test_a_restart_anywhere_decides_exactly_what_the_uninterrupted_run_did():
    kinds = ONE_IN_THREE + ["fail", "success", "success"] + ["success"] * 9

    def scenario(restart_after: int | None) -> list:
        hb = rated(recovery_threshold=2)
        for n, kind in enumerate(kinds):
            if n == restart_after:
                hb = hb.restarted()
            runs(hb, [kind], start_ms=n * H)
        return hb.outputs

    expected = scenario(None)
    assert [o.kind for o in expected if isinstance(o, Alert)] == ["down", "up"]
    for restart_after in range(len(kinds)):
        assert scenario(restart_after) == expected, restart_after


# an ingest incident ----------------------------------------------------------------------------
def test_a_rate_down_held_by_an_ingest_incident_stays_unknown_until_the_rate_is_low():
    # 300 heartbeats go silent at CUT (an ingest incident); one job keeps checking in every minute.
    run = Fleet(watch=WatchRule(window_ms=60 * S, min_overdue=20), operator_channels=("ch_ops",))
    for i in range(300):
        run.add(f"hb{i:03}", first_ping_ms=i * 60 * S // 300)
    rule = FailureRateRule(percent=30, runs=6)  # lower mark 15%: no failure left in the last six
    run.add("job", first_ping_ms=30 * S, max_consecutive_misses=3, failure_rate=rule)
    run.run(CUT + 3 * M, lambda monitor_id, at_ms: at_ms < CUT or monitor_id == "job")
    assert run.ev.holds.watch.open and run.status("job") == "up"  # the incident is open; the job is fine

    def fail(at_ms):
        run.offset += 1
        ping = Ping(id=f"job-{at_ms}", monitor_id="job", project_id="p1", received_ms=at_ms, kind="fail")
        run.outputs += run.ev.apply_ping(ping, run.offset)

    fail(CUT + 3 * M + 1 * S)
    fail(CUT + 3 * M + 2 * S)  # 2 of the last 6 failed: down on the rate, held by the incident
    assert run.status("job") == "unknown"

    def changes() -> list[str]:
        return [c.status for c in run.outputs if isinstance(c, StatusChanged) and c.monitor_id == "job"]

    seen = len(changes())
    run.run(CUT + 7 * M + 40 * S, lambda monitor_id, at_ms: monitor_id == "job")  # 5 successes: 1 of 6 left
    assert run.status("job") == "unknown" and changes()[seen:] == []
    run.run(CUT + 8 * M + 40 * S, lambda monitor_id, at_ms: monitor_id == "job")  # the sixth: none left
    job = run.ev.monitors["job"]
    assert (
        changes()[seen:] == ["up"] and job.incident == 1 and job.extra is not None and not job.extra.rate_down
    )
    assert [a for a in run.alerts("down", "up") if a.monitor_id == "job"] == []  # its people heard nothing
