"""The ingest watch (docs/semantics.md, "Ingest incidents"): when the pings of most of a
partition's (or a project's) heartbeats stop at once, Pingura holds their misses as
``unknown`` and tells its operators once, instead of paging for every heartbeat; an ordinary
miss at normal volume pages exactly as it would without the watch. Over several partitions,
each judges its own share and reports to partition 0, which tells the operators once per
incident, whichever partitions it spans."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.evaluator.logic import PartitionEvaluator
from services.evaluator.logic.ingest import WatchRule
from shared.clock import iso_ms
from shared.events import Alert, IngestReported, MonitorSnapshot, PartitionSnapshot, Ping
from shared.snapshots import (
    PARTITION_STATE_VERSION,
    STATE_VERSION,
    PartitionState,
    Reason,
    decode_partition_state,
    decode_state,
    encode_partition_state,
    encode_state,
)
from tests.services.evaluator.harness import H, M, S, config

RULE = WatchRule(window_ms=60 * S, min_overdue=20)
OFF = WatchRule(window_ms=60 * S, min_overdue=0)
OPS = ("ch_ops",)
CUT = 10 * M
"""The pings stop here (a window boundary: the fleet has pinged steadily for ten windows)."""
RESUME = CUT + 5 * M
ALL = [f"hb{i:03}" for i in range(300)]
EVEN = ALL[::2]
ODD = ALL[1::2]


class Fleet:
    """Many monitors in one partition evaluator, each checking in every interval (or
    ``every_ms``) from its first ping on while ``pinging`` says it does; a tick every step."""

    def __init__(self, lateness_ms=1 * S, partition=0, **evaluator):
        self.ev = PartitionEvaluator(partition, lateness_ms=lateness_ms, **evaluator)
        self.offset = 0
        self.outputs: list = []
        self.next_ping: dict[str, int] = {}
        self.every: dict[str, int] = {}
        self.project: dict[str, str] = {}
        self.clock_ms = 0

    def add(self, monitor_id, project_id="p1", first_ping_ms=0, every_ms=None, **fields):
        fields = {"interval_s": 60, "grace_s": 60, **fields}
        self.outputs += self.ev.apply_config(
            config(id=monitor_id, project_id=project_id, name=monitor_id, **fields)
        )
        self.next_ping[monitor_id] = first_ping_ms
        self.every[monitor_id] = every_ms or fields["interval_s"] * S
        self.project[monitor_id] = project_id
        return self

    def ping(self, monitor_id, at_ms):
        self.offset += 1
        ping = Ping(id=f"{monitor_id}-{at_ms}", monitor_id=monitor_id, project_id=self.project[monitor_id],
                    received_ms=at_ms, kind="success")  # fmt: skip
        self.outputs += self.ev.apply_ping(ping, self.offset)

    def run(self, until_ms, pinging=lambda monitor_id, at_ms: True, step_ms=S):
        """From the last tick to ``until_ms``: each step, the check-ins due in it that
        ``pinging`` lets through, in time order, then a tick at its end."""
        while self.clock_ms < until_ms:
            end = min(self.clock_ms + step_ms, until_ms)
            for at, monitor_id in sorted((at, m) for m, at in self.next_ping.items() if at <= end):
                if pinging(monitor_id, at):
                    self.ping(monitor_id, at)
                self.next_ping[monitor_id] = at + self.every[monitor_id]
            self.clock_ms = end
            self.outputs += self.ev.advance(end)
        return self

    def alerts(self, *kinds) -> list[Alert]:
        return [a for a in self.outputs if isinstance(a, Alert) and (not kinds or a.kind in kinds)]

    def status(self, monitor_id):
        return self.ev.monitors[monitor_id].status

    def statuses(self) -> dict[str, int]:
        """How many monitors are in each status now."""
        counts: dict[str, int] = {}
        for state in self.ev.monitors.values():
            counts[state.status] = counts.get(state.status, 0) + 1
        return counts


def fleet(n=300, rule=RULE, project=lambda i: "p1", **fields) -> Fleet:
    """``n`` heartbeats (every 60 s, grace 60 s unless ``fields`` say otherwise), their check-ins
    spread evenly over each minute."""
    run = Fleet(watch=rule, operator_channels=OPS)
    for i in range(n):
        run.add(f"hb{i:03}", project(i), first_ping_ms=i * 60 * S // n, **fields)
    return run


def cut(monitor_id, at_ms):
    return at_ms < CUT


def half_resume(monitor_id, at_ms):
    return at_ms < CUT or (at_ms >= RESUME and monitor_id in EVEN_SET)


EVEN_SET = set(EVEN)


def down_alerts(run: Fleet) -> list[tuple[str, int, str | None]]:
    return [(a.monitor_id, a.at_ms, a.held) for a in run.alerts("down")]


# the incident ---------------------------------------------------------------------------
def test_a_fleet_cut_off_at_once_is_held_as_unknown_and_pages_no_one():
    run = fleet().run(RESUME, cut)
    assert run.alerts("down") == []
    assert run.statuses() == {"unknown": 300}
    assert {state.status_reason for state in run.ev.monitors.values()} == {Reason.INGEST_HELD}


def test_the_operators_get_one_alert_with_the_numbers():
    run = fleet().run(RESUME, cut)
    [opened] = run.alerts("ingest_down", "ingest_up")
    assert (opened.id, opened.kind, opened.project_id, opened.monitor_id) == (
        "ingest:*:1:down",
        "ingest_down",
        "",
        "",
    )
    assert opened.channels == ["ch_ops"]
    figures = opened.ingest
    assert figures is not None and (figures.scope, figures.window_s, round(figures.usual)) == ("", 60, 300)
    # Seen before the first heartbeat's deadline (its expected check-in plus 60 s of grace).
    assert CUT < figures.since_ms == opened.at_ms < CUT + 60 * S
    assert figures.overdue >= RULE.min_overdue and figures.arrived < RULE.open_share * (
        figures.arrived + figures.overdue
    )
    assert "ingestion collapsed for Pingura" in opened.reason and "held as unknown" in opened.reason
    [incident] = run.ev.holds.watch.open.values()
    assert incident.held == 300


def test_when_half_resume_only_the_silent_half_alerts_once_after_one_more_window():
    run = fleet().run(RESUME + 10 * M, half_resume)
    [_, closed] = run.alerts("ingest_down", "ingest_up")
    assert (closed.id, closed.kind) == (
        "ingest:*:1:up",
        "ingest_up",
    ) and RESUME < closed.at_ms < RESUME + 60 * S
    assert closed.ingest is not None and closed.ingest.held == 300
    # The silent half: once each, at the end of one more window (60 s + 60 s grace) after it.
    held = f"ingest incident since {iso_ms(closed.ingest.since_ms)}"
    assert sorted(down_alerts(run)) == [(m, closed.at_ms + 120 * S, held) for m in ODD]
    assert all(a.id == f"{a.monitor_id}:1:down" for a in run.alerts("down"))
    run.run(RESUME + 40 * M, half_resume)
    assert len(run.alerts("down")) == 150 and run.alerts("up") == []
    assert run.statuses() == {"up": 150, "down": 150}
    assert {run.status(m) for m in EVEN} == {"up"}


def test_a_held_heartbeat_that_pings_before_the_recovery_says_nothing():
    run = fleet().run(RESUME + 10 * M, lambda m, at: at < CUT or at >= RESUME)
    assert run.alerts("down") == [] and run.alerts("up") == []
    assert run.statuses() == {"up": 300}
    assert [a.kind for a in run.alerts("ingest_down", "ingest_up")] == ["ingest_down", "ingest_up"]


def test_a_fleet_whose_pings_fade_after_its_last_check_in_came_due_is_still_judged():
    # 20 heartbeats, all checking in within the first 20 s of each minute: after the cut, every
    # check-in is overdue by 1:25 and nothing more comes due, while the pings of the window
    # before still fade out of the sliding count. It opens once they have, with nothing new.
    run = fleet(n=20, rule=WatchRule(window_ms=60 * S, min_overdue=5), grace_s=10)
    for i, monitor_id in enumerate(ALL[:20]):
        run.next_ping[monitor_id] = i * S
    run.run(CUT + 3 * M, cut)
    [opened] = run.alerts("ingest_down")
    assert CUT + 25 * S < opened.at_ms < CUT + 60 * S


def test_without_grace_the_first_misses_page_and_the_rest_are_held_with_one_operator_alert():
    # 300 jobs at 03:00 sharp, no grace: each miss is its first overdue check-in, so the 20th
    # opens the incident (while holding its own miss), between two ticks; the alert comes at the next.
    run = fleet(interval_s=3600, grace_s=0, schedule="0 * * * *")
    for monitor_id in ALL:
        run.next_ping[monitor_id] = 0
    run.run(3 * H + 30 * M, lambda m, at: at < 2 * H + 30 * M)
    assert len(run.alerts("down")) == RULE.min_overdue - 1
    assert run.statuses() == {"down": 19, "unknown": 281}
    [opened] = run.alerts("ingest_down")
    assert opened.ingest is not None and opened.ingest.since_ms == 3 * H < opened.at_ms <= 3 * H + 2 * S


def test_a_check_in_found_late_and_missed_by_the_same_tick_still_counts_as_overdue():
    # No grace, ticks 5 s apart: each heartbeat turns late and misses within one look at it.
    run = fleet(grace_s=0).run(RESUME, cut, step_ms=5 * S)
    [opened] = run.alerts("ingest_down")
    assert CUT < opened.at_ms < CUT + 60 * S and run.statuses()["unknown"] > 0


# what is not an incident --------------------------------------------------------------
def test_one_project_going_quiet_while_the_others_ping_is_that_projects_incident_only():
    # 150 heartbeats each in "big" and "other"; big's pings stop, and one of other's.
    def pinging(monitor_id, at_ms):
        return at_ms < CUT or (monitor_id != "hb000" and int(monitor_id[2:]) % 2 == 0)

    run = fleet(project=lambda i: "other" if i % 2 == 0 else "big").run(RESUME, pinging)
    [opened] = run.alerts("ingest_down", "ingest_up")
    assert opened.ingest is not None and (opened.project_id, opened.ingest.scope) == ("big", "big")
    assert "project big" in opened.reason
    assert {run.status(m) for m in ODD} == {"unknown"}
    # Other's silent heartbeat pages on time: last check-in at 9:00, expected 10:00, grace 1 min.
    assert down_alerts(run) == [("hb000", CUT + 60 * S, None)]


def test_one_heartbeat_going_silent_at_normal_volume_alerts_exactly_as_without_the_watch():
    def pinging(monitor_id, at_ms):
        return at_ms < CUT or monitor_id != "hb007"

    watched = fleet().run(RESUME, pinging)
    unwatched = fleet(rule=OFF).run(RESUME, pinging)
    assert down_alerts(watched) == down_alerts(unwatched) == [("hb007", CUT + 60 * S + 1400, None)]
    assert watched.alerts() == unwatched.alerts()


def test_a_cron_fleet_that_pings_at_the_top_of_the_hour_is_not_an_incident():
    # 300 jobs at minute 0 of every hour, grace 10 min, each pinging within the minute after.
    run = fleet(interval_s=3600, grace_s=600, schedule="0 * * * *")
    for i, monitor_id in enumerate(ALL):
        run.next_ping[monitor_id] = i * 200
    run.run(4 * H + 30 * M, step_ms=2 * S)
    assert run.alerts() == []
    assert run.statuses() == {"up": 300}


def test_a_cron_fleet_cut_off_between_bursts_is_held_at_the_next_one():
    run = fleet(interval_s=3600, grace_s=600, schedule="0 * * * *")
    run.run(3 * H + 30 * M, lambda m, at: at < 2 * H + 30 * M, step_ms=2 * S)
    assert run.alerts("down") == []
    # Seen at 03:05 (the jobs half their grace late), before their deadline at 03:10.
    [opened] = run.alerts("ingest_down")
    assert 3 * H + 5 * M < opened.at_ms < 3 * H + 10 * M
    assert run.statuses() == {"unknown": 300}


def test_a_small_project_never_has_an_incident():
    # "small": 10 heartbeats, all silent; "big" (290) pings on.
    run = fleet(project=lambda i: "small" if i < 10 else "big").run(
        RESUME, lambda m, at: at < CUT or m >= "hb010"
    )
    unwatched = fleet(rule=OFF, project=lambda i: "small" if i < 10 else "big")
    unwatched.run(RESUME, lambda m, at: at < CUT or m >= "hb010")
    assert run.alerts("ingest_down") == []
    assert sorted(m for m, _, _ in down_alerts(run)) == ALL[:10]
    assert down_alerts(run) == down_alerts(unwatched)


def test_a_small_partition_never_has_an_incident():
    run = fleet(n=10).run(RESUME, cut)
    unwatched = fleet(n=10, rule=OFF).run(RESUME, cut)
    assert run.alerts("ingest_down") == []
    assert len(down_alerts(run)) == 10 and run.alerts() == unwatched.alerts()


def test_with_the_watch_off_the_cut_pages_every_heartbeat():
    run = fleet(rule=OFF).run(RESUME, cut)
    assert len(run.alerts("down")) == 300 and run.alerts("ingest_down") == []


# restarts -------------------------------------------------------------------------------
def own_state(ev: PartitionEvaluator) -> PartitionState:
    """The partition's own state as its snapshot holds it (whether or not it changed lately)."""
    return ev.ingest_alerts.snapshot(ev.holds.watch.snapshot(PartitionState(downs=ev.holds.downs.snapshot())))


