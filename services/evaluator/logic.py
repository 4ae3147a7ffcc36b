"""The evaluator's pure core: (state, event) -> (state, outputs).

No I/O and no clock reads happen here: time comes only from the events (a ping's
``received_ms``, a tick's ``at_ms``), so replaying the same events gives the same
outputs, and a consumer that lags never sees a deadline pass early.

One :class:`PartitionEvaluator` owns the monitors of one ``pings`` partition. Its
state is mutated in place for speed (100k+ events/s); every method returns the
events it produced (status changes, misses, alerts) for the adapter to publish.

Semantics (docs/semantics.md):
- deadline = the next expected check-in after the last one (+ interval, or the next run of
  the cron schedule) + grace; a miss is declared once the clock passes the deadline plus
  the allowed lateness, dated at the deadline, and the next deadline is one window later
  (no drift);
- a failure check-in is a problem too but proves the job ran (it moves the deadline);
- a ``start`` opens a run (and restarts the window: the job began); its end is measured;
  a run open longer than the maximum run time counts one problem;
- when consecutive problems reach ``max_consecutive_misses`` the monitor goes down
  and exactly one ``down`` alert fires (then a reminder every ``reminder_interval``, if
  set); ``recovery_threshold`` successes in a row fire exactly one ``up``;
- new monitors (never pinged) and paused monitors never miss.
"""

from __future__ import annotations

import heapq
import re
import sys
from datetime import UTC, datetime

import msgspec

from services.evaluator.schedule import next_run_ms
from shared.events import CHECKIN_MESSAGE_MAX_CHARS, Alert, MonitorConfig, Missed, Ping, RunMeasured, StatusChanged

Output = StatusChanged | Missed | RunMeasured | Alert
_NEVER = sys.maxsize
MAX_OPEN_RUNS = 10
"""Open runs kept per monitor (by run id); a start beyond that drops the oldest."""

SHARED_REASONS = {
    reason: reason
    for reason in (
        "created paused", "paused", "resumed", "ping received", "first check-in (a failure)",
        "no ping within the interval; in grace period", "missed a check-in",
        "run started", "run ended (a failure)", "a run overran its maximum run time",
        "Pingura was not running when the check-in was due: that window is skipped",
    )
}  # fmt: skip
"""The fixed status reasons (all but going down's), each mapped to itself: a decoded copy
is swapped for this one object, so a million restored monitors don't hold a million copies."""
OUTAGE_REASON = "Pingura was not running when the check-in was due: that window is skipped"


