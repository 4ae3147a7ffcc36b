"""What the rules of ``shared.rules`` find in one run, and how it is told: a :class:`Finding` per
rule that found something, gathered here from the modules that judge (``run_times``, ``cadence``,
``keywords``), and one :class:`~shared.events.CheckinJudged` for the history.

A finding (declared in ``findings``, which the judging modules import; imported from here too)
that ``alert``\\ s makes the check-in a problem (as a failure is: it counts towards
``max_consecutive_misses``, with the finding's reason); one that does not only marks the run.
"""

from __future__ import annotations

from services.evaluator.logic import cadence, run_times
from services.evaluator.logic.findings import Finding
from services.evaluator.logic.monitor import Shared
from shared.events import CheckinJudged, Ping
from shared.snapshots import MonitorState, Rules


def judge_checkin(
    state: MonitorState, rules: Rules, at: int, duration_ms: int | None, shared: Shared
) -> list[Finding]:
    """The run-time and cadence rules on a check-in at ``at``, before it moves the window;
    ``duration_ms``: the run's, when known (measured from its start, or sent by the job)."""
    findings: list[Finding] = []
    if rules.run_time is not None and duration_ms is not None:
        findings += run_times.judge(state, rules.run_time, duration_ms, shared)
    if rules.cadence is not None:
        findings += cadence.judge(state, rules.cadence, at, shared)
    return findings


def problem_of(findings: list[Finding]) -> Finding | None:
    """The first finding that is a problem, if any."""
    return next((finding for finding in findings if finding.alert), None)


def judged(state: MonitorState, ping: Ping, at: int, findings: list[Finding]) -> CheckinJudged:
    duration = next((f.duration_ms for f in findings if f.duration_ms is not None), None)
    usual = next((f.usual_ms for f in findings if f.usual_ms is not None), None)
    return CheckinJudged(
        id=f"{state.monitor_id}:judged:{ping.id}",
        monitor_id=state.monitor_id,
        project_id=state.project_id,
        ping_id=ping.id,
        at_ms=at,
        verdicts=[finding.verdict for finding in findings],
        alerted=problem_of(findings) is not None,
        reason="; ".join(finding.reason for finding in findings),
        duration_s=duration / 1000 if duration is not None else None,
        usual_low_s=usual[0] / 1000 if usual is not None else None,
        usual_high_s=usual[1] / 1000 if usual is not None else None,
        keyword=next((f.keyword for f in findings if f.keyword is not None), None),
        instance=ping.instance,
    )


__all__ = ["Finding", "judge_checkin", "judged", "problem_of"]
