"""Replay is exact: a partition evaluator fed any sequence of configs, pings and ticks, then
snapshotted at any checkpoint, restored from those snapshots (decoded through the public
layout, as the adapter's StateStore does) and fed the rest, produces exactly the outputs of
the run that was never interrupted.

The restore follows the adapter (services/evaluator/consumer.py and store.py): the snapshots of
the monitors changed since the last checkpoint, and the partition's own if its outages changed,
are written at each checkpoint (a compacted topic: the newest per key is what a restart reads),
every config written so far is read again in order, older revisions too (compaction may not
have removed them yet; revision-guarded: they change nothing a snapshot holds, and a tombstone
deletes what a snapshot still holds of a deleted monitor), the partition's last tick is found
in the log, and every ``pings`` record after the last checkpoint is applied again. Outages of
Pingura (ticks further apart than ``outage_gap_ms``) are on in half the examples.

The holds take part (issue 17): configs mute heartbeats, make them depend on each other (by id
and by tag) and flap fast; maintenance windows come and go; and the relays the evaluator
writes when a heartbeat goes down or comes back are records of the log like any other (the
uninterrupted run appends each right after the record that made it, as the adapter publishes
them before it reads on; the restored run reads that same log).

One thing a restart does say again: a heartbeat created paused (or paused, resumed) and deleted
between two checkpoints has no snapshot, so its configs, read again before compaction removes
them, repeat its status changes, mostly with the same ids (history keeps one row per id; configs
never make alerts). Its pings are not read again, so a repeat may say ``previous: new`` where the
first said ``up``, and a resume of one that had checked in says ``new`` (an id of its own)
where the first said ``up``. Only deleted heartbeats, and only until compaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.evaluator.logic import PartitionEvaluator
from shared.events import (
    DOWN_KEY_PREFIX,
    MUTED_FOREVER_MS,
    DownSnapshot,
    InstanceRemoved,
    MaintenanceWindow,
    MonitorConfig,
    MonitorSnapshot,
    PartitionSnapshot,
    Ping,
    StatusChanged,
    StatusRelayed,
    Tick,
    decode,
    encode,
)
from shared.snapshots import (
    PARTITION_STATE_VERSION,
    STATE_VERSION,
    Reason,
    decode_down,
    decode_partition_state,
    decode_state,
    encode_down,
    encode_partition_state,
    encode_state,
)

S = 1000
MONITORS = ("hb_a", "hb_b", "hb_c")
LATENESS_MS = 1 * S

configs = st.fixed_dictionaries({
    "monitor": st.sampled_from(MONITORS),
    "interval_s": st.sampled_from([60, 120, 300]),
    "grace_s": st.sampled_from([0, 10, 45]),
    "max_consecutive_misses": st.integers(1, 3),
    "paused": st.booleans(),
    "deleted": st.sampled_from([False] * 9 + [True]),
    "schedule": st.sampled_from([None, None, "*/2 * * * *", "0 * * * *"]),
    "max_runtime_s": st.sampled_from([None, 30, 200]),
    "recovery_threshold": st.integers(1, 2),
    "reminder_interval_s": st.sampled_from([None, None, 90]),
    "channels": st.sampled_from([[], ["ch_1"]]),
    "tags": st.sampled_from([[], ["db"]]),
    "mute_for_s": st.sampled_from([None, None, None, 0, 120, -1]),  # -1: until unmuted
    "depends_on": st.sampled_from([[], [], ["hb_a"], ["hb_b"]]),
    "depends_on_tags": st.sampled_from([[], [], ["db"]]),
    "flap_changes": st.sampled_from([None, None, 0, 1, 2]),
    "flap_stable_s": st.sampled_from([None, 120]),
})  # fmt: skip
windows = st.fixed_dictionaries({
    "window": st.sampled_from(["w1", "w2"]),
    "length_s": st.sampled_from([60, 200]),
    "schedule": st.sampled_from([None, None, "*/3 * * * *"]),
    "covers": st.sampled_from(["hb_a", "db", "all"]),
    "deleted": st.sampled_from([False] * 4 + [True]),
    "end_now": st.sampled_from([False] * 4 + [True]),
})  # fmt: skip
pings = st.fixed_dictionaries({
    "monitor": st.sampled_from(MONITORS),
    "kind": st.sampled_from(["success", "success", "fail", "start", "log"]),
    "rid": st.sampled_from([None, None, "r1", "r2"]),
    "exit_code": st.sampled_from([None, 0, 2]),
    "message": st.sampled_from([None, "ok", "disk\nfull"]),
    "duration_s": st.sampled_from([None, None, 1.5]),
    "early_ms": st.sampled_from([0, 0, 0, 700, 5 * S]),  # ingest instances' pings arrive out of order
})  # fmt: skip
steps = st.tuples(
    st.integers(0, 90 * S),  # event time moves on before this event (a tick every second or less is skipped)
    st.one_of(
        st.tuples(st.just("config"), configs),
        st.tuples(st.just("ping"), pings),
        st.just(("tick", None)),
        st.tuples(st.just("window"), windows),
    ),
)
scenarios = st.lists(steps, min_size=1, max_size=60)


def records(scenario) -> list[tuple[str, object]]:
    """The scenario as the evaluator sees it: ("config", MonitorConfig) from the ``monitors``
    topic, or ("pings", Ping | Tick) from the ``pings`` partition, in the order applied."""
    now, revisions, out = 0, dict.fromkeys((*MONITORS, "w1", "w2"), 0), []
    for n, (advance_ms, (kind, fields)) in enumerate(scenario):
        now += advance_ms
        if kind == "tick":
            out.append(("pings", Tick(at_ms=now)))
        elif kind == "config":
            fields = dict(fields)
            monitor_id = fields.pop("monitor")
            revisions[monitor_id] += 1
            mute_for_s = fields.pop("mute_for_s", None)
            fields["muted_until_ms"] = (
                None if mute_for_s is None else MUTED_FOREVER_MS if mute_for_s < 0 else now + mute_for_s * S
            )
            fields["depends_on"] = [m for m in fields.get("depends_on", []) if m != monitor_id]
            out.append(("config", MonitorConfig(id=monitor_id, project_id="prj_1", name=f"job {n}", token="t",
                                                created_ms=0, updated_ms=now, revision=revisions[monitor_id],
                                                **fields)))  # fmt: skip
        elif kind == "window":
            window_id, covers = fields["window"], fields["covers"]
            revisions[window_id] += 1
            out.append(("window", MaintenanceWindow(
                id=window_id, project_id="prj_1", name=window_id, starts_ms=now,
                ends_ms=None if fields["schedule"] else now + fields["length_s"] * S, schedule=fields["schedule"],
                duration_s=fields["length_s"] if fields["schedule"] else None,
                monitor_ids=[covers] if covers.startswith("hb_") else [], tags=["db"] if covers == "db" else [],
                whole_project=covers == "all", ended_ms=now if fields["end_now"] else None,
                deleted=fields["deleted"], created_ms=now, updated_ms=now, revision=revisions[window_id],
            )))  # fmt: skip
        elif kind == "remove":
            out.append(("pings", InstanceRemoved(monitor_id=fields["monitor"], project_id="prj_1",
                                                 instance=fields["instance"], at_ms=now)))  # fmt: skip
        else:
            fields = dict(fields)
            monitor_id, early_ms = fields.pop("monitor"), fields.pop("early_ms")
            out.append(("pings", Ping(id=f"p{n}", monitor_id=monitor_id, project_id="prj_1",
                                      received_ms=max(0, now - early_ms), **fields)))  # fmt: skip
    return out


class Partition:
    """One partition as the adapter drives it: records applied in order, offsets counted on the
    ``pings`` topic, checkpoints written to a compacted ``evaluator-state``."""

    def __init__(self, evaluator: PartitionEvaluator):
        self.ev = evaluator
        self.offset = -1  # of the last ``pings`` record applied
        self.state_topic: dict[str, bytes] = {}  # compacted: the newest snapshot per monitor

    def apply(self, kind: str, event) -> list:
        if kind == "config":
            return self.ev.apply_config(event)
        if kind == "window":
            return self.ev.apply_window(event)
        self.offset += 1
        if isinstance(event, Tick):
            return self.ev.advance(event.at_ms)
        if isinstance(event, StatusRelayed):
            return self.ev.apply_relay(event)
        if isinstance(event, InstanceRemoved):
            return self.ev.apply_instance_removed(event, self.offset)
        return self.ev.apply_ping(event, self.offset)

    def checkpoint(self) -> None:
        """What StateStore.save writes (nothing before the first ``pings`` record: no offset)."""
        if self.offset < 0:
            return
        changed, own = self.ev.changed(), self.ev.partition_changed()
        for state in changed:
            state.applied_offset = max(state.applied_offset, self.offset)
            snapshot = MonitorSnapshot(
                monitor_id=state.monitor_id,
                partition=0,
                offset=self.offset,
                clock_ms=self.ev.clock_ms,
                state=encode_state(state),
                state_v=STATE_VERSION,
            )
            self.state_topic[state.monitor_id] = encode(snapshot)
        if own is not None:
            self.state_topic[""] = encode(PartitionSnapshot(partition=0, offset=self.offset, clock_ms=self.ev.clock_ms,
                                                            state=encode_partition_state(own),
                                                            state_v=PARTITION_STATE_VERSION))  # fmt: skip
        downs = self.ev.holds.downs.changes()
        for monitor_id, entry in downs:  # each heartbeat down a record of its own
            self.state_topic[DOWN_KEY_PREFIX + monitor_id] = encode(DownSnapshot(
                partition=0, offset=self.offset, monitor_id=monitor_id, state=encode_down(entry),
            ))  # fmt: skip
        self.ev.saved(changed, own)
        self.ev.holds.downs.saved([monitor_id for monitor_id, _ in downs])


def restarted(
    state_topic: dict[str, bytes], applied: list[tuple[str, object]], outage_gap_ms: int
) -> Partition:
    """A new evaluator from the snapshots, as StateStore.restore and the adapter's start build it."""
    part = Partition(PartitionEvaluator(0, LATENESS_MS, outage_gap_ms))
    part.state_topic = dict(state_topic)
    committed = -1
    for value in state_topic.values():
        snapshot = decode(value)
        if isinstance(snapshot, PartitionSnapshot):
            part.ev.restore_partition(decode_partition_state(snapshot))
            continue
        if isinstance(snapshot, DownSnapshot):
            part.ev.holds.downs.restore_one(snapshot.monitor_id, decode_down(snapshot))
            continue
        assert isinstance(snapshot, MonitorSnapshot)
        state = decode_state(snapshot)
        state.applied_offset = snapshot.offset
        part.ev.restore(state)
        part.ev.clock_ms = max(part.ev.clock_ms, snapshot.clock_ms)
        committed = max(committed, snapshot.offset)
    ticks = [e.at_ms for kind, e in applied if isinstance(e, Tick)]
    part.ev.last_tick_ms = max(ticks, default=0)  # the adapter's search of the log before its resume point
    part.offset = committed
    return part


