"""The evaluator's state machine, tested without any I/O: events in, outputs out."""

import msgspec
import pytest

from services.evaluator.logic import PartitionEvaluator
from shared.events import Alert, Missed, MonitorConfig, Ping, StatusChanged
from shared.snapshots import SHARED_REASONS, MonitorState

S = 1000  # ms


def config(revision=1, paused=False, deleted=False, interval_s=60, grace_s=10, misses=1, at=0):
    return MonitorConfig(
        id="m1",
        project_id="p1",
        name="backup",
        token="t",
        interval_s=interval_s,
        grace_s=grace_s,
        max_consecutive_misses=misses,
        channels=["c1"],
        paused=paused,
        deleted=deleted,
        created_ms=0,
        updated_ms=at,
        revision=revision,
    )


def ping(at_ms, kind="success", exit_code=None):
    return Ping(
        id=f"p{at_ms}", monitor_id="m1", project_id="p1", received_ms=at_ms, kind=kind, exit_code=exit_code
    )


class Run:
    """Feeds events to one evaluator and keeps every output."""

    def __init__(self, lateness_ms=1 * S, **cfg):
        self.ev = PartitionEvaluator(0, lateness_ms=lateness_ms)
        self.offset = 0
        self.outputs = list(self.ev.apply_config(config(**cfg)))

    def ping(self, at_ms, kind="success", exit_code=None):
        self.offset += 1
        self.outputs += self.ev.apply_ping(ping(at_ms, kind, exit_code), self.offset)
        return self

    def tick(self, at_ms):
        self.offset += 1
        self.outputs += self.ev.advance(at_ms)
        return self

    def ticks(self, start_ms, end_ms, step_ms=S):
        for t in range(start_ms, end_ms + 1, step_ms):
            self.tick(t)
        return self

    def config(self, **cfg):
        self.outputs += self.ev.apply_config(config(**cfg))
        return self

    @property
    def alerts(self):
        return [(o.kind, o.at_ms) for o in self.outputs if isinstance(o, Alert)]

    @property
    def misses(self):
        return [o.deadline_ms for o in self.outputs if isinstance(o, Missed)]

    @property
    def statuses(self):
        return [o.status for o in self.outputs if isinstance(o, StatusChanged)]

    @property
    def status(self):
        return self.ev.monitors["m1"].status


# Each scenario: (name, steps, expected alerts as (kind, at_ms), expected final status)
SCENARIOS = [
    ("a new monitor never alerts", lambda r: r.ticks(0, 600 * S, 10 * S), [], "new"),
    (
        "pings on time never alert",
        lambda r: [r.ping(t * S).tick(t * S + 30 * S) for t in range(0, 600, 60)],
        [],
        "up",
    ),
    (
        "one miss alerts down at the deadline",
        lambda r: r.ping(0).ticks(1 * S, 80 * S),
        [("down", 70 * S)],
        "down",
    ),
    ("within grace it is only late", lambda r: r.ping(0).ticks(1 * S, 69 * S), [], "late"),
    ("lateness holds the miss back", lambda r: r.ping(0).tick(70 * S + 999), [], "late"),
    (
        "a success after down alerts up once",
        lambda r: r.ping(0).ticks(1 * S, 100 * S).ping(101 * S).ping(102 * S),
        [("down", 70 * S), ("up", 101 * S)],
        "up",
    ),
    (
        "/fail alerts at once when the limit is one",
        lambda r: r.ping(0).ping(5 * S, "fail", 1),
        [("down", 5 * S)],
        "down",
    ),
    (
        "repeated failures alert only once",
        lambda r: r.ping(0, "fail").ping(1 * S, "fail").ping(2 * S, "fail"),
        [("down", 0)],
        "down",
    ),
]


