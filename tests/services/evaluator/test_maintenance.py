"""Maintenance windows in the pure core: inside one, pings are recorded and statuses computed as
always, but no alert goes out; when it ends, a heartbeat still down alerts once (``held`` says
the window), one that recovered inside it sends nothing. Recurring windows read their cron
schedule in their time zone, across DST changes too."""

from __future__ import annotations

import msgspec

from shared.clock import iso_ms
from shared.events import Alert, MaintenanceWindow
from tests.services.evaluator.harness import H, M, Monitor, S, local_ms, window

DOWN_AT = 1 * H + 10 * M
"""Hourly with 10 min grace, pinged at 0: down at 1h10m."""


def maintain(hb: Monitor, w: MaintenanceWindow) -> Monitor:
    hb.outputs += hb.ev.apply_window(w)
    return hb


def in_window(w: MaintenanceWindow, **fields) -> Monitor:
    """A heartbeat (``m1`` of ``p1``, hourly, 10 min grace) pinged at 0, with ``w`` applied first."""
    return maintain(Monitor(**fields), w).ping(0)


def the_one_alert(hb: Monitor) -> Alert:
    [alert] = hb.of(Alert)
    return alert


# inside a window ---------------------------------------------------------------------------------
def test_it_holds_the_down_alert_while_the_window_is_open():
    hb = in_window(window(starts_ms=1 * H, ends_ms=3 * H, whole_project=True)).ticks(0, 2 * H, 10 * S)
    assert hb.alerts == []
    assert hb.status == "down" and "down" in hb.statuses  # evaluated and recorded as always
    assert hb.misses == [DOWN_AT]


def test_a_heartbeat_still_down_when_the_window_ends_alerts_once_saying_so():
    hb = in_window(window(starts_ms=1 * H, ends_ms=2 * H, whole_project=True)).ticks(0, 5 * H, 10 * S)
    down = the_one_alert(hb)
    assert down.kind == "down" and 2 * H <= down.at_ms <= 2 * H + 10 * S
    assert down.held is not None and "maintenance window 'upgrade'" in down.held
    assert iso_ms(2 * H) in down.held


def test_a_heartbeat_that_recovered_inside_the_window_sends_nothing():
    hb = in_window(window(starts_ms=1 * H, ends_ms=2 * H, whole_project=True)).ticks(
        0, 1 * H + 20 * M, 10 * S
    )
    hb.ping(1 * H + 30 * M).ticks(1 * H + 30 * M, 2 * H + 20 * M, 10 * S)  # (its next deadline: 2h40m)
    assert hb.statuses == ["up", "late", "down", "up"] and hb.alerts == []


def test_an_up_inside_a_window_after_a_down_before_it_is_sent_when_it_ends():
    hb = in_window(window(starts_ms=1 * H + 20 * M, ends_ms=2 * H, whole_project=True))
    hb.ticks(0, 1 * H + 20 * M, 10 * S).ping(1 * H + 30 * M).ticks(1 * H + 30 * M, 2 * H - 10 * S, 10 * S)
    assert hb.alerts == [("down", DOWN_AT)]  # people heard it went down: not yet that it is back
    hb.ticks(2 * H, 2 * H + 20 * M, 10 * S)
    down, up = hb.of(Alert)
    assert down.held is None and (up.kind, up.down_since_ms) == ("up", DOWN_AT)
    assert up.at_ms == 1 * H + 30 * M  # dated when it came back: "down for" stays true
    assert up.held is not None and "maintenance window 'upgrade'" in up.held


def test_outside_its_times_a_window_holds_nothing():
    hb = in_window(window(starts_ms=2 * H, ends_ms=3 * H, whole_project=True)).ticks(
        0, 1 * H + 20 * M, 10 * S
    )
    assert hb.alerts == [("down", DOWN_AT)]


def test_no_reminders_go_out_while_the_window_holds_the_alert():
    hb = in_window(window(starts_ms=1 * H, ends_ms=5 * H, whole_project=True), reminder_interval_s=1800)
    hb.ticks(0, 5 * H - 10 * S, 10 * S)
    assert hb.alerts == []
    hb.ticks(5 * H, 6 * H + 10 * S, 10 * S)
    assert [kind for kind, _ in hb.alerts] == ["down", "down"]  # released at 5h, then one reminder 30 min on
    release, reminder = hb.of(Alert)
    assert not release.reminder and reminder.reminder and reminder.at_ms >= release.at_ms + 30 * M


