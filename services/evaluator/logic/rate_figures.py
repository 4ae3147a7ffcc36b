"""The figures of a failure rate (docs/semantics.md, "Failure rate"): which of a heartbeat's kept
outcomes count, how many failed, the marks, and the reason people read. Pure arithmetic on
``Extra.outcomes`` (when each run came, in ms, negated for a failure), apart from the rule's module
(``failure_rate``) so that going down (``incidents``) can say it without importing that module,
which goes down through it."""

from __future__ import annotations

from shared.durations import human_duration
from shared.rules import MAX_RATE_RUNS, FailureRateRule
from shared.snapshots import MonitorState


def reason(state: MonitorState, rule: FailureRateRule) -> str:
    """The going-down reason, for people: "3 of the last 9 runs failed (33%, limit 30%); latest: ..."."""
    outcomes = state.extra.outcomes if state.extra is not None else ()
    runs = counted(outcomes, rule)
    failed, total = failures(runs), len(runs)
    share = failed * 100 // total if total else 0  # (rounded down: never shown at the limit when under it)
    span = (
        f"the last {total} runs"
        if rule.window_s is None
        else f"the {total} runs within {human_duration(rule.window_s * 1000)}"
    )
    text = f"{failed} of {span} failed ({share}%, limit {rule.percent}%)"
    if outcomes and outcomes[-1] < 0 and state.last_problem:
        text += f"; latest: {state.last_problem}"
    return text


def kept(rule: FailureRateRule) -> int:
    """The outcomes kept: the rule's ``runs``, bounded."""
    return max(1, min(rule.runs, MAX_RATE_RUNS))


def min_runs(rule: FailureRateRule) -> int:
    """Runs counted before the rate is judged: all ``runs``, or with a window, half of them (at
    least 2)."""
    if rule.window_s is None:
        return kept(rule)
    return max(2, (kept(rule) + 1) // 2)


def counted(outcomes: tuple[int, ...], rule: FailureRateRule) -> tuple[int, ...]:
    """The outcomes the rate is taken over: the last ``runs``, and with a window only those
    within it before the latest (the check-in just judged; the API's ``failure_rate_now`` counts
    the same)."""
    last = outcomes[-kept(rule) :]
    if rule.window_s is None or not last:
        return last
    since = abs(last[-1]) - rule.window_s * 1000
    return tuple(outcome for outcome in last if abs(outcome) >= since)


def lower_mark(rule: FailureRateRule) -> float:
    """The share (percent) the rate must fall under to recover: never above ``percent`` (else a
    recovery would go down again at the next run)."""
    lower = rule.recover_percent if rule.recover_percent is not None else rule.percent / 2
    return min(lower, rule.percent)


def under_lower_mark(failed: int, total: int, rule: FailureRateRule) -> bool:
    return failed == 0 or failed * 100 < lower_mark(rule) * total


def failures(runs: tuple[int, ...]) -> int:
    return sum(1 for outcome in runs if outcome < 0)
