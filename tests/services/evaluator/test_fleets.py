"""Fleets in the evaluator's pure core (docs/semantics.md, "Fleets"): one heartbeat run by many
instances, each ping naming its own. At each (fixed) deadline enough members must have reported;
fewer is a problem whose alert names the missing; no check-in at all is a miss; an instance gone
for its expiry, or removed, leaves without paging.

The heartbeats here expect a run every minute with 10 s of grace; a round of the fleet is every
instance checking in, 100 ms apart, at the top of a minute (``T0 + k * M``)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.logic import fleets
from shared.events import Alert, InstanceRemoved, Missed, MonitorSnapshot, Ping, StatusChanged
from shared.rules import FleetRule
from shared.snapshots import STATE_VERSION, decode_state, encode_state
from tests.services.evaluator.harness import M, Monitor, S

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FORTY = [f"web-{n:02d}" for n in range(1, 41)]
STOPPED = ["web-07", "web-19", "web-33"]


def window(k: int) -> int:
    """The deadline of the k-th window (the first check-in at T0 opened the first)."""
    return T0 + k * M + 10 * S


class Fleet(Monitor):
    """A heartbeat with a fleet rule, whose pings name their instance."""

    def __init__(self, rule: FleetRule, **fields):
        super().__init__(interval_s=60, grace_s=10, fleet=rule, **fields)

    def ping(self, at_ms, kind="success", instance=None, rid=None, **_):
        self.offset += 1
        ping = Ping(id=f"{instance}-{kind}-{at_ms}", monitor_id="m1", project_id="p1", received_ms=at_ms,
                    kind=kind, instance=instance, rid=rid, exit_code=1 if kind == "fail" else None)  # fmt: skip
        self.outputs += self.ev.apply_ping(ping, self.offset)
        return self

    def round(self, k: int, names, kind="success"):
        """Each of ``names`` checks in at the top of minute ``k``, 100 ms apart."""
        for n, name in enumerate(names):
            self.ping(T0 + k * M + n * 100, kind, instance=name)
        return self

    def minutes(self, rounds):
        """One round per minute from the next one on (``rounds``: the names of each), the clock
        ticking every second in between."""
        for names in rounds:
            k = self.minute = getattr(self, "minute", -1) + 1
            self.round(k, names)
            self.ticks(T0 + k * M + 5 * S, T0 + (k + 1) * M - S)
        return self

    def remove(self, instance, at_ms):
        self.offset += 1
        removed = InstanceRemoved(monitor_id="m1", project_id="p1", instance=instance, at_ms=at_ms)
        self.outputs += self.ev.apply_instance_removed(removed, self.offset)
        return self

    def restarted(self) -> Fleet:
        twin = super().restarted()
        twin.__class__ = Fleet
        return twin  # type: ignore[return-value]

    @property
    def fleet(self):
        return self.state.extra.fleet

    @property
    def downs(self):
        return [a for a in self.of(Alert) if a.kind == "down"]


def without(*names):
    return [name for name in FORTY if name not in names]


# the rule ------------------------------------------------------------------------------------
def test_a_fleet_of_40_where_3_stop_sends_one_down_alert_naming_exactly_those_3():
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([FORTY] * 3 + [without(*STOPPED)] * 4)

    [down] = hb.downs
    assert down.missing_instances == STOPPED
    assert (down.instances_reported, down.instances_expected) == (37, 40)
    assert down.at_ms == window(3)  # the first window they did not check in in
    assert (
        "only 37 of 40 instances reported by 2026-01-01T00:03:10.000Z; missing: web-07, web-19, web-33"
        in down.reason
    )
    assert hb.status == "down"
    assert hb.of(Missed) == []  # the heartbeat checked in: no window of its was missed


def test_its_figures_are_kept_for_each_window_judged():
    hb = Fleet(FleetRule(min_instances=38))
    hb.minutes([FORTY] * 3 + [without("web-02", "web-05")] * 2)

    fleet = hb.fleet
    assert (fleet.judged_ms, fleet.members, fleet.required, fleet.missing) == (
        window(4),
        40,
        38,
        ("web-02", "web-05"),
    )
    assert hb.downs == []  # 38 of 40 is enough


def test_a_short_window_is_a_problem_and_a_good_one_ends_the_problems_in_a_row():
    # Two short windows in a row page; one, then a good one, does not. The other instances'
    # successes in between do not end the problems: only a good window does.
    hb = Fleet(FleetRule(min_percent=100), max_consecutive_misses=2)
    hb.minutes([FORTY] * 2 + [without("web-01")] + [FORTY] + [without("web-01")] * 2)

    assert [a.at_ms for a in hb.downs] == [window(5)]
    assert hb.downs[0].reason.startswith("2 consecutive problem(s) (limit 2); latest: only 39 of 40")


def test_with_min_percent_a_share_of_the_members_may_be_missing():
    hb = Fleet(FleetRule(min_percent=90))  # 36 of 40
    hb.minutes([FORTY] * 2 + [without(*STOPPED)] * 3)
    assert hb.downs == []

    hb.minutes([without(*STOPPED, "web-20", "web-21")] * 2)
    [down] = hb.downs
    assert "only 35 of 40 instances reported" in down.reason and "(36 required)" in down.reason
    assert down.missing_instances == sorted([*STOPPED, "web-20", "web-21"])


def test_min_instances_and_min_percent_together_require_the_larger():
    assert fleets.required_of(FleetRule(min_instances=3, min_percent=50), 40) == 20
    assert fleets.required_of(FleetRule(min_instances=30, min_percent=50), 40) == 30
    assert fleets.required_of(FleetRule(min_percent=90), 41) == 37  # a share rounds up


def test_declared_members_that_never_checked_in_are_missing_from_the_first_window():
    hb = Fleet(FleetRule(min_percent=100, declared=("db-1", "db-2", "db-3")))
    hb.minutes([["db-1", "db-2"]] * 2)

    [down] = hb.downs
    assert down.at_ms == window(1)
    assert down.missing_instances == ["db-3"]
    assert (down.instances_reported, down.instances_expected) == (2, 3)


def test_a_whole_fleet_silent_is_a_miss_and_its_alert_lists_every_member():
    hb = Fleet(FleetRule(min_instances=1))
    hb.minutes([FORTY] * 2 + [[]] * 2)

    assert [m.deadline_ms for m in hb.of(Missed)] == [window(2), window(3)]
    [down] = hb.downs
    assert "no ping by 2026-01-01T00:02:10.000Z" in down.reason
    assert down.missing_instances == FORTY and down.instances_reported == 0


def test_the_down_alert_names_at_most_50_and_the_reason_10():
    many = [f"host-{n:03d}" for n in range(100)]
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([many] * 2 + [many[:20]] * 2)

    [down] = hb.downs
    assert down.missing_instances == many[20:70]
    assert (down.instances_reported, down.instances_expected) == (20, 100)
    assert "missing: host-020, host-021," in down.reason and "host-029 and 70 more" in down.reason
    assert hb.fleet.missing == tuple(many[20:])  # the snapshot (the API, the dashboard) has all of them


def test_a_check_in_without_an_instance_counts_for_the_heartbeat_but_for_no_instance():
    hb = Fleet(FleetRule(min_instances=2))
    for k in range(4):
        hb.ping(T0 + k * M)  # a job that does not name its host yet
        hb.ticks(T0 + k * M + 5 * S, T0 + (k + 1) * M - S)

    assert hb.of(Missed) == []  # the heartbeat did check in
    [down] = hb.downs
    assert "only 0 of 0 instances reported" in down.reason and "(?instance=NAME)" in down.reason
    assert hb.fleet.seen == {}


def test_a_new_name_beyond_the_limit_is_a_check_in_but_not_a_member(monkeypatch):
    monkeypatch.setattr(fleets, "MAX_INSTANCES", 3)
    hb = Fleet(FleetRule(min_instances=1))
    hb.minutes([["a", "b", "c", "d"]] * 2)

    assert list(hb.fleet.seen) == ["a", "b", "c"]
    assert hb.state.last_ping_ms == T0 + M + 300  # d's check-in counted for the heartbeat
    assert hb.downs == []


def test_a_failure_of_one_instance_is_a_problem_of_the_heartbeat():
    hb = Fleet(FleetRule(min_instances=2))
    hb.minutes([["a", "b"]] * 2)
    hb.ping(T0 + 2 * M, "fail", instance="a")

    [down] = hb.downs
    assert "job reported failure (exit code 1)" in down.reason
    assert down.missing_instances == []  # nobody was missing in the last window judged


# no late in a fleet ----------------------------------------------------------------------------
def test_a_fleet_is_never_late_in_its_grace_period():
    # The fixed windows pass their expected time (the top of each minute) before each round is in.
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([FORTY] * 6)
    assert hb.statuses == ["up"]
    assert hb.downs == [] and hb.of(Missed) == []


def test_starts_do_not_move_a_fleets_windows():
    hb = Fleet(FleetRule(min_instances=1))
    hb.minutes([["a"]] * 2)
    deadline = hb.state.deadline_ms
    hb.ping(T0 + 2 * M - 20 * S, "start", instance="a")
    assert hb.state.deadline_ms == deadline == window(2)


# members that leave --------------------------------------------------------------------------
def test_an_instance_silent_for_its_expiry_leaves_without_paging():
    hb = Fleet(FleetRule(min_instances=2, expiry_s=300))
    hb.minutes([["a", "b", "c"]] * 2 + [["a", "b"]] * 7)

    assert hb.downs == []  # two of three were always enough
    assert "c" not in hb.fleet.seen and hb.fleet.members == 2 and hb.fleet.missing == ()


def test_an_expired_instance_no_longer_holds_a_fleet_down():
    hb = Fleet(FleetRule(min_percent=100, expiry_s=300))
    hb.minutes([["a", "b", "c"]] * 2 + [["a", "b"]] * 7)

    down, up = hb.of(Alert)
    assert down.missing_instances == ["c"]
    assert down.at_ms == window(2)
    assert (
        up.kind == "up" and up.at_ms == T0 + 7 * M
    )  # the first check-in after the window it left in (the 6th)
    assert [a.kind for a in hb.of(Alert)] == ["down", "up"]  # its leaving paged no one


def test_declared_members_never_expire():
    hb = Fleet(FleetRule(min_instances=1, declared=("a", "b"), expiry_s=300))
    hb.minutes([["a"]] * 10)
    assert hb.fleet.seen.keys() == {"a", "b"} and hb.fleet.missing == ("b",)


def test_removing_the_missing_instance_brings_a_fleet_back_at_once():
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([FORTY] * 2 + [without("web-07")] * 2)
    assert hb.status == "down"

    hb.remove("web-07", T0 + 3 * M + 30 * S)

    up = hb.of(Alert)[-1]
    assert (up.kind, up.at_ms) == ("up", T0 + 3 * M + 30 * S)
    assert up.reason == "instance 'web-07' removed: enough instances are reporting"
    assert "web-07" not in hb.fleet.seen and hb.fleet.missing == () and hb.fleet.members == 39
    hb.minutes([without("web-07")] * 3)
    assert len(hb.downs) == 1


def test_a_removed_instance_comes_back_with_its_next_check_in():
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([["a", "b"]] * 2)
    hb.remove("b", T0 + M + 30 * S)
    assert hb.fleet.seen.keys() == {"a"}

    hb.minutes([["a", "b"]])
    assert hb.fleet.seen.keys() == {"a", "b"}


def test_a_removed_declared_instance_stays_out_until_the_rule_changes():
    hb = Fleet(FleetRule(min_percent=100, declared=("a", "b")))
    hb.minutes([["a"]] * 2)
    hb.remove("b", T0 + M + 30 * S)
    hb.minutes([["a"]] * 2)
    assert hb.fleet.seen.keys() == {"a"}
    assert [a.kind for a in hb.of(Alert)] == ["down", "up"]

    hb.reconfigure(fleet=FleetRule(min_percent=100, declared=("a", "b", "c")))
    assert hb.fleet.seen == {"a": T0 + 3 * M, "b": 0, "c": 0}


def test_removing_an_instance_of_a_fleet_that_is_still_short_does_not_bring_it_back():
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([FORTY] * 2 + [without("web-07", "web-08")] * 2)
    hb.remove("web-07", T0 + 3 * M + 30 * S)
    assert hb.status == "down" and [a.kind for a in hb.of(Alert)] == ["down"]


# recovery ------------------------------------------------------------------------------------
def test_a_fleet_comes_back_when_its_missing_instances_report_again():
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([FORTY] * 2 + [without(*STOPPED)] * 3)
    assert hb.status == "down"

    back = T0 + 5 * M
    hb.ping(back, instance="web-07").ping(back + 100, instance="web-19")
    assert hb.status == "down"  # two of the three back: still short
    hb.ping(back + 200, instance="web-33")

    up = hb.of(Alert)[-1]
    assert (up.kind, up.at_ms) == ("up", back + 200)
    assert hb.status == "up"


def test_while_short_other_instances_checking_in_do_not_bring_it_back():
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([FORTY] * 2 + [without(*STOPPED)] * 6)
    assert [a.kind for a in hb.of(Alert)] == ["down"]
    assert hb.status == "down"


def test_a_fleet_brought_back_pages_again_when_short_again():
    hb = Fleet(FleetRule(min_percent=100), max_consecutive_misses=2)
    hb.minutes([FORTY] * 2 + [without("web-01")] * 3 + [FORTY] * 2 + [without("web-02")] * 3)
    assert [a.kind for a in hb.of(Alert)] == ["down", "up", "down"]
    assert hb.downs[1].missing_instances == ["web-02"]


def test_reminders_name_who_is_missing_in_the_latest_window():
    hb = Fleet(FleetRule(min_percent=100), reminder_interval_s=120)
    hb.minutes([FORTY] * 2 + [without("web-01")] * 2 + [without("web-01", "web-02")] * 3)
    reminders = [a for a in hb.downs if a.reminder]
    assert reminders and reminders[-1].missing_instances == ["web-01", "web-02"]


# configuration ---------------------------------------------------------------------------------
def test_turning_the_fleet_rule_off_forgets_the_instances():
    hb = Fleet(FleetRule(min_instances=1))
    hb.minutes([["a", "b"]] * 2)
    hb.reconfigure(fleet=None)
    assert hb.state.extra is None or hb.state.extra.fleet is None


def test_a_member_declared_while_down_is_awaited_before_it_comes_back():
    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([["a", "b"]] * 2 + [["a"]])
    assert hb.status == "down"
    hb.reconfigure(fleet=FleetRule(min_percent=100, declared=("c",)))

    hb.ping(T0 + 3 * M, instance="b")
    assert hb.status == "down"  # c was never heard
    hb.ping(T0 + 3 * M + S, instance="c")
    assert hb.status == "up"


def test_a_declared_member_dropped_from_the_list_before_it_checked_in_leaves():
    hb = Fleet(FleetRule(min_instances=1, declared=("a", "b")))
    hb.minutes([["a"]])
    hb.reconfigure(fleet=FleetRule(min_instances=1, declared=("a",)))
    assert hb.fleet.seen.keys() == {"a"}


# determinism -----------------------------------------------------------------------------------
SCENARIO = [FORTY] * 2 + [without(*STOPPED)] * 3 + [FORTY] * 2 + [without("web-11")] * 2 + [[]] * 2 + [FORTY]


def test_replay_from_a_snapshot_taken_anywhere_gives_the_same_outputs():
    rule = FleetRule(min_percent=95, declared=("web-40", "spare"), expiry_s=240)
    whole = Fleet(rule, max_consecutive_misses=2, reminder_interval_s=120).minutes(SCENARIO)
    assert [a.kind for a in whole.of(Alert)].count("down") >= 2  # the scenario pages, comes back, pages

    for cut in range(1, len(SCENARIO)):
        hb = Fleet(rule, max_consecutive_misses=2, reminder_interval_s=120).minutes(SCENARIO[:cut])
        hb = hb.restarted().minutes(SCENARIO[cut:])
        assert hb.outputs == whole.outputs, f"restored after minute {cut}"
        assert encode_state(hb.state) == encode_state(whole.state)


def test_a_fleet_survives_its_snapshot_with_its_names_shared_again():
    hb = Fleet(FleetRule(min_instances=1)).minutes([["web-1", "web-2"]] * 2)
    snapshot = MonitorSnapshot(monitor_id="m1", partition=0, offset=hb.offset, clock_ms=hb.ev.clock_ms,
                               state=encode_state(hb.state), state_v=STATE_VERSION)  # fmt: skip
    state = decode_state(snapshot)
    assert state.extra.fleet == hb.fleet

    twin = hb.restarted()
    names = list(twin.fleet.seen)
    assert names == ["web-1", "web-2"] and names[0] is next(iter(hb.fleet.seen))  # interned, not a copy each
    assert msgspec.json.encode(twin.fleet) == msgspec.json.encode(hb.fleet)


@pytest.mark.parametrize("rule", [FleetRule(min_instances=2), FleetRule(min_percent=100, declared=("a",))])
def test_a_fleet_with_a_schedule_counts_its_instances_by_the_schedules_runs(rule):
    # Every minute by cron rather than by interval: the same windows, judged the same.
    hb = Fleet(rule, schedule="* * * * *")
    hb.minutes([["a", "b"]] * 2 + [["a"]] * 2)
    [down] = hb.downs
    assert down.missing_instances == ["b"]
    assert [c.status for c in hb.of(StatusChanged)] == ["up", "down"]


@pytest.mark.parametrize("skipper", ["web-01", "web-40"])  # the first of each round, and the last
def test_an_instance_that_skips_one_run_is_missing_from_that_window_whatever_its_phase(skipper):
    hb = Fleet(FleetRule(min_percent=100), max_consecutive_misses=3)
    hb.minutes([FORTY] * 2 + [without(skipper)] + [FORTY] * 2)
    assert hb.fleet.judged_ms == window(4) and hb.fleet.missing == ()
    assert hb.state.problems == 0

    hb = Fleet(FleetRule(min_percent=100))
    hb.minutes([FORTY] * 2 + [without(skipper)] + [FORTY])
    [down] = hb.downs
    assert (down.at_ms, down.missing_instances) == (window(2), [skipper])


# what a snapshot keeps ---------------------------------------------------------------------------
NAMES = ["web-1", "web-2", "web-3", "db-1"]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("ping"), st.sampled_from(NAMES), st.integers(0, 3 * M)),
        st.tuples(st.just("remove"), st.sampled_from(NAMES), st.just(0)),
        st.tuples(st.just("tick"), st.just(""), st.integers(1, 3 * M)),
        st.tuples(st.just("declare"), st.sampled_from([(), ("db-1",), ("db-1", "web-9")]), st.just(0)),
    ),
    max_size=40,
)


@settings(deadline=None, max_examples=200)
@given(steps)
def test_the_count_of_members_away_is_always_the_members_not_heard_since_the_window_opened(scenario):
    hb = Fleet(FleetRule(min_instances=2, expiry_s=120))
    now = T0
    for kind, what, by in scenario:
        now += by
        if kind == "ping":
            hb.ping(now - by // 2 if by % 3 == 0 else now, instance=what)  # some arrive out of order
        elif kind == "remove":
            hb.remove(what, now)
        elif kind == "tick":
            hb.tick(now)
        else:
            hb.reconfigure(fleet=FleetRule(min_instances=2, expiry_s=120, declared=what))
        fleet = hb.state.extra.fleet if hb.state.extra is not None else None
        if fleet is not None:
            assert fleet.away == sum(1 for last in fleet.seen.values() if last <= fleet.opened_ms)


def test_a_silent_fleet_of_ten_thousand_long_names_still_fits_a_kafka_record():
    # Missing members are not listed in the snapshot (each would repeat its name): a member is
    # missing when its last check-in is at or before where the last window judged opened.
    names = [f"{'worker-pool-eu-west-1-node':<40}-{n:023d}" for n in range(10_000)]
    hb = Fleet(FleetRule(min_percent=90))
    for n, name in enumerate(names):
        hb.ping(T0 + n, instance=name)
    hb.tick(window(3) + 2 * S)  # every member silent for two windows

    assert len(hb.fleet.missing) == 10_000 and hb.fleet.away == 10_000
    assert len(encode_state(hb.state)) < 900_000  # Kafka's default record limit is 1,048,588 bytes
