"""Fleets: one heartbeat, many instances (docs/semantics.md, "Fleets"). SKELETON."""

from __future__ import annotations

from services.evaluator.logic.monitor import Shared
from services.evaluator.logic.outputs import Output
from shared.rules import FleetRule
from shared.snapshots import MonitorState


def checked_in(state: MonitorState, rule: FleetRule, instance: str | None, at: int, shared: Shared) -> None:
    """An instance (None: one that did not say) checked in at ``at``: learn it, note when."""


def holds_recovery(state: MonitorState, rule: FleetRule, at: int) -> bool:
    """While down, a success does not bring the heartbeat back until enough instances report."""
    return False


def judge_window(state: MonitorState, rule: FleetRule, deadline: int, shared: Shared) -> list[Output]:
    """The window closing at ``deadline`` (the fleet's check): enough instances reported, too few
    (a problem naming the missing), or none (a miss); then the next window."""
    return []


def remove(state: MonitorState, instance: str, at: int, shared: Shared) -> list[Output]:
    """An instance taken out of the fleet through the API."""
    return []
