"""A small driver for evaluator scenarios: one monitor, its config, pings and ticks in, every
output kept. Shared by the runs, schedule, recovery and reminder tests. :class:`Fleet` drives
several monitors over several partitions, with relays carried between them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from services.evaluator.logic import PartitionEvaluator
from shared.events import (
    DOWN_KEY_PREFIX,
    Alert,
    DownSnapshot,
    MaintenanceWindow,
    Missed,
    MonitorConfig,
    MonitorSnapshot,
    PartitionSnapshot,
    Ping,
    RunMeasured,
    StatusChanged,
    StatusRelayed,
)
from shared.snapshots import (
    PARTITION_STATE_VERSION,
    STATE_VERSION,
    PartitionState,
    decode_down,
    decode_partition_state,
    decode_state,
    encode_down,
    encode_partition_state,
    encode_state,
)

S = 1000  # ms
M = 60 * S
H = 60 * M


def config(revision=1, **fields) -> MonitorConfig:
    defaults = dict(
        id="m1", project_id="p1", name="backup", token="t", interval_s=3600, grace_s=600,
        max_consecutive_misses=1, channels=["c1"], created_ms=0, updated_ms=0,
    )  # fmt: skip
    return MonitorConfig(revision=revision, **{**defaults, **fields})


def local_ms(zone: str, text: str, fold: int = 0) -> int:
    """Epoch ms of a wall-clock time in ``zone``, e.g. ``local_ms("Europe/Berlin", "2025-03-30 03:00")``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold).timestamp() * 1000)


class Monitor:
    def __init__(self, lateness_ms=1 * S, **fields):
        self.ev = PartitionEvaluator(0, lateness_ms=lateness_ms)
        self.offset = 0
        self.revision = 1
        self.fields = fields
        self.outputs = list(self.ev.apply_config(config(**fields)))

    # input ----------------------------------------------------------------------
    def ping(
        self, at_ms, kind="success", rid=None, duration_s=None, exit_code=None, ping_id=None, message=None
    ):
        self.offset += 1
        ping = Ping(id=ping_id or f"{kind}-{at_ms}", monitor_id="m1", project_id="p1", received_ms=at_ms,
                    kind=kind, rid=rid, duration_s=duration_s, exit_code=exit_code, message=message)  # fmt: skip
        self.outputs += self.ev.apply_ping(ping, self.offset)
        return self

    def start(self, at_ms, rid=None):
        return self.ping(at_ms, "start", rid=rid)

    def fail(self, at_ms, rid=None):
        return self.ping(at_ms, "fail", rid=rid, exit_code=1)

    def tick(self, at_ms):
        self.outputs += self.ev.advance(at_ms)
        return self

    def ticks(self, start_ms, end_ms, step_ms=S):
        for t in range(start_ms, end_ms + 1, step_ms):
            self.tick(t)
        return self

    def reconfigure(self, **fields):
        self.revision += 1
        self.fields = {**self.fields, **fields}
        self.outputs += self.ev.apply_config(config(self.revision, **self.fields))
        return self

    def restarted(self) -> Monitor:
        """The same monitor in a fresh evaluator, as a restart finds it: its state read back from
        its snapshot, the clock where the snapshot says, its config read again (a stale copy
        now). What came out before is kept; what comes out next is added."""
        snapshot = MonitorSnapshot(
            monitor_id="m1", partition=0, offset=self.offset, clock_ms=self.ev.clock_ms,
            state=encode_state(self.state), state_v=STATE_VERSION,
        )  # fmt: skip
        ev = PartitionEvaluator(0, lateness_ms=self.ev.lateness_ms)
        state = decode_state(snapshot)
        state.applied_offset = snapshot.offset
        ev.restore(state)
        ev.clock_ms = ev.last_tick_ms = snapshot.clock_ms
        twin = Monitor.__new__(Monitor)
        twin.__dict__.update(self.__dict__, ev=ev, outputs=list(self.outputs))
        twin.outputs += ev.apply_config(config(self.revision, **self.fields))
        return twin

    # what came out -----------------------------------------------------------------
    def of(self, kind):
        return [o for o in self.outputs if isinstance(o, kind)]

    @property
    def alerts(self):
        return [(a.kind, a.at_ms) for a in self.of(Alert)]

    @property
    def alert_ids(self):
        return [a.id for a in self.of(Alert)]

    @property
    def measured(self):
        return [(r.rid, r.duration_s) for r in self.of(RunMeasured)]

    @property
    def misses(self):
        return [m.deadline_ms for m in self.of(Missed)]

    @property
    def statuses(self):
        return [c.status for c in self.of(StatusChanged)]

    @property
    def state(self):
        return self.ev.monitors["m1"]

    @property
    def status(self):
        return self.state.status

    @property
    def next_expected_ms(self):
        state = self.state
        return state.deadline_ms - state.grace_ms if state.deadline_ms is not None else None


