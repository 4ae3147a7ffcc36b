"""Cron schedules: the arithmetic (services/evaluator/schedule.py) and heartbeats that use it,
across daylight-saving changes in a European and an American time zone."""

import pytest

from services.evaluator.schedule import InvalidSchedule, check, next_run_ms
from tests.services.evaluator.harness import H, M, Monitor, S, local_ms

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
NOW = local_ms("UTC", "2025-06-01 12:00")


# the arithmetic ----------------------------------------------------------------------
@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("*/15 * * * *", "2025-06-01 12:07:30", "2025-06-01 12:15"),
    ("0 6 * * 1-5", "2025-06-06 06:00:30", "2025-06-09 06:00"),  # Friday -> Monday
    ("@daily", "2025-06-01 00:00", "2025-06-02 00:00"),  # a run is not "after" itself
    ("@midnight", "2025-06-01 23:59:59.999", "2025-06-02 00:00"),
    ("@hourly", "2025-06-01 12:00:00.001", "2025-06-01 13:00"),
    ("@weekly", "2025-06-01 12:00", "2025-06-08 00:00"),  # Sundays
    ("@monthly", "2025-06-01 12:00", "2025-07-01 00:00"),
    ("@yearly", "2025-06-01 12:00", "2026-01-01 00:00"),
    ("@annually", "2025-06-01 12:00", "2026-01-01 00:00"),
])  # fmt: skip
def test_it_finds_the_next_run_strictly_after_a_time(schedule, after, expected):
    assert next_run_ms(schedule, "UTC", local_ms("UTC", after)) == local_ms("UTC", expected)


def test_it_reads_the_schedule_in_its_time_zone():
    after = local_ms("UTC", "2025-06-01 12:00")
    assert next_run_ms("0 9 * * *", NEW_YORK, after) == local_ms(
        NEW_YORK, "2025-06-01 09:00"
    )  # 13:00 UTC, same day
    assert next_run_ms("0 9 * * *", BERLIN, after) == local_ms(BERLIN, "2025-06-02 09:00")  # 07:00 UTC


@pytest.mark.parametrize(("zone", "after", "expected"), [
    # spring forward: 02:30 does not exist that night; cron runs the job at 03:00
    (BERLIN, "2025-03-29 12:00", "2025-03-30 03:00"),
    (NEW_YORK, "2025-03-08 12:00", "2025-03-09 03:00"),
    # and the next day at 02:30 again
    (BERLIN, "2025-03-30 03:00", "2025-03-31 02:30"),
    (NEW_YORK, "2025-03-09 03:00", "2025-03-10 02:30"),
])  # fmt: skip
def test_a_time_skipped_by_spring_forward_runs_at_the_first_minute_that_exists(zone, after, expected):
    assert next_run_ms("30 2 * * *", zone, local_ms(zone, after)) == local_ms(zone, expected)


@pytest.mark.parametrize(("zone", "schedule", "day", "next_day"), [
    (BERLIN, "30 2 * * *", "2025-10-26", "2025-10-27"),  # 02:00-03:00 happens twice
    (NEW_YORK, "30 1 * * *", "2025-11-02", "2025-11-03"),  # 01:00-02:00 happens twice
])  # fmt: skip
def test_a_time_repeated_by_fall_back_runs_once_at_its_first_occurrence(zone, schedule, day, next_day):
    wall = schedule.split()[1].zfill(2) + ":30"
    first = local_ms(zone, f"{day} {wall}", fold=0)  # summer time
    second = local_ms(zone, f"{day} {wall}", fold=1)  # an hour later, winter time
    assert second - first == 1 * H
    assert next_run_ms(schedule, zone, local_ms(zone, f"{day} 00:00")) == first
    after_the_run = local_ms(zone, f"{next_day} {wall}")
    assert next_run_ms(schedule, zone, first) == after_the_run  # not `second`
    # a check-in in the repeated hour, after the run: the next run is tomorrow, never one before it
    assert next_run_ms(schedule, zone, first + 50 * M) == after_the_run
    assert next_run_ms(schedule, zone, second - 10 * M) == after_the_run


