"""Check-ins: a ``success`` or ``fail`` ping (a run ended), recorded and judged.

A success clears the problems in a row (and, while down, counts towards recovery); a failure
is a problem too, but proves the job ran, so either one opens the next window.
"""

from __future__ import annotations

import re
import sys
from typing import cast

from services.evaluator.logic import failure_rate, fleets, keywords
from services.evaluator.logic.deadlines import anchor, next_deadline
from services.evaluator.logic.incidents import on_problem, recover
from services.evaluator.logic.monitor import Shared, rules_of, set_status
from services.evaluator.logic.outputs import Output
from services.evaluator.logic.runs import end_run, running
from services.evaluator.logic.verdicts import Finding, judge_checkin, judged, problem_of
from shared.clock import iso_ms
from shared.events import CHECKIN_MESSAGE_MAX_CHARS, MonitorStatus, Ping, RunMeasured
from shared.snapshots import Checkin, CheckinKind, MonitorState, Reason

SHARED_MESSAGE_MAX_CHARS = 40
"""Messages up to this long, without a digit, are interned: those are mostly status words that
many monitors repeat ("OK", "backup done"), so a fleet of the same job holds one copy. Longer
ones, and any with a digit, mostly carry specifics (counts, paths, times), where interning only
adds its table entry (measured: -64 bytes a monitor shared; +38 distinct, and 77 B a heartbeat
at a million with a count in every message: docs/PERFORMANCE.md section 19)."""
_DIGITS = frozenset("0123456789")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")
"""C0 and C1 controls, zero-width characters and bidi controls: spaces in a kept message."""

_CHECKINS: dict[tuple[str, int | None], Checkin] = {}


def checkin(kind: str, exit_code: int | None) -> Checkin:
    """The shared :class:`Checkin` of this kind and exit code."""
    found = _CHECKINS.get((kind, exit_code))
    if found is None:  # at most 2 x 257 times: a success or a failure (a run ended), and its code
        shared_kind = cast(CheckinKind, sys.intern(kind))
        found = _CHECKINS.setdefault((shared_kind, exit_code), Checkin(shared_kind, exit_code))
    return found