class Fleet:
    """Several monitors of one project over one or more partitions, each partition its own
    :class:`PartitionEvaluator`, with the relays carried as the consumer carries them: every
    :class:`~shared.events.StatusRelayed` an evaluator outputs is applied, with
    ``apply_relay``, to every partition's evaluator (its own included), and what that
    outputs is carried in turn. ``checkpoint`` and ``restart`` do what the consumer's
    snapshots and a restart do (monitor snapshots, the partition's own, configs read again)."""

    def __init__(self, partitions=1, lateness_ms=1 * S, outage_gap_ms=0):
        self.partitions, self.lateness_ms, self.outage_gap_ms = partitions, lateness_ms, outage_gap_ms
        self.evs = [self._evaluator(p) for p in range(partitions)]
        self.where: dict[str, int] = {}
        self.configs: dict[str, MonitorConfig] = {}
        self.offsets = [0] * partitions
        self.outputs: list = []
        self.saved: dict[int, tuple[dict[str, MonitorSnapshot], PartitionState | None]] = {}

    def _evaluator(self, partition):
        return PartitionEvaluator(
            partition,
            lateness_ms=self.lateness_ms,
            outage_gap_ms=self.outage_gap_ms,
            partitions=self.partitions,
        )

    # input ----------------------------------------------------------------------
    def add(self, monitor_id, partition=0, **fields):
        """A monitor named ``monitor_id`` (its name too, unless given) in ``partition``."""
        self.where[monitor_id] = partition
        cfg = config(**{"id": monitor_id, "name": monitor_id, "interval_s": 60, "grace_s": 10, **fields})
        self.configs[monitor_id] = cfg
        self._carry(partition, self.evs[partition].apply_config(cfg))
        return self

    def reconfigure(self, monitor_id, **fields):
        old = self.configs[monitor_id]
        fields.setdefault("updated_ms", max(ev.clock_ms for ev in self.evs))  # made now
        cfg = self.configs[monitor_id] = msgspec.structs.replace(old, revision=old.revision + 1, **fields)
        partition = self.where[monitor_id]
        self._carry(partition, self.evs[partition].apply_config(cfg))
        return self

    def ping(self, monitor_id, at_ms, kind="success"):
        partition = self.where[monitor_id]
        self.offsets[partition] += 1
        ping = Ping(id=f"{monitor_id}-{kind}-{at_ms}", monitor_id=monitor_id, project_id="p1", received_ms=at_ms,
                    kind=kind, exit_code=1 if kind == "fail" else None)  # fmt: skip
        self._carry(partition, self.evs[partition].apply_ping(ping, self.offsets[partition]))
        return self

    def tick(self, at_ms):
        for ev in self.evs:
            self._carry(ev.partition, ev.advance(at_ms))
        return self

    def ticks(self, start_ms, end_ms, step_ms=S):
        for t in range(start_ms, end_ms + 1, step_ms):
            self.tick(t)
        return self

    def _carry(self, partition, outputs):
        """Keep ``outputs``; apply each relay among them (and among what they cause) everywhere."""
        queue = list(outputs)
        while queue:
            out = queue.pop(0)
            self.outputs.append(out)
            if isinstance(out, StatusRelayed):
                for ev in self.evs:
                    queue += ev.apply_relay(out)

    # snapshots ------------------------------------------------------------------
    def checkpoint(self):
        """Write what changed, as the consumer's checkpoint does (the newest snapshot wins)."""
        for ev in self.evs:
            monitors, partition_state = self.saved.get(ev.partition, ({}, None))
            changed = ev.changed()
            for state in changed:
                state.applied_offset = max(state.applied_offset, self.offsets[ev.partition])
                monitors[state.monitor_id] = MonitorSnapshot(
                    monitor_id=state.monitor_id, partition=ev.partition, offset=self.offsets[ev.partition],
                    clock_ms=ev.clock_ms, state=encode_state(state), state_v=STATE_VERSION,
                )  # fmt: skip
            own = ev.partition_changed()
            if own is not None:
                partition_state = decode_partition_state(PartitionSnapshot(
                    partition=ev.partition, offset=self.offsets[ev.partition],
                    state=encode_partition_state(own), state_v=PARTITION_STATE_VERSION,
                ))  # fmt: skip
            for monitor_id, entry in ev.holds.downs.changes():  # each down a record, as StateStore writes
                monitors[DOWN_KEY_PREFIX + monitor_id] = DownSnapshot(
                    partition=ev.partition, offset=self.offsets[ev.partition], monitor_id=monitor_id,
                    state=encode_down(entry),
                )  # fmt: skip
                ev.holds.downs.saved([monitor_id])
            ev.saved(changed, own)
            self.saved[ev.partition] = (monitors, partition_state)
        return self

    def restart(self):
        """New evaluators from the last checkpoint: snapshots restored, then every config read again."""
        self.evs = [self._evaluator(p) for p in range(self.partitions)]
        for ev in self.evs:
            monitors, partition_state = self.saved.get(ev.partition, ({}, None))
            for snapshot in monitors.values():
                if isinstance(snapshot, DownSnapshot):
                    ev.holds.downs.restore_one(snapshot.monitor_id, decode_down(snapshot))
                    continue
                state = decode_state(snapshot)
                state.applied_offset = snapshot.offset
                ev.restore(state)
                ev.clock_ms = max(ev.clock_ms, snapshot.clock_ms)
            if partition_state is not None:
                ev.restore_partition(partition_state)
        for monitor_id, cfg in self.configs.items():
            partition = self.where[monitor_id]
            self._carry(partition, self.evs[partition].apply_config(cfg))
        return self

    # what came out -----------------------------------------------------------------
    def of(self, kind, monitor_id=None):
        return [o for o in self.outputs if isinstance(o, kind) and monitor_id in (None, o.monitor_id)]

    @property
    def alerts(self):
        """``(monitor, kind, at_ms)`` of every alert (reminders: kind ``reminder``)."""
        return [(a.monitor_id, "reminder" if a.reminder else a.kind, a.at_ms) for a in self.of(Alert)]

    def state(self, monitor_id):
        return self.evs[self.where[monitor_id]].monitors[monitor_id]


def window(id="w1", revision=1, **fields) -> MaintenanceWindow:
    """A maintenance window of project ``p1`` (give ``starts_ms`` and ``ends_ms``, or a
    ``schedule`` and ``duration_s``; and what it covers)."""
    defaults = dict(project_id="p1", name="upgrade", starts_ms=0, created_ms=0, updated_ms=0)
    return MaintenanceWindow(id=id, revision=revision, **{**defaults, **fields})