def test_jobs_more_frequent_than_daily_follow_real_time_across_the_changes():
    # hourly in New York: the repeated hour has two runs, the skipped hour none
    fall = [local_ms(NEW_YORK, "2025-11-02 00:30")]
    for _ in range(3):
        fall.append(next_run_ms("0 * * * *", NEW_YORK, fall[-1]))
    assert [t - fall[1] for t in fall[1:]] == [0, 1 * H, 2 * H]
    assert fall[1:3] == [
        local_ms(NEW_YORK, "2025-11-02 01:00", fold=0),
        local_ms(NEW_YORK, "2025-11-02 01:00", fold=1),
    ]
    spring = next_run_ms("0 * * * *", BERLIN, local_ms(BERLIN, "2025-03-30 01:30"))
    assert spring == local_ms(BERLIN, "2025-03-30 03:00") == local_ms(BERLIN, "2025-03-30 01:30") + 30 * M


@pytest.mark.parametrize(("schedule", "zone", "problem"), [
    ("0 0 30 2 *", "UTC", "not a valid cron expression"),  # February has no 30th
    ("61 * * * *", "UTC", "not a valid cron expression"),
    ("* * * *", "UTC", "5 fields"),
    ("0 0 * * * *", "UTC", "5 fields"),  # no seconds field
    ("@reboot", "UTC", "unknown name"),
    ("", "UTC", "1-200 characters"),
    ("0 ٣ * * *", "UTC", "ASCII"),
    ("@daily", "Mars/Olympus_Mons", "unknown time zone"),
    ("@daily", "../../etc/passwd", "unknown time zone"),
])  # fmt: skip
def test_it_refuses_what_it_cannot_run_and_says_why(schedule, zone, problem):
    with pytest.raises(InvalidSchedule, match=problem):
        check(schedule, zone, NOW)


def test_it_keeps_a_valid_schedule_as_written():
    assert check(" @daily ", BERLIN, NOW) == "@daily"
    assert check("0 2 * * MON-FRI", NEW_YORK, NOW) == "0 2 * * MON-FRI"


# heartbeats on a schedule --------------------------------------------------------------
def daily(zone, at="30 2 * * *", **fields):
    return Monitor(schedule=at, timezone=zone, grace_s=1800, **fields)


def test_the_deadline_is_the_next_run_after_the_last_check_in_plus_grace():
    hb = daily("UTC").ping(local_ms("UTC", "2025-06-01 02:31"))
    assert hb.next_expected_ms == local_ms("UTC", "2025-06-02 02:30")
    assert hb.state.deadline_ms == local_ms("UTC", "2025-06-02 03:00")


def test_a_new_scheduled_heartbeat_expects_nothing_until_its_first_check_in():
    hb = daily("UTC").ticks(0, 3 * 86400 * S, 600 * S)
    assert hb.status == "new" and hb.misses == [] and hb.next_expected_ms is None


def test_missed_runs_follow_the_schedule_not_an_interval():
    friday = local_ms(NEW_YORK, "2025-06-06 06:01")
    hb = Monitor(schedule="0 6 * * 1-5", timezone=NEW_YORK, grace_s=600, max_consecutive_misses=3).ping(
        friday
    )
    hb.ticks(friday, local_ms(NEW_YORK, "2025-06-10 06:11"), 60 * S)
    assert hb.misses == [local_ms(NEW_YORK, "2025-06-09 06:10"), local_ms(NEW_YORK, "2025-06-10 06:10")]
    assert hb.alerts == [] and hb.status == "late"  # nothing over the weekend