def restarted(run: Fleet) -> Fleet:
    """A new evaluator from the snapshots the adapter would have written (every monitor's and
    the partition's own, through their public layouts), driven on from where ``run`` stopped."""
    own, partition = own_state(run.ev), run.ev.partition
    new = Fleet(
        partition=partition, watch=RULE, operator_channels=OPS, partitions=run.ev.ingest_alerts.partitions
    )
    new.ev.restore_partition(
        decode_partition_state(
            PartitionSnapshot(
                partition=partition, offset=run.offset, clock_ms=run.ev.clock_ms,
                state=encode_partition_state(own), state_v=PARTITION_STATE_VERSION,
            )
        )
    )  # fmt: skip
    for state in run.ev.monitors.values():
        snapshot = MonitorSnapshot(
            monitor_id=state.monitor_id, partition=partition, offset=run.offset, clock_ms=run.ev.clock_ms,
            state=encode_state(state), state_v=STATE_VERSION,
        )  # fmt: skip
        new.ev.restore(decode_state(snapshot))
    new.ev.clock_ms = new.ev.last_tick_ms = new.clock_ms = run.clock_ms
    new.offset = run.offset
    new.next_ping, new.every, new.project = dict(run.next_ping), dict(run.every), dict(run.project)
    return new


def test_after_a_restart_an_open_incident_stays_open_and_the_same_alerts_come_out():
    whole = fleet().run(CUT + 3 * M, half_resume)
    resumed = restarted(whole)
    assert list(resumed.ev.holds.watch.open) == [""]
    before = len(whole.outputs)
    whole.run(RESUME + 10 * M, half_resume)
    resumed.run(RESUME + 10 * M, half_resume)
    assert resumed.alerts() == [a for a in whole.outputs[before:] if isinstance(a, Alert)]
    assert len(resumed.alerts("down")) == 150 and len(resumed.alerts("ingest_up")) == 1


