"""Fleets: one heartbeat, many instances (docs/semantics.md, "Fleets").

A heartbeat whose rules have a fleet counts its instances. A check-in that names one
(``Ping.instance``) notes when that instance last checked in (``Fleet.seen``); one that names
none is a check-in of the heartbeat only. The windows are fixed: the first check-in opens the
first, and each next one is one interval (or one run of the schedule) after the one before,
whoever checks in. At each deadline :func:`judge_window` counts the members that reported:

- no check-in of the heartbeat at all in the window (named or not): a miss, as for any heartbeat;
- fewer than required: one problem, whose reason (and the ``down`` alert) names the missing;
- enough: a good window, which ends the problems in a row.

An instance *reported* in a window when it checked in after the window before was judged
(for the first window: at all): the windows meet end to end, so each check-in counts for one
window only, whatever the instance's phase; one run skipped is one window missing it. It is
*reporting* now when it reported in the last window judged or checked in since: while down, a
success brings the heartbeat back only once enough members are reporting (:func:`holds_recovery`),
and a member the window found missing stays missing until its own next check-in.

Members are the instances seen (learned or declared), less those gone: a learned instance
silent for the rule's expiry leaves at the first window judged after it expired (without
paging), one removed through the API leaves at once (:func:`remove`). Both come back with their
next check-in. There is no ``late`` in a fleet: its fixed windows would show late and back on
every check-in of every instance.
"""

from __future__ import annotations

import functools
import sys

from services.evaluator.logic.deadlines import mark_missed, next_deadline
from services.evaluator.logic.incidents import on_problem, recover
from services.evaluator.logic.monitor import Shared, rules_of, set_extra
from services.evaluator.logic.outputs import Output
from services.evaluator.logic.runs import running
from shared.clock import iso_ms
from shared.rules import INSTANCE_EXPIRY_DEFAULT_S, MAX_INSTANCES, FleetRule
from shared.snapshots import Fleet, MonitorState

NAMED_IN_REASON = 10
"""Missing instances a problem's reason names (the alert lists up to 50, the API all)."""


def checked_in(state: MonitorState, rule: FleetRule, instance: str | None, at: int, shared: Shared) -> None:
    """An instance (None: one that did not say) checked in at ``at``: learn it, note when.

    A check-in without a name counts for the heartbeat (its window is not missed) but for no
    instance: it cannot say who is missing. A new name beyond ``MAX_INSTANCES`` members is not
    learned (a job that names each run anew cannot grow the evaluator without bound)."""
    if instance is None:
        return
    fleet = fleet_of(state, rule, shared)
    seen, opened = fleet.seen, fleet.opened_ms
    last = seen.get(instance)
    if last is None:
        if len(seen) < MAX_INSTANCES:
            seen[sys.intern(instance)] = at  # host names repeat across heartbeats: one copy
            fleet.away += at <= opened  # (a late check-in of a new member, from before the window)
    elif at > last:  # (an older check-in that arrived late says nothing newer)
        seen[instance] = at
        fleet.away -= last <= opened < at  # it was missing, and is back


def holds_recovery(state: MonitorState, rule: FleetRule, at: int) -> bool:
    """While down, a success (at ``at``, already noted) does not bring the heartbeat back until
    enough members are reporting: the last window judged found them there, or they checked in
    since. (Time alone does not change it between two windows: no flapping up and down.)"""
    extra = state.extra
    fleet = extra.fleet if extra is not None else None
    return _short(state, rule, fleet)


def judge_window(state: MonitorState, rule: FleetRule, deadline: int, shared: Shared) -> list[Output]:
    """The window closing at ``deadline`` (the fleet's check): enough instances reported, too few
    (a problem naming the missing), or none (a miss); then the next window."""
    fleet = fleet_of(state, rule, shared)
    seen, since = fleet.seen, fleet.judged_ms  # reported: checked in after the window before was judged
    _expire(seen, rule, deadline)
    away = sum(1 for last in seen.values() if last <= since)
    members = len(seen)
    required = required_of(rule, members)
    fleet.judged_ms, fleet.opened_ms, fleet.members, fleet.required = deadline, since, members, required
    fleet.reported, fleet.away = members - away, away
    if state.last_ping_ms is None or state.last_ping_ms <= since:
        return mark_missed(state, deadline, shared)  # not one check-in: missed, as any heartbeat's window
    state.deadline_ms = next_deadline(state, deadline - state.grace_ms)  # from the one expected: no drift
    if members - away >= required:
        state.problems = 0  # a good window: a fleet's problems in a row end here
        return []
    state.problems += 1
    state.last_problem = shortfall(fleet)
    return on_problem(state, deadline, shared)


