"""Runs too early or too often (docs/semantics.md, "Runs too early or too often"). SKELETON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.evaluator.logic.monitor import Shared
from shared.rules import CadenceRule
from shared.snapshots import MonitorState

if TYPE_CHECKING:
    from services.evaluator.logic.verdicts import Finding


def judge(state: MonitorState, rule: CadenceRule, at: int, shared: Shared) -> list[Finding]:
    """A run arrived at ``at`` (its start, or its check-in when it sent no start): too early
    against the window still open (``state.deadline_ms`` before it moves), too often against the
    runs of the last interval (``Extra.recent``, updated here)."""
    return []
