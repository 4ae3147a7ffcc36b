"""Snapshots of the new state (schedule, runs, recovery, reminders): they round-trip, and
snapshots written before these fields existed still restore."""

import sys

import msgspec

from services.evaluator.logic import PartitionEvaluator
from shared.events import Alert, Ping, RunMeasured
from shared.snapshots import Extra, MonitorState, Rules
from tests.services.evaluator.harness import H, M, Monitor, S

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder(MonitorState).decode


def restored(hb: Monitor) -> PartitionEvaluator:
    """A fresh evaluator holding ``hb``'s monitor as read back from its snapshot."""
    ev = PartitionEvaluator(0, lateness_ms=hb.ev.lateness_ms)
    ev.restore(decode(encode(hb.state)))
    ev.clock_ms = hb.ev.clock_ms
    return ev


def test_schedule_runs_and_reminder_count_survive_a_snapshot():
    hb = Monitor(schedule="0 * * * *", timezone="Europe/Berlin", grace_s=300, max_runtime_s=7200,
                 recovery_threshold=2, reminder_interval_s=3600)  # fmt: skip
    hb.ping(0).ticks(0, 2 * H + 10 * M, 60 * S)  # down at 1h05m, reminded at 2h05m
    hb.start(2 * H + 20 * M, rid="a").ping(2 * H + 21 * M)  # one success: still down
    ev = restored(hb)
    state = ev.monitors["m1"]
    assert state.extra == hb.state.extra
    assert state.extra.rules == Rules(schedule="0 * * * *", timezone="Europe/Berlin", max_runtime_ms=7_200_000,
                                      recovery_threshold=2, reminder_interval_ms=3_600_000)  # fmt: skip
    assert (state.extra.runs, state.extra.streak, state.extra.reminders) == (
        (("a", 2 * H + 20 * M, False),),
        1,
        1,
    )
    # it goes on where it was: the run is measured, the second success recovers
    end = Ping(id="e", monitor_id="m1", project_id="p1", received_ms=2 * H + 30 * M, kind="success", rid="a")
    outputs = ev.apply_ping(end, offset=1000)
    assert [(o.kind, o.down_since_ms) for o in outputs if isinstance(o, Alert)] == [("up", 1 * H + 5 * M)]
    assert [o.duration_s for o in outputs if isinstance(o, RunMeasured)] == [600.0]


def test_the_reminder_numbering_goes_on_after_a_restore():
    hb = Monitor(reminder_interval_s=3600).ping(0).ticks(0, 2 * H + 15 * M, 60 * S)
    assert hb.alert_ids == ["m1:1:down", "m1:1:reminder:1"]
    ev = restored(hb)
    outputs = ev.advance(3 * H + 15 * M)
    assert [o.id for o in outputs if isinstance(o, Alert)] == ["m1:1:reminder:2"]


def test_an_old_snapshot_without_the_new_fields_still_restores():
    fields = MonitorState.__struct_fields__
    hb = Monitor(max_consecutive_misses=3).ping(0).ticks(0, 1 * H + 15 * M, 60 * S)
    old = encode(
        msgspec.json.decode(encode(hb.state))[: fields.index("extra")]
    )  # what the previous version wrote
    state = decode(old)
    assert state.extra is None and (state.status, state.problems) == ("late", 1)
    ev = PartitionEvaluator(0)
    ev.restore(state)
    assert ev.advance(2 * H + 11 * M) and state.problems == 2  # and it goes on evaluating


def test_idle_extras_are_shared_between_restored_monitors():
    a = Monitor(schedule="@daily", grace_s=600).ping(0)
    ev = PartitionEvaluator(0)
    for monitor_id in ("x", "y"):
        state = decode(encode(a.state))
        state.monitor_id = monitor_id
        ev.restore(state)
    assert ev.monitors["x"].extra is ev.monitors["y"].extra
    assert isinstance(ev.monitors["x"].extra, Extra)


def test_monitors_using_no_new_feature_carry_nothing_new():
    hb = Monitor().ping(0).ticks(0, 3 * H, 60 * S).ping(3 * H)
    # Its changes between down and up are kept for flapping's window (an hour), then dropped.
    assert hb.state.extra is not None and hb.state.extra.flips == (3 * H,)
    hb.ticks(3 * H, 4 * H + 60 * S, 60 * S).ping(4 * H + 60 * S)
    assert hb.state.extra is None
    # one null for the unused extras in the snapshot, then the last check-in and its message (none)
    assert encode(hb.state).endswith(b',null,["success",null],null]')


def test_restored_monitors_share_what_configured_ones_share():
    # A decoded snapshot has its own copy of every string and int; a million restored
    # monitors must not cost more than a million configured ones.
    hb = Monitor(interval_s=600, grace_s=300).ping(0)
    ev = PartitionEvaluator(0)
    for name in ("x", "y"):
        state = decode(encode(hb.state))
        state.monitor_id = "".join(["hb_", name])  # a fresh string, as decoding gives
        ev.restore(state)
    x, y = ev.monitors["hb_x"], ev.monitors["hb_y"]
    assert x.interval_ms is y.interval_ms and x.grace_ms is y.grace_ms
    assert x.project_id is y.project_id and x.channels is y.channels and x.tags is y.tags
    assert x.status is y.status and x.status_reason is y.status_reason
    assert x.monitor_id is sys.intern(
        "".join(["hb_", "x"])
    )  # the query views and ingest's index hold this one
    assert (x.interval_ms, x.grace_ms) == (600_000, 300_000)
