"""One partition's evaluator: the monitors of one ``pings`` partition, and the verbs applied
to them in the order their events come.

Its state is mutated in place for speed (100k+ events/s); every method returns the
decisions it made (:data:`~services.evaluator.logic.outputs.Output`) for the adapter to carry.
"""

from __future__ import annotations

import sys

import msgspec

from services.evaluator.logic import fleets
from services.evaluator.logic.checkins import SHARED_MESSAGE_MAX_CHARS, check_in, checkin
from services.evaluator.logic.deadlines import anchor, mark_late, mark_missed, next_deadline
from services.evaluator.logic.holds import Holds
from services.evaluator.logic.incidents import remind, reminder_at
from services.evaluator.logic.ingest import IngestWatch, WatchRule, overdue_at
from services.evaluator.logic.ingest_alerts import IngestAlerts
from services.evaluator.logic.monitor import NEVER, Shared, rules_from, rules_of, set_extra, set_status
from services.evaluator.logic.outages import MAX_OUTAGES, gap, skip_windows
from services.evaluator.logic.outputs import Outage, Output
from services.evaluator.logic.rule_pings import judged_ping, rules_changed
from services.evaluator.logic.runs import mark_overran, overrun_at, start_run
from services.evaluator.logic.wheel import TimerWheel
from shared.events import (
    IngestReported,
    InstanceRemoved,
    MaintenanceWindow,
    MonitorConfig,
    Ping,
    StatusRelayed,
)  # fmt: skip
from shared.snapshots import SHARED_REASONS, Extra, MonitorState, OutageSpan, PartitionState, Reason