def test_the_next_incident_after_a_restart_is_numbered_on():
    whole = fleet().run(RESUME + 10 * M, lambda m, at: at < CUT or at >= RESUME)
    resumed = restarted(whole)
    assert resumed.ev.holds.watch.count == 1 and resumed.ev.holds.watch.open == {}


def test_a_restart_keeps_the_learned_volume_so_a_collapse_met_cold_still_closes_on_real_volume():
    # Restarted half a minute into the cut, before the incident opened: the watch counts a whole
    # window again before it opens one, but the volume it compares the recovery with is the one
    # learned before the restart (300 pings a minute), not the silence after it.
    resumed = restarted(fleet().run(CUT + 30 * S, cut))
    kept = resumed.ev.holds.watch.kept[""]
    assert 290 <= kept.usual <= 310 and kept.windows == 10
    resumed.run(RESUME, cut)
    [incident] = resumed.ev.holds.watch.open.values()
    assert incident.usual > 200


def test_the_learned_volume_is_written_again_only_when_it_moved_by_a_tenth():
    run = fleet().run(CUT)
    run.ev.saved([], run.ev.partition_changed())
    run.run(CUT + 10 * M)  # ten more windows of the same volume
    assert run.ev.partition_changed() is None
    run.run(CUT + 20 * M, lambda m, at: m < "hb150")  # half the fleet gone for good: it learns less
    own = run.ev.partition_changed()
    assert own is not None and [v.scope for v in own.ingest_learned] == ["", "p1"]
    assert all(v.usual < 270 for v in own.ingest_learned)


