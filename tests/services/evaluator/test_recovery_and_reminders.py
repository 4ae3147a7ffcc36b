"""Recovery threshold (successes in a row that end an incident) and reminders while down."""

from shared.events import Alert
from tests.services.evaluator.harness import H, M, Monitor, S


def down_at_70_minutes(**fields):
    """Hourly, 10 min grace: pinged at 0, missed at 1h10m, down then."""
    return Monitor(**fields).ping(0).ticks(0, 1 * H + 11 * M, 10 * S)


# recovery threshold ------------------------------------------------------------------
def test_one_success_ends_an_incident_by_default():
    hb = down_at_70_minutes().ping(2 * H)
    assert hb.alerts == [("down", 1 * H + 10 * M), ("up", 2 * H)]


def test_with_a_threshold_of_two_one_success_is_not_enough():
    hb = down_at_70_minutes(recovery_threshold=2).ping(2 * H)
    assert hb.alerts == [("down", 1 * H + 10 * M)]
    assert hb.status == "down"
    hb.ping(2 * H + 5 * M)
    assert hb.alerts == [("down", 1 * H + 10 * M), ("up", 2 * H + 5 * M)]
    assert hb.status == "up"


def test_a_failure_between_successes_starts_the_count_again():
    hb = down_at_70_minutes(recovery_threshold=2).ping(2 * H).fail(2 * H + 1 * M).ping(2 * H + 2 * M)
    assert hb.status == "down"
    hb.ping(2 * H + 3 * M)
    assert [kind for kind, _ in hb.alerts] == ["down", "up"]


def test_a_miss_between_successes_starts_the_count_again():
    hb = down_at_70_minutes(recovery_threshold=2).ping(2 * H).ticks(2 * H, 3 * H + 11 * M, 10 * S)
    assert len(hb.misses) == 2 and hb.status == "down"
    hb.ping(3 * H + 12 * M)
    assert hb.status == "down"
    hb.ping(3 * H + 13 * M)
    assert hb.status == "up"


def test_a_flapping_job_does_not_page_up_and_down():
    hb = Monitor(recovery_threshold=3).ping(0).fail(1 * M)
    for minute in range(2, 12, 2):
        hb.ping(minute * M).fail(minute * M + 30 * S)
    assert hb.alerts == [("down", 1 * M)]


def test_the_up_alert_says_when_the_incident_began():
    hb = down_at_70_minutes().ping(2 * H)
    up = hb.of(Alert)[-1]
    assert (up.kind, up.down_since_ms, up.id) == ("up", 1 * H + 10 * M, "m1:1:up")


# reminders ---------------------------------------------------------------------------
def test_no_reminders_by_default():
    hb = down_at_70_minutes().ticks(1 * H + 11 * M, 10 * H, 60 * S)
    assert hb.alerts == [("down", 1 * H + 10 * M)]


def test_reminders_come_every_interval_while_down():
    hb = down_at_70_minutes(reminder_interval_s=4 * 3600).ticks(1 * H + 11 * M, 14 * H, 10 * S)
    reminders = [a for a in hb.of(Alert) if a.reminder]
    assert [(a.kind, a.at_ms, a.reminder) for a in reminders] == [
        ("down", 5 * H + 10 * M, 1), ("down", 9 * H + 10 * M, 2), ("down", 13 * H + 10 * M, 3),
    ]  # fmt: skip
    assert [a.id for a in reminders] == ["m1:1:reminder:1", "m1:1:reminder:2", "m1:1:reminder:3"]
    assert all(a.down_since_ms == 1 * H + 10 * M for a in reminders)
    assert all(a.reason == hb.of(Alert)[0].reason for a in reminders)  # why it is down


def test_no_reminder_after_up():
    hb = down_at_70_minutes(reminder_interval_s=3600).ticks(1 * H + 11 * M, 2 * H + 30 * M, 10 * S)
    hb.ping(2 * H + 30 * M).ping(3 * H).ping(3 * H + 50 * M).ticks(2 * H + 30 * M, 4 * H, 10 * S)
    assert hb.alert_ids == ["m1:1:down", "m1:1:reminder:1", "m1:1:up"]


def test_the_next_incident_counts_its_reminders_from_one():
    hb = down_at_70_minutes(reminder_interval_s=3600).ticks(1 * H + 11 * M, 2 * H + 20 * M, 10 * S)
    hb.ping(2 * H + 30 * M).ticks(2 * H + 30 * M, 4 * H + 45 * M, 10 * S)
    assert hb.alert_ids == ["m1:1:down", "m1:1:reminder:1", "m1:1:up", "m1:2:down", "m1:2:reminder:1"]


def test_reminders_stop_while_not_yet_recovered_only_when_up():
    hb = down_at_70_minutes(reminder_interval_s=3600, recovery_threshold=2).ping(1 * H + 30 * M)
    hb.ticks(1 * H + 30 * M, 2 * H + 15 * M, 10 * S)
    assert hb.alert_ids == ["m1:1:down", "m1:1:reminder:1"]  # one success: still down, still reminded


def test_after_a_stretch_without_ticks_only_the_latest_reminder_is_sent():
    hb = down_at_70_minutes(reminder_interval_s=3600).tick(10 * H)
    reminders = [(a.reminder, a.at_ms) for a in hb.of(Alert) if a.reminder]
    assert reminders == [(8, 9 * H + 10 * M)]


def test_the_same_input_gives_the_same_reminders():
    first = down_at_70_minutes(reminder_interval_s=3600).ticks(1 * H + 11 * M, 6 * H, 10 * S)
    again = down_at_70_minutes(reminder_interval_s=3600).ticks(1 * H + 11 * M, 6 * H, 7 * S)
    assert first.alert_ids == again.alert_ids and first.alerts == again.alerts


def test_turning_reminders_on_while_down_reminds_from_the_incident_start():
    hb = down_at_70_minutes().ticks(1 * H + 11 * M, 2 * H, 60 * S).reconfigure(reminder_interval_s=3600)
    hb.ticks(2 * H, 3 * H + 15 * M, 10 * S)
    assert [(a.reminder, a.at_ms) for a in hb.of(Alert) if a.reminder] == [
        (1, 2 * H + 10 * M),
        (2, 3 * H + 10 * M),
    ]