@pytest.mark.parametrize(("zone", "at", "days"), [
    (BERLIN, "30 2 * * *", ("2025-03-28", "2025-04-01")),  # spring forward on the 30th
    (BERLIN, "30 2 * * *", ("2025-10-24", "2025-10-28")),  # fall back on the 26th
    (NEW_YORK, "30 2 * * *", ("2025-03-07", "2025-03-11")),  # spring forward on the 9th
    (NEW_YORK, "30 1 * * *", ("2025-10-31", "2025-11-04")),  # fall back on November 2nd
])  # fmt: skip
def test_a_daily_job_that_runs_as_cron_runs_it_never_misses_across_a_dst_change(zone, at, days):
    first, last = (local_ms(zone, f"{d} 00:00") for d in days)
    hb = daily(zone, at)
    t, runs = first, []
    while True:
        run = next_run_ms(at, zone, t)
        if run > last:
            break
        runs.append(run)
        hb.ticks(t, run, 60 * S).ping(run + 2 * M)  # the job checks in two minutes after it starts
        t = run + 2 * M
    hb.ticks(t, last, 60 * S)
    assert len(runs) == 4  # once a day, on the day of the change too
    assert hb.misses == [] and hb.alerts == []


def test_a_job_that_did_not_run_on_the_spring_forward_night_is_missed_at_03_00_plus_grace():
    hb = daily(BERLIN).ping(local_ms(BERLIN, "2025-03-29 02:31"))
    hb.ticks(local_ms(BERLIN, "2025-03-29 02:31"), local_ms(BERLIN, "2025-03-30 03:31"), 60 * S)
    assert hb.misses == [local_ms(BERLIN, "2025-03-30 03:30")]
    assert hb.alerts == [("down", local_ms(BERLIN, "2025-03-30 03:30"))]


def test_the_hourly_job_runs_twice_in_new_yorks_repeated_hour_and_is_missed_if_it_does_not():
    hb = Monitor(schedule="0 * * * *", timezone=NEW_YORK, grace_s=300, max_consecutive_misses=5)
    first_one = local_ms(NEW_YORK, "2025-11-02 01:00", fold=0)
    hb.ping(first_one + 1 * M)
    assert hb.next_expected_ms == local_ms(NEW_YORK, "2025-11-02 01:00", fold=1) == first_one + 1 * H
    hb.ticks(first_one + 1 * M, first_one + 1 * H + 6 * M, 60 * S)
    assert hb.misses == [first_one + 1 * H + 5 * M]


def test_changing_the_schedule_moves_the_deadline():
    hb = daily("UTC").ping(local_ms("UTC", "2025-06-01 02:31"))
    hb.reconfigure(schedule="0 12 * * *")
    assert hb.next_expected_ms == local_ms("UTC", "2025-06-01 12:00")
    hb.reconfigure(timezone=NEW_YORK)
    assert hb.next_expected_ms == local_ms(NEW_YORK, "2025-06-01 12:00")
    hb.reconfigure(schedule=None, interval_s=3600)
    assert hb.next_expected_ms == local_ms("UTC", "2025-06-01 03:31")


def test_a_rename_does_not_bring_back_a_missed_deadline():
    hb = daily("UTC", max_consecutive_misses=3).ping(local_ms("UTC", "2025-06-01 02:31"))
    hb.ticks(local_ms("UTC", "2025-06-02 02:00"), local_ms("UTC", "2025-06-02 03:05"), 60 * S)
    assert len(hb.misses) == 1
    hb.reconfigure(name="renamed")
    hb.ticks(local_ms("UTC", "2025-06-02 03:05"), local_ms("UTC", "2025-06-02 04:00"), 60 * S)
    assert len(hb.misses) == 1 and hb.state.problems == 1


def test_a_start_on_a_schedule_waits_for_the_next_run():
    hb = daily("UTC", max_runtime_s=3 * 3600).ping(local_ms("UTC", "2025-06-01 02:31"))
    start = local_ms("UTC", "2025-06-02 02:30")
    hb.start(start).ticks(start, start + 2 * H, 60 * S).ping(start + 2 * H)  # longer than the grace
    assert hb.misses == [] and hb.alerts == [] and hb.measured == [("", 7200.0)]
    assert hb.next_expected_ms == local_ms("UTC", "2025-06-03 02:30")
