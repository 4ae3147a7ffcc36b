"""Flapping (more down/up changes than a heartbeat's limit within its window: one ``flapping``
alert, then none until it has been stable long enough) and the recovery message (the ``up``
alert says since when it was down and how many expected check-ins were missed)."""

from services.evaluator.logic.holds import flap_rule
from shared.events import FLAP_DEFAULTS, Alert
from tests.services.evaluator.harness import H, M, Monitor, S


def flap(hb: Monitor, start_ms: int, changes: int, step_ms: int = M) -> int:
    """``changes`` down/up changes, ``step_ms`` apart from ``start_ms`` (a failure takes it down,
    a success brings it up); returns the time of the last one."""
    at = start_ms
    for n in range(changes):
        if hb.status in ("down", "unknown"):
            hb.ping(at)
        else:
            hb.fail(at)
        at += step_ms if n < changes - 1 else 0
    return at


def kinds(hb: Monitor) -> list[str]:
    return [kind for kind, _ in hb.alerts]


def flapping_alerts(hb: Monitor) -> list[Alert]:
    return [a for a in hb.of(Alert) if a.kind == "flapping"]


# flapping -------------------------------------------------------------------------------
def test_more_changes_than_the_limit_within_the_window_send_one_flapping_alert():
    hb = Monitor().ping(0)
    flap(hb, 1 * M, 5)  # down up down up down, a minute apart
    assert hb.alerts == [("down", 1 * M), ("up", 2 * M), ("down", 3 * M), ("up", 4 * M), ("flapping", 5 * M)]
    (flapping,) = flapping_alerts(hb)
    assert flapping.id == f"m1:flapping:{5 * M}"
    assert (flapping.monitor_name, flapping.channels) == ("backup", ["c1"])
    assert "5 changes" in flapping.reason and "1800 s" in flapping.reason
    assert hb.status == "down"  # its status is true as always; only the alert is held


def test_as_many_changes_as_the_limit_are_not_flapping():
    hb = Monitor().ping(0)
    flap(hb, 1 * M, 4)
    assert kinds(hb) == ["down", "up", "down", "up"]


def test_changes_spread_wider_than_the_window_are_not_flapping():
    hb = Monitor().ping(0)
    flap(hb, 1 * M, 8, step_ms=20 * M)  # three at most within any hour
    assert kinds(hb) == ["down", "up"] * 4


def test_while_it_flaps_no_change_is_alerted_and_no_second_flapping_alert_is_sent():
    hb = Monitor().ping(0)
    last = flap(hb, 1 * M, 45)  # 45 changes two minutes apart: never stable for 30 minutes
    hb.ticks(last - 40 * M, last, 10 * S)
    assert kinds(hb) == ["down", "up", "down", "up", "flapping"]


def test_stable_down_after_flapping_sends_the_down_alert_its_people_have_not_heard():
    hb = Monitor().ping(0)
    last = flap(hb, 1 * M, 7)  # ... flapping at the 5th, down at the 7th
    hb.ticks(last, last + 29 * M, 10 * S)
    assert kinds(hb) == ["down", "up", "down", "up", "flapping"]
    hb.ticks(last + 29 * M, last + 32 * M, 1 * S)
    down = hb.of(Alert)[-1]
    assert down.kind == "down" and last + 30 * M <= down.at_ms <= last + 31 * M
    assert down.held == "flapping since 1970-01-01T00:05:00.000Z"
    assert (down.id, down.reminder) == ("m1:4:down", 0)  # the incident it is in


def test_stable_in_the_state_its_people_last_heard_sends_nothing():
    hb = Monitor().ping(0)
    last = flap(hb, 1 * M, 6)  # they heard "up" at the 4th; the 5th (down) held, the 6th (up) cancels it
    assert hb.status == "up"
    hb.ping(last + 50 * M).ticks(last, last + 100 * M, 10 * S).ping(last + 100 * M)
    assert kinds(hb) == ["down", "up", "down", "up", "flapping"]


