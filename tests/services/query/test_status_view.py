"""The query service's view of the evaluator's snapshots, on a real embedded bus.

Snapshots are written the way the evaluator writes them (its StateStore, from a real
PartitionEvaluator), so a change to the evaluator's encoding shows up here.
"""

from __future__ import annotations

import struct

import msgspec
import pytest_asyncio
from structlog.testing import capture_logs

from services.evaluator.logic import PartitionEvaluator
from services.evaluator.store import StateStore
from services.query.status_view import CurrentStatus, StatusView, shown_status, shown_status_name
from shared.bus.local import LocalBus
from shared.events import MonitorConfig, MonitorSnapshot, Ping, StatusRelayed, decode, encode
from shared.rules import BASELINE_MIN_RUNS
from shared.snapshots import DURATION_FORMAT, STATE_VERSION, Extra, Fleet, MonitorState, encode_state
from shared.topics import Topics

TOPICS = Topics()
S = 1000


def config(monitor_id="hb_a", revision=1, paused=False, at=0) -> MonitorConfig:
    return MonitorConfig(id=monitor_id, project_id="p", name="backup", token="t" * 32, interval_s=60, grace_s=10,
                         paused=paused, created_ms=0, updated_ms=at, revision=revision)  # fmt: skip


def ping(at_ms: int, monitor_id="hb_a") -> Ping:
    return Ping(id=f"p{at_ms}", monitor_id=monitor_id, project_id="p", received_ms=at_ms, kind="success")


@pytest_asyncio.fixture
async def bus(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(1))
    yield bus
    await bus.close()


@pytest_asyncio.fixture
async def view(bus):
    view = StatusView(bus, TOPICS, poll_timeout_ms=50)
    await view.start()
    yield view
    await view.close()


class Evaluator:
    """A partition's evaluator whose snapshots go to the bus as the real adapter writes them."""

    def __init__(self, bus):
        self.ev = PartitionEvaluator(0)
        self.store = StateStore(bus, TOPICS)
        self.offset = 0

    async def run(self, *events) -> None:
        for event in events:
            self.offset += 1
            if isinstance(event, MonitorConfig):
                self.ev.apply_config(event)
            elif isinstance(event, Ping):
                self.ev.apply_ping(event, self.offset)
            else:
                self.ev.advance(event)
        await self.store.save(self.ev, self.offset)


async def test_it_shows_what_the_evaluator_knows_of_a_monitor(bus, view):
    await Evaluator(bus).run(config(), ping(5 * S), 66 * S)
    assert await view.sync()
    assert view.get("hb_a") == CurrentStatus(
        status="late", since_ms=65 * S, reason="no ping within the interval; in grace period",
        last_ping_ms=5 * S, next_expected_ms=65 * S,
    )  # fmt: skip


async def test_it_follows_later_snapshots(bus, view):
    evaluator = Evaluator(bus)
    await evaluator.run(config(), ping(5 * S))
    assert await view.sync()
    assert view.get("hb_a").status == "up"
    await evaluator.run(ping(50 * S), 200 * S)
    assert await view.sync()
    current = view.get("hb_a")
    assert (current.status, current.since_ms, current.last_ping_ms) == ("down", 120 * S, 50 * S)
    assert current.reason.startswith("1 consecutive problem(s)")


async def test_a_new_view_reads_every_snapshot_already_written(bus):
    await Evaluator(bus).run(config(), config("hb_b"), ping(5 * S))
    view = StatusView(bus, TOPICS, poll_timeout_ms=50)
    await view.start()
    try:
        assert (view.get("hb_a").status, view.get("hb_b")) == ("up", None)  # hb_b: new, never snapshotted
        assert len(view) == 1
    finally:
        await view.close()


async def test_a_new_monitor_has_no_deadline_to_show(bus, view):
    evaluator = Evaluator(bus)
    await evaluator.run(config(), ping(5 * S), config(revision=2, paused=True, at=6 * S))
    assert await view.sync()
    assert view.get("hb_a") == CurrentStatus("paused", 6 * S, "paused", 5 * S, None)


async def test_it_reads_a_snapshot_written_before_status_since_existed(bus, view):
    ev = PartitionEvaluator(0)
    ev.apply_config(config())
    ev.apply_ping(ping(5 * S), 1)
    fields = msgspec.json.decode(msgspec.json.encode(ev.monitors["hb_a"]))
    old_state = msgspec.json.encode(
        fields[: MonitorState.__struct_fields__.index("status_since_ms")]
    )  # before them
    snapshot = MonitorSnapshot(monitor_id="hb_a", partition=0, offset=1, state=msgspec.Raw(old_state))
    await bus.publish(TOPICS.evaluator_state, "hb_a", encode(snapshot))
    assert await view.sync()
    assert view.get("hb_a") == CurrentStatus("up", None, None, 5 * S, 65 * S)


