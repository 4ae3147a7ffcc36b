"""The rules that catch subtler failures than a missed or failed run (docs/semantics.md, "Fleets",
"Run times", "Runs too early or too often", "Failure rate", "Keywords"): declared once, here.

Each is an optional part of a heartbeat's :class:`~shared.events.MonitorConfig` (None: the rule is
off), carried on the bus as it is declared, kept by the evaluator in its shared
:class:`~shared.snapshots.Rules` (one object per distinct rule, hashable), and mirrored by the API's
bodies (``services.query.api.schemas``), which validate and document them. Times in seconds, as
the API takes them.

A heartbeat that uses none of them costs the evaluator nothing more: no field of its
:class:`~shared.snapshots.MonitorState` is added, and its rules stay None.
"""

from __future__ import annotations

from typing import Literal

import msgspec

MAX_INSTANCES = 10_000
"""Instances one heartbeat keeps at most (learned and declared): pings from a new name beyond this
are still check-ins of the heartbeat, but the name is not added (a job that names each run anew
cannot grow the evaluator without bound)."""
MAX_INSTANCE_CHARS = 64
"""An instance name: 1-64 printable characters (a host name, a pod name, a worker id)."""
INSTANCE_EXPIRY_DEFAULT_S = 7 * 86400
"""An instance that has not checked in for this long leaves the fleet without paging (a rule's
``expiry_s`` overrides it): long enough that a host that died is paged about for days first."""

BASELINE_RUNS = 20
"""Run times a heartbeat's baseline is learned from: the last K = 20 measured runs."""
BASELINE_MIN_RUNS = 10
"""Runs measured before the baseline judges any: no baseline alert or mark until then."""
BASELINE_SIGMAS = 4.0
"""A run is far from usual beyond this many robust standard deviations (1.4826 x MAD) of the median..."""
BASELINE_MIN_FACTOR = 2.0
"""...and at least this factor away from it (below half, above twice the median): a steady job
whose runs barely vary is not flagged for being 10% slower."""
BASELINE_MIN_GAP_MS = 1000
"""...and at least this far from it (1 s): a job of a few milliseconds is not flagged for taking a
few more (measured start to end, its runs jitter by more than they last)."""

MAX_CADENCE_RUNS = 100
"""``CadenceRule.max_runs`` at most: the times of that many runs (and one) are kept."""
FAILURE_RATE_DEFAULT_RUNS = 10
MAX_RATE_RUNS = 100
"""The failure rate is counted over the last ``runs`` (2-100) runs: the state kept is bounded."""

RuleAction = Literal["alert", "mark"]
"""``alert``: such a run is a problem (counts towards ``max_consecutive_misses``, alerts through
the channels); ``mark``: it is only marked in the history and the timing graph."""


class FleetRule(msgspec.Struct, frozen=True, kw_only=True):
    """One heartbeat, many instances: at each check, at least this many of its instances must have
    reported (docs/semantics.md, "Fleets"). Members are learned from pings that name an instance
    (``Ping.instance``) and may be declared; an instance silent for ``expiry_s`` leaves."""

    min_instances: int | None = None
    """At least this many instances must report in each window."""
    min_percent: int | None = None
    """Or at least this share (1-100) of the members; with both, the larger count."""
    declared: tuple[str, ...] = ()
    """Members named in advance: expected from the first window on, and never expire."""
    expiry_s: int | None = None
    """None: :data:`INSTANCE_EXPIRY_DEFAULT_S`."""


class RunTimeRule(msgspec.Struct, frozen=True, kw_only=True):
    """How long a run should take (docs/semantics.md, "Run times"): fixed limits, and a baseline
    learned from the heartbeat's own last :data:`BASELINE_RUNS` measured runs."""

    min_s: float | None = None
    """A run shorter than this is too fast (the backup that backed up nothing)."""
    max_s: float | None = None
    """A run longer than this is too slow."""
    limits: RuleAction = "alert"
    """What a run outside ``min_s``/``max_s`` does."""
    baseline: Literal["off", "mark", "alert"] = "off"
    """What a run far from the learned usual range does; ``off``: no baseline is judged."""