@dataclass
class Replay:
    expected: list[list]
    """What the uninterrupted run said for each record after the last checkpoint."""
    replayed: list[list]
    """What the restored one said for the same records."""
    at_restart: list
    """What reading the configs again said."""
    before: list
    """What the uninterrupted run said up to the last checkpoint."""
    deleted: set[str]
    """Heartbeats whose newest config by then deletes them."""


def run(scenario, checkpoints: set[int], outage_gap_ms: int = 0) -> Replay:
    whole = Partition(PartitionEvaluator(0, LATENESS_MS, outage_gap_ms))
    events, outputs = [], []
    waiting = records(scenario)
    while waiting:  # the log as the adapter writes it: each relay right after what made it
        kind, event = waiting.pop(0)
        events.append((kind, event))
        outputs.append(whole.apply(kind, event))
        waiting[:0] = [("pings", o) for o in outputs[-1] if isinstance(o, StatusRelayed)]

    # The same, checkpointed; the process stops after the last checkpoint and a new one takes over.
    first = Partition(PartitionEvaluator(0, LATENESS_MS, outage_gap_ms))
    last = -1
    for n, (kind, event) in enumerate(events):
        first.apply(kind, event)
        if n in checkpoints and first.offset >= 0:
            first.checkpoint()
            last = n
    resumed = restarted(first.state_topic, events[: last + 1], outage_gap_ms)
    written = [e for kind, e in events[: last + 1] if isinstance(e, MonitorConfig)]  # not compacted yet
    at_restart = [resumed.ev.apply_config(config) for config in written]
    at_restart += [
        resumed.ev.apply_window(w, recheck=False) for kind, w in events[: last + 1] if kind == "window"
    ]
    replayed = [resumed.apply(kind, event) for kind, event in events[last + 1 :]]
    return Replay(
        expected=outputs[last + 1 :],
        replayed=replayed,
        at_restart=[o for batch in at_restart for o in batch],
        before=[o for batch in outputs[: last + 1] for o in batch],
        deleted={m for m, config in {c.id: c for c in written}.items() if config.deleted},
    )


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # the default count: ~1 s
@given(scenarios, st.sets(st.integers(0, 60), max_size=6), st.sampled_from([0, 30 * S]))
def test_a_restored_evaluator_replays_exactly_what_the_uninterrupted_one_did(
    scenario, checkpoints, outage_gap_ms
):
    replay = run(scenario, checkpoints, outage_gap_ms)
    # Configs read again change nothing a snapshot holds: only deleted heartbeats say anything again.
    assert all(isinstance(o, StatusChanged) and o.monitor_id in replay.deleted for o in replay.at_restart)
    assert replay.replayed == replay.expected


