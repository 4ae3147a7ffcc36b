"""Run times (docs/semantics.md, "Run times"): fixed limits, and the usual range learned from the
heartbeat's own last ``BASELINE_RUNS`` runs (``shared.rules.usual_band``).

Every measured success enters the baseline, outliers included: the median ignores a few, and a
lasting change (a bigger database, a new disk) becomes the new normal once it is about half the
runs kept (after some ``BASELINE_RUNS / 2`` runs), instead of paging for ever. Until then each
such run is judged: a job that went wrong pages at its first odd run and stays down for about ten
more, then its run time is the usual one, fixed or not (a fixed ``min_s``/``max_s`` keeps
judging it: the one to set for a run time that is never right). Only a rule with a baseline keeps
one (limits alone keep nothing).
"""

from __future__ import annotations

import struct

from services.evaluator.logic.findings import Finding
from services.evaluator.logic.monitor import Shared, set_extra
from shared.durations import human_duration
from shared.rules import BASELINE_RUNS, RunTimeRule, Verdict, usual_band
from shared.snapshots import DURATION_FORMAT, MonitorState, durations_ms

_WIDTH = struct.calcsize(DURATION_FORMAT)
_MAX_MS = 2**32 - 1
"""The longest run time the baseline keeps (about 49 days; longer ones count as that)."""


def judge(state: MonitorState, rule: RunTimeRule, duration_ms: int, shared: Shared) -> list[Finding]:
    """Judge a run of ``duration_ms`` against the limits and the baseline, then add it to the
    baseline (``Extra.durations``)."""
    findings: list[Finding] = []
    took = f"run took {spell(duration_ms)}"
    limits_alert = rule.limits == "alert"
    if rule.min_s is not None and duration_ms < rule.min_s * 1000:
        reason = f"{took}; the minimum is {spell(rule.min_s * 1000)}"
        findings.append(Finding("under_min", limits_alert, reason, duration_ms))
    if rule.max_s is not None and duration_ms > rule.max_s * 1000:
        reason = f"{took}; the maximum is {spell(rule.max_s * 1000)}"
        findings.append(Finding("over_max", limits_alert, reason, duration_ms))
    if rule.baseline == "off":
        return findings
    kept = state.extra.durations if state.extra is not None else b""
    band = usual_band(durations_ms(state.extra))
    if band is not None and not band[1] <= duration_ms <= band[2]:
        median, low, high = band
        reason = (
            f"{took}; usually {spell(low)} to {spell(high)}"
            f" (median {spell(median)} of the last {len(kept) // _WIDTH} runs)"
        )
        verdict: Verdict = "too_fast" if duration_ms < low else "too_slow"
        findings.append(Finding(verdict, rule.baseline == "alert", reason, duration_ms, (low, high)))
    packed = struct.pack(DURATION_FORMAT, min(max(duration_ms, 0), _MAX_MS))
    set_extra(state, shared, durations=(kept + packed)[-BASELINE_RUNS * _WIDTH :])
    return findings


def spell(ms: float) -> str:
    """A run time for people: ``350 ms``, ``3.5 s``, ``40 s``, ``1 min 20 s``, ``2 h 5 min``."""
    whole = round(ms)
    if whole < 1000:
        return f"{whole} ms"
    if whole < 10_000:
        return f"{whole / 1000:.1f}".removesuffix(".0") + " s"
    return human_duration(whole)