async def test_an_unreadable_snapshot_keeps_the_last_good_one(bus, view):
    await Evaluator(bus).run(config(), ping(5 * S))
    broken = MonitorSnapshot(
        monitor_id="hb_a", partition=0, offset=9, state=msgspec.Raw(b'{"not": "a state"}')
    )
    await bus.publish(TOPICS.evaluator_state, "hb_a", encode(broken))
    await bus.publish(TOPICS.evaluator_state, "hb_a", b"\x00not an event")
    assert await view.sync()
    assert view.get("hb_a").status == "up"


async def test_the_evaluators_records_of_heartbeats_down_are_passed_over_quietly(bus, view):
    evaluator = Evaluator(bus)
    await evaluator.run(config(), ping(5 * S))
    evaluator.ev.apply_relay(
        StatusRelayed(monitor_id="hb_a", project_id="p", name="backup", down=True, at_ms=9 * S)
    )
    with capture_logs() as logs:
        await evaluator.store.save(evaluator.ev, evaluator.offset)
        assert await view.sync()
    assert [key for key, _ in await _keys(bus)][-1] == "down:hb_a"  # it was written, and read past
    assert logs == [] and view.get("hb_a").status == "up" and len(view) == 1


async def _keys(bus) -> list[tuple[str, int]]:
    reader = bus.reader([(TOPICS.evaluator_state, 0)])
    await reader.start()
    try:
        records = []
        while not await reader.caught_up():
            records += await reader.poll(timeout_ms=100)
        return [(r.key, r.offset) for r in records]
    finally:
        await reader.close()


async def test_a_snapshot_of_a_newer_layout_is_logged_and_the_last_one_stays(bus, view):
    await Evaluator(bus).run(config(), ping(5 * S))
    assert await view.sync()
    [record] = await bus.read((TOPICS.evaluator_state, 0), 0, 10)
    written = decode(record.value)
    assert (
        isinstance(written, MonitorSnapshot) and written.state_v == STATE_VERSION
    )  # the store says its layout
    newer = msgspec.structs.replace(
        written, state_v=STATE_VERSION + 1, state=msgspec.Raw(b'{"status": "down"}')
    )
    with capture_logs() as logs:
        await bus.publish(TOPICS.evaluator_state, "hb_a", encode(newer))
        assert await view.sync()
    assert view.get("hb_a").status == "up"
    assert [e["event"] for e in logs] == ["query.status_view.unreadable"]


async def test_listeners_hear_of_changes_but_not_of_snapshots_that_changed_nothing_shown(bus, view):
    heard = []
    view.listen(
        lambda monitor_id, before, after: heard.append((monitor_id, before and before.status, after.status))
    )
    evaluator = Evaluator(bus)
    await evaluator.run(config(), ping(5 * S))
    await evaluator.run(config(revision=2, at=7 * S))  # a rename: snapshot again, nothing shown moved
    await evaluator.run(ping(10 * S))
    assert await view.sync()
    assert heard == [("hb_a", None, "up"), ("hb_a", "up", "up")]  # the second: a new last check-in


async def test_a_forgotten_monitor_is_gone(bus, view):
    await Evaluator(bus).run(config(), ping(5 * S))
    assert await view.sync()
    view.forget("hb_a")
    assert view.get("hb_a") is None


# what the API shows ---------------------------------------------------------------
UP = CurrentStatus("up", 5 * S, "ping received", 5 * S, 65 * S)
PAUSED = CurrentStatus("paused", 6 * S, "paused", 5 * S, None)


def test_a_monitor_the_evaluator_has_not_seen_is_new():
    assert shown_status(config(), None) == ("new", None, None)


def test_the_evaluator_status_shows_as_it_is():
    assert shown_status(config(), UP) == ("up", 5 * S, "ping received")


def test_a_pause_shows_before_the_evaluator_applies_it():
    assert shown_status(config(paused=True, at=9 * S), UP) == ("paused", 9 * S, "paused")
    assert shown_status(config(paused=True, at=9 * S), PAUSED) == ("paused", 6 * S, "paused")


def test_a_resume_shows_before_the_evaluator_applies_it():
    assert shown_status(config(at=9 * S), PAUSED) == ("up", 9 * S, "resumed")
    never_pinged = msgspec.structs.replace(PAUSED, last_ping_ms=None)
    assert shown_status(config(at=9 * S), never_pinged) == ("new", 9 * S, "resumed")


async def test_a_failing_listener_neither_stops_the_view_nor_the_other_listeners(bus, view):
    def broken(*change):
        raise RuntimeError("listener bug")

    heard = []
    view.listen(broken)
    view.listen(lambda monitor_id, before, after: heard.append(after.status))
    evaluator = Evaluator(bus)
    with capture_logs() as logs:
        await evaluator.run(config(), ping(5 * S))
        assert await view.sync()
        await evaluator.run(config(revision=2, paused=True, at=6 * S))
        assert await view.sync()
    assert heard == ["up", "paused"] and view.get("hb_a").status == "paused"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["query.view.listener_failed"] * 2


