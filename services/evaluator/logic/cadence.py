"""Runs too early or too often (docs/semantics.md, "Runs too early or too often"), judged on each
check-in (a run ended, well or badly), before it moves the window: one run, one judgement, so too
early, too often and too fast land on the same check-in and count as one problem.

A check-in is compared with the check-in expected (not a start with it): one interval after the
last check-in, or the schedule's first run after it. A job that sends ``/start`` would otherwise
look early by its own run time, in interval mode, on every run. And it is compared with the window
the last check-in opened, not with the deadline as it stands: after a miss the deadline has moved
a window on, and the late run that finally comes is late, not early. So the first check-in ever
(nothing expected yet), one that arrives out of order (older than the last), and the retry of a
failed run (a check-in after a failure) are never early.
"""

from __future__ import annotations

from bisect import insort

from services.evaluator.logic.deadlines import next_deadline
from services.evaluator.logic.findings import Finding
from services.evaluator.logic.monitor import Shared, set_extra
from services.evaluator.logic.run_times import spell
from services.evaluator.schedule import next_run_ms
from shared.clock import iso_ms
from shared.rules import CadenceRule
from shared.snapshots import MonitorState

JITTER_SHARE = 10
"""The span "too often" counts in is one interval less a tenth of it (or less the early
tolerance, when larger): a job on time whose runs come a few seconds early or late is never seen
running twice in one interval."""
MAX_SCHEDULE_STEPS = 64
"""Runs of the schedule stepped through, at most, to find the one before a time, and the shortest
gap over the runs counted (a schedule so irregular that this is not enough counts from the first
run after the time, and the gaps seen)."""


def judge(state: MonitorState, rule: CadenceRule, at: int, shared: Shared) -> list[Finding]:
    """A check-in at ``at``, before it moves the window: too early against the check-in the last
    one expects, too often against the check-ins of the last interval (``Extra.recent``, updated
    here)."""
    extra = state.extra
    rules = extra.rules if extra is not None else None
    if rules is not None and rules.fleet is not None:
        return []  # a fleet checks in many times a window by design: the fleet rule judges its instances
    findings: list[Finding] = []
    if rule.early_s is not None:
        early = _too_early(state, rule.early_s * 1000, at)
        if early is not None:
            findings.append(early)
    if rule.max_runs is not None:
        recent = list(extra.recent if extra is not None else ())
        insort(recent, at)  # (one that arrived out of order takes its place among them)
        recent = recent[-(rule.max_runs + 1) :]
        set_extra(state, shared, recent=tuple(recent))
        often = _too_often(state, rule, recent, at)
        if often is not None:
            findings.append(often)
    return findings


def expected_ms(state: MonitorState) -> int | None:
    """When the last check-in expects the next one; None before the first."""
    if state.last_ping_ms is None:
        return None
    deadline = next_deadline(state, state.last_ping_ms)
    return deadline - state.grace_ms if deadline is not None else None


def _too_early(state: MonitorState, tolerance_ms: int, at: int) -> Finding | None:
    if state.last_ping_ms is not None and at < state.last_ping_ms:
        return None  # older than the last check-in: it arrived out of order, it opens no window
    if state.last_checkin is not None and state.last_checkin.kind == "fail":
        return None  # a run soon after a failed one is its retry, not a run too early
    expected = expected_ms(state)
    if expected is None or at >= expected - tolerance_ms:
        return None
    return Finding(
        "too_early", True,
        f"run came {spell(expected - at)} early (expected at {iso_ms(expected)}; tolerance {spell(tolerance_ms)})",
    )  # fmt: skip


def _too_often(state: MonitorState, rule: CadenceRule, recent: list[int], at: int) -> Finding | None:
    assert rule.max_runs is not None
    if len(recent) <= rule.max_runs or at not in recent:
        return None
    span = recent[-1] - recent[0]
    interval = interval_ms(state, recent[0], recent[-1])
    if span >= interval - max(interval // JITTER_SHARE, (rule.early_s or 0) * 1000):
        return None
    return Finding(
        "too_often", True,
        f"{len(recent)} runs within {spell(span)}; at most {rule.max_runs} expected in {spell(interval)}",
    )  # fmt: skip


def interval_ms(state: MonitorState, first: int, last: int) -> int:
    """The interval runs from ``first`` to ``last`` were due in: the heartbeat's, or the shortest
    gap between the schedule's runs over that span (from its run before ``first`` to its run after
    ``last``; a schedule at 09:00 and 17:00 runs twice within 8 hours, and once within 16), or the
    first gap no longer than the span (runs so far apart are not too often)."""
    extra = state.extra
    rules = extra.rules if extra is not None else None
    if rules is None or rules.schedule is None:
        return state.interval_ms
    schedule, timezone = rules.schedule, rules.timezone
    run = _run_before(schedule, timezone, first)
    if run is None:
        run = next_run_ms(schedule, timezone, first)
    shortest = None
    for _ in range(MAX_SCHEDULE_STEPS):
        following = next_run_ms(schedule, timezone, run) if run is not None else None
        if run is None or following is None:
            break
        shortest = following - run if shortest is None else min(shortest, following - run)
        if following > last or shortest <= last - first:
            break  # past the span, or a gap already no longer than it: the runs are not too often
        run = following
    return shortest if shortest is not None else state.interval_ms


def _run_before(schedule: str, timezone: str, at: int) -> int | None:
    """The schedule's last run at or before ``at``."""
    after = next_run_ms(schedule, timezone, at)
    if after is None:
        return None
    look = max(after - at, 60_000)
    for _ in range(40):  # back twice as far each time: 40 doublings of a minute reach past any schedule
        first = next_run_ms(schedule, timezone, at - look)
        if first is not None and first <= at:
            before = first
            for _ in range(MAX_SCHEDULE_STEPS):
                following = next_run_ms(schedule, timezone, before)
                if following is None or following > at:
                    return before
                before = following
            return None
        look *= 2
    return None
