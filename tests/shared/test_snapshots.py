"""The public snapshot layout (shared.snapshots): snapshots that earlier evaluators wrote still
load, field for field, and what loads is written back byte for byte.

``snapshots/v1-records.jsonl`` holds real ``evaluator-state`` record values, one a line, written
by the evaluator's StateStore at commit 0cffe10 (before the layout was declared here);
``snapshots/v1-decoded.json`` is what that code's own struct read from each, field by field.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from services.evaluator.logic import PartitionEvaluator
from services.query.status_view import status_of
from shared.events import MonitorSnapshot, PartitionSnapshot, decode, encode
from shared.snapshots import (
    PARTITION_STATE_VERSION,
    STATE_VERSION,
    MonitorState,
    PartitionState,
    UnreadableSnapshot,
    decode_partition_state,
    decode_state,
    encode_partition_state,
    encode_state,
)

HERE = Path(__file__).parent / "snapshots"
RECORDS = (HERE / "v1-records.jsonl").read_bytes().splitlines()
DECODED = json.loads((HERE / "v1-decoded.json").read_text())


def named(value):
    if isinstance(value, msgspec.Struct):
        return {f: named(getattr(value, f)) for f in value.__struct_fields__}
    if isinstance(value, tuple | list):
        return [named(v) for v in value]
    return value


def snapshots() -> list[MonitorSnapshot]:
    found = [s for s in map(decode, RECORDS) if isinstance(s, MonitorSnapshot)]
    assert len(found) == len(RECORDS)
    return found


def test_the_fixture_covers_every_kind_of_monitor():
    assert [s.monitor_id for s in snapshots()] == list(DECODED)
    assert {DECODED[m]["status"] for m in DECODED} == {"up", "down", "running", "paused", "new", "late"}
    assert any(DECODED[m]["extra"] for m in DECODED) and any(DECODED[m]["last_checkin"] for m in DECODED)


def test_snapshots_written_before_the_layout_had_a_version_are_version_1():
    assert {s.state_v for s in snapshots()} == {1}


def test_this_code_writes_version_2_the_layout_with_unknown():
    # 2 added the status ``unknown`` (an ingest incident): a version-1 reader must refuse it.
    assert STATE_VERSION == 2
    state = decode_state(snapshots()[0])
    state.status = "unknown"
    again = msgspec.structs.replace(snapshots()[0], state=encode_state(state), state_v=STATE_VERSION)
    assert decode_state(again).status == "unknown"


def as_old(value, old):
    """``value`` cut to the fields the old code knew (``old``'s keys); what was added since
    must hold its default, checked by the caller through the struct."""
    if isinstance(old, dict) and isinstance(value, dict):
        return {k: as_old(value[k], old[k]) for k in old}
    return value


@pytest.mark.parametrize("n", range(len(RECORDS)))
def test_an_old_snapshot_decodes_field_for_field_as_the_old_code_read_it(n):
    snapshot = snapshots()[n]
    state = decode_state(snapshot)
    assert as_old(named(state), DECODED[snapshot.monitor_id]) == DECODED[snapshot.monitor_id]
    if state.extra is not None:  # the fields holds added (version 2) take their defaults
        assert (state.extra.held, state.extra.flips, state.extra.flapping_since, state.extra.missed) == (
            None,
            (),
            None,
            0,
        )


@pytest.mark.parametrize("n", range(len(RECORDS)))
def test_what_loads_is_written_back_whole(n):
    # Written back in layout 2 (the trailing fields it added, at their defaults), it reads the same.
    snapshot = snapshots()[n]
    state = decode_state(snapshot)
    again = msgspec.structs.replace(snapshot, state=encode_state(state), state_v=STATE_VERSION)
    assert decode_state(again) == state
    assert bytes(encode_state(state)).startswith(bytes(snapshot.state)[:40])


def test_a_snapshot_from_before_the_later_fields_still_loads():
    for snapshot in snapshots():
        fields = msgspec.json.decode(snapshot.state)
        for cut in ("status_since_ms", "extra", "last_checkin"):  # what earlier versions wrote
            old = msgspec.structs.replace(snapshot, state=msgspec.Raw(msgspec.json.encode(
                fields[: MonitorState.__struct_fields__.index(cut)])))  # fmt: skip
            state = decode_state(old)
            assert (state.status, state.deadline_ms) == (fields[9], fields[11])
            assert state.last_checkin is None


def test_the_status_view_reads_old_snapshots():
    shown = {s.monitor_id: status_of(decode_state(s)) for s in snapshots()}
    assert (shown["hb_down"].status, shown["hb_down"].since_ms) == ("down", 130_000)
    assert shown["hb_late"].next_expected_ms == 60_000
    assert shown["hb_new"].since_ms is None and shown["hb_paused"].next_expected_ms is None


def test_the_evaluator_restores_old_snapshots_and_goes_on():
    ev = PartitionEvaluator(0, lateness_ms=1000)
    for snapshot in snapshots():
        state = decode_state(snapshot)
        state.applied_offset = snapshot.offset
        ev.restore(state)
    outputs = ev.advance(10 * 3_600_000)
    assert {o.monitor_id for o in outputs} >= {"hb_up", "hb_late", "hb_running", "hb_failed"}
    assert ev.monitors["hb_up"].status == "down"


def test_a_layout_this_reader_does_not_know_is_refused_not_misread():
    newer = msgspec.structs.replace(snapshots()[0], state_v=STATE_VERSION + 1)
    with pytest.raises(UnreadableSnapshot, match="newer"):
        decode_state(newer)
    with pytest.raises(UnreadableSnapshot):
        decode_state(msgspec.structs.replace(newer, state_v=1, state=msgspec.Raw(b'{"not": "a state"}')))


# The partition's own record (``PartitionSnapshot``): what belongs to no one monitor.


def test_a_partition_s_outages_are_written_and_read_back_whole():
    state = PartitionState(outages=((50_000, 100_000), (200_000, 260_000)))
    snapshot = decode(encode(PartitionSnapshot(partition=3, offset=7, state=encode_partition_state(state),
                                               state_v=PARTITION_STATE_VERSION)))  # fmt: skip
    assert isinstance(snapshot, PartitionSnapshot) and decode_partition_state(snapshot) == state
    assert msgspec.json.decode(snapshot.state) == {"outages": [[50_000, 100_000], [200_000, 260_000]]}


def test_a_partition_state_without_a_field_takes_its_default_and_unknown_fields_are_ignored():
    snapshot = PartitionSnapshot(partition=0, offset=0, state=msgspec.Raw(b'{"later": 1}'))
    assert decode_partition_state(snapshot) == PartitionState(outages=())


def test_a_partition_layout_this_reader_does_not_know_is_refused_not_misread():
    newer = PartitionSnapshot(
        partition=0, offset=0, state=msgspec.Raw(b"{}"), state_v=PARTITION_STATE_VERSION + 1
    )
    with pytest.raises(UnreadableSnapshot, match="newer"):
        decode_partition_state(newer)
    with pytest.raises(UnreadableSnapshot):
        decode_partition_state(msgspec.structs.replace(newer, state_v=1, state=msgspec.Raw(b"[1, 2]")))


def test_the_evaluator_restores_a_partition_s_outages_as_it_saw_them():
    seen = PartitionEvaluator(0, outage_gap_ms=30_000)
    seen.advance(50_000)
    seen.advance(100_000)
    own = seen.partition_changed()
    assert own is not None and own.outages == ((50_000, 100_000),)
    seen.saved([], own)
    assert seen.partition_changed() is None  # written once, until the next outage

    restored = PartitionEvaluator(0, outage_gap_ms=30_000)
    restored.restore_partition(own)
    assert restored.outages == [(50_000, 100_000)] and restored.partition_changed() is None
    restored.last_tick_ms = 50_000  # replayed from before the snapshot: the same outage, not a second one
    restored.advance(100_000)
    assert restored.outages == [(50_000, 100_000)]
