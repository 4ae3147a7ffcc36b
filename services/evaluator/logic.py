"""The evaluator's pure core: (state, event) -> (state, outputs).

No I/O and no clock reads happen here: time comes only from the events (a ping's
``received_ms``, a tick's ``at_ms``), so replaying the same events gives the same
outputs, and a consumer that lags never sees a deadline pass early.

One :class:`PartitionEvaluator` owns the monitors of one ``pings`` partition. Its
state is mutated in place for speed (100k+ events/s); every method returns the
events it produced (status changes, misses, alerts) for the adapter to publish.

Semantics (docs/semantics.md):
- deadline = last check-in + interval + grace; a miss is declared once the clock
  passes the deadline plus the allowed lateness, dated at the deadline, and the next
  deadline is one interval later (no drift);
- a failure check-in is a problem too but proves the job ran (it moves the deadline);
- when consecutive problems reach ``max_consecutive_misses`` the monitor goes down
  and exactly one ``down`` alert fires; the next success fires exactly one ``up``;
- new monitors (never pinged) and paused monitors never miss.
"""

from __future__ import annotations

import heapq
import sys
from datetime import UTC, datetime

import msgspec

from shared.events import Alert, MonitorConfig, Missed, Ping, StatusChanged

Output = StatusChanged | Missed | Alert
_NEVER = sys.maxsize

SHARED_REASONS = {
    reason: reason
    for reason in (
        "created paused", "paused", "resumed", "ping received", "first check-in (a failure)",
        "no ping within the interval; in grace period", "missed a check-in",
    )
}  # fmt: skip
"""The fixed status reasons (all but going down's), each mapped to itself: a decoded copy
is swapped for this one object, so a million restored monitors don't hold a million copies."""


