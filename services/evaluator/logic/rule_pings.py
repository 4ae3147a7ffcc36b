"""A ping of a monitor with rules (``shared.rules``): what its keywords make of it, then the verbs
as for any other ping (a check-in is judged by ``check_in``, a start by none of the rules)."""

from __future__ import annotations

from services.evaluator.logic import failure_rate, fleets, keywords
from services.evaluator.logic.checkins import check_in
from services.evaluator.logic.monitor import Shared, rules_of, set_extra
from services.evaluator.logic.outputs import Output
from services.evaluator.logic.runs import problem_at_start, start_run
from services.evaluator.logic.verdicts import Finding, judged, problem_of
from shared.events import Ping
from shared.snapshots import MonitorState, Rules


def judged_ping(state: MonitorState, rules: Rules, ping: Ping, at: int, shared: Shared) -> list[Output]:
    """A ping of a monitor with rules: its keywords may say it is something else (or nothing:
    ignored), a check-in is judged by ``check_in``."""
    findings: list[Finding] = []
    if rules.keywords is not None and ping.kind == "success":
        counted_as, findings = keywords.classify(rules.keywords, ping)
        if counted_as is None:  # ignored: history only, as a log line is
            return [judged(state, ping, at, findings)] if findings else []
        ping = counted_as
    if ping.kind != "start":
        return check_in(state, ping, at, shared, findings)
    outputs = start_run(state, ping.rid or "", at, shared)
    problem = problem_of(findings)
    if problem is not None:
        outputs += problem_at_start(state, problem, at, shared)
    if findings:
        outputs.append(judged(state, ping, at, findings))
    return outputs


def rules_changed(state: MonitorState, shared: Shared) -> None:
    """Its rules changed: a fleet takes its declared members, and what a rule now off kept is
    dropped (a baseline, the times of recent runs, a failure rate's runs): it costs nothing more,
    and a rule turned on again learns afresh rather than from runs judged by nothing."""
    fleets.configured(state, shared)
    rules = rules_of(state)
    if rules.failure_rate is None:
        failure_rate.forget(state, shared)
    extra = state.extra
    if extra is None:
        return
    baseline = rules.run_time is not None and rules.run_time.baseline != "off"
    if extra.durations and not baseline:
        set_extra(state, shared, durations=b"")
    if (
        state.extra is not None
        and state.extra.recent
        and (rules.cadence is None or rules.cadence.max_runs is None)
    ):
        set_extra(state, shared, recent=())