def remove(state: MonitorState, instance: str, at: int, shared: Shared) -> list[Output]:
    """An instance taken out of the fleet through the API: it is no member until it checks in
    again (a declared one too, until then or until the fleet's rule changes). If that leaves the
    fleet with enough members reporting while it is down, it comes back now, as a success
    would bring it: nothing is left to wait for."""
    extra = state.extra
    fleet = extra.fleet if extra is not None else None
    rule = rules_of(state).fleet
    last = fleet.seen.pop(instance, None) if fleet is not None and rule is not None else None
    if fleet is None or rule is None or last is None:
        return []
    if last <= fleet.opened_ms:  # missing: the figures of the last window stop counting it
        fleet.away -= 1
        fleet.members -= bool(fleet.judged_ms)
    if state.status != "down" or _short(state, rule, fleet):
        return []
    state.problems = 0
    why = f"instance {instance!r} removed: enough instances are reporting"
    return recover(state, "running" if running(state) else "up", at, shared, why)


def configured(state: MonitorState, shared: Shared) -> None:
    """The heartbeat's rules changed: its declared members join (never seen yet), ones no
    longer declared that never checked in leave, and without a fleet rule the fleet is gone."""
    extra = state.extra
    fleet = extra.fleet if extra is not None else None
    if fleet is None:
        return  # made at the first check-in or window, with the members declared then
    rule = rules_of(state).fleet
    if rule is None:
        set_extra(state, shared, fleet=None)
        return
    declared = _declared(rule)
    for name in [name for name, last in fleet.seen.items() if not last and name not in declared]:
        del fleet.seen[name]
        fleet.away -= 1  # (never seen: it was away)
    for name in rule.declared:
        if name not in fleet.seen:
            fleet.seen[sys.intern(name)] = 0
            fleet.away += 1


def restored(fleet: Fleet) -> None:
    """A decoded fleet: its names are fresh copies; share them again."""
    fleet.seen = {sys.intern(name): last for name, last in fleet.seen.items()}


def fleet_of(state: MonitorState, rule: FleetRule, shared: Shared) -> Fleet:
    """The heartbeat's :class:`Fleet`, made on first use with its declared members (its one
    mutable part: a check-in updates its entry in place)."""
    extra = state.extra
    fleet = extra.fleet if extra is not None else None
    if fleet is None:
        fleet = Fleet(seen=dict.fromkeys(map(sys.intern, rule.declared), 0), away=len(rule.declared))
        set_extra(state, shared, fleet=fleet)
    return fleet


def required_of(rule: FleetRule, members: int) -> int:
    """How many of ``members`` must report: ``min_instances``, or ``min_percent`` of them rounded
    up; with both, the larger."""
    share = -(-(rule.min_percent or 0) * members // 100)
    return max(rule.min_instances or 0, share)


def shortfall(fleet: Fleet) -> str:
    """The problem of a short window, for people: how many reported of how many, by when, who not."""
    reported, members, required, missing = fleet.reported, fleet.members, fleet.required, fleet.missing
    text = f"only {reported} of {members} instances reported by {iso_ms(fleet.judged_ms)}"
    if required != members:
        text += f" ({required} required)"
    if not members:
        text += "; no check-in named its instance (?instance=NAME)"
    if missing:
        named = ", ".join(missing[:NAMED_IN_REASON])
        more = len(missing) - NAMED_IN_REASON
        text += f"; missing: {named}" + (f" and {more} more" if more > 0 else "")
    return text


def _short(state: MonitorState, rule: FleetRule, fleet: Fleet | None) -> bool:
    """Fewer members reporting now than required. A member is reporting unless the last window
    judged found it missing and it has not checked in since (or it is declared and never has):
    ``Fleet.away`` counts those as they come and go, so a large fleet checking in thousands of
    times a window while it is down looks at one number each time."""
    if fleet is None:
        return required_of(rule, 0) > 0
    members = len(fleet.seen)
    return fleet.away > members - required_of(rule, members)


def _expire(seen: dict[str, int], rule: FleetRule, at: int) -> None:
    """Learned members silent for the expiry by ``at`` leave (declared ones never do)."""
    expiry_ms = 1000 * (rule.expiry_s if rule.expiry_s is not None else INSTANCE_EXPIRY_DEFAULT_S)
    gone_before = at - expiry_ms
    gone = [name for name, last in seen.items() if last <= gone_before]
    if gone:
        declared = _declared(rule)
        for name in gone:
            if name not in declared:
                del seen[name]


@functools.lru_cache(maxsize=1024)
def _declared(rule: FleetRule) -> frozenset[str]:
    return frozenset(rule.declared)
