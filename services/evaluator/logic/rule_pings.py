"""A ping of a monitor with rules (``shared.rules``): what its keywords make of it, then the verbs
as for any other ping (a check-in is judged by ``check_in``, a start by none of the rules)."""

from __future__ import annotations

from services.evaluator.logic import keywords
from services.evaluator.logic.checkins import check_in
from services.evaluator.logic.monitor import Shared
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
