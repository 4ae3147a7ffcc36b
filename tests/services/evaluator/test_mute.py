"""Muting in the pure core: a muted heartbeat is evaluated and recorded as always (unlike a
paused one), but its alerts are held until the mute ends; then one still down alerts once
(``held`` says it was muted), one that recovered meanwhile sends nothing. Unmuting releases a
held alert at once."""

from __future__ import annotations

from shared.events import MUTED_FOREVER_MS, Alert
from tests.services.evaluator.harness import H, M, Monitor, S

DOWN_AT = 1 * H + 10 * M
"""Hourly with 10 min grace, pinged at 0: down at 1h10m."""


def muted(until_ms: int, **fields) -> Monitor:
    return Monitor(muted_until_ms=until_ms, **fields).ping(0)


def test_a_muted_heartbeat_is_evaluated_and_recorded_but_sends_nothing():
    hb = muted(MUTED_FOREVER_MS).ticks(0, 4 * H, 10 * S)
    assert hb.alerts == []
    assert hb.status == "down" and hb.statuses == ["up", "late", "down"]
    assert hb.misses == [DOWN_AT, DOWN_AT + 1 * H, DOWN_AT + 2 * H]


def test_muted_until_a_time_it_alerts_once_then_if_still_down():
    hb = muted(2 * H).ticks(0, 2 * H - 10 * S, 10 * S)
    assert hb.alerts == []
    hb.ticks(2 * H, 5 * H, 10 * S)
    [down] = hb.of(Alert)
    assert down.kind == "down" and 2 * H <= down.at_ms <= 2 * H + 10 * S
    assert down.held is not None and down.held.startswith("muted until 1970-01-01T02:00:00.000Z")


def test_a_heartbeat_that_recovered_while_muted_sends_nothing():
    hb = muted(2 * H).ticks(0, 80 * M, 10 * S).ping(90 * M).ticks(90 * M, 2 * H + 20 * M, 10 * S)
    assert hb.statuses == ["up", "late", "down", "up"] and hb.alerts == []


def test_an_up_while_muted_after_a_down_heard_before_is_sent_when_the_mute_ends():
    hb = Monitor().ping(0).ticks(0, 80 * M, 10 * S)
    assert hb.alerts == [("down", DOWN_AT)]
    hb.reconfigure(muted_until_ms=2 * H, updated_ms=80 * M).ping(90 * M).ticks(90 * M, 2 * H - 10 * S, 10 * S)
    assert hb.alerts == [("down", DOWN_AT)]
    hb.ticks(2 * H, 2 * H + 10 * M, 10 * S)
    up = hb.of(Alert)[-1]
    assert (up.kind, up.at_ms, up.down_since_ms) == ("up", 90 * M, DOWN_AT)
    assert up.held is not None and "muted" in up.held


def test_muted_until_unmuted_holds_for_good():
    hb = muted(MUTED_FOREVER_MS).ticks(0, 24 * H, M)
    assert hb.alerts == []


def test_unmuting_releases_the_held_alert_at_once():
    hb = muted(MUTED_FOREVER_MS).ticks(0, 3 * H, 10 * S)
    hb.reconfigure(muted_until_ms=None, updated_ms=3 * H).ticks(3 * H, 3 * H + 5 * S, S)
    [down] = hb.of(Alert)
    assert down.kind == "down" and 3 * H <= down.at_ms <= 3 * H + 5 * S
    assert down.held is not None and "muted" in down.held
    hb.ticks(3 * H + 5 * S, 6 * H, M)
    assert len(hb.of(Alert)) == 1  # once: later misses of the same incident say nothing more


def test_shortening_a_mute_releases_at_the_new_end():
    hb = muted(MUTED_FOREVER_MS).ticks(0, 90 * M, 10 * S)
    hb.reconfigure(muted_until_ms=2 * H, updated_ms=90 * M).ticks(90 * M, 2 * H - 10 * S, 10 * S)
    assert hb.alerts == []
    hb.ticks(2 * H, 2 * H + 10 * S, 10 * S)
    assert [kind for kind, _ in hb.alerts] == ["down"]


def test_a_mute_that_has_passed_holds_nothing():
    hb = muted(30 * M).ticks(0, 80 * M, 10 * S)
    assert hb.alerts == [("down", DOWN_AT)]


def test_no_reminders_are_sent_while_muted_and_they_count_from_the_release():
    hb = muted(4 * H, reminder_interval_s=1800).ticks(0, 4 * H - 10 * S, 10 * S)
    assert hb.alerts == []
    hb.ticks(4 * H, 5 * H + 1 * M, 10 * S)
    release, *reminders = hb.of(Alert)
    assert not release.reminder and 4 * H <= release.at_ms <= 4 * H + 10 * S
    assert [r.at_ms - release.at_ms for r in reminders] == [30 * M, 60 * M]


def test_a_paused_heartbeat_is_not_evaluated_unlike_a_muted_one():
    paused = Monitor(paused=True).ping(0).ticks(0, 3 * H, M)
    mute = muted(MUTED_FOREVER_MS).ticks(0, 3 * H, M)
    assert paused.misses == [] and mute.misses != []
    assert paused.alerts == mute.alerts == []