def test_the_replay_covers_what_it_claims():
    # Misses, alerts, runs and a restore in the middle: the property above is not vacuous.
    scenario = [(0, ("config", {"monitor": "hb_a", "interval_s": 60, "grace_s": 0, "max_consecutive_misses": 1,
                                "paused": False, "deleted": False, "schedule": None, "max_runtime_s": 30,
                                "recovery_threshold": 1, "reminder_interval_s": None, "channels": ["ch_1"]})),
                (1 * S, ("ping", {"monitor": "hb_a", "kind": "start", "rid": None, "exit_code": None,
                                  "message": None, "duration_s": None, "early_ms": 0})),
                (5 * S, ("tick", None)), (90 * S, ("tick", None)), (90 * S, ("tick", None))]  # fmt: skip
    replay = run(scenario, {2})
    kinds = [type(o).__name__ for batch in replay.replayed for o in batch]
    assert "Alert" in kinds and "Missed" in kinds and replay.replayed == replay.expected


def test_a_restart_just_after_an_outage_still_skips_the_windows_it_overlapped():
    config = {"monitor": "hb_a", "interval_s": 60, "grace_s": 45, "max_consecutive_misses": 1, "paused": False,
              "deleted": False, "schedule": None, "max_runtime_s": None, "recovery_threshold": 1,
              "reminder_interval_s": None, "channels": []}  # fmt: skip
    ping = {"monitor": "hb_a", "kind": "success", "rid": None, "exit_code": None, "message": None,
            "duration_s": None, "early_ms": 0}  # fmt: skip
    # Expected at 60 s, missed at 105 s; Pingura stopped from 50 s to 100 s, and restarted at 100 s.
    scenario = [(0, ("config", config)), (0, ("ping", ping)), (50 * S, ("tick", None)), (50 * S, ("tick", None)),
                (10 * S, ("tick", None))]  # fmt: skip
    replay = run(scenario, {3}, outage_gap_ms=30 * S)
    assert replay.replayed == replay.expected
    assert [(type(o).__name__, getattr(o, "reason", None)) for batch in replay.replayed for o in batch] == [
        ("StatusChanged", Reason.OUTAGE)
    ]  # up again, not missed