class CadenceRule(msgspec.Struct, frozen=True, kw_only=True):
    """Runs that come too early or too often (docs/semantics.md, "Runs too early or too often").
    Each is a problem with its own reason."""

    early_s: int | None = None
    """A check-in arriving more than this many seconds before the one the last check-in expects
    (an interval after it, or the schedule's next run) is too early. None: not judged."""
    max_runs: int | None = None
    """More than this many runs within one interval (or between two runs of the schedule) is too
    often. None: not judged."""


class FailureRateRule(msgspec.Struct, frozen=True, kw_only=True):
    """Alert when at least ``percent`` of the last ``runs`` runs failed, even if never enough in a
    row; recover when it falls under ``recover_percent`` (docs/semantics.md, "Failure rate")."""

    percent: int
    """1-100: at or above this share of failed runs, the heartbeat goes down."""
    runs: int = FAILURE_RATE_DEFAULT_RUNS
    """The last this many runs (2-:data:`MAX_RATE_RUNS`) are counted; no judgement before as many were seen
    (with ``window_s``: half as many, at least 2, within the window)."""
    window_s: int | None = None
    """Only runs within this long before the newest count (a rate over time); None: no limit."""
    recover_percent: int | None = None
    """Back up under this share; None: half of ``percent``."""


class KeywordRule(msgspec.Struct, frozen=True, kw_only=True):
    """Words in a success ping's output or message that say what the run really did
    (docs/semantics.md, "Keywords"), matched without regard to case (casefold), failure words first, then
    success, then start."""

    success: tuple[str, ...] = ()
    failure: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    unmatched: Literal["keep", "ignore", "fail"] = "keep"
    """A success ping whose text matches no keyword: ``keep`` it as a success, ``ignore`` it
    (history only, as Healthchecks does), or count it a ``fail``."""


Verdict = Literal[
    "too_fast", "too_slow", "under_min", "over_max", "too_early", "too_often",
    "keyword_failure", "keyword_start", "keyword_success", "ignored", "unmatched_failed",
]  # fmt: skip
"""What a rule found in one check-in (``CheckinJudged.verdicts``): outside the learned usual range
(``too_fast``, ``too_slow``), outside the fixed limits (``under_min``, ``over_max``), ``too_early``,
``too_often``, or what its keywords made of it."""


def usual_band(durations_ms: tuple[int, ...] | list[int]) -> tuple[float, float, float] | None:
    """``(median, low, high)`` in ms of the usual run time learned from these durations; None with
    fewer than :data:`BASELINE_MIN_RUNS` of them. Outside ``[low, high]`` is far from usual."""
    if len(durations_ms) < BASELINE_MIN_RUNS:
        return None
    ordered = sorted(durations_ms)
    median = _median(ordered)
    spread = 1.4826 * _median(sorted(abs(d - median) for d in ordered))
    low = max(0.0, min(median - BASELINE_SIGMAS * spread, median / BASELINE_MIN_FACTOR))
    high = max(median + BASELINE_SIGMAS * spread, median * BASELINE_MIN_FACTOR, median + BASELINE_MIN_GAP_MS)
    low = max(0.0, min(low, median - BASELINE_MIN_GAP_MS))
    return median, low, high


def _median(ordered: list[float] | list[int]) -> float:
    n = len(ordered)
    middle = n // 2
    return float(ordered[middle]) if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


__all__ = [
    "BASELINE_MIN_FACTOR", "BASELINE_MIN_GAP_MS", "BASELINE_MIN_RUNS", "BASELINE_RUNS", "BASELINE_SIGMAS",
    "FAILURE_RATE_DEFAULT_RUNS", "INSTANCE_EXPIRY_DEFAULT_S", "MAX_INSTANCES", "MAX_INSTANCE_CHARS", "MAX_RATE_RUNS",
    "CadenceRule", "FailureRateRule", "FleetRule", "KeywordRule", "RuleAction", "RunTimeRule", "Verdict", "usual_band",
]  # fmt: skip