def test_stable_up_after_flapping_sends_the_up_alert_saying_it_was_held():
    hb = Monitor(flap_changes=3).ping(0)
    last = flap(hb, 1 * M, 4)  # down up down heard; the 4th (up) makes it flap: held
    assert kinds(hb) == ["down", "up", "down", "flapping"]
    hb.ticks(last, last + 31 * M, 10 * S)
    up = hb.of(Alert)[-1]
    assert (up.kind, up.id, up.held) == ("up", "m1:2:up", "flapping since 1970-01-01T00:04:00.000Z")
    # Dated when it came up, so "down for" is how long it really was down.
    assert (up.at_ms, up.down_since_ms) == (last, 3 * M)


def test_after_flapping_ends_a_single_change_alerts_at_once():
    hb = Monitor().ping(0)
    last = flap(hb, 1 * M, 6)  # ends up, nothing held: nothing is rechecked when stable
    hb.ping(last + 40 * M).fail(last + 45 * M)
    assert hb.alerts[-1] == ("down", last + 45 * M)
    assert hb.of(Alert)[-1].held is None


def test_flapping_again_after_being_stable_sends_a_new_flapping_alert():
    hb = Monitor().ping(0)
    first = flap(hb, 1 * M, 6)
    flap(hb, first + 40 * M, 5)  # stable 40 minutes, then five changes again
    alerts = flapping_alerts(hb)
    assert [a.at_ms for a in alerts] == [5 * M, first + 44 * M]
    assert len({a.id for a in alerts}) == 2
    # The changes of the first episode were forgotten with it: the new one counts from none.
    assert kinds(hb)[5:] == ["down", "up", "down", "up", "flapping"]


def test_a_heartbeat_that_flaps_while_muted_sends_no_flapping_alert():
    hb = Monitor(muted_until_ms=1 * H).ping(0)
    flap(hb, 1 * M, 7)  # flapping from the 5th, and muted all along: nobody is paged
    assert hb.alerts == []
    hb.ticks(7 * M, 1 * H + 10 * S, 10 * S)  # the mute ends (flapping ended long before): the down goes out
    assert [(a.kind, a.held) for a in hb.of(Alert)] == [("down", "muted until 1970-01-01T01:00:00.000Z")]


def test_after_a_mute_ends_a_heartbeat_still_flapping_stays_held_until_stable():
    hb = Monitor(muted_until_ms=10 * M).ping(0)
    last = flap(hb, 1 * M, 19)  # flapping from 5 min, muted until 10 min, changing until 19 min (down)
    hb.ticks(1 * M, last + 29 * M, 10 * S)
    assert hb.alerts == []  # no flapping alert after the mute either: it began while muted
    hb.ticks(last + 29 * M, last + 31 * M, 10 * S)
    (down,) = hb.of(Alert)
    assert down.kind == "down" and down.at_ms >= last + 30 * M and down.held.startswith("flapping since")


# settings -------------------------------------------------------------------------------
def test_a_heartbeat_without_settings_flaps_by_the_defaults():
    changes, window_s, stable_s = FLAP_DEFAULTS
    hb = Monitor()
    assert flap_rule(hb.state) == (changes, window_s * 1000, stable_s * 1000)
    assert hb.state.extra is None  # and carries no rules for it


def test_its_own_settings_replace_the_defaults():
    hb = Monitor(flap_changes=2, flap_window_s=600, flap_stable_s=120).ping(0)
    last = flap(hb, 1 * M, 3, step_ms=4 * M)  # three changes within ten minutes
    assert kinds(hb) == ["down", "up", "flapping"]
    hb.ticks(last, last + 2 * M + 2 * S, 1 * S)  # stable two minutes: the held down goes out
    assert kinds(hb) == ["down", "up", "flapping", "down"]
    assert hb.of(Alert)[-1].held is not None


def test_a_shorter_window_lets_the_same_changes_through():
    hb = Monitor(flap_changes=2, flap_window_s=600).ping(0)
    flap(hb, 1 * M, 6, step_ms=6 * M)  # two at most within any ten minutes
    assert kinds(hb) == ["down", "up"] * 3


