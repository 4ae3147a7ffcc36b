"""Run times (docs/semantics.md, "Run times"): fixed limits, and the usual range learned from the
heartbeat's own last ``BASELINE_RUNS`` runs (``shared.rules.usual_band``). SKELETON: to be built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.evaluator.logic.monitor import Shared
from shared.rules import RunTimeRule
from shared.snapshots import MonitorState

if TYPE_CHECKING:
    from services.evaluator.logic.verdicts import Finding


def judge(state: MonitorState, rule: RunTimeRule, duration_ms: int, shared: Shared) -> list[Finding]:
    """Judge a run of ``duration_ms`` against the limits and the baseline, then add it to the
    baseline (``Extra.durations``)."""
    return []
