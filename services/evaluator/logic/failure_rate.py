"""Failure rate over the last runs (docs/semantics.md, "Failure rate").

A heartbeat with a :class:`~shared.rules.FailureRateRule` keeps the outcomes of its last ``runs``
check-ins (``Extra.outcomes``: when each came, in ms, negated for a failure; at most
:data:`~shared.rules.MAX_RATE_RUNS`). A run is a check-in: a success, or a failure (``/fail``, a
non-zero exit code, a failure keyword); a missed window is no run (the classic rule sees it).

After each check-in is judged by its kind, the share of failures among the runs counted is
compared with the rule. At or above ``percent`` the heartbeat goes down at once, whatever
``max_consecutive_misses`` says (it is a rule of its own), with one ``down`` alert that gives the
rate; it stays down (``Extra.rate_down``) until the rate is under the lower mark
(``recover_percent``, by default half of ``percent``), and then recovers as any heartbeat does
(``recovery_threshold`` successes in a row). Down already for another reason (failures in a row,
a miss), a rate at the mark only sets ``rate_down``: the incident is the same, and its one ``up``
waits for both.

Runs counted: the last ``runs``; with ``window_s``, only those of them within ``window_s`` before
the latest. The rate is judged once :func:`min_runs` are counted: ``runs`` of them, or with a
window, half of ``runs`` (at least 2), so that one failure alone in a quiet window is not 100%.
Recovery looks at whatever is counted (a success after a long quiet spell counts alone).

Pausing forgets the outcomes (a resumed heartbeat starts afresh, as its window does), and so
does turning the rule off; changing it keeps them (the last ``runs`` of the new rule count).
"""

from __future__ import annotations

from services.evaluator.logic.incidents import go_down
from services.evaluator.logic.monitor import Shared, set_extra
from services.evaluator.logic.outputs import Output
from services.evaluator.logic.rate_figures import counted, failures, kept, min_runs, reason, under_lower_mark
from shared.rules import FailureRateRule
from shared.snapshots import MonitorState

DOWN = ("down", "unknown")
"""Down already (unknown: down, its alert held by an ingest incident)."""


def record(state: MonitorState, rule: FailureRateRule, failed: bool, at: int, shared: Shared) -> None:
    """Count one run's outcome (``Extra.outcomes``), before it is judged."""
    extra = state.extra
    outcomes = extra.outcomes if extra is not None else ()
    # (Event times are epoch ms, never 0: the sign alone says how the run went.)
    set_extra(state, shared, outcomes=(*outcomes, -at if failed else at)[-kept(rule) :])


def holds_recovery(state: MonitorState, rule: FailureRateRule) -> bool:
    """Down because of the rate (``Extra.rate_down``) and the rate not yet under the lower mark:
    a success does not bring it back."""
    extra = state.extra
    if extra is None or not extra.rate_down:
        return False
    runs = counted(extra.outcomes, rule)
    return not under_lower_mark(failures(runs), len(runs), rule)


def judge(state: MonitorState, rule: FailureRateRule, at: int, shared: Shared) -> list[Output]:
    """After the check-in was judged: the rate at or above the mark takes it down (one ``down``
    alert with the rate as its reason) unless it is down already."""
    extra = state.extra
    if extra is None:
        return []
    if extra.rate_down and state.status not in DOWN:
        set_extra(state, shared, rate_down=False)  # it came back another way (the rule changed, ...)
    runs = counted(extra.outcomes, rule)
    if len(runs) < min_runs(rule) or failures(runs) * 100 < rule.percent * len(runs):
        return []
    if state.status in DOWN:
        if not extra.rate_down:  # down for another reason: its recovery waits for the rate too
            set_extra(state, shared, rate_down=True)
        return []
    set_extra(state, shared, rate_down=True)
    return go_down(state, at, reason(state, rule), shared)


def forget(state: MonitorState, shared: Shared) -> None:
    """Paused, or the rule turned off: its outcomes are forgotten (and the rate holds no more)."""
    extra = state.extra
    if extra is not None and (extra.outcomes or extra.rate_down):
        set_extra(state, shared, outcomes=(), rate_down=False)
