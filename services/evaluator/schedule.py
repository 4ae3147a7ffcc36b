"""Cron arithmetic for schedule-mode heartbeats: when is the next run expected?

Pure: the time zone database is data (``zoneinfo``), and "now" is always passed in, so the
evaluator's core stays free of clock reads.

The arithmetic is cronsim's (what Healthchecks uses), which follows Debian cron, DST
quirks included. For a job at a fixed time of day (minute and hour fields that do not
start with ``*``):

- a time that does not exist (spring forward, e.g. 02:30 in Europe/Berlin on the last
  Sunday of March) is run at the first minute that does: 03:00;
- a time that happens twice (fall back, e.g. 01:30 in America/New_York on the first Sunday
  of November) is run once, at its first occurrence (summer time).

Jobs that run more often (``*/15 * * * *``, ``0 * * * *``) follow real time: an hour
skipped in spring has no runs; an hour repeated in autumn has its runs twice.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError

from shared.errors import PinguraError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_EXPRESSION_CHARS = 200


class InvalidSchedule(PinguraError, ValueError):
    """A cron expression or time zone this module cannot use; the message says why."""


def expression(schedule: str) -> str:
    """The 5-field cron expression a schedule stands for (``@daily`` and kin expanded)."""
    text = schedule.strip()
    return ALIASES.get(text.lower(), text)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Berlin``); InvalidSchedule if unknown.

    Only names the tz database lists: ZoneInfo would also open file paths it is given."""
    if name != "UTC" and name not in _zone_names():
        raise InvalidSchedule(f'unknown time zone {name[:100]!r} (an IANA name such as "Europe/Berlin")')
    return ZoneInfo(name)


def check(schedule: str, timezone: str, now_ms: int) -> str:
    """``schedule`` as stored (stripped), if it is a 5-field cron expression or an ``@`` name
    that runs at least once in the 50 years after ``now_ms``; else InvalidSchedule."""
    if not isinstance(schedule, str) or not schedule.strip() or len(schedule) > MAX_EXPRESSION_CHARS:
        raise InvalidSchedule(f"must be a cron expression of 1-{MAX_EXPRESSION_CHARS} characters")
    if not schedule.isascii():
        raise InvalidSchedule("a cron expression is ASCII")
    text = schedule.strip()
    expr = expression(text)
    if expr.startswith("@"):
        raise InvalidSchedule(f"unknown name {text!r} (one of {', '.join(ALIASES)})")
    if len(expr.split()) != 5:
        raise InvalidSchedule("a cron expression has 5 fields: minute hour day-of-month month day-of-week")
    tz = zone(timezone)
    try:
        CronSim(expr, datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(tz))
    except CronSimError as exc:
        raise InvalidSchedule(f"not a valid cron expression ({exc})") from None
    if _next_run_ms(expr, timezone, now_ms // 60_000) is None:
        raise InvalidSchedule("never runs")
    return text


def next_run_ms(schedule: str, timezone: str, after_ms: int) -> int | None:
    """The first run of ``schedule`` (read in ``timezone``) strictly after ``after_ms``, in
    epoch ms; None if it never runs again (or the schedule is unusable).

    Runs fall on whole minutes, so the answer is the same for every ``after_ms`` within one
    minute: it is cached per minute, and monitors sharing a schedule share the work."""
    return _next_run_ms(expression(schedule), timezone, after_ms // 60_000)


@functools.lru_cache(maxsize=8192)
def _next_run_ms(expr: str, timezone: str, after_minute: int) -> int | None:
    after_ms = after_minute * 60_000
    try:
        tz = zone(timezone)
        runs = CronSim(expr, datetime.fromtimestamp(after_minute * 60, UTC).astimezone(tz))
        # A start in the repeated hour of a fall-back day is read as wall time by cronsim's
        # DST handling, so its first answer may lie before it (01:30 summer time, for a
        # start at 01:20 winter time): skip to the first run that is really later.
        for _ in range(4):
            run_ms = int(next(runs).timestamp() * 1000)
            if run_ms >= after_ms + 60_000:  # not the minute it started in
                return run_ms
    except (CronSimError, InvalidSchedule, StopIteration, OverflowError, ValueError):
        return None
    return None


__all__ = ["ALIASES", "InvalidSchedule", "check", "expression", "next_run_ms", "zone"]
