"""Holds: the alerts the verbs decided, passed through what can hold them back.

The verbs (``checkins``, ``deadlines``, ``runs``, ``incidents``) decide statuses and alerts as
if nothing else existed; :meth:`Holds.gate` then looks at each ``down`` and ``up`` alert and
holds it while, at the alert's event time (docs/semantics.md, "Holds"):

- the heartbeat is muted (``muted_until_ms``);
- a maintenance window covers it (``maintenance``);
- it is flapping (``flapping``: this module counts its changes);
- a heartbeat it depends on is down (``dependencies``);
- ingestion itself collapsed for its project or the partition (``ingest``): going down then
  shows ``unknown``, not ``down``.

A held alert is remembered on the heartbeat (:class:`~shared.snapshots.Held`): people have not
heard that it is down (or up). A ``down`` and an ``up`` held cancel out. When the hold ends,
the alert goes out if it is still true: at once after a mute, a window or flapping; after a
dependency or an ingest incident, only if the heartbeat has not checked in by the end of one
more window (its job could not run, or its pings could not arrive, while the hold was on).
Reminders are never sent for an incident its people have not heard of.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import msgspec

from services.evaluator.logic.deadlines import next_deadline
from services.evaluator.logic.dependencies import MAX_LISTED, Downs
from services.evaluator.logic.incidents import alert, going_down_reason
from services.evaluator.logic.ingest import IngestWatch
from services.evaluator.logic.maintenance import Windows
from services.evaluator.logic.monitor import Shared, rules_of, set_extra, set_status
from services.evaluator.logic.outputs import Output
from shared.clock import iso_ms
from shared.events import FLAP_DEFAULTS, Alert, Missed, StatusChanged, StatusRelayed
from shared.snapshots import DownElsewhere, Held, IngestIncident, MonitorState, Reason

PROBLEM = ("down", "unknown")
HoldKind = Literal["mute", "maintenance", "flapping", "dependency", "ingest"]


class Hold(NamedTuple):
    kind: HoldKind
    why: str
    until_ms: int | None
    """When a hold bound in time ends; None: when the partition hears it ended."""
    deps: tuple[DownElsewhere, ...] = ()
    incident: IngestIncident | None = None

    @property
    def waits(self) -> bool:
        return self.kind in ("dependency", "ingest")


class Holds:
    def __init__(self, shared: Shared, watch: IngestWatch):
        self._shared = shared
        self.windows = Windows()
        self.downs = Downs()
        self.watch = watch
        self.held: dict[str, set[str]] = {}
        """project -> the heartbeats with an alert held whose hold has not ended."""

    # what holds a heartbeat now ---------------------------------------------------------
    def hold_on(self, state: MonitorState, at: int, flapping: bool = True) -> Hold | None:
        """What holds this heartbeat's alerts at ``at`` (the first in the module's order), or
        None; ``flapping=False``: what else does."""
        rules = rules_of(state)
        if rules.muted_until_ms is not None and at < rules.muted_until_ms:
            return Hold("mute", f"muted until {iso_ms(rules.muted_until_ms)}", rules.muted_until_ms)
        window = self.windows.covering(state, at)
        if window is not None:
            name = window[0].name or window[0].id
            return Hold("maintenance", f"maintenance window '{name}' until {iso_ms(window[1])}", window[1])
        extra = state.extra
        if flapping and extra is not None and extra.flapping_since is not None and extra.flips:
            until = extra.flips[-1] + flap_rule(state)[2]
            if at < until:
                return Hold("flapping", f"flapping since {iso_ms(extra.flapping_since)}", until)
        deps = self.downs.holding(state, rules) if rules.depends_on or rules.depends_on_tags else []
        if deps:
            names = ", ".join(f"'{d.name}'" for d in deps[:3]) + (
                f" and {len(deps) - 3} more" if len(deps) > 3 else ""
            )
            return Hold("dependency", f"dependency {names} down", None, deps=tuple(deps))
        incident = self.watch.incident(state.project_id, at)
        if incident is not None:
            return Hold(
                "ingest", f"ingest incident since {iso_ms(incident.since_ms)}", None, incident=incident
            )
        return None

    # the gate ---------------------------------------------------------------------------
    def gate(self, state: MonitorState, outputs: list[Output]) -> list[Output]:
        """``outputs`` (one heartbeat's, in order) with the alerts that are held taken out."""
        result: list[Output] = []
        i, n = 0, len(outputs)
        while i < n:
            out = outputs[i]
            following = outputs[i + 1] if i + 1 < n else None
            if isinstance(out, StatusChanged):
                if (
                    out.status == "down" and isinstance(following, Alert) and following.kind == "down"
                    and not following.reminder and following.held is None
                ):  # fmt: skip
                    result += self._going_down(state, out, following)
                    i += 2
                    continue
                result.append(out)
                if out.previous in PROBLEM and out.status not in PROBLEM:
                    if not (isinstance(following, Alert) and following.kind == "up"):
                        self._clear(state, "down")  # paused, or back from unknown: nothing to say
                    if out.previous == "down":
                        result.append(self._relay(state, False, out.at_ms))
            elif isinstance(out, Alert) and out.held is not None:
                result.append(out)  # released by recheck: gated once already, and no change to count
            elif isinstance(out, Alert) and out.kind == "up":
                result += self._coming_up(state, out)
            elif isinstance(out, Alert) and out.kind == "down" and out.reminder:
                result += self._reminder(state, out)
            elif isinstance(out, Missed):
                result.append(out)
                extra = state.extra
                set_extra(state, self._shared, missed=(extra.missed if extra is not None else 0) + 1)
                if out.consecutive > 1 and state.status == "late":
                    self.watch.overdue(state.project_id, out.deadline_ms)
            else:
                result.append(out)
            i += 1
        extra = state.extra
        if state.problems == 0 and extra is not None and extra.missed and state.status not in PROBLEM:
            set_extra(state, self._shared, missed=0)
        return result

    def _going_down(self, state: MonitorState, change: StatusChanged, down: Alert) -> list[Output]:
        at = down.at_ms
        outputs: list[Output] = []
        flapping = self._flip(state, at)
        if flapping is not None:
            outputs.append(flapping)
        hold = self.hold_on(state, at)
        if hold is None:
            return [change, self._with_dependents(down), self._relay(state, True, at), *outputs]
        if hold.kind == "ingest":
            assert hold.incident is not None
            state.status, state.status_reason = "unknown", Reason.INGEST_HELD
            change = msgspec.structs.replace(
                change, id=f"{state.monitor_id}:{at}:unknown", status="unknown", reason=Reason.INGEST_HELD
            )
            self.watch.held(hold.incident)
            outputs.insert(0, change)
        else:
            held_by = [d.monitor_id for d in hold.deps]
            outputs[:0] = [change, self._relay(state, True, at, held_by)]
        self._hold(state, "down", at, hold)
        return outputs

    def _coming_up(self, state: MonitorState, up: Alert) -> list[Output]:
        extra = state.extra
        up = msgspec.structs.replace(up, missed_runs=extra.missed if extra is not None else 0)
        outputs: list[Output] = []
        flapping = self._flip(state, up.at_ms)
        if flapping is not None:
            outputs.append(flapping)
        held = extra.held if extra is not None else None
        if held is not None and held.kind == "down":
            self._clear(state, "down")  # its people never heard it went down: nothing to say
            return outputs
        hold = self.hold_on(state, up.at_ms)
        if hold is None:
            return [up, *outputs]
        self._hold(state, "up", up.at_ms, hold, up)
        return outputs

    def _reminder(self, state: MonitorState, reminder: Alert) -> list[Output]:
        extra = state.extra
        if (extra is not None and extra.held is not None) or self.hold_on(state, reminder.at_ms) is not None:
            return []
        return [self._with_dependents(reminder)]

    def _with_dependents(self, down: Alert) -> Alert:
        held = self.downs.dependents_held(down.monitor_id)
        if not held:
            return down
        return msgspec.structs.replace(
            down, dependents_held=[e.name for e in held[:MAX_LISTED]], dependents_held_count=len(held)
        )

    # holding and releasing --------------------------------------------------------------
    def _hold(
        self, state: MonitorState, kind: Literal["down", "up"], at: int, hold: Hold, up: Alert | None = None
    ) -> None:
        extra = state.extra
        held = extra.held if extra is not None else None
        if held is not None and held.kind != kind:
            self._clear(state, held.kind)  # a down and an up held cancel out
            return
        if held is None:
            held = Held(
                kind, at, hold.why, hold.until_ms, waits=hold.waits,
                down_since_ms=up.down_since_ms if up is not None else None,
                missed=up.missed_runs if up is not None else 0,
            )  # fmt: skip
        else:
            held = msgspec.structs.replace(
                held, why=hold.why, recheck_ms=hold.until_ms, ended=False, waits=hold.waits
            )
        set_extra(state, self._shared, held=held)
        self.held.setdefault(state.project_id, set()).add(state.monitor_id)

    def _clear(self, state: MonitorState, kind: str) -> None:
        extra = state.extra
        if extra is not None and extra.held is not None and extra.held.kind == kind:
            set_extra(state, self._shared, held=None)
        ids = self.held.get(state.project_id)
        if ids is not None:
            ids.discard(state.monitor_id)
            if not ids:
                del self.held[state.project_id]

    def recheck_at(self, state: MonitorState) -> int | None:
        """When to look at it again: its held alert's recheck; with none, the end of its
        flapping (so its snapshot, and what the API shows, stop saying it flaps then)."""
        extra = state.extra
        if extra is None:
            return None
        if extra.held is not None:
            return extra.held.recheck_ms
        if extra.flapping_since is not None and extra.flips:
            return extra.flips[-1] + flap_rule(state)[2]
        return None

    def recheck(self, state: MonitorState, now: int) -> list[Output]:
        """Look again at a heartbeat with a held alert: is it still held, or does it go out?
        (Without one, only whether it stopped flapping.)"""
        extra = state.extra
        if extra is None:
            return []
        if extra.held is None:
            self._stable(state, now)
            return []
        held = extra.held
        if held.ended:  # the window after a hold that waits is over
            if held.recheck_ms is not None and now < held.recheck_ms:
                return []
            self._clear(state, held.kind)
            return self._release(state, held, held.recheck_ms or now)
        self._stable(state, now)
        hold = self.hold_on(state, now)
        if hold is not None:
            self._hold(state, held.kind, held.since_ms, hold)
            return []
        if held.waits and held.kind == "down":
            deadline = next_deadline(state, now)
            set_extra(
                state, self._shared, held=msgspec.structs.replace(held, ended=True, recheck_ms=deadline)
            )
            ids = self.held.get(state.project_id)
            if ids is not None:
                ids.discard(state.monitor_id)
            return [] if deadline is not None else self.recheck(state, now)
        self._clear(state, held.kind)
        return self._release(state, held, now)

    def _release(self, state: MonitorState, held: Held, at: int) -> list[Output]:
        """Send the held alert if it is still true."""
        outputs: list[Output] = []
        if held.kind == "down":
            if state.status not in PROBLEM:
                return []
            reason = going_down_reason(state)
            if state.status == "unknown":
                outputs += set_status(state, "down", at, reason)
            else:
                state.status_since_ms = at  # its reminders count from now, when people heard
                if state.extra is not None and state.extra.reminders:
                    set_extra(state, self._shared, reminders=0)  # (those held were never sent)
            outputs.append(
                self._with_dependents(
                    msgspec.structs.replace(alert(state, "down", at, reason), held=held.why)
                )
            )
            outputs.append(self._relay(state, True, at))
            return outputs
        if state.status in PROBLEM:
            return []
        # Dated when it came up (``since_ms``), so "down for" is how long it really was down.
        up = alert(
            state, "up", held.since_ms, "ping received after being down", down_since=held.down_since_ms
        )
        return [msgspec.structs.replace(up, held=held.why, missed_runs=held.missed)]

    def held_in(self, project_id: str | None) -> list[str]:
        """The heartbeats (of one project; None: all) with a held alert whose hold is on."""
        if project_id is not None:
            return sorted(self.held.get(project_id, ()))
        return sorted(m for ids in self.held.values() for m in ids)

    # flapping ---------------------------------------------------------------------------
    def _flip(self, state: MonitorState, at: int) -> Alert | None:
        """Count one down/up change; the ``flapping`` alert if it makes the heartbeat flap,
        unless another hold is on then (a mute, a window, a dependency, an ingest incident):
        that one holds it too, and it is news only when it starts, so it is not kept."""
        changes, window_ms, stable_ms = flap_rule(state)
        if not changes:
            return None
        self._stable(state, at)
        extra = state.extra
        if extra is not None and extra.flapping_since is not None:
            set_extra(state, self._shared, flips=(at,))  # while flapping, only the latest counts
            return None
        flips = (*tuple(t for t in (extra.flips if extra is not None else ()) if t > at - window_ms), at)
        if len(flips) <= changes:
            set_extra(state, self._shared, flips=flips)
            return None
        set_extra(state, self._shared, flips=flips, flapping_since=at)
        if self.hold_on(state, at, flapping=False) is not None:
            return None
        reason = (
            f"flapping: {len(flips)} changes between down and up within {window_ms // 1000} s; "
            f"alerts held until stable for {stable_ms // 1000} s"
        )
        flapping = alert(state, "down", at, reason)
        return msgspec.structs.replace(flapping, kind="flapping", id=f"{state.monitor_id}:flapping:{at}")

    def _stable(self, state: MonitorState, now: int) -> None:
        """End flapping once the heartbeat has been stable long enough; its changes are
        forgotten with it (the next ones count from none)."""
        extra = state.extra
        if (
            extra is not None and extra.flapping_since is not None
            and (not extra.flips or now >= extra.flips[-1] + flap_rule(state)[2])
        ):  # fmt: skip
            set_extra(state, self._shared, flapping_since=None, flips=())

    def forget_flips(self, state: MonitorState, now: int) -> None:
        """Drop changes older than the flapping window, and end flapping once stable (a
        heartbeat that had one incident carries nothing for it an hour later)."""
        extra = state.extra
        if extra is None or not extra.flips:
            return
        if extra.flapping_since is not None:
            self._stable(state, now)
        elif extra.flips[-1] <= now - flap_rule(state)[1]:
            set_extra(state, self._shared, flips=())

    # relays -----------------------------------------------------------------------------
    def _relay(
        self, state: MonitorState, down: bool, at: int, held_by: list[str] | None = None
    ) -> StatusRelayed:
        return StatusRelayed(
            monitor_id=state.monitor_id, project_id=state.project_id, name=state.name, tags=list(state.tags),
            down=down, at_ms=at, held_by=held_by or [], incident=state.incident,
        )  # fmt: skip


def flap_rule(state: MonitorState) -> tuple[int, int, int]:
    """``(changes, window_ms, stable_ms)`` of this heartbeat."""
    flap = rules_of(state).flap
    if flap is not None:
        return flap
    changes, window_s, stable_s = FLAP_DEFAULTS
    return changes, window_s * 1000, stable_s * 1000