# one alert per incident across partitions ---------------------------------------------
class Partitions:
    """A fleet over two partitions (hb000 and hb001 in 0, hb002 and hb003 in 1, ...: each
    has even and odd ones), driven step by step
    together, with partition 1's ingest reports carried as the adapter carries them: written into
    partition 0's log, and read there (``apply_ingest_report``) at the offset they got."""

    def __init__(self, n=300, rule=RULE, project=lambda i: "p1"):
        self.parts = [Fleet(partition=p, partitions=2, watch=rule, operator_channels=OPS) for p in (0, 1)]
        for i in range(n):
            self.parts[i // 2 % 2].add(f"hb{i:03}", project(i), first_ping_ms=i * 60 * S // n)
        self.log: list[tuple[int, IngestReported]] = []
        """The reports in partition 0's log, with their offsets."""
        self.clock_ms = 0

    def run(self, until_ms, pinging=lambda monitor_id, at_ms: True):
        while self.clock_ms < until_ms:
            self.clock_ms += S
            for part in self.parts:
                before = len(part.outputs)
                part.run(self.clock_ms, pinging)
                self.carry([o for o in part.outputs[before:] if isinstance(o, IngestReported)])
        return self

    def carry(self, reports):
        tally = self.parts[0]
        for report in reports:
            tally.offset += 1
            self.log.append((tally.offset, report))
            tally.outputs += tally.ev.apply_ingest_report(report, tally.offset)

    def alerts(self, *kinds) -> list[Alert]:
        return [a for part in self.parts for a in part.alerts(*kinds)]

    def restart(self, partition: int):
        """The evaluator of ``partition`` restarted from its snapshots; taking it over, the
        adapter writes what it has open into partition 0's log."""
        old = self.parts[partition]
        new = self.parts[partition] = restarted(old)
        new.outputs = old.outputs  # (what came out before, kept for counting)
        report = new.ev.ingest_report()
        if report is not None:
            self.carry([report])
        return self


def test_over_two_partitions_the_operators_get_one_ingest_down_and_one_ingest_up():
    run = Partitions().run(RESUME + 10 * M, half_resume)
    assert [p.ev.holds.watch.count for p in run.parts] == [1, 1]  # each judged its own share
    assert run.parts[1].alerts("ingest_down", "ingest_up") == []  # partition 1 only reports
    [opened, closed] = run.alerts("ingest_down", "ingest_up")
    assert (opened.id, opened.kind, closed.id, closed.kind) == (
        "ingest:*:1:down", "ingest_down", "ingest:*:1:up", "ingest_up"
    )  # fmt: skip
    assert opened.channels == closed.channels == ["ch_ops"] and opened.project_id == closed.project_id == ""
    assert opened.ingest is not None and closed.ingest is not None
    first = opened.ingest.in_partitions
    assert len(first) == 1 and "ingestion collapsed for Pingura (1 of 2 partitions so far)" in opened.reason
    assert closed.ingest.in_partitions == [0, 1] and "(2 of 2 partitions had collapsed)" in closed.reason
    # The figures are the partitions' summed: each learned 150 pings a minute and held its 150.
    assert (round(closed.ingest.usual), closed.ingest.held, closed.ingest.partitions) == (300, 300, 2)
    assert closed.ingest.since_ms == opened.at_ms == opened.ingest.since_ms == closed.down_since_ms
    assert "300 heartbeat(s) were held" in closed.reason
    # Holds stay per partition: the silent half alerts once each, after its own partition closed.
    downs = run.alerts("down")
    assert sorted(a.monitor_id for a in downs) == ODD and len(downs) == len(ODD)
    assert all(a.held is not None and a.held.startswith("ingest incident since") for a in downs)


def test_a_restart_of_partition_0_mid_incident_still_sends_one_down_and_one_up():
    run = Partitions().run(CUT + 3 * M, half_resume)
    assert len(run.alerts("ingest_down")) == 1 and len(run.parts[0].ev.ingest_alerts.open) == 1
    run.restart(0)
    # The reports read before the snapshot are read again (the offset committed lags it): skipped.
    assert run.log and all(run.parts[0].ev.apply_ingest_report(r, offset) == [] for offset, r in run.log)
    run.run(RESUME + 10 * M, half_resume)
    assert [a.id for a in run.alerts("ingest_down", "ingest_up")] == ["ingest:*:1:down", "ingest:*:1:up"]
    [closed] = run.alerts("ingest_up")
    assert closed.ingest is not None and (closed.ingest.in_partitions, closed.ingest.held) == ([0, 1], 300)


def test_a_restart_of_partition_1_mid_incident_reports_what_it_has_open_and_changes_nothing():
    run = Partitions().run(CUT + 3 * M, half_resume)
    run.restart(1)
    assert [(f.scope, f.held) for f in run.log[-1][1].open] == [("", 150)]  # what it has open, said again
    tallied = run.parts[0].ev.ingest_alerts.open[""]
    assert (tallied.number, sorted(f.partition for f in tallied.open)) == (1, [0, 1])
    run.run(RESUME + 10 * M, half_resume)
    assert [a.id for a in run.alerts("ingest_down", "ingest_up")] == ["ingest:*:1:down", "ingest:*:1:up"]


def test_a_partition_that_lost_its_incident_in_a_crash_says_so_and_the_incident_still_ends():
    # Partition 1 reported its incident, then stopped before its snapshot held it: restarted from
    # the one before the cut, it has nothing open, and says so. Its share ends there (with the
    # figures it last reported); the incident ends when partition 0's does: one ingest_up.
    run = Partitions().run(CUT)
    before_cut = restarted(run.parts[1])
    run.run(CUT + 2 * M, cut)
    assert {f.partition for f in run.parts[0].ev.ingest_alerts.open[""].open} == {0, 1}
    before_cut.outputs = run.parts[1].outputs
    run.parts[1] = before_cut
    run.carry([before_cut.ev.ingest_report()])
    assert {f.partition for f in run.parts[0].ev.ingest_alerts.open[""].open} == {0}
    assert run.alerts("ingest_up") == []
    run.run(RESUME + 10 * M, lambda m, at: at < CUT or at >= RESUME)
    [closed] = run.alerts("ingest_up")
    assert closed.ingest is not None and closed.ingest.in_partitions == [0, 1]
    assert [a.kind for a in run.alerts("ingest_down", "ingest_up")] == ["ingest_down", "ingest_up"]


def test_a_project_collapsing_in_both_partitions_is_one_alert_for_that_project_only():
    # "big" (the odd heartbeats, in both partitions) goes silent; "other" pings on.
    run = Partitions(project=lambda i: "big" if i % 2 else "other")
    run.run(RESUME + 10 * M, lambda m, at: at < CUT or at >= RESUME or int(m[2:]) % 2 == 0)
    [opened, closed] = run.alerts("ingest_down", "ingest_up")
    assert (opened.id, closed.id, opened.project_id) == ("ingest:big:1:down", "ingest:big:1:up", "big")
    assert "ingestion collapsed for project big (1 of 2 partitions so far)" in opened.reason
    assert closed.ingest is not None and (closed.ingest.in_partitions, closed.ingest.held) == ([0, 1], 150)


def test_a_report_read_by_another_partition_is_not_tallied_there():
    run = Partitions().run(CUT + 2 * M, cut)
    [(_, report), *_] = run.log
    assert run.parts[1].ev.apply_ingest_report(report, 10**9) == []
    assert run.parts[1].ev.ingest_alerts.open == {}


# the property ---------------------------------------------------------------------------
heartbeats = st.lists(
    st.tuples(
        st.sampled_from([30, 60, 120]),  # interval (s)
        st.sampled_from([0, 10, 60]),  # grace (s)
        st.integers(0, 119),  # first check-in (s)
        st.booleans(),  # checks in half its grace late every time (late, then up)
    ),
    min_size=30,
    max_size=50,
)
silences = st.lists(st.tuples(st.integers(0, 29), st.integers(2, 14), st.integers(1, 20)), max_size=3)
"""(heartbeat, minute it goes silent, minutes it stays silent)."""


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heartbeats, silences)
def test_with_steady_pings_the_watch_changes_no_alert(heartbeats, silences):
    def build(rule):
        run = Fleet(watch=rule, operator_channels=OPS)
        for i, (interval_s, grace_s, first_s, late) in enumerate(heartbeats):
            every = interval_s * S + (grace_s * S // 2 if late else 0)
            run.add(
                f"hb{i:03}", first_ping_ms=first_s * S, every_ms=every, interval_s=interval_s, grace_s=grace_s
            )
        return run

    quiet = {f"hb{i:03}": (start * M, (start + length) * M) for i, start, length in silences}

    def pinging(monitor_id, at_ms):
        start, end = quiet.get(monitor_id, (0, 0))
        return not start <= at_ms < end

    # A watch far touchier than the default (2 overdue check-ins are enough to judge).
    watched = build(WatchRule(window_ms=60 * S, min_overdue=2)).run(20 * M, pinging)
    unwatched = build(OFF).run(20 * M, pinging)
    assert watched.alerts() == unwatched.alerts()
    assert watched.ev.holds.watch.count == 0


def test_the_evaluator_default_watch_is_on():
    assert PartitionEvaluator(0).holds.watch.rule.min_overdue == 20