# what a window covers ------------------------------------------------------------------------------
def test_a_window_covers_heartbeats_by_id():
    assert (
        in_window(window(starts_ms=1 * H, ends_ms=2 * H, monitor_ids=["m1"])).ticks(0, 90 * M, M).alerts == []
    )
    other = in_window(window(starts_ms=1 * H, ends_ms=2 * H, monitor_ids=["m2"])).ticks(0, 90 * M, M)
    assert [kind for kind, _ in other.alerts] == ["down"]


def test_a_window_covers_heartbeats_by_tag():
    tagged = in_window(window(starts_ms=1 * H, ends_ms=2 * H, tags=["db"]), tags=["web", "db"])
    assert tagged.ticks(0, 90 * M, M).alerts == []
    untagged = in_window(window(starts_ms=1 * H, ends_ms=2 * H, tags=["db"]), tags=["web"])
    assert [kind for kind, _ in untagged.ticks(0, 90 * M, M).alerts] == ["down"]


def test_a_whole_project_window_covers_only_its_project():
    ours = in_window(window(starts_ms=1 * H, ends_ms=2 * H, whole_project=True))
    assert ours.ticks(0, 90 * M, M).alerts == []
    theirs = in_window(window(starts_ms=1 * H, ends_ms=2 * H, whole_project=True, project_id="p2"))
    assert [kind for kind, _ in theirs.ticks(0, 90 * M, M).alerts] == ["down"]


# ended early, changed, deleted ----------------------------------------------------------------------
def test_ending_a_window_early_sends_the_held_alert_then():
    w = window(starts_ms=1 * H, ends_ms=4 * H, whole_project=True)
    hb = in_window(w).ticks(0, 90 * M, M)
    assert hb.alerts == []
    maintain(hb, msgspec.structs.replace(w, ended_ms=90 * M, revision=2)).ticks(90 * M, 100 * M, 10 * S)
    down = the_one_alert(hb)
    assert 90 * M <= down.at_ms <= 90 * M + 10 * S and "maintenance window" in (down.held or "")


def test_ending_a_recurring_window_early_ends_its_current_occurrence_only():
    w = window(schedule="0 * * * *", duration_s=50 * 60, whole_project=True)
    hb = in_window(w).ticks(0, 75 * M, M)
    assert hb.alerts == [] and hb.status == "down"  # down at 1h10m, in the 1h-1h50m occurrence
    maintain(hb, msgspec.structs.replace(w, ended_ms=80 * M, revision=2)).ticks(75 * M, 81 * M, 10 * S)
    assert [kind for kind, _ in hb.alerts] == ["down"]
    # The next occurrence (2h-2h50m) holds as before: the recovery in it is told at its end.
    hb.ping(2 * H + 1 * M).ticks(2 * H + 1 * M, 2 * H + 49 * M, M)
    assert [kind for kind, _ in hb.alerts] == ["down"] and hb.status == "up"
    hb.ticks(2 * H + 50 * M, 2 * H + 51 * M, 10 * S)
    assert [kind for kind, _ in hb.alerts] == ["down", "up"]


def test_deleting_a_window_sends_the_held_alert_at_once():
    w = window(starts_ms=1 * H, ends_ms=4 * H, whole_project=True)
    hb = in_window(w).ticks(0, 90 * M, M)
    maintain(hb, msgspec.structs.replace(w, deleted=True, revision=2)).ticks(90 * M, 91 * M, 10 * S)
    down = the_one_alert(hb)
    assert 90 * M <= down.at_ms <= 91 * M and down.held is not None


def test_a_stale_copy_of_a_window_changes_nothing():
    w = window(starts_ms=1 * H, ends_ms=4 * H, whole_project=True)
    hb = in_window(w)
    maintain(hb, msgspec.structs.replace(w, deleted=True, revision=2))
    maintain(hb, w).ticks(0, 90 * M, M)  # revision 1 again, after its tombstone
    assert [kind for kind, _ in hb.alerts] == ["down"]


# recurring windows across DST (Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00
# CEST -> 02:00 CET) ---------------------------------------------------------------------------------
BERLIN = "Europe/Berlin"


