"""Pingura's own downtime is not the job's miss: a check-in window that a stretch without
ticks overlapped is skipped, not counted (docs/semantics.md, "When Pingura itself was down")."""

from __future__ import annotations

from services.evaluator.logic import Outage, PartitionEvaluator
from shared.events import Alert, Missed, Ping, StatusChanged
from shared.snapshots import Reason
from tests.services.evaluator.harness import config

S = 1000
M = 60 * S
GAP = 30 * S


class Run:
    def __init__(self, outage_gap_ms=GAP, **cfg):
        self.ev = PartitionEvaluator(0, lateness_ms=1 * S, outage_gap_ms=outage_gap_ms)
        self.offset = 0
        self.outputs = list(self.ev.apply_config(config(**{"interval_s": 60, "grace_s": 10, **cfg})))

    def ping(self, at_ms):
        self.offset += 1
        self.outputs += self.ev.apply_ping(
            Ping(id=f"p{at_ms}", monitor_id="m1", project_id="p1", received_ms=at_ms, kind="success"),
            self.offset,
        )
        return self

    def ticks(self, start_ms, end_ms, step_ms=S):
        for at in range(start_ms, end_ms + 1, step_ms):
            self.outputs += self.ev.advance(at)
        return self

    def of(self, kind):
        return [o for o in self.outputs if isinstance(o, kind)]


def test_a_window_due_while_pingura_was_down_raises_no_alert():
    # Last check-in at 0: expected at 60 s, missed at 70 s. Pingura stops at 50 s, back at 20 min.
    run = Run().ping(0).ticks(1 * S, 50 * S).ticks(20 * M, 20 * M + 5 * S)
    assert run.of(Missed) == [] and run.of(Alert) == []
    assert run.ev.outages == [(50 * S, 20 * M)]
    assert run.ev.skipped_windows == 19  # deadlines 70 s, 130 s ... 1,150 s; the 1,210 s one is after it


def test_the_tick_that_shows_the_gap_says_so_once_as_an_output():
    run = Run().ping(0).ticks(1 * S, 50 * S)
    assert run.of(Outage) == []
    outputs = run.ev.advance(20 * M)
    assert [o for o in outputs if isinstance(o, Outage)] == [Outage(0, 50 * S, 20 * M, windows_skipped=19)]
    assert not any(isinstance(o, Outage) for o in run.ev.advance(20 * M + 1 * S))


def test_the_first_window_after_the_outage_is_watched_as_usual():
    run = Run().ping(0).ticks(1 * S, 50 * S).ticks(20 * M, 22 * M)
    # Skipped: 0-70 s. The next window is one interval later (130 s): also inside the outage,
    # as is every one up to 20 min. The first after it: deadline 20 min 10 s.
    assert run.of(Missed) and run.of(Missed)[0].deadline_ms == 20 * M + 10 * S
    assert [a.kind for a in run.of(Alert)] == ["down"]


def test_a_job_that_checks_in_after_the_outage_stays_up():
    run = Run().ping(0).ticks(1 * S, 50 * S).ticks(20 * M, 20 * M + 2 * S).ping(20 * M + 3 * S)
    run.ticks(20 * M + 4 * S, 21 * M)
    assert run.of(Missed) == [] and run.of(Alert) == []


def test_a_window_that_closed_before_the_outage_began_is_still_missed():
    # Missed at 70 s (declared at 71 s); Pingura then stops at 100 s and comes back at 20 min.
    run = Run().ping(0).ticks(1 * S, 100 * S)
    assert [m.deadline_ms for m in run.of(Missed)] == [70 * S]
    run.ticks(20 * M, 20 * M + 5 * S)
    assert [m.deadline_ms for m in run.of(Missed)] == [70 * S]  # nothing more for the outage
    assert [a.kind for a in run.of(Alert)] == ["down"]


def test_a_gap_shorter_than_the_threshold_is_not_an_outage():
    run = Run().ping(0).ticks(1 * S, 50 * S).ticks(75 * S, 80 * S)  # 25 s without ticks
    assert run.ev.outages == []
    assert [m.deadline_ms for m in run.of(Missed)] == [70 * S]


def test_with_the_rule_turned_off_the_outage_counts_as_misses():
    run = Run(outage_gap_ms=0).ping(0).ticks(1 * S, 50 * S).ticks(20 * M, 20 * M)
    assert run.ev.outages == []
    assert run.of(Missed) and run.of(Missed)[0].deadline_ms == 70 * S


def test_a_long_grace_window_expected_during_the_outage_is_skipped_at_its_deadline():
    # Interval 5 min, grace 1 h: expected at 5 min (inside the outage 1-10 min), due at 65 min.
    run = Run(interval_s=300, grace_s=3600).ping(0).ticks(1 * S, 60 * S).ticks(10 * M, 66 * M, 10 * S)
    assert run.of(Missed) == [] and run.of(Alert) == []


def test_a_heartbeat_shown_late_for_a_skipped_window_is_up_again():
    # Late from 60 s (past its expected check-in, within grace); Pingura stops at 65 s and is
    # back at 19 min 30 s, before the next window's check-in is expected (20 min).
    run = Run().ping(0).ticks(1 * S, 65 * S)
    assert run.of(StatusChanged)[-1].status == "late"
    run.ticks(19 * M + 30 * S, 19 * M + 32 * S)
    last = run.of(StatusChanged)[-1]
    assert (last.status, last.reason) == ("up", Reason.OUTAGE)
    assert run.of(Alert) == []


def test_a_scheduled_job_whose_run_fell_in_the_outage_is_not_missed():
    # Every hour on the hour, grace 5 min. Pingura stops at 00:59:30 and is back at 01:03.
    run = Run(schedule="0 * * * *", grace_s=300).ping(0).ticks(1 * S, 59 * M + 30 * S, 30 * S)
    run.ticks(63 * M, 70 * M, 30 * S)
    assert run.of(Missed) == [] and run.of(Alert) == []
    run.ticks(70 * M + 30 * S, 126 * M, 30 * S)  # the 02:00 run is watched again
    assert [m.deadline_ms for m in run.of(Missed)] == [125 * M]
