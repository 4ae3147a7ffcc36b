"""Runs: a ``start`` opens one (and restarts the window: the job began), the ``success`` or
``fail`` that ends it closes it and measures it, and a run open longer than its maximum run
time counts one problem."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.evaluator.logic.deadlines import anchor, next_deadline
from services.evaluator.logic.incidents import on_problem
from services.evaluator.logic.monitor import Shared, rules_of, set_extra, set_status
from services.evaluator.logic.outputs import Output
from shared.clock import iso_ms
from shared.events import Ping, RunMeasured
from shared.snapshots import MonitorState, Reason, Run

if TYPE_CHECKING:
    from services.evaluator.logic.verdicts import Finding

MAX_OPEN_RUNS = 10
"""Open runs kept per monitor (by run id); a start beyond that drops the oldest."""


def start_run(state: MonitorState, rid: str, at: int, shared: Shared) -> list[Output]:
    """A run began: open it (a start with the rid of an open run restarts that run), and
    restart the window from it, as the job evidently ran."""
    extra = state.extra
    runs = [run for run in (extra.runs if extra is not None else ()) if run[0] != rid]
    runs.append((rid, at, False))
    runs.sort(key=lambda run: run[1])
    set_extra(state, shared, runs=tuple(runs[-MAX_OPEN_RUNS:]))
    if state.deadline_ms is None or rules_of(state).fleet is None:  # (a fleet's windows are fixed)
        state.deadline_ms = next_deadline(state, anchor(state))
    if state.status in ("new", "up", "late"):
        return set_status(state, "running", at, Reason.RUN_STARTED)
    return []


def end_run(state: MonitorState, ping: Ping, at: int, shared: Shared) -> RunMeasured | None:
    """Close the run this success or failure ends (same rid; none: the run without one),
    and measure it unless the job sent its own duration."""
    extra = state.extra
    if extra is None or not extra.runs:
        return None
    rid = ping.rid or ""
    run = next((r for r in extra.runs if r[0] == rid), None)
    if run is None:
        return None  # an end without a start is just an end
    set_extra(state, shared, runs=tuple(r for r in extra.runs if r is not run))
    started = run[1]
    if ping.duration_s is not None or at < started:
        return None  # the job's own figure stands; an end before its start measures nothing
    return RunMeasured(
        id=f"{state.monitor_id}:run:{ping.id}",
        monitor_id=state.monitor_id,
        project_id=state.project_id,
        ping_id=ping.id,
        rid=rid,
        started_ms=started,
        ended_ms=at,
        duration_s=(at - started) / 1000,
    )


def running(state: MonitorState) -> bool:
    """Whether a run is open and within its maximum run time."""
    extra = state.extra
    return extra is not None and any(not run[2] for run in extra.runs)


def overrun_at(state: MonitorState) -> tuple[int, Run] | None:
    """When the oldest run still within its limit overruns it, and that run."""
    extra = state.extra
    if extra is None:
        return None
    for run in extra.runs:
        if not run[2]:
            return run[1] + max_runtime_ms(state), run
    return None


def max_runtime_ms(state: MonitorState) -> int:
    limit = rules_of(state).max_runtime_ms
    return limit if limit is not None else state.grace_ms


def _span(ms: int) -> str:
    """``1h30m``, ``45s``, ``2d``: a duration in an alert's reason, to the second. (Not
    ``shared.durations.human_duration``, which spells ``1 h 30 min``: reasons already stored
    and matched by receivers keep their spelling.)"""
    seconds, parts = ms // 1000, []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or f"{ms}ms"


def problem_at_start(state: MonitorState, problem: Finding, at: int, shared: Shared) -> list[Output]:
    """A rule found a problem in a run's start (too early, too often): one problem, dated then."""
    state.problems += 1
    state.last_problem = f"{problem.reason} at {iso_ms(at)}"
    return on_problem(state, at, shared)


def mark_overran(state: MonitorState, at: int, run: Run, shared: Shared) -> list[Output]:
    """A run passed its maximum run time without an end: one problem, dated then."""
    extra = state.extra
    assert extra is not None
    set_extra(state, shared, runs=tuple((r[0], r[1], True) if r is run else r for r in extra.runs))
    state.problems += 1
    state.last_problem = f"started at {iso_ms(run[1])}, still running after {_span(at - run[1])}"
    down = on_problem(state, at, shared)
    if down:
        return down
    if state.status != "down" and not running(state) and state.status != "late":
        return set_status(state, "late", at, Reason.RUN_OVERRAN)
    return []