def one_line(message: str | None) -> str | None:
    """A job's message as kept: unprintables and whitespace runs one space, at most
    ``CHECKIN_MESSAGE_MAX_CHARS`` (cut with ``…``); None when nothing is left."""
    if not message:
        return None
    limit = CHECKIN_MESSAGE_MAX_CHARS
    if (
        len(message) <= limit
        and message.isprintable()
        and message[0] != " " != message[-1]
        and "  " not in message
    ):
        text = message  # already one clean line (the common case): no regex, no copy
    else:
        # Only the start can be kept: a 10,000-character body is not cleaned whole on every ping.
        text = " ".join(_UNPRINTABLE.sub(" ", message[: 4 * limit]).split())
        if not text:
            return None
    if len(text) <= SHARED_MESSAGE_MAX_CHARS and _DIGITS.isdisjoint(text):
        return sys.intern(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def check_in(
    state: MonitorState, ping: Ping, at: int, shared: Shared, findings: list[Finding] | None = None
) -> list[Output]:
    """A ``success`` or ``fail`` at ``at``: end the run it ends, record it (unless an older
    one arrived late), open the next window, then judge it: by its kind, and by the rules of
    ``shared.rules`` (``findings``: what its keywords made of it, already)."""
    outputs: list[Output] = []
    extra = state.extra  # None for most monitors: the path below then stays as short as it was
    if extra is None:
        rules = None
        if state.last_ping_ms is None or at >= state.last_ping_ms:
            state.last_ping_ms = at
            state.last_checkin = checkin(ping.kind, ping.exit_code)
            state.last_message = one_line(ping.message)
        state.deadline_ms = state.last_ping_ms + state.interval_ms + state.grace_ms
    else:
        rules = extra.rules
        measured = end_run(state, ping, at, shared) if extra.runs else None
        if measured is not None:
            outputs.append(measured)
        if rules is not None and rules.judges_runs:
            # A failed run's time says how long it took to fail: neither judged nor learned from.
            duration = _duration_ms(ping, measured) if ping.kind == "success" else None
            findings = [*(findings or ()), *judge_checkin(state, rules, at, duration, shared)]
        if state.last_ping_ms is None or at >= state.last_ping_ms:
            state.last_ping_ms = at
            state.last_checkin = checkin(ping.kind, ping.exit_code)
            state.last_message = one_line(ping.message)
        if rules is not None and rules.fleet is not None:
            fleets.checked_in(state, rules.fleet, ping.instance, at, shared)
            if state.deadline_ms is None:  # a fleet's windows are fixed: only its first check-in opens one
                state.deadline_ms = next_deadline(state, anchor(state))
        else:
            state.deadline_ms = next_deadline(state, anchor(state))
        if rules is not None and rules.failure_rate is not None:
            failure_rate.record(state, rules.failure_rate, ping.kind == "fail", at, shared)
    problem = problem_of(findings) if findings else None
    if ping.kind == "success" and problem is None:
        if rules is None or rules.fleet is None:  # (a fleet's problems end with a good window, or recovery)
            state.problems = 0
        if state.status != "up" or extra is not None:
            outputs += mark_ok(state, at, shared)
    else:
        outputs += mark_failed(state, ping, at, shared, problem)
    if rules is not None and rules.failure_rate is not None:
        outputs += failure_rate.judge(state, rules.failure_rate, at, shared)
    if findings:
        outputs.append(judged(state, ping, at, findings))
    return outputs


def _duration_ms(ping: Ping, measured: RunMeasured | None) -> int | None:
    """The run's duration: as the job sent it, else as measured from its start."""
    if ping.duration_s is not None:
        return round(ping.duration_s * 1000)
    return measured.ended_ms - measured.started_ms if measured is not None else None


def mark_ok(state: MonitorState, at: int, shared: Shared) -> list[Output]:
    """A success: ``up`` (``running`` while a run is still open), or towards recovery while down
    (not while a fleet is short of instances or the failure rate is still high)."""
    target: MonitorStatus = "running" if running(state) else "up"
    if state.status == "down":
        rules = rules_of(state)
        if rules.fleet is not None:
            if fleets.holds_recovery(state, rules.fleet, at):
                return []
            state.problems = 0  # enough instances again: its problems end with the incident
        if rules.failure_rate is not None and failure_rate.holds_recovery(state, rules.failure_rate):
            return []
        return recover(state, target, at, shared)
    if state.status == "unknown" and state.extra is not None and state.extra.rate_down:
        rate = rules_of(state).failure_rate  # down on its rate, its alert held: not back while the rate holds
        if rate is not None and failure_rate.holds_recovery(state, rate):
            return []
    return set_status(state, target, at, Reason.PING_RECEIVED) if state.status != target else []


def mark_failed(
    state: MonitorState, ping: Ping, at: int, shared: Shared, problem: Finding | None = None
) -> list[Output]:
    """A failure, or a check-in a rule found a problem in (``problem``): one problem (going down
    at the limit). A first check-in that fails still shows the job is there (``up``), as does the
    failed end of the last open run."""
    state.problems += 1
    if problem is not None and (ping.kind == "success" or problem.verdict in keywords.COUNTED_AS_FAILURE):
        state.last_problem = f"{problem.reason} at {iso_ms(at)}"
    else:
        code = f" (exit code {ping.exit_code})" if ping.exit_code is not None else ""
        detail = f": {ping.message[:200]}" if ping.message else ""
        state.last_problem = f"job reported failure{code} at {iso_ms(at)}{detail}"
    down = on_problem(state, at, shared)
    if down:
        return down
    if state.status == "new":
        return set_status(state, "up", at, Reason.FIRST_CHECKIN_FAILED)
    if state.status == "running" and not running(state):
        return set_status(state, "up", at, Reason.RUN_FAILED)
    return []