def test_settings_left_out_take_their_default():
    hb = Monitor(flap_changes=2).ping(0)
    assert flap_rule(hb.state) == (2, FLAP_DEFAULTS[1] * 1000, FLAP_DEFAULTS[2] * 1000)
    last = flap(hb, 1 * M, 3, step_ms=20 * M)  # within the default hour
    assert kinds(hb) == ["down", "up", "flapping"]
    hb.ticks(last, last + 29 * M, 10 * S)
    assert kinds(hb) == ["down", "up", "flapping"]
    hb.ticks(last + 29 * M, last + 31 * M, 10 * S)  # the default half hour stable
    assert kinds(hb) == ["down", "up", "flapping", "down"]


def test_zero_changes_means_it_never_flaps():
    hb = Monitor(flap_changes=0).ping(0)
    flap(hb, 1 * M, 20)
    assert kinds(hb) == ["down", "up"] * 10


def test_changing_the_settings_applies_to_the_next_change():
    hb = Monitor().ping(0)
    flap(hb, 1 * M, 3)
    hb.reconfigure(flap_changes=0)
    flap(hb, 4 * M, 4)
    assert kinds(hb) == ["down", "up", "down", "up", "down", "up", "down"]


# memory ---------------------------------------------------------------------------------
def test_the_changes_are_forgotten_after_the_window():
    hb = Monitor().ping(0).fail(1 * M).ping(2 * M)  # one incident: two changes remembered
    assert hb.state.extra is not None and hb.state.extra.flips == (1 * M, 2 * M)
    hb.ping(1 * H).ticks(1 * H, 2 * H + 10 * M, 10 * S).ping(2 * H)
    assert hb.state.extra is None  # a heartbeat with one incident carries nothing for it an hour later


def test_flapping_is_forgotten_once_stable():
    hb = Monitor().ping(0)
    last = flap(hb, 1 * M, 6)
    hb.ping(last + 50 * M).ticks(last, last + 100 * M, 10 * S).ping(last + 100 * M)
    assert hb.state.extra is None


def test_flapping_ends_when_stable_even_with_nothing_held():
    hb = Monitor().ping(0)
    last = flap(hb, 1 * M, 6)  # ends up, as its people last heard: nothing held, nothing to recheck
    hb.ticks(last, last + 29 * M, 10 * S)
    assert hb.state.extra.flapping_since == 5 * M
    hb.ev.dirty.clear()
    hb.ticks(last + 29 * M, last + 31 * M, 10 * S)  # before its next check-in is due (1 h 16 min)
    assert hb.state.extra is None  # its snapshot, and so the API, say it flaps no more
    assert "m1" in hb.ev.dirty


def test_while_flapping_it_keeps_only_its_latest_change():
    hb = Monitor().ping(0)
    last = flap(hb, 1 * M, 40)
    assert hb.state.extra is not None and hb.state.extra.flips == (last,)


# snapshots ------------------------------------------------------------------------------
def run_flapping(restart_after: int | None) -> Monitor:
    """Ten changes, a half-hour stable, then a few pings; restarted from a snapshot after
    ``restart_after`` changes (None: never)."""
    hb = Monitor().ping(0)
    at = 1 * M
    for n in range(10):
        if n == restart_after:
            hb = hb.restarted()
        at = flap(hb, at, 1) + M
    if restart_after == 10:
        hb = hb.restarted()
    hb.ticks(at, at + 40 * M, 10 * S)
    hb.ping(at + 41 * M).fail(at + 42 * M)
    return hb


def test_a_restart_mid_flap_gives_the_same_alerts():
    straight = run_flapping(None)
    assert kinds(straight) == ["down", "up", "down", "up", "flapping", "down"]
    for restart_after in (3, 4, 5, 7, 10):  # before it flaps, at the change that makes it, during, after
        restarted = run_flapping(restart_after)
        assert restarted.alert_ids == straight.alert_ids, restart_after
        assert [a.held for a in restarted.of(Alert)] == [a.held for a in straight.of(Alert)]


def test_a_held_up_survives_a_restart_with_what_it_will_say():
    hb = Monitor(flap_changes=1, flap_window_s=86_400, flap_stable_s=3600).ping(0)
    hb.ticks(0, 2 * H + 11 * M, 10 * S).ping(2 * H + 30 * M)  # missed twice; up held (flapping)
    hb = hb.restarted().ping(3 * H + 20 * M).ticks(2 * H + 30 * M, 3 * H + 31 * M, 10 * S)
    up = hb.of(Alert)[-1]
    assert (up.kind, up.at_ms, up.down_since_ms, up.missed_runs) == ("up", 2 * H + 30 * M, 1 * H + 10 * M, 2)
    assert up.held is not None and up.held.startswith("flapping since")