class PartitionEvaluator:
    def __init__(
        self, partition: int, lateness_ms: int = 1000, outage_gap_ms: int = 0,
        watch: WatchRule | None = None, operator_channels: tuple[str, ...] = (), partitions: int = 1,
    ):  # fmt: skip
        self.partition = partition
        self.lateness_ms = lateness_ms
        self.outage_gap_ms = outage_gap_ms
        """Ticks further apart than this (0: never) mean the clock stopped: an outage."""
        self.monitors: dict[str, MonitorState] = {}
        self.clock_ms = 0
        self.last_tick_ms = 0
        """The newest tick applied (0: none yet). The adapter sets it from the log on start."""
        self.outages: list[OutageSpan] = []
        """``(last tick before, first tick after)`` of each outage seen, oldest first (the
        newest ``MAX_OUTAGES``); part of the partition's own snapshot, so that a restart or a
        hand-off still skips the windows they overlapped."""
        self.outages_changed = False
        """The outages changed since the adapter last took the partition's snapshot."""
        self.skipped_windows = 0
        """Check-in windows skipped because an outage overlapped them, in all."""
        self.dirty: set[str] = set()
        """Monitors changed since the adapter last took a snapshot."""
        self._wheel = TimerWheel()
        self._shared = Shared()
        self.holds = Holds(self._shared, IngestWatch(watch or WatchRule()))
        """What holds alerts back: windows, dependencies, the ingest watch, flapping."""
        self.ingest_alerts = IngestAlerts(partition, partitions, self.holds.watch.rule, operator_channels)
        """The operators' ingest alerts, one per incident across partitions (partition 0 sends them)."""
        self._arrived = self.holds.watch.arrived
        self._overdue_until = 0
        """Late check-ins half their grace overdue up to here (the newest tick's ``ready``) are
        counted by the ingest watch; the next tick counts the ones after it."""

    # configuration ---------------------------------------------------------
    def apply_config(self, cfg: MonitorConfig) -> list[Output]:
        state = self.monitors.get(cfg.id)
        if state is not None and cfg.revision <= state.revision:
            return []  # a stale or repeated copy
        if cfg.deleted:
            self.monitors.pop(cfg.id, None)  # its wheel entries go stale and are skipped
            if state is not None and state.status == "down":  # what depended on it is held no more
                return self.holds.gate(state, set_status(state, "paused", cfg.updated_ms, Reason.PAUSED))[-1:]
            return []
        share = self._shared
        rules = rules_from(cfg, share)
        if state is None:
            state = MonitorState(
                monitor_id=sys.intern(cfg.id),  # shared with the views and the token index
                project_id=sys.intern(cfg.project_id),
                name=cfg.name,
                interval_ms=share(cfg.interval_s * 1000),
                grace_ms=share(cfg.grace_s * 1000),
                max_problems=cfg.max_consecutive_misses,
                channels=share(tuple(cfg.channels)),
                tags=share(tuple(cfg.tags)),
                revision=cfg.revision,
                extra=share(Extra(rules=rules)) if rules is not None else None,
            )
            self.monitors[cfg.id] = state
            if not cfg.paused:
                return []  # nothing to snapshot: a restart builds the same from the config
            self.dirty.add(
                state.monitor_id
            )  # its status change is an output: snapshot it, or a restart says it again
            return set_status(state, "paused", cfg.updated_ms, Reason.CREATED_PAUSED)

        was_paused = state.status == "paused"
        old_rules = rules_of(state)
        timing = (state.interval_ms, state.grace_ms, old_rules.schedule, old_rules.timezone)
        state.name, state.revision = cfg.name, cfg.revision
        state.channels, state.tags = share(tuple(cfg.channels)), share(tuple(cfg.tags))
        state.interval_ms, state.grace_ms = share(cfg.interval_s * 1000), share(cfg.grace_s * 1000)
        state.max_problems = cfg.max_consecutive_misses
        if rules is not (state.extra.rules if state.extra is not None else None):
            set_extra(state, share, rules=rules)
            rules_changed(state, share)
        new_rules = rules_of(state)
        outputs: list[Output] = []
        held = state.extra.held if state.extra is not None else None
        if held is not None and not held.ended:
            # Muted, unmuted, its tags, dependencies or flapping changed: look again at the next
            # tick whether its held alert goes out (by event time: a replay does the same).
            set_extra(state, share, held=msgspec.structs.replace(held, recheck_ms=self.clock_ms))
        if cfg.paused and not was_paused:
            state.deadline_ms, state.problems = None, 0
            set_extra(state, share, runs=(), streak=0, reminders=0, outcomes=(), rate_down=False)
            outputs += set_status(state, "paused", cfg.updated_ms, Reason.PAUSED)
        elif was_paused and not cfg.paused:
            # Resuming starts a fresh window from the moment of the resume.
            state.problems = 0
            if state.last_ping_ms is None:
                outputs += set_status(state, "new", cfg.updated_ms, Reason.RESUMED)
            else:
                state.deadline_ms = next_deadline(state, max(cfg.updated_ms, self.clock_ms))
                outputs += set_status(state, "up", cfg.updated_ms, Reason.RESUMED)
        elif (
            state.status != "paused" and anchor(state) is not None
            and timing != (state.interval_ms, state.grace_ms, new_rules.schedule, new_rules.timezone)
        ):  # fmt: skip
            # Only a change of the window moves the deadline: recomputing it on a rename
            # would bring back a deadline already declared missed, and count it again.
            state.deadline_ms = next_deadline(state, anchor(state))
        self._schedule(state)
        return self.holds.gate(state, outputs) if outputs else outputs

    # pings -----------------------------------------------------------------
    def apply_ping(self, ping: Ping, offset: int) -> list[Output]:
        state = self.monitors.get(ping.monitor_id)
        if state is None or offset <= state.applied_offset:
            return []
        state.applied_offset = offset
        at = ping.received_ms
        if at > self.clock_ms:
            self.clock_ms = at
        self._arrived(state.project_id, at)
        if state.status == "paused" or ping.kind == "log":
            # Paused: recorded in history by the query service, never alerts. A log line
            # is history only. Either way, only the applied offset moved.
            self.dirty.add(state.monitor_id)
            return []
        counted = state.status == "late" and (overdue_at(state) or NEVER) <= self._overdue_until
        rules = state.extra.rules if state.extra is not None else None
        if rules is None:  # most monitors: judged by kind alone
            outputs = (
                start_run(state, ping.rid or "", at, self._shared) if ping.kind == "start"
                else check_in(state, ping, at, self._shared)
            )  # fmt: skip
        else:
            outputs = judged_ping(state, rules, ping, at, self._shared)
        if counted and state.status != "late":
            self.holds.watch.overdue(state.project_id, at, -1)  # counted overdue, it came after all
        if outputs:
            outputs = self.holds.gate(state, outputs)
        self._schedule(state)
        return outputs

    def apply_instance_removed(self, removed: InstanceRemoved, offset: int) -> list[Output]:
        """An instance taken out of a heartbeat's fleet through the API."""
        state = self.monitors.get(removed.monitor_id)
        if state is None or offset <= state.applied_offset:
            return []
        state.applied_offset = offset
        outputs = fleets.remove(state, removed.instance, removed.at_ms, self._shared)
        if outputs:
            outputs = self.holds.gate(state, outputs)
        self._schedule(state)
        return outputs

    # the clock -------------------------------------------------------------
    def advance(self, clock_ms: int) -> list[Output]:
        """Move the event-time clock; returns the misses and alerts now due, and an
        :class:`Outage` if this tick shows the clock had stopped.

        Costs work only for the wheel slots that came due, not for all monitors.
        """
        outage = gap(self.last_tick_ms, clock_ms, self.outage_gap_ms) if self.outage_gap_ms else None
        skipped_before = self.skipped_windows
        if outage is not None and outage not in self.outages:  # (in: replayed after a snapshot that has it)
            self.outages.append(outage)
            del self.outages[:-MAX_OUTAGES]
            self.outages_changed = True
        if clock_ms > self.last_tick_ms:
            self.last_tick_ms = clock_ms
        if clock_ms > self.clock_ms:
            self.clock_ms = clock_ms
        outputs: list[Output] = []
        not_yet: list[MonitorState] = []
        monitors, now, wheel = self.monitors, self.clock_ms, self._wheel
        counted_until = self._overdue_until
        self._overdue_until = max(counted_until, now - self.lateness_ms)
        judged = self._judge_ingest(now)
        if not wheel.slots or wheel.slots[0] > now // 1000:  # most ticks: nothing came due
            outputs += judged
            return outputs if outage is None else [*outputs, self._outage(outage, skipped_before)]
        for slot, monitor_ids in wheel.pop_due(now):
            for monitor_id in monitor_ids:
                state = monitors.get(monitor_id)
                if state is None or state.queued_slot != slot:
                    continue  # deleted, or queued again in an earlier slot meanwhile
                state.queued_slot = None
                if state.extra is not None and state.extra.flips:
                    self.holds.forget_flips(state, now)
                if state.status == "late":
                    self.holds.watch.late(state, counted_until, self._overdue_until)
                if self._due(state) > now:
                    not_yet.append(state)  # due later in this second, or moved later
                    continue
                checked = self._check(state)
                if checked:
                    outputs += self.holds.gate(state, checked)
                self._schedule(state)
        for state in not_yet:
            self._schedule(state)
        outputs += judged
        if outage is not None:
            outputs.append(self._outage(outage, skipped_before))
        return outputs

    def _judge_ingest(self, now: int) -> list[Output]:
        """Open and close ingest incidents (told to partition 0, which alerts the operators); a
        closed one ends the holds it made."""
        watch = self.holds.watch
        opened, closed = watch.judge(now)
        if not (opened or closed):
            return []
        outputs: list[Output] = [*self.ingest_alerts.judged(now, watch.open.values(), closed)]
        for incident in closed:
            outputs += self._recheck_held(incident.scope or None)
        return outputs

    def _recheck_held(self, project_id: str | None, at: int | None = None) -> list[Output]:
        """Look again at the held alerts of one project (None: all) as of ``at`` (None: the
        clock): a hold may have ended."""
        outputs: list[Output] = []
        for monitor_id in self.holds.held_in(project_id):
            state = self.monitors.get(monitor_id)
            if state is not None:
                checked = self.holds.recheck(state, self.clock_ms if at is None else at)
                if checked:
                    outputs += self.holds.gate(state, checked)
                self._schedule(state)
        return outputs

    # what other partitions and the maintenance topic say --------------------------------
    def apply_relay(self, relay: StatusRelayed) -> list[Output]:
        """A heartbeat (of any partition) went down or came back: dependents may be held or freed.
        Freed as of when it came back (the relay's event time, not this partition's clock): a
        dependent's one more window starts there, wherever the two live."""
        if self.holds.downs.apply(relay) is None:
            return []
        return self._recheck_held(relay.project_id, relay.at_ms) if not relay.down else []

    def apply_ingest_report(self, report: IngestReported, offset: int) -> list[Output]:
        """Another partition's ingest incidents, read at ``offset`` (partition 0 only tallies them)."""
        return [*self.ingest_alerts.tally(report, offset)]

    def ingest_report(self) -> IngestReported | None:
        """The incidents open here, for partition 0 (None: this is partition 0). The adapter writes
        one when it takes the partition over: one lost to a crash before the snapshot is said again."""
        if self.partition == 0:
            return None
        return self.ingest_alerts.report(self.clock_ms, self.holds.watch.open.values())

    def apply_window(self, window: MaintenanceWindow, recheck: bool = True) -> list[Output]:
        """A maintenance window was made, changed, ended or deleted. ``recheck`` False: while
        reading all windows at start, where an older revision must not release what a newer
        one holds, and what was read before the restart was applied then."""
        if not self.holds.windows.apply(window) or not recheck:
            return []
        return self._recheck_held(window.project_id)

    def _outage(self, outage: OutageSpan, skipped_before: int) -> Outage:
        return Outage(self.partition, *outage, windows_skipped=self.skipped_windows - skipped_before)

    def _check(self, state: MonitorState) -> list[Output]:
        """Everything that came due, oldest first: the late turn, missed windows, overrun
        runs, reminders."""
        outputs: list[Output] = []
        if state.status in ("paused", "new"):
            return outputs
        share = self._shared
        ready = self.clock_ms - self.lateness_ms  # what is dated up to here is due
        recheck = self.holds.recheck_at(state) if state.extra is not None else None
        if recheck is not None and recheck <= ready:
            outputs += self.holds.recheck(state, self.clock_ms)
        if self.outages and state.deadline_ms is not None:
            skipped, passed_over = skip_windows(state, self.outages, self.clock_ms, ready)
            outputs += passed_over  # (after a held alert released just above, not instead of it)
            if skipped:
                self.skipped_windows += skipped
                self.dirty.add(state.monitor_id)
        late = mark_late(state, self.clock_ms)
        if late:  # late only now: half its grace may have passed already (no grace, or a tick late)
            outputs += late
            self.holds.watch.late(state, -1, self._overdue_until)
        if state.extra is None:  # most monitors: only windows to miss
            while state.deadline_ms is not None and state.deadline_ms <= ready:
                outputs += mark_missed(state, state.deadline_ms, share)
            return outputs
        fleet = state.extra.rules.fleet if state.extra.rules is not None else None
        while True:
            deadline = state.deadline_ms
            when = deadline if deadline is not None and deadline <= ready else NEVER
            overrun = overrun_at(state)
            if overrun is not None and overrun[0] <= ready and overrun[0] < when:
                when, deadline = overrun[0], None
            else:
                overrun = None
            reminder = reminder_at(state)
            if reminder is not None and reminder <= ready and reminder < when:
                outputs += remind(state, ready, share)
            elif overrun is not None:
                outputs += mark_overran(state, when, overrun[1], share)
            elif deadline is not None and when != NEVER and fleet is not None:
                outputs += fleets.judge_window(state, fleet, deadline, share)
            elif deadline is not None and when != NEVER:
                outputs += mark_missed(state, deadline, share)
            else:
                return outputs

    def _due(self, state: MonitorState) -> int:
        """When this monitor needs looking at next."""
        status = state.status
        if status in ("paused", "new"):
            return NEVER
        due = NEVER
        if state.deadline_ms is not None:
            # (a fleet is never late: its windows are fixed)
            late_turn = status == "up" and (state.extra is None or rules_of(state).fleet is None)
            due = state.deadline_ms - state.grace_ms if late_turn else state.deadline_ms + self.lateness_ms
            if status == "late":
                at = overdue_at(state)
                if at is not None and at > self._overdue_until:
                    due = at + self.lateness_ms  # it counts as overdue then (the ingest watch)
        if state.extra is not None:
            overrun = overrun_at(state)
            if overrun is not None and overrun[0] + self.lateness_ms < due:
                due = overrun[0] + self.lateness_ms
            reminder = reminder_at(state)
            if reminder is not None and reminder + self.lateness_ms < due:
                due = reminder + self.lateness_ms
            recheck = self.holds.recheck_at(state)
            if recheck is not None and recheck + self.lateness_ms < due:
                due = recheck + self.lateness_ms
        return due

    def _schedule(self, state: MonitorState) -> None:
        self.dirty.add(state.monitor_id)
        if state.extra is None and state.status == "up" and state.deadline_ms is not None:
            due = state.deadline_ms - state.grace_ms  # the common check-in: what _due says, one call fewer
        else:
            due = self._due(state)
        if due != NEVER and (state.queued_slot is None or state.queued_slot > due // 1000):
            self._wheel.queue(state, due)  # (else an entry at least as early is queued: the common ping)

    # snapshots -------------------------------------------------------------
    def restore(self, state: MonitorState) -> None:
        """Take a decoded snapshot's state, sharing what ``apply_config`` shares (a decoded
        state has its own copy of every string and int): restored, a monitor costs what a
        configured one does."""
        share = self._shared
        state.queued_slot = None
        state.channels, state.tags = share(tuple(state.channels)), share(tuple(state.tags))
        state.interval_ms, state.grace_ms = share(state.interval_ms), share(state.grace_ms)
        # The id interned too: the query's views and ingest's index in this process share it.
        state.monitor_id, state.project_id = sys.intern(state.monitor_id), sys.intern(state.project_id)
        if state.status_reason is not None:  # decoded: a fresh copy of what is mostly a few literals
            state.status_reason = SHARED_REASONS.get(state.status_reason, state.status_reason)
        if state.last_checkin is not None:  # decoded: the shared one again
            state.last_checkin = checkin(state.last_checkin.kind, state.last_checkin.exit_code)
        if state.last_message is not None and len(state.last_message) <= SHARED_MESSAGE_MAX_CHARS:
            state.last_message = sys.intern(state.last_message)
        extra = state.extra
        if extra is not None:  # decoded: fresh copies of what is mostly shared
            if extra.rules is not None:
                state.extra = msgspec.structs.replace(extra, rules=share(extra.rules))
            if extra.fleet is not None:
                fleets.restored(extra.fleet)
            set_extra(state, share)  # an idle one becomes the shared copy, an empty one None
        self.monitors[state.monitor_id] = state
        held = state.extra.held if state.extra is not None else None
        if held is not None and not held.ended:
            self.holds.held.setdefault(state.project_id, set()).add(state.monitor_id)
        self._schedule(state)
        self.dirty.discard(state.monitor_id)

    def restore_partition(self, state: PartitionState) -> None:
        """Take the partition's own decoded snapshot (the newest wins: it holds all they did)."""
        self.outages = list(state.outages[-MAX_OUTAGES:])
        self.outages_changed = not state.downs_apart  # an older one is rewritten without its downs
        if not state.downs_apart:  # since, each down is a record of its own (holds.downs.restore_one)
            self.holds.downs.restore(state.downs)
        self.holds.watch.restore(state)
        self.ingest_alerts.restore(state)

    def changed(self) -> list[MonitorState]:
        """The monitors changed since the last snapshot."""
        return [self.monitors[m] for m in self.dirty if m in self.monitors]

    def partition_changed(self) -> PartitionState | None:
        """The partition's own state if it changed since its last snapshot (else None: most
        checkpoints write none)."""
        holds = self.holds
        if not (self.outages_changed or holds.watch.changed or self.ingest_alerts.changed):
            return None
        state = PartitionState(outages=tuple(self.outages), downs_apart=True)
        return self.ingest_alerts.snapshot(holds.watch.snapshot(state))

    def saved(self, states: list[MonitorState], partition: PartitionState | None = None) -> None:
        """Their snapshots (and ``partition``'s, if given) are durable: they are clean again."""
        if partition is not None:
            holds = self.holds
            if partition.outages == tuple(self.outages):
                self.outages_changed = False
            holds.watch.saved(partition)
            self.ingest_alerts.saved(partition)
        for state in states:
            self.dirty.discard(state.monitor_id)
        if all(m not in self.monitors for m in self.dirty):  # only deleted ones left, if any
            self.dirty = set()  # a fresh set: an emptied one keeps its table (~40 bytes a monitor)

    def due_count(self) -> int:
        """Monitors queued in slots that have come due (what the next tick would look at)."""
        return self._wheel.due_count(self.clock_ms)