class Rules(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A monitor's settings beyond interval, grace and misses. One shared object per
    distinct set (hashable); monitors with none of them set have no ``Rules`` at all."""

    schedule: str | None = None
    """Cron expression; None: interval mode."""
    timezone: str = "UTC"
    max_runtime_ms: int | None = None
    """None: the grace period."""
    recovery_threshold: int = 1
    reminder_interval_ms: int | None = None


class Extra(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What most monitors do not need, behind one field of :class:`MonitorState` (None when
    empty). Immutable: replaced on change, and an idle one (rules only) is shared."""

    rules: Rules | None = None
    runs: tuple[tuple[str, int, bool], ...] = ()
    """Open runs, oldest start first: ``(rid, started_ms, overran)``; rid ``""`` for a start
    without one. An overran run stays (its end is still measured) but counts no more."""
    streak: int = 0
    """Successes in a row while down (towards ``recovery_threshold``)."""
    reminders: int = 0
    """Reminders sent in the current incident."""


_NO_RULES = Rules()
_EMPTY = Extra()

SHARED_MESSAGE_MAX_CHARS = 40
"""Messages up to this long are interned: short ones are mostly status words that many
monitors repeat ("OK", "backup done"), so a fleet of the same job holds one copy; longer
ones mostly carry specifics (counts, paths, times), where interning would only add its
table entry (measured: -64 bytes a monitor shared, +38 distinct)."""
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")
"""C0 and C1 controls, zero-width characters and bidi controls: spaces in a kept message."""


class Checkin(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What the last check-in was: ``success`` or ``fail``, and its exit code. One shared
    object per pair (at most 2 x 257 of them); its message is kept beside it."""

    kind: str
    exit_code: int | None = None


_CHECKINS: dict[tuple[str, int | None], Checkin] = {}


def checkin(kind: str, exit_code: int | None) -> Checkin:
    """The shared :class:`Checkin` of this kind and exit code."""
    found = _CHECKINS.get((kind, exit_code))
    if found is None:
        found = _CHECKINS.setdefault((sys.intern(kind), exit_code), Checkin(sys.intern(kind), exit_code))
    return found


def one_line(message: str | None) -> str | None:
    """A job's message as kept: unprintables and whitespace runs one space, at most
    ``CHECKIN_MESSAGE_MAX_CHARS`` (cut with ``…``); None when nothing is left."""
    if not message:
        return None
    limit = CHECKIN_MESSAGE_MAX_CHARS
    if len(message) <= limit and message.isprintable() and message[0] != " " != message[-1] and "  " not in message:
        text = message  # already one clean line (the common case): no regex, no copy
    else:
        # Only the start can be kept: a 10,000-character body is not cleaned whole on every ping.
        text = " ".join(_UNPRINTABLE.sub(" ", message[: 4 * limit]).split())
        if not text:
            return None
    if len(text) <= SHARED_MESSAGE_MAX_CHARS:
        return sys.intern(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
    extra: Extra | None = None
    """Schedule, runs, recovery and reminders; None for a monitor using none of them."""
    last_checkin: Checkin | None = None
    """What the check-in at ``last_ping_ms`` was (kind, exit code; shared); None before the
    first one, and in snapshots older than this field (alerts then say nothing of it until
    the next one)."""
    last_message: str | None = None
    """That check-in's message as :func:`one_line` keeps it; None without one. (Two fields
    cost what one does: the struct's size class is the same.)"""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _span(ms: int) -> str:
    """``1h30m``, ``45s``, ``2d``: a duration for people, to the second."""
    seconds, parts = ms // 1000, []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or f"{ms}ms"


MAX_OUTAGES = 16
"""Outages of Pingura itself kept in memory (the newest): enough for any window still open."""


class PartitionEvaluator:
    def __init__(self, partition: int, lateness_ms: int = 1000, outage_gap_ms: int = 0):
        self.partition = partition
        self.lateness_ms = lateness_ms
        self.outage_gap_ms = outage_gap_ms
        """Ticks further apart than this (0: never) mean the clock stopped: an outage."""
        self.monitors: dict[str, MonitorState] = {}
        self.clock_ms = 0
        self.last_tick_ms = 0
        """The newest tick applied (0: none yet). The adapter sets it from the log on start."""
        self.outages: list[tuple[int, int]] = []
        """``(last tick before, first tick after)`` of each outage seen, oldest first."""
        self.skipped_windows = 0
        """Check-in windows skipped because an outage overlapped them (for the adapter's log)."""
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
        rules = self._rules_from(cfg)
        if state is None:
            state = MonitorState(
                monitor_id=sys.intern(cfg.id),  # shared with the views and the token index
                project_id=sys.intern(cfg.project_id),
                name=cfg.name,
                interval_ms=self._share(cfg.interval_s * 1000),
                grace_ms=self._share(cfg.grace_s * 1000),
                max_problems=cfg.max_consecutive_misses,
                channels=self._share(tuple(cfg.channels)),
                tags=self._share(tuple(cfg.tags)),
                revision=cfg.revision,
                extra=self._share(Extra(rules=rules)) if rules is not None else None,
            )
            self.monitors[cfg.id] = state
            return self._set_status(state, "paused", cfg.updated_ms, "created paused") if cfg.paused else []

        was_paused = state.status == "paused"
        old_rules = self._rules(state)
        timing = (state.interval_ms, state.grace_ms, old_rules.schedule, old_rules.timezone)
        state.name, state.revision = cfg.name, cfg.revision
        state.channels, state.tags = self._share(tuple(cfg.channels)), self._share(tuple(cfg.tags))
        state.interval_ms, state.grace_ms = self._share(cfg.interval_s * 1000), self._share(cfg.grace_s * 1000)
        state.max_problems = cfg.max_consecutive_misses
        if rules is not (state.extra.rules if state.extra is not None else None):
            self._set_extra(state, rules=rules)
        new_rules = self._rules(state)
        outputs: list[Output] = []
        if cfg.paused and not was_paused:
            state.deadline_ms, state.problems = None, 0
            self._set_extra(state, runs=(), streak=0, reminders=0)
            outputs += self._set_status(state, "paused", cfg.updated_ms, "paused")
        elif was_paused and not cfg.paused:
            # Resuming starts a fresh window from the moment of the resume.
            state.problems = 0
            if state.last_ping_ms is None:
                outputs += self._set_status(state, "new", cfg.updated_ms, "resumed")
            else:
                state.deadline_ms = self._next_deadline(state, max(cfg.updated_ms, self.clock_ms))
                outputs += self._set_status(state, "up", cfg.updated_ms, "resumed")
        elif (
            state.status != "paused" and self._anchor(state) is not None
            and timing != (state.interval_ms, state.grace_ms, new_rules.schedule, new_rules.timezone)
        ):  # fmt: skip
            # Only a change of the window moves the deadline: recomputing it on a rename
            # would bring back a deadline already declared missed, and count it again.
            state.deadline_ms = self._next_deadline(state, self._anchor(state))
        self._schedule(state)
        return outputs

    def _rules_from(self, cfg: MonitorConfig) -> Rules | None:
        """The config's rules as one shared object; None when all are defaults."""
        if (
            cfg.schedule is None and cfg.max_runtime_s is None and cfg.recovery_threshold <= 1
            and cfg.reminder_interval_s is None
        ):  # fmt: skip
            return None
        return self._share(Rules(
            schedule=sys.intern(cfg.schedule) if cfg.schedule is not None else None,
            timezone=sys.intern(cfg.timezone) if cfg.schedule is not None else "UTC",
            max_runtime_ms=cfg.max_runtime_s * 1000 if cfg.max_runtime_s is not None else None,
            recovery_threshold=max(1, cfg.recovery_threshold),
            reminder_interval_ms=cfg.reminder_interval_s * 1000 if cfg.reminder_interval_s else None,
        ))  # fmt: skip

    # check-ins -------------------------------------------------------------
    def apply_ping(self, ping: Ping, offset: int) -> list[Output]:
        state = self.monitors.get(ping.monitor_id)
        if state is None or offset <= state.applied_offset:
            return []
        state.applied_offset = offset
        at = ping.received_ms
        if at > self.clock_ms:
            self.clock_ms = at
        if state.status == "paused" or ping.kind == "log":
            # Paused: recorded in history by the query service, never alerts. A log line
            # is history only. Either way, only the applied offset moved.
            self.dirty.add(state.monitor_id)
            return []
        if ping.kind == "start":
            return self._start_run(state, ping.rid or "", at)
        outputs: list[Output] = []
        extra = state.extra  # None for most monitors: the path below then stays as short as it was
        if extra is not None and extra.runs:
            measured = self._end_run(state, ping, at)
            if measured is not None:
                outputs.append(measured)
        if state.last_ping_ms is None or at >= state.last_ping_ms:
            state.last_ping_ms = at
            state.last_checkin = checkin(ping.kind, ping.exit_code)
            state.last_message = one_line(ping.message)
        if extra is None:
            state.deadline_ms = state.last_ping_ms + state.interval_ms + state.grace_ms
        else:
            state.deadline_ms = self._next_deadline(state, self._anchor(state))
        if ping.kind == "success":
            state.problems = 0
            if state.status != "up" or extra is not None:
                outputs += self._on_success(state, at)
        else:
            state.problems += 1
            code = f" (exit code {ping.exit_code})" if ping.exit_code is not None else ""
            detail = f": {ping.message[:200]}" if ping.message else ""
            state.last_problem = f"job reported failure{code} at {_iso(at)}{detail}"
            down = self._on_problem(state, at)
            outputs += down
            if not down and state.status == "new":
                outputs += self._set_status(state, "up", at, "first check-in (a failure)")
            elif not down and state.status == "running" and not self._running(state):
                outputs += self._set_status(state, "up", at, "run ended (a failure)")
        self._schedule(state)
        return outputs

    def _on_success(self, state: MonitorState, at: int) -> list[Output]:
        target = "running" if self._running(state) else "up"
        if state.status != "down":
            return self._set_status(state, target, at, "ping received") if state.status != target else []
        extra = state.extra
        streak = (extra.streak if extra is not None else 0) + 1
        if streak < self._rules(state).recovery_threshold:
            self._set_extra(state, streak=streak)
            return []  # not yet: a flapping job does not page up, down, up
        down_since = state.status_since_ms
        self._set_extra(state, streak=0, reminders=0)
        outputs = self._set_status(state, target, at, "ping received")
        outputs.append(self._alert(state, "up", at, "ping received after being down", down_since=down_since))
        return outputs

    # runs ------------------------------------------------------------------
    def _start_run(self, state: MonitorState, rid: str, at: int) -> list[Output]:
        """A run began: open it (a start with the rid of an open run restarts that run), and
        restart the window from it, as the job evidently ran."""
        extra = state.extra
        runs = [run for run in (extra.runs if extra is not None else ()) if run[0] != rid]
        runs.append((rid, at, False))
        runs.sort(key=lambda run: run[1])
        self._set_extra(state, runs=tuple(runs[-MAX_OPEN_RUNS:]))
        state.deadline_ms = self._next_deadline(state, self._anchor(state))
        outputs: list[Output] = []
        if state.status in ("new", "up", "late"):
            outputs = self._set_status(state, "running", at, "run started")
        self._schedule(state)
        return outputs

    def _end_run(self, state: MonitorState, ping: Ping, at: int) -> RunMeasured | None:
        """Close the run this success or failure ends (same rid; none: the run without one),
        and measure it unless the job sent its own duration."""
        extra = state.extra
        if extra is None or not extra.runs:
            return None
        rid = ping.rid or ""
        run = next((r for r in extra.runs if r[0] == rid), None)
        if run is None:
            return None  # an end without a start is just an end
        self._set_extra(state, runs=tuple(r for r in extra.runs if r is not run))
        started = run[1]
        if ping.duration_s is not None or at < started:
            return None  # the job's own figure stands; an end before its start measures nothing
        return RunMeasured(
            id=f"{state.monitor_id}:run:{ping.id}",
            monitor_id=state.monitor_id,
            project_id=state.project_id,
            ping_id=ping.id,
            rid=rid,
            started_ms=started,
            ended_ms=at,
            duration_s=(at - started) / 1000,
        )

    def _running(self, state: MonitorState) -> bool:
        """Whether a run is open and within its maximum run time."""
        extra = state.extra
        return extra is not None and any(not run[2] for run in extra.runs)

    def _overrun_at(self, state: MonitorState) -> tuple[int, tuple[str, int, bool]] | None:
        """When the oldest run still within its limit overruns it, and that run."""
        extra = state.extra
        if extra is None:
            return None
        for run in extra.runs:
            if not run[2]:
                return run[1] + self._max_runtime_ms(state), run
        return None

    def _max_runtime_ms(self, state: MonitorState) -> int:
        max_runtime_ms = self._rules(state).max_runtime_ms
        return max_runtime_ms if max_runtime_ms is not None else state.grace_ms

    # the clock -------------------------------------------------------------
    def advance(self, clock_ms: int) -> list[Output]:
        """Move the event-time clock; returns the misses and alerts now due.

        Costs work only for the wheel slots that came due, not for all monitors.
        """
        if self.outage_gap_ms and self.last_tick_ms and clock_ms - self.last_tick_ms > self.outage_gap_ms:
            self.outages.append((self.last_tick_ms, clock_ms))
            del self.outages[:-MAX_OUTAGES]
        if clock_ms > self.last_tick_ms:
            self.last_tick_ms = clock_ms
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
        """Everything that came due, oldest first: the late turn, missed windows, overrun
        runs, reminders."""
        outputs: list[Output] = []
        if state.status in ("paused", "new"):
            return outputs
        if self.outages and state.deadline_ms is not None:
            outputs += self._skip_windows_in_outages(state)
        if state.status == "up" and state.deadline_ms is not None:
            late_at = state.deadline_ms - state.grace_ms
            if self.clock_ms >= late_at:
                outputs += self._set_status(state, "late", late_at, "no ping within the interval; in grace period")
        ready = self.clock_ms - self.lateness_ms  # what is dated up to here is due
        if state.extra is None:  # most monitors: only windows to miss
            while state.deadline_ms is not None and state.deadline_ms <= ready:
                outputs += self._missed(state, state.deadline_ms)
            return outputs
        while True:
            deadline = state.deadline_ms
            when = deadline if deadline is not None and deadline <= ready else _NEVER
            overrun = self._overrun_at(state)
            if overrun is not None and overrun[0] <= ready and overrun[0] < when:
                when, deadline = overrun[0], None
            else:
                overrun = None
            reminder = self._reminder_at(state)
            if reminder is not None and reminder <= ready and reminder < when:
                outputs += self._remind(state, ready)
            elif overrun is not None:
                outputs += self._overran(state, when, overrun[1])
            elif deadline is not None and when != _NEVER:
                outputs += self._missed(state, deadline)
            else:
                return outputs

    def _skip_windows_in_outages(self, state: MonitorState) -> list[Output]:
        """Pass over the due windows an outage of Pingura overlapped: the job may have
        checked in while nothing was there to receive it, so such a window is neither a miss
        nor a check-in. Each moves the deadline one window on, as a miss would, but counts no
        problem and alerts no one. A monitor shown late for such a window is up again."""
        ready = self.clock_ms - self.lateness_ms
        skipped = 0
        while state.deadline_ms is not None and state.deadline_ms <= ready:
            deadline = state.deadline_ms
            expected = deadline - state.grace_ms
            end = next((end for start, end in self.outages if deadline > start and expected < end), None)
            if end is None:
                break
            # Every later window that opens before the outage ended overlaps it too: go
            # straight to the first that opens after it (a month's outage is one step, not
            # 43,200 one-minute windows), keeping the phase of the windows.
            extra = state.extra
            if extra is None or extra.rules is None or extra.rules.schedule is None:
                windows = max(1, -(-(end - expected) // max(1, state.interval_ms)))
                state.deadline_ms = deadline + windows * state.interval_ms
            else:
                windows = 1
                state.deadline_ms = self._next_deadline(state, max(expected, end - 1))
            skipped += windows
        if not skipped:
            return []
        self.skipped_windows += skipped
        self.dirty.add(state.monitor_id)
        if state.status == "late" and state.problems == 0:
            return self._set_status(state, "up", self.clock_ms, OUTAGE_REASON)
        return []

    def _missed(self, state: MonitorState, deadline: int) -> list[Output]:
        state.problems += 1
        expected = deadline - state.grace_ms
        outputs: list[Output] = [
            Missed(
                id=f"{state.monitor_id}:miss:{deadline}",
                monitor_id=state.monitor_id,
                project_id=state.project_id,
                deadline_ms=deadline,
                expected_ms=expected,
                consecutive=state.problems,
            )
        ]
        state.last_problem = f"no ping by {_iso(deadline)} (expected at {_iso(expected)})"
        if state.extra is None:
            state.deadline_ms = deadline + state.interval_ms
        else:
            state.deadline_ms = self._next_deadline(state, expected)
        down = self._on_problem(state, deadline)
        if down:
            outputs += down
        elif state.status not in ("late", "down"):
            outputs += self._set_status(state, "late", deadline, "missed a check-in")
        return outputs

    def _overran(self, state: MonitorState, at: int, run: tuple[str, int, bool]) -> list[Output]:
        """A run passed its maximum run time without an end: one problem, dated then."""
        extra = state.extra
        assert extra is not None
        self._set_extra(state, runs=tuple((r[0], r[1], True) if r is run else r for r in extra.runs))
        state.problems += 1
        state.last_problem = f"started at {_iso(run[1])}, still running after {_span(at - run[1])}"
        down = self._on_problem(state, at)
        if down:
            return down
        if state.status != "down" and not self._running(state) and state.status != "late":
            return self._set_status(state, "late", at, "a run overran its maximum run time")
        return []

    def _reminder_at(self, state: MonitorState) -> int | None:
        extra = state.extra
        if state.status != "down" or extra is None or extra.rules is None or state.status_since_ms is None:
            return None
        every_ms = extra.rules.reminder_interval_ms
        return state.status_since_ms + (extra.reminders + 1) * every_ms if every_ms else None

    def _remind(self, state: MonitorState, ready: int) -> list[Output]:
        """The latest reminder due (after a stretch without ticks, the ones before it are
        skipped rather than sent at once), dated when it came due."""
        extra = state.extra
        assert extra is not None and extra.rules is not None and extra.rules.reminder_interval_ms
        assert state.status_since_ms is not None
        every_ms, since = extra.rules.reminder_interval_ms, state.status_since_ms
        n = max(extra.reminders + 1, (ready - since) // every_ms)
        self._set_extra(state, reminders=n)
        at = since + n * every_ms
        reason = state.status_reason or state.last_problem
        return [self._alert(state, "down", at, reason, down_since=since, reminder=n)]

    # shared steps ----------------------------------------------------------
    def _on_problem(self, state: MonitorState, at: int) -> list[Output]:
        if state.extra is not None and state.extra.streak:
            self._set_extra(state, streak=0)  # recovery needs successes in a row
        if state.problems < state.max_problems or state.status == "down":
            return []
        state.incident += 1
        if state.extra is not None and state.extra.reminders:
            self._set_extra(state, reminders=0)
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

    def _alert(
        self, state: MonitorState, kind: str, at: int, reason: str, down_since: int | None = None, reminder: int = 0
    ) -> Alert:
        last = state.last_checkin
        return Alert(
            id=f"{state.monitor_id}:{state.incident}:reminder:{reminder}" if reminder else
            f"{state.monitor_id}:{state.incident}:{kind}",
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
            down_since_ms=down_since,
            reminder=reminder,
            last_ping_kind=last.kind if last is not None else None,
            last_ping_exit_code=last.exit_code if last is not None else None,
            last_ping_message=state.last_message,
        )  # fmt: skip

    def _next_deadline(self, state: MonitorState, after_ms: int | None) -> int | None:
        """The deadline of the window that opens at ``after_ms`` (a check-in, a start, a
        resume, or the expected time of a window just missed): the next expected check-in
        (one interval later, or the schedule's next run) plus grace. None: never expected."""
        if after_ms is None:
            return None
        extra = state.extra
        rules = extra.rules if extra is not None else None
        if rules is None or rules.schedule is None:
            return after_ms + state.interval_ms + state.grace_ms
        expected = next_run_ms(rules.schedule, rules.timezone, after_ms)
        return expected + state.grace_ms if expected is not None else None

    def _anchor(self, state: MonitorState) -> int | None:
        """Where the current window opened: the last check-in or the newest start, if later."""
        anchor, extra = state.last_ping_ms, state.extra
        if extra is not None and extra.runs:
            newest = extra.runs[-1][1]
            anchor = newest if anchor is None or newest > anchor else anchor
        return anchor

    def _rules(self, state: MonitorState) -> Rules:
        extra = state.extra
        return extra.rules if extra is not None and extra.rules is not None else _NO_RULES

    def _set_extra(self, state: MonitorState, **changes) -> None:
        """Replace the monitor's :class:`Extra`; an idle one is shared, an empty one dropped."""
        extra = msgspec.structs.replace(state.extra or _EMPTY, **changes)
        if not extra.runs and not extra.streak and not extra.reminders:
            extra = self._share(extra) if extra.rules is not None else None
        state.extra = extra

    def _due(self, state: MonitorState) -> int:
        """When this monitor needs looking at next."""
        status = state.status
        if status in ("paused", "new"):
            return _NEVER
        due = _NEVER
        if state.deadline_ms is not None:
            due = state.deadline_ms - state.grace_ms if status == "up" else state.deadline_ms + self.lateness_ms
        if state.extra is not None:
            overrun = self._overrun_at(state)
            if overrun is not None and overrun[0] + self.lateness_ms < due:
                due = overrun[0] + self.lateness_ms
            reminder = self._reminder_at(state)
            if reminder is not None and reminder + self.lateness_ms < due:
                due = reminder + self.lateness_ms
        return due

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
        """Take a decoded snapshot's state, sharing what ``apply_config`` shares (a decoded
        state has its own copy of every string and int): restored, a monitor costs what a
        configured one does."""
        state.queued_slot = None
        state.channels, state.tags = self._share(tuple(state.channels)), self._share(tuple(state.tags))
        state.interval_ms, state.grace_ms = self._share(state.interval_ms), self._share(state.grace_ms)
        # The id interned too: the query's views and ingest's index in this process share it.
        state.monitor_id, state.project_id = sys.intern(state.monitor_id), sys.intern(state.project_id)
        state.status = sys.intern(state.status)
        if state.status_reason is not None:  # decoded: a fresh copy of what is mostly a few literals
            state.status_reason = SHARED_REASONS.get(state.status_reason, state.status_reason)
        if state.last_checkin is not None:  # decoded: the shared one again
            state.last_checkin = checkin(state.last_checkin.kind, state.last_checkin.exit_code)
        if state.last_message is not None and len(state.last_message) <= SHARED_MESSAGE_MAX_CHARS:
            state.last_message = sys.intern(state.last_message)
        extra = state.extra
        if extra is not None:  # decoded: fresh copies of what is mostly shared
            if extra.rules is not None:
                state.extra = msgspec.structs.replace(extra, rules=self._share(extra.rules))
            self._set_extra(state)  # an idle one becomes the shared copy, an empty one None
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