def held_when_down_at(w: MaintenanceWindow, down_at_ms: int) -> bool:
    """Whether ``w`` holds the down alert of a heartbeat (every minute, no grace) going down then."""
    hb = maintain(Monitor(interval_s=60, grace_s=0), w).ping(down_at_ms - M)
    hb.ticks(down_at_ms - M, down_at_ms + 5 * S, S)
    assert hb.status == "down", hb.statuses
    return hb.alerts == []


def test_a_recurring_window_follows_its_zones_clock_into_summer_time():
    """01:00-04:00 local time, 3 hours: 00:00-03:00 UTC in winter, 23:00-02:00 UTC in summer."""
    w = window(schedule="0 1 * * *", duration_s=3 * 3600, timezone=BERLIN, whole_project=True,
               starts_ms=local_ms(BERLIN, "2026-03-01 00:00"))  # fmt: skip
    assert held_when_down_at(w, local_ms("UTC", "2026-03-28 02:30"))  # 03:30 CET
    assert not held_when_down_at(w, local_ms("UTC", "2026-03-28 23:30"))  # 00:30 CET on the 29th
    assert held_when_down_at(w, local_ms("UTC", "2026-03-29 02:30"))  # 04:30 CEST: 3 h after 01:00 CET
    assert held_when_down_at(w, local_ms("UTC", "2026-03-29 23:30"))  # 01:30 CEST on the 30th
    assert not held_when_down_at(w, local_ms("UTC", "2026-03-30 02:30"))  # 04:30 CEST: over


def test_a_run_in_the_skipped_hour_starts_when_the_clock_jumps():
    """02:30 does not exist on 2026-03-29 in Berlin: that day's occurrence starts at 03:00 CEST."""
    w = window(schedule="30 2 * * *", duration_s=3600, timezone=BERLIN, whole_project=True,
               starts_ms=local_ms(BERLIN, "2026-03-01 00:00"))  # fmt: skip
    assert not held_when_down_at(w, local_ms(BERLIN, "2026-03-29 01:45"))  # CET: the jump is at 02:00
    assert held_when_down_at(w, local_ms(BERLIN, "2026-03-29 03:30"))
    assert not held_when_down_at(w, local_ms(BERLIN, "2026-03-29 04:05"))
    assert held_when_down_at(w, local_ms(BERLIN, "2026-03-30 02:45"))


def test_a_recurring_window_follows_its_zones_clock_back_to_winter_time():
    """02:30 comes twice on 2026-10-25 in Berlin: the window starts once, at the first (CEST)."""
    w = window(schedule="30 2 * * *", duration_s=3600, timezone=BERLIN, whole_project=True,
               starts_ms=local_ms(BERLIN, "2026-10-01 00:00"))  # fmt: skip
    assert held_when_down_at(w, local_ms("UTC", "2026-10-24 00:45"))  # 02:45 CEST
    assert held_when_down_at(w, local_ms("UTC", "2026-10-25 01:00"))  # 03:00 CEST = 02:00 CET
    assert not held_when_down_at(w, local_ms("UTC", "2026-10-25 01:45"))  # 02:45 CET, the second time
    assert held_when_down_at(w, local_ms("UTC", "2026-10-26 01:45"))  # 02:45 CET on the 26th
    assert not held_when_down_at(w, local_ms("UTC", "2026-10-26 00:45"))  # 01:45 CET


def test_a_recurring_window_holds_only_between_its_first_and_last_start():
    w = window(schedule="0 * * * *", duration_s=30 * 60, whole_project=True, starts_ms=2 * H, ends_ms=4 * H)
    assert not held_when_down_at(w, 1 * H + 10 * M)
    assert held_when_down_at(w, 2 * H + 10 * M)
    assert held_when_down_at(w, 4 * H + 10 * M)  # the last occurrence starts at its last start
    assert not held_when_down_at(w, 5 * H + 10 * M)


def test_a_restart_inside_the_window_keeps_the_hold_and_releases_it_once_at_the_end():
    w = window(starts_ms=1 * H, ends_ms=2 * H, whole_project=True)
    hb = in_window(w).ticks(0, 90 * M, M)
    assert hb.alerts == []
    again = maintain(hb.restarted(), w)  # the maintenance topic is read again from its start
    again.ticks(90 * M, 3 * H, 10 * S)
    [down] = again.of(Alert)
    assert 2 * H <= down.at_ms <= 2 * H + 10 * S and down.held is not None
