"""Failure rate over the last runs (docs/semantics.md, "Failure rate"). SKELETON."""

from __future__ import annotations

from services.evaluator.logic.monitor import Shared
from services.evaluator.logic.outputs import Output
from shared.rules import FailureRateRule
from shared.snapshots import MonitorState


def record(state: MonitorState, rule: FailureRateRule, failed: bool, at: int, shared: Shared) -> None:
    """Count one run's outcome (``Extra.outcomes``), before it is judged."""


def holds_recovery(state: MonitorState, rule: FailureRateRule) -> bool:
    """Down because of the rate (``Extra.rate_down``) and the rate not yet under the lower mark:
    a success does not bring it back."""
    return False


def judge(state: MonitorState, rule: FailureRateRule, at: int, shared: Shared) -> list[Output]:
    """After the check-in was judged: the rate at or above the mark takes it down (one ``down``
    alert with the rate as its reason) unless it is down already."""
    return []