class MonitorState(msgspec.Struct, array_like=True, gc=False):
    """What the evaluator knows of one monitor. Serialized as a snapshot.

    Kept small (a million of these per process is the target): no GC header, shared
    tuples for channels and tags, shared ints for configured periods.
    """

    monitor_id: str
    project_id: str
    name: str
    interval_ms: int
    grace_ms: int
    max_problems: int
    channels: tuple[str, ...]
    tags: tuple[str, ...]
    revision: int
    status: str = "new"
    last_ping_ms: int | None = None
    deadline_ms: int | None = None
    """When the current window is missed (before lateness); None: never misses."""
    problems: int = 0
    incident: int = 0
    last_problem: str = ""
    applied_offset: int = -1
    """Offset of the last ``pings`` record already folded in (replay guard)."""
    queued_slot: int | None = None
    """The timer-wheel second this monitor is queued in (its earliest), if any."""
    # Fields below were added later: trailing and optional, so the array-like snapshots
    # of older versions (shorter arrays) still decode. Add new ones after them, never between.
    status_since_ms: int | None = None
    """Event time of the last status change; None in snapshots older than this field."""
    status_reason: str | None = None
    """Why the status last changed (the ``reason`` of that ``StatusChanged``)."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class PartitionEvaluator:
    def __init__(self, partition: int, lateness_ms: int = 1000):
        self.partition = partition
        self.lateness_ms = lateness_ms
        self.monitors: dict[str, MonitorState] = {}
        self.clock_ms = 0
        self.dirty: set[str] = set()
        """Monitors changed since the adapter last took a snapshot."""
        # A timer wheel of one-second slots: slot -> monitor ids, plus a heap of the slots
        # in use. A tick looks only at the slots that came due; a monitor costs one list
        # entry, and pings that only move its deadline later queue nothing new.
        self._wheel: dict[int, list[str]] = {}
        self._slots: list[int] = []
        self._slot_keys: dict[int, int] = {}
        self._shared: dict = {}

    # configuration ---------------------------------------------------------
    def apply_config(self, cfg: MonitorConfig) -> list[Output]:
        state = self.monitors.get(cfg.id)
        if state is not None and cfg.revision <= state.revision:
            return []  # a stale or repeated copy
        if cfg.deleted:
            self.monitors.pop(cfg.id, None)  # its heap entries go stale and are skipped
            return []
        if state is None:
            state = MonitorState(
                monitor_id=cfg.id,
                project_id=sys.intern(cfg.project_id),
                name=cfg.name,
                interval_ms=self._share(cfg.interval_s * 1000),
                grace_ms=self._share(cfg.grace_s * 1000),
                max_problems=cfg.max_consecutive_misses,
                channels=self._share(tuple(cfg.channels)),
                tags=self._share(tuple(cfg.tags)),
                revision=cfg.revision,
            )
            self.monitors[cfg.id] = state
            return self._set_status(state, "paused", cfg.updated_ms, "created paused") if cfg.paused else []

        was_paused = state.status == "paused"
        state.name, state.revision = cfg.name, cfg.revision
        state.channels, state.tags = self._share(tuple(cfg.channels)), self._share(tuple(cfg.tags))
        state.interval_ms, state.grace_ms = self._share(cfg.interval_s * 1000), self._share(cfg.grace_s * 1000)
        state.max_problems = cfg.max_consecutive_misses
        outputs: list[Output] = []
        if cfg.paused and not was_paused:
            state.deadline_ms, state.problems = None, 0
            outputs += self._set_status(state, "paused", cfg.updated_ms, "paused")
        elif was_paused and not cfg.paused:
            # Resuming starts a fresh window from the moment of the resume.
            state.problems = 0
            if state.last_ping_ms is None:
                outputs += self._set_status(state, "new", cfg.updated_ms, "resumed")
            else:
                state.deadline_ms = max(cfg.updated_ms, self.clock_ms) + state.interval_ms + state.grace_ms
                outputs += self._set_status(state, "up", cfg.updated_ms, "resumed")
        elif state.last_ping_ms is not None and state.status != "paused":
            state.deadline_ms = state.last_ping_ms + state.interval_ms + state.grace_ms
        self._schedule(state)
        return outputs

    # check-ins -------------------------------------------------------------
    def apply_ping(self, ping: Ping, offset: int) -> list[Output]:
        state = self.monitors.get(ping.monitor_id)
        if state is None or offset <= state.applied_offset:
            return []
        state.applied_offset = offset
        at = ping.received_ms
        if at > self.clock_ms:
            self.clock_ms = at
        if state.status == "paused":
            self.dirty.add(state.monitor_id)  # its applied offset moved
            return []  # recorded in history by the query service; a paused monitor never alerts
        if state.last_ping_ms is None or at > state.last_ping_ms:
            state.last_ping_ms = at
        state.deadline_ms = state.last_ping_ms + state.interval_ms + state.grace_ms
        outputs: list[Output]
        if ping.kind == "success":
            state.problems = 0
            if state.status == "down":
                outputs = self._set_status(state, "up", at, "ping received")
                outputs.append(self._alert(state, "up", at, "ping received after being down"))
            elif state.status != "up":
                outputs = self._set_status(state, "up", at, "ping received")
            else:
                outputs = []
        else:
            state.problems += 1
            code = f" (exit code {ping.exit_code})" if ping.exit_code is not None else ""
            detail = f": {ping.message[:200]}" if ping.message else ""
            state.last_problem = f"job reported failure{code} at {_iso(at)}{detail}"
            outputs = self._on_problem(state, at)
            if not outputs and state.status == "new":
                outputs = self._set_status(state, "up", at, "first check-in (a failure)")
        self._schedule(state)
        return outputs

    # the clock -------------------------------------------------------------
    def advance(self, clock_ms: int) -> list[Output]:
        """Move the event-time clock; returns the misses and alerts now due.

        Costs work only for the wheel slots that came due, not for all monitors.
        """
        if clock_ms > self.clock_ms:
            self.clock_ms = clock_ms
        outputs: list[Output] = []
        not_yet: list[MonitorState] = []
        slots, now_slot = self._slots, self.clock_ms // 1000
        while slots and slots[0] <= now_slot:
            slot = heapq.heappop(slots)
            self._slot_keys.pop(slot, None)
            for monitor_id in self._wheel.pop(slot):
                state = self.monitors.get(monitor_id)
                if state is None or state.queued_slot != slot:
                    continue  # deleted, or queued again in an earlier slot meanwhile
                state.queued_slot = None
                if self._due(state) > self.clock_ms:
                    not_yet.append(state)  # due later in this second, or moved later
                    continue
                outputs += self._check(state)
                self._schedule(state)
        for state in not_yet:
            self._schedule(state)
        return outputs

    def _check(self, state: MonitorState) -> list[Output]:
        outputs: list[Output] = []
        if state.deadline_ms is None or state.status in ("paused", "new"):
            return outputs
        late_at = state.deadline_ms - state.grace_ms
        if state.status == "up" and self.clock_ms >= late_at:
            outputs += self._set_status(state, "late", late_at, "no ping within the interval; in grace period")
        while state.deadline_ms + self.lateness_ms <= self.clock_ms:
            deadline = state.deadline_ms
            state.problems += 1
            expected = deadline - state.grace_ms
            outputs.append(
                Missed(
                    id=f"{state.monitor_id}:miss:{deadline}",
                    monitor_id=state.monitor_id,
                    project_id=state.project_id,
                    deadline_ms=deadline,
                    expected_ms=expected,
                    consecutive=state.problems,
                )
            )
            state.last_problem = f"no ping by {_iso(deadline)} (expected at {_iso(expected)})"
            state.deadline_ms = deadline + state.interval_ms
            down = self._on_problem(state, deadline)
            if down:
                outputs += down
            elif state.status not in ("late", "down"):
                outputs += self._set_status(state, "late", deadline, "missed a check-in")
        return outputs

    # shared steps ----------------------------------------------------------
    def _on_problem(self, state: MonitorState, at: int) -> list[Output]:
        if state.problems < state.max_problems or state.status == "down":
            return []
        state.incident += 1
        reason = f"{state.problems} consecutive problem(s) (limit {state.max_problems}); latest: {state.last_problem}"
        outputs = self._set_status(state, "down", at, reason)
        outputs.append(self._alert(state, "down", at, reason))
        return outputs

    def _set_status(self, state: MonitorState, status: str, at: int, reason: str) -> list[Output]:
        previous, state.status = state.status, status
        # The reason is one of a few literals (shared objects) except when going down.
        state.status_since_ms, state.status_reason = at, reason
        return [
            StatusChanged(
                id=f"{state.monitor_id}:{at}:{status}",
                monitor_id=state.monitor_id,
                project_id=state.project_id,
                status=status,
                previous=previous,
                at_ms=at,
                reason=reason,
            )
        ]

    def _alert(self, state: MonitorState, kind: str, at: int, reason: str) -> Alert:
        return Alert(
            id=f"{state.monitor_id}:{state.incident}:{kind}",
            kind=kind,
            monitor_id=state.monitor_id,
            project_id=state.project_id,
            monitor_name=state.name,
            incident=state.incident,
            reason=reason,
            at_ms=at,
            channels=list(state.channels),
            tags=list(state.tags),
            consecutive_problems=state.problems,
            last_ping_ms=state.last_ping_ms,
        )

    def _due(self, state: MonitorState) -> int:
        """When this monitor needs looking at next."""
        if state.deadline_ms is None or state.status in ("paused", "new"):
            return _NEVER
        if state.status == "up":
            return state.deadline_ms - state.grace_ms  # the moment it turns late
        return state.deadline_ms + self.lateness_ms

    def _schedule(self, state: MonitorState) -> None:
        self.dirty.add(state.monitor_id)
        due = self._due(state)
        if due == _NEVER:
            return
        slot = due // 1000
        if state.queued_slot is not None and state.queued_slot <= slot:
            return  # an entry at least as early is queued; it re-queues when it comes due
        bucket = self._wheel.get(slot)
        if bucket is None:
            bucket = self._wheel[slot] = []
            heapq.heappush(self._slots, slot)
            self._slot_keys[slot] = slot
        bucket.append(state.monitor_id)
        state.queued_slot = self._slot_keys[slot]  # one int object per slot, not per monitor

    def _share(self, value):
        """One object for equal values (periods, channel tuples) across monitors."""
        return self._shared.setdefault(value, value)

    # snapshots -------------------------------------------------------------
    def restore(self, state: MonitorState) -> None:
        state.queued_slot = None
        state.channels, state.tags = self._share(tuple(state.channels)), self._share(tuple(state.tags))
        state.project_id, state.status = sys.intern(state.project_id), sys.intern(state.status)
        if state.status_reason is not None:  # decoded: a fresh copy of what is mostly a few literals
            state.status_reason = SHARED_REASONS.get(state.status_reason, state.status_reason)
        self.monitors[state.monitor_id] = state
        self._schedule(state)
        self.dirty.discard(state.monitor_id)

    def changed(self) -> list[MonitorState]:
        """The monitors changed since the last snapshot."""
        return [self.monitors[m] for m in self.dirty if m in self.monitors]

    def saved(self, states: list[MonitorState]) -> None:
        """Their snapshots are durable: they are clean again."""
        for state in states:
            self.dirty.discard(state.monitor_id)
        if all(m not in self.monitors for m in self.dirty):  # only deleted ones left, if any
            self.dirty = set()  # a fresh set: an emptied one keeps its table (~40 bytes a monitor)

    def due_count(self) -> int:
        """Monitors queued in slots that have come due (what the next tick would look at)."""
        return sum(len(self._wheel[s]) for s in self._slots if s <= self.clock_ms // 1000)