def test_a_heartbeat_created_paused_and_deleted_between_checkpoints_says_so_again_with_the_same_id():
    config = {"monitor": "hb_a", "interval_s": 60, "grace_s": 0, "max_consecutive_misses": 1, "paused": True,
              "deleted": False, "schedule": None, "max_runtime_s": None, "recovery_threshold": 1,
              "reminder_interval_s": None, "channels": []}  # fmt: skip
    scenario = [
        (0, ("config", config)),
        (0, ("config", {**config, "deleted": True})),
        (1 * S, ("tick", None)),
    ]
    replay = run(scenario, {2})
    assert replay.at_restart == replay.before and [o.reason for o in replay.at_restart] == [
        Reason.CREATED_PAUSED
    ]


# The holds, densely: three heartbeats that miss and recover often (a minute apart, no grace),
# one depending on another and on a tag, fast flapping, mutes and windows coming and going.
hold_configs = st.fixed_dictionaries({
    "monitor": st.sampled_from(MONITORS),
    "interval_s": st.just(60),
    "grace_s": st.just(0),
    "max_consecutive_misses": st.just(1),
    "paused": st.sampled_from([False] * 9 + [True]),
    "deleted": st.just(False),
    "tags": st.sampled_from([[], ["db"]]),
    "mute_for_s": st.sampled_from([None, None, 90, -1]),
    "depends_on": st.sampled_from([[], ["hb_a"], ["hb_b"]]),
    "depends_on_tags": st.sampled_from([[], ["db"]]),
    "flap_changes": st.sampled_from([None, 0, 1, 2]),
    "flap_stable_s": st.sampled_from([None, 120]),
    "reminder_interval_s": st.sampled_from([None, 90]),
    "channels": st.just(["ch_1"]),
})  # fmt: skip
hold_pings = st.fixed_dictionaries({
    "monitor": st.sampled_from(MONITORS),
    "kind": st.sampled_from(["success", "success", "fail"]),
    "rid": st.none(), "exit_code": st.none(), "message": st.none(), "duration_s": st.none(), "early_ms": st.just(0),
})  # fmt: skip
hold_steps = st.tuples(
    st.sampled_from([0, 10 * S, 30 * S, 70 * S]),
    st.one_of(
        st.tuples(st.just("ping"), hold_pings),
        st.just(("tick", None)),
        st.just(("tick", None)),
        st.tuples(st.just("config"), hold_configs),
        st.tuples(st.just("window"), windows),
    ),
)


def by_heartbeat(batches: list[list]) -> list[dict[str, list]]:
    """Each record's outputs per heartbeat, in order: what the bus keeps in order (a topic keyed
    by heartbeat). Heartbeats that come due in the same second of the timer wheel may be looked
    at in another order after a restore; a relay is read back from the log, never in between."""
    grouped = []
    for batch in batches:
        per: dict[str, list] = {}
        for o in batch:
            per.setdefault(getattr(o, "monitor_id", ""), []).append(o)
        grouped.append(per)
    return grouped


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hold_steps, min_size=5, max_size=80), st.sets(st.integers(0, 90), max_size=6))
def test_held_alerts_replay_exactly_too(scenario, checkpoints):
    replay = run(scenario, checkpoints)
    assert all(isinstance(o, StatusChanged) and o.monitor_id in replay.deleted for o in replay.at_restart)
    assert by_heartbeat(replay.replayed) == by_heartbeat(replay.expected)
