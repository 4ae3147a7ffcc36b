"""Incidents: going down when problems in a row reach the limit, reminders while down, and
recovery after enough successes in a row. Each opens or closes with exactly one alert."""

from __future__ import annotations

from typing import Literal

from services.evaluator.logic import rate_figures
from services.evaluator.logic.monitor import Shared, rules_of, set_extra, set_status
from services.evaluator.logic.outputs import Output
from shared.events import Alert, MonitorStatus
from shared.snapshots import MonitorState, Reason

MISSING_LISTED = 50
"""A fleet's ``down`` alert names at most this many missing instances (sorted)."""


def on_problem(state: MonitorState, at: int, shared: Shared) -> list[Output]:
    """One more problem was counted (``state.problems``): go down at the limit, with the
    ``down`` alert that opens an incident. Nothing (an empty list) below it or when down."""
    if state.extra is not None and state.extra.streak:
        set_extra(state, shared, streak=0)  # recovery needs successes in a row
    if state.problems < state.max_problems or state.status in ("down", "unknown"):
        return []  # (unknown: down already, its alert held by an ingest incident)
    return go_down(state, at, going_down_reason(state), shared)


def go_down(state: MonitorState, at: int, reason: str, shared: Shared) -> list[Output]:
    """Open an incident: ``down`` for ``reason``, with the ``down`` alert that opens it."""
    state.incident += 1
    if state.extra is not None and state.extra.reminders:
        set_extra(state, shared, reminders=0)
    outputs = set_status(state, "down", at, reason)
    outputs.append(alert(state, "down", at, reason))
    return outputs


def going_down_reason(state: MonitorState) -> str:
    rules = rules_of(state)
    if rules.failure_rate is not None and state.extra is not None and state.extra.rate_down:
        return rate_figures.reason(state, rules.failure_rate)
    return (
        f"{state.problems} consecutive problem(s) (limit {state.max_problems}); latest: {state.last_problem}"
    )


def recover(
    state: MonitorState, target: MonitorStatus, at: int, shared: Shared, why: str | None = None
) -> list[Output]:
    """A success while down: one more in the streak, and at ``recovery_threshold`` in a row
    the monitor is ``target`` again, with the ``up`` alert that closes the incident (``why``:
    what brought it back, when not a ping)."""
    extra = state.extra
    streak = (extra.streak if extra is not None else 0) + 1
    if streak < rules_of(state).recovery_threshold:
        set_extra(state, shared, streak=streak)
        return []  # not yet: a flapping job does not page up, down, up
    down_since = state.status_since_ms
    set_extra(state, shared, streak=0, reminders=0, rate_down=False)
    outputs = set_status(state, target, at, why or Reason.PING_RECEIVED)
    outputs.append(alert(state, "up", at, why or "ping received after being down", down_since=down_since))
    return outputs


def reminder_at(state: MonitorState) -> int | None:
    """When the next reminder of the current incident is due; None: none will be."""
    extra = state.extra
    if state.status != "down" or extra is None or extra.rules is None or state.status_since_ms is None:
        return None
    every_ms = extra.rules.reminder_interval_ms
    return state.status_since_ms + (extra.reminders + 1) * every_ms if every_ms else None


def remind(state: MonitorState, ready: int, shared: Shared) -> list[Output]:
    """The latest reminder due (after a stretch without ticks, the ones before it are
    skipped rather than sent at once), dated when it came due."""
    extra = state.extra
    assert extra is not None and extra.rules is not None and extra.rules.reminder_interval_ms
    assert state.status_since_ms is not None
    every_ms, since = extra.rules.reminder_interval_ms, state.status_since_ms
    n = max(extra.reminders + 1, (ready - since) // every_ms)
    set_extra(state, shared, reminders=n)
    at = since + n * every_ms
    reason = state.status_reason or state.last_problem
    return [alert(state, "down", at, reason, down_since=since, reminder=n)]


def alert(
    state: MonitorState,
    kind: Literal["down", "up"],
    at: int,
    reason: str,
    down_since: int | None = None,
    reminder: int = 0,
) -> Alert:
    last = state.last_checkin
    fleet = state.extra.fleet if state.extra is not None else None
    if kind != "down" or fleet is None or not fleet.judged_ms:
        fleet = None  # (a fleet's down and reminders say who was missing in the last window judged)
    return Alert(
        id=f"{state.monitor_id}:{state.incident}:reminder:{reminder}" if reminder else
        f"{state.monitor_id}:{state.incident}:{kind}",
        kind=kind,
        monitor_id=state.monitor_id,
        project_id=state.project_id,
        monitor_name=state.name,
        incident=state.incident,
        reason=reason,
        at_ms=at,
        channels=list(state.channels),
        tags=list(state.tags),
        consecutive_problems=state.problems,
        last_ping_ms=state.last_ping_ms,
        down_since_ms=down_since,
        reminder=reminder,
        last_ping_kind=last.kind if last is not None else None,
        last_ping_exit_code=last.exit_code if last is not None else None,
        last_ping_message=state.last_message,
        missing_instances=list(fleet.missing[:MISSING_LISTED]) if fleet is not None else [],
        instances_reported=fleet.reported if fleet is not None else None,
        instances_expected=fleet.members if fleet is not None else None,
    )  # fmt: skip