# the recovery message -------------------------------------------------------------------
def up_alert(hb: Monitor) -> Alert:
    ups = [a for a in hb.of(Alert) if a.kind == "up"]
    assert ups, hb.alerts
    return ups[-1]


def test_the_up_alert_counts_the_check_ins_missed_while_down():
    hb = Monitor().ping(0).ticks(0, 3 * H + 11 * M, 10 * S)  # expected at 1h, 2h and 3h: none came
    hb.ping(3 * H + 30 * M)
    up = up_alert(hb)
    assert (up.missed_runs, up.down_since_ms, up.at_ms) == (3, 1 * H + 10 * M, 3 * H + 30 * M)


def test_misses_before_going_down_count_too():
    hb = Monitor(max_consecutive_misses=3).ping(0).ticks(0, 3 * H + 11 * M, 10 * S)
    assert hb.alerts == [("down", 3 * H + 10 * M)]
    assert up_alert(hb.ping(3 * H + 20 * M)).missed_runs == 3


def test_a_check_in_within_grace_is_not_missed():
    hb = Monitor().ping(0).ticks(0, 2 * H + 5 * M, 10 * S).ping(2 * H + 5 * M)  # the 2h one, 5 min late
    assert up_alert(hb).missed_runs == 1


def test_failures_are_not_missed_runs():
    hb = Monitor().ping(0).fail(30 * M).fail(1 * H).fail(2 * H).ping(2 * H + 30 * M)
    assert up_alert(hb).missed_runs == 0
    hb = Monitor().ping(0).fail(30 * M).ticks(0, 1 * H + 41 * M, 10 * S)  # then one window missed
    assert up_alert(hb.fail(2 * H).ping(2 * H + 10 * M)).missed_runs == 1


def test_a_miss_mended_before_going_down_is_not_counted():
    hb = Monitor(max_consecutive_misses=2).ping(0).ticks(0, 1 * H + 11 * M, 10 * S)  # late: one miss
    hb.ping(1 * H + 20 * M).ticks(1 * H + 20 * M, 3 * H + 31 * M, 10 * S)  # then two: down
    assert hb.alerts == [("down", 3 * H + 30 * M)]
    assert up_alert(hb.ping(3 * H + 40 * M)).missed_runs == 2


def test_each_incident_counts_its_own():
    hb = Monitor().ping(0).ticks(0, 2 * H + 11 * M, 10 * S).ping(2 * H + 20 * M)
    assert up_alert(hb).missed_runs == 2
    hb.ticks(2 * H + 20 * M, 3 * H + 31 * M, 10 * S).ping(3 * H + 40 * M)
    assert up_alert(hb).missed_runs == 1


def test_misses_between_successes_while_recovering_count():
    hb = Monitor(recovery_threshold=2).ping(0).ticks(0, 1 * H + 11 * M, 10 * S)
    hb.ping(1 * H + 20 * M).ticks(1 * H + 20 * M, 2 * H + 31 * M, 10 * S)  # one success, then a miss
    hb.ping(2 * H + 40 * M).ping(2 * H + 50 * M)
    assert up_alert(hb).missed_runs == 2


def test_a_paused_heartbeat_starts_counting_again():
    hb = Monitor().ping(0).ticks(0, 2 * H + 11 * M, 10 * S)  # down, two misses
    hb.reconfigure(paused=True, updated_ms=2 * H + 20 * M).reconfigure(
        paused=False, updated_ms=2 * H + 30 * M
    )
    hb.ticks(2 * H + 30 * M, 3 * H + 41 * M, 10 * S).ping(3 * H + 50 * M)  # down again, one miss
    assert hb.alerts == [("down", 1 * H + 10 * M), ("down", 3 * H + 40 * M), ("up", 3 * H + 50 * M)]
    assert up_alert(hb).missed_runs == 1