@pytest.mark.parametrize("name, steps, alerts, status", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenarios(name, steps, alerts, status):
    run = Run()
    steps(run)
    assert run.alerts == alerts
    assert run.status == status


def test_it_alerts_once_after_three_misses():
    run = Run(misses=3).ping(0).ticks(1 * S, 300 * S)
    # deadlines: 70s, then one interval on each time (no drift): 130s, 190s
    assert run.misses[:3] == [70 * S, 130 * S, 190 * S]
    assert run.alerts == [("down", 190 * S)]
    assert run.status == "down"


def test_a_failure_counts_as_a_problem_and_proves_the_job_ran():
    run = Run(misses=2).ping(0).ping(50 * S, "fail", 3)
    assert run.alerts == []
    # the failure moved the deadline: 50 + 60 + 10 = 120s; a miss there is the second problem
    run.ticks(51 * S, 119 * S)
    assert run.alerts == []
    run.ticks(120 * S, 122 * S)
    assert run.alerts == [("down", 120 * S)]
    [down, *_] = [o for o in run.outputs if isinstance(o, Alert)]
    assert "2 consecutive problem" in down.reason


def test_a_success_resets_the_count_of_problems():
    run = Run(misses=2).ping(0).ticks(1 * S, 72 * S)  # one miss at 70s
    run.ping(75 * S).ticks(76 * S, 146 * S)  # one more miss at 145s: count restarted
    assert len(run.misses) == 2
    assert run.alerts == []


def test_paused_monitors_never_miss_and_pings_to_them_change_nothing():
    run = Run().ping(0).config(revision=2, paused=True, at=1 * S)
    run.ticks(2 * S, 1000 * S, 10 * S).ping(1001 * S)
    assert run.misses == [] and run.alerts == []
    assert run.status == "paused"


def test_resume_starts_a_fresh_window_from_the_resume():
    run = Run().ping(0).config(revision=2, paused=True, at=1 * S)
    run.ticks(2 * S, 500 * S, 10 * S).config(revision=3, paused=False, at=500 * S)
    run.ticks(501 * S, 569 * S)
    assert run.alerts == []
    run.ticks(570 * S, 572 * S)
    assert run.alerts == [("down", 570 * S)]


def test_a_lagging_clock_raises_no_false_miss():
    # Pings were on time; the evaluator merely reads them late. Event time decides.
    run = Run()
    for t in range(0, 600, 60):
        run.ping(t * S)
    run.tick(590 * S)
    assert run.misses == [] and run.alerts == []


def test_a_replayed_ping_is_ignored():
    run = Run(misses=2).ping(0)
    run.ticks(1 * S, 72 * S)
    assert run.ev.monitors["m1"].problems == 1
    run.outputs += run.ev.apply_ping(ping(0), offset=1)  # same offset as the first ping
    assert run.ev.monitors["m1"].problems == 1


def test_alert_ids_are_deterministic_per_incident():
    run = Run().ping(0).ticks(1 * S, 80 * S).ping(90 * S).ticks(91 * S, 170 * S)
    ids = [o.id for o in run.outputs if isinstance(o, Alert)]
    assert ids == ["m1:1:down", "m1:1:up", "m1:2:down"]


def test_stale_configuration_is_ignored():
    run = Run().config(revision=3, interval_s=10).config(revision=2, interval_s=1000)
    assert run.ev.monitors["m1"].interval_ms == 10 * S


def test_a_shorter_interval_moves_the_deadline():
    run = Run().ping(0).config(revision=2, interval_s=10, grace_s=0).ticks(1 * S, 12 * S)
    assert run.alerts == [("down", 10 * S)]


def test_deleting_a_monitor_forgets_it():
    run = Run().ping(0).config(revision=2, deleted=True).ticks(1 * S, 200 * S)
    assert "m1" not in run.ev.monitors and run.alerts == []


def test_a_tick_with_nothing_due_does_no_work():
    ev = PartitionEvaluator(0)
    for i in range(1000):
        cfg = config()
        cfg.id = f"m{i}"
        ev.apply_config(cfg)
        ev.apply_ping(Ping(id=str(i), monitor_id=f"m{i}", project_id="p1", received_ms=0, kind="success"), i)
    assert ev.advance(10 * S) == []
    assert ev.due_count() == 0
    assert len(ev.advance(60 * S)) == 1000  # every monitor turns late at once


# status since / reason (kept on the state for the query service's status view) -------
def state(run):
    return run.ev.monitors["m1"]


def test_a_new_monitor_has_no_status_since():
    run = Run()
    assert (state(run).status_since_ms, state(run).status_reason) == (None, None)


def test_the_first_ping_sets_status_since_to_its_time():
    run = Run().ping(5 * S)
    assert (state(run).status, state(run).status_since_ms, state(run).status_reason) == (
        "up",
        5 * S,
        "ping received",
    )


def test_status_since_stays_while_the_status_stays():
    run = Run().ping(5 * S).ping(60 * S).ping(120 * S)
    assert state(run).status_since_ms == 5 * S
    assert state(run).last_ping_ms == 120 * S


def test_going_late_then_down_records_when_and_why():
    run = Run(misses=2).ping(0).ticks(1 * S, 62 * S)
    assert (state(run).status, state(run).status_since_ms) == ("late", 60 * S)
    assert state(run).status_reason == "no ping within the interval; in grace period"
    run.ticks(63 * S, 140 * S)  # misses at 70s and 130s
    assert (state(run).status, state(run).status_since_ms) == ("down", 130 * S)
    assert state(run).status_reason.startswith("2 consecutive problem(s)")
    assert "no ping by" in state(run).status_reason


def test_the_reason_of_the_last_status_change_matches_its_event():
    run = Run().ping(0).ping(5 * S, "fail", 2)
    change = [o for o in run.outputs if isinstance(o, StatusChanged)][-1]
    assert (state(run).status_since_ms, state(run).status_reason) == (change.at_ms, change.reason)
    assert "exit code 2" in state(run).status_reason


def test_pausing_and_resuming_date_the_status_at_the_config_change():
    run = Run().ping(0).config(revision=2, paused=True, at=7 * S)
    assert (state(run).status, state(run).status_since_ms, state(run).status_reason) == (
        "paused",
        7 * S,
        "paused",
    )
    run.config(revision=3, paused=False, at=9 * S)
    assert (state(run).status, state(run).status_since_ms, state(run).status_reason) == (
        "up",
        9 * S,
        "resumed",
    )


def test_every_reason_but_going_down_is_one_shared_object():
    run = Run(misses=2).ping(0).ticks(1 * S, 62 * S).ticks(63 * S, 140 * S).ping(141 * S)
    run.config(revision=2, paused=True, at=150 * S).config(revision=3, paused=False, at=160 * S)
    reasons = {o.reason for o in run.outputs if isinstance(o, StatusChanged) and o.status != "down"}
    assert reasons and all(SHARED_REASONS.get(r) is r for r in reasons)


def test_a_snapshot_from_before_status_since_existed_still_restores():
    old_fields = MonitorState.__struct_fields__[: MonitorState.__struct_fields__.index("status_since_ms")]
    current = Run(misses=3).ping(0).ticks(1 * S, 72 * S)
    encoded = msgspec.json.encode(state(current))
    old = msgspec.json.encode(
        msgspec.json.decode(encoded)[: len(old_fields)]
    )  # the array an older version wrote

    restored = msgspec.json.decode(old, type=MonitorState)
    ev = PartitionEvaluator(0)
    ev.restore(restored)
    assert (restored.status, restored.problems, restored.deadline_ms) == ("late", 1, 130 * S)
    assert (restored.status_since_ms, restored.status_reason) == (None, None)
    assert ev.advance(131 * S) and restored.status == "late"  # and it goes on evaluating


def test_a_restored_reason_is_the_shared_object_again():
    run = Run().ping(0)
    restored = msgspec.json.decode(msgspec.json.encode(state(run)), type=MonitorState)
    assert restored.status_reason is not SHARED_REASONS["ping received"]
    PartitionEvaluator(0).restore(restored)
    assert restored.status_reason is SHARED_REASONS["ping received"]