def test_the_status_name_alone_agrees_with_the_whole_shown_status():
    # The catalog sorts by shown_status_name (it keeps no config); pages show shown_status.
    currents = [None] + [CurrentStatus(s, 1, "r", last, 2) for s in ("up", "down", "late", "new", "paused", "running")
                         for last in (None, 5)]  # fmt: skip
    for paused in (False, True):
        for current in currents:
            assert shown_status_name(paused, current) == shown_status(config(paused=paused), current).status


async def test_it_shows_the_ingest_incidents_a_partition_has_open_until_it_closes(bus, view):
    from services.evaluator.logic.ingest import WatchRule

    evaluator = Evaluator(bus)
    evaluator.ev = PartitionEvaluator(0, watch=WatchRule(window_ms=60 * S, min_overdue=5))
    fleet = [f"hb_{n}" for n in range(20)]
    await evaluator.run(*(config(m) for m in fleet))

    async def minutes(start_s, end_s, pinging):
        for t in range(start_s, end_s):  # hb_n checks in at second n of every minute
            pings = [ping(t * S, fleet[t % 60])] if pinging and t % 60 < len(fleet) else []
            await evaluator.run(*pings, t * S)

    await minutes(0, 180, pinging=True)
    await minutes(180, 300, pinging=False)  # every ping stops
    assert await view.sync()
    [(partition, incident)] = view.ingest_incidents()
    assert (partition, incident.scope, incident.number, incident.overdue) == (0, "", 1, 20)
    await minutes(300, 420, pinging=True)
    assert await view.sync()
    assert view.ingest_incidents() == []


# what the rules learned -----------------------------------------------------------
async def snapshot_with(bus, monitor_id: str, extra: Extra | None) -> None:
    state = MonitorState(monitor_id=monitor_id, project_id="p", name="n", interval_ms=60 * S, grace_ms=0,
                         max_problems=1, channels=(), tags=(), revision=1, status="up", extra=extra)  # fmt: skip
    snapshot = MonitorSnapshot(monitor_id=monitor_id, partition=0, offset=1, state=encode_state(state),
                               state_v=STATE_VERSION)  # fmt: skip
    await bus.publish(TOPICS.evaluator_state, monitor_id, encode(snapshot))


async def test_a_heartbeat_using_none_of_the_rules_keeps_nothing_beside_its_status(bus, view):
    await Evaluator(bus).run(config(), ping(5 * S))
    await snapshot_with(bus, "hb_b", Extra(streak=1))  # an extra, but nothing a rule learned
    assert await view.sync()
    assert view.get("hb_a") is not None and view.get("hb_b") is not None
    assert (view.rules("hb_a"), view.rules("hb_b")) == (None, None)
    assert CurrentStatus.__struct_fields__ == (  # rule data lives apart: a plain heartbeat costs what it did
        "status", "since_ms", "reason", "last_ping_ms", "next_expected_ms", "flapping_since", "held",
    )  # fmt: skip


async def test_it_keeps_a_fleet_sorted_by_name_with_its_figures_as_last_judged(bus, view):
    fleet = Fleet(seen={"web-2": 9 * S, "db-1": 0, "web-1": 7 * S}, judged_ms=8 * S, members=3, required=3,
                  opened_ms=2 * S, reported=2, away=1)  # fmt: skip
    await snapshot_with(bus, "hb_a", Extra(fleet=fleet))
    assert await view.sync()
    kept = view.rules("hb_a").fleet
    assert (kept.names, list(kept.last_ms)) == (("db-1", "web-1", "web-2"), [0, 7 * S, 9 * S])
    assert (kept.judged_ms, kept.members, kept.required, kept.reported, kept.missing, kept.missing_first) == (
        8 * S, 3, 3, 2, frozenset({"db-1"}), ("db-1",),
    )  # fmt: skip


async def test_it_keeps_the_usual_run_time_only_once_enough_runs_were_measured(bus, view):
    durations = [30 * S + n * 100 for n in range(BASELINE_MIN_RUNS)]
    await snapshot_with(
        bus, "hb_a", Extra(durations=b"".join(struct.pack(DURATION_FORMAT, d) for d in durations[:-1]))
    )
    assert await view.sync()
    assert view.rules("hb_a").usual is None
    await snapshot_with(
        bus, "hb_a", Extra(durations=b"".join(struct.pack(DURATION_FORMAT, d) for d in durations))
    )
    assert await view.sync()
    median, low, high, runs = view.rules("hb_a").usual
    assert (median, runs) == (30_450.0, BASELINE_MIN_RUNS) and low < median < high


async def test_the_outcomes_are_kept_and_dropped_with_the_rule_and_with_the_monitor(bus, view):
    await snapshot_with(bus, "hb_a", Extra(outcomes=(-5 * S, 6 * S)))
    await snapshot_with(bus, "hb_b", Extra(outcomes=(7 * S,)))
    assert await view.sync()
    assert list(view.rules("hb_a").outcomes) == [-5 * S, 6 * S]
    await snapshot_with(bus, "hb_a", None)  # the rule turned off: the evaluator dropped them
    assert await view.sync()
    assert view.rules("hb_a") is None
    view.forget("hb_b")
    assert view.rules("hb_b") is None
