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

from services.evaluator.logic import verdicts
from services.evaluator.logic.deadlines import next_deadline
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
"""Runs of the schedule stepped through to find the one before a run; a schedule so dense (or so
irregular) that the one before lies further back counts the interval after it instead."""


def judge(state: MonitorState, rule: CadenceRule, at: int, shared: Shared) -> list[verdicts.Finding]:
    """A check-in at ``at``, before it moves the window: too early against the check-in the last
    one expects, too often against the check-ins of the last interval (``Extra.recent``, updated
    here)."""
    extra = state.extra
    rules = extra.rules if extra is not None else None
    if rules is not None and rules.fleet is not None:
        return []  # a fleet checks in many times a window by design: the fleet rule judges its instances
    findings: list[verdicts.Finding] = []
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


def _too_early(state: MonitorState, tolerance_ms: int, at: int) -> verdicts.Finding | None:
    if state.last_ping_ms is not None and at < state.last_ping_ms:
        return None  # older than the last check-in: it arrived out of order, it opens no window
    if state.last_checkin is not None and state.last_checkin.kind == "fail":
        return None  # a run soon after a failed one is its retry, not a run too early
    expected = expected_ms(state)
    if expected is None or at >= expected - tolerance_ms:
        return None
    return verdicts.Finding(
        "too_early", True,
        f"run came {spell(expected - at)} early (expected at {iso_ms(expected)}; tolerance {spell(tolerance_ms)})",
    )  # fmt: skip


def _too_often(state: MonitorState, rule: CadenceRule, recent: list[int], at: int) -> verdicts.Finding | None:
    assert rule.max_runs is not None
    if len(recent) <= rule.max_runs or at not in recent:
        return None
    interval = interval_ms(state, at)
    slack = max(interval // JITTER_SHARE, (rule.early_s or 0) * 1000)
    span = recent[-1] - recent[0]
    if span >= interval - slack:
        return None
    runs = len(recent)
    return verdicts.Finding(
        "too_often", True,
        f"{runs} runs within {spell(span)}; at most {rule.max_runs} expected in {spell(interval)}",
    )  # fmt: skip


def interval_ms(state: MonitorState, at: int) -> int:
    """The interval the runs around ``at`` are due in: the heartbeat's, or the gap between the
    schedule's runs before and after ``at``."""
    extra = state.extra
    rules = extra.rules if extra is not None else None
    if rules is None or rules.schedule is None:
        return state.interval_ms
    after = next_run_ms(rules.schedule, rules.timezone, at)
    if after is None:
        return state.interval_ms
    before = _run_before(rules.schedule, rules.timezone, at, after)
    if before is None:
        following = next_run_ms(rules.schedule, rules.timezone, after)
        return following - after if following is not None else state.interval_ms
    return after - before


def _run_before(schedule: str, timezone: str, at: int, after: int) -> int | None:
    """The schedule's last run at or before ``at`` (``after``: its first run after it)."""
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
