"""Deadlines and misses: when the current window closes, and what happens when it does.

deadline = the next expected check-in after the window opened (+ interval, or the next run
of the cron schedule) + grace. A miss is declared once the clock passes the deadline plus the
allowed lateness, dated at the deadline, and the next deadline is one window later (no drift).
"""

from __future__ import annotations

from services.evaluator.logic.incidents import on_problem
from services.evaluator.logic.monitor import Shared, set_status
from services.evaluator.logic.outputs import Output
from services.evaluator.schedule import next_run_ms
from shared.clock import iso_ms
from shared.events import Missed
from shared.snapshots import MonitorState, Reason


def next_deadline(state: MonitorState, after_ms: int | None) -> int | None:
    """The deadline of the window that opens at ``after_ms`` (a check-in, a start, a
    resume, or the expected time of a window just missed): the next expected check-in
    (one interval later, or the schedule's next run) plus grace. None: never expected."""
    if after_ms is None:
        return None
    extra = state.extra
    rules = extra.rules if extra is not None else None
    if rules is None or rules.schedule is None:
        return after_ms + state.interval_ms + state.grace_ms
    expected = next_run_ms(rules.schedule, rules.timezone, after_ms)
    return expected + state.grace_ms if expected is not None else None


def anchor(state: MonitorState) -> int | None:
    """Where the current window opened: the last check-in or the newest start, if later."""
    opened, extra = state.last_ping_ms, state.extra
    if extra is not None and extra.runs:
        newest = extra.runs[-1][1]
        opened = newest if opened is None or newest > opened else opened
    return opened


def mark_late(state: MonitorState, clock_ms: int) -> list[Output]:
    """An ``up`` monitor whose check-in is overdue (within grace) shows ``late``; a fleet never
    does (its windows are fixed: every check-in would bring it back, the next window late again)."""
    extra = state.extra
    if extra is not None and extra.rules is not None and extra.rules.fleet is not None:
        return []
    if state.status == "up" and state.deadline_ms is not None:
        late_at = state.deadline_ms - state.grace_ms
        if clock_ms >= late_at:
            return set_status(state, "late", late_at, Reason.IN_GRACE)
    return []


def mark_missed(state: MonitorState, deadline: int, shared: Shared) -> list[Output]:
    """The window closing at ``deadline`` passed without a check-in: one problem, and the
    next window (from the one expected, not from now: no drift)."""
    state.problems += 1
    expected = deadline - state.grace_ms
    outputs: list[Output] = [
        Missed(
            id=f"{state.monitor_id}:miss:{deadline}",
            monitor_id=state.monitor_id,
            project_id=state.project_id,
            deadline_ms=deadline,
            expected_ms=expected,
            consecutive=state.problems,
        )
    ]
    state.last_problem = f"no ping by {iso_ms(deadline)} (expected at {iso_ms(expected)})"
    if state.extra is None:
        state.deadline_ms = deadline + state.interval_ms
    else:
        state.deadline_ms = next_deadline(state, expected)
    down = on_problem(state, deadline, shared)
    if down:
        outputs += down
    elif state.status not in ("late", "down", "unknown"):  # (unknown: down, its alert held)
        outputs += set_status(state, "late", deadline, Reason.MISSED)
    return outputs
