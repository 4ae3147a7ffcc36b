"""Validation of API input (bodies and query parameters): every error names the field, in one line.

Everything here runs before any storage call, so what reaches ClickHouse is already
in range: times within 1970..9999, whole numbers within their bounds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from services.evaluator.schedule import InvalidSchedule, zone
from services.evaluator.schedule import check as check_schedule
from shared.clock import now_ms
from shared.durations import parse_duration_s

MAX_CHANNELS = 50
MAX_CHANNEL_ID_CHARS = 64
MAX_TAGS = 20
MAX_TAG_CHARS = 50
DEFAULT_INTERVAL_S = 86400
"""The interval of a heartbeat a ping to an unknown slug creates (``services.ingest.provision``
holds the same; a test keeps them equal). The API has no default: a create gives an
``interval`` or a ``schedule``."""
DEFAULT_GRACE_S = 3600
INTERVAL_REQUIRED = "required (e.g. \"5m\", \"1h\" or seconds), unless a schedule is given"
MAX_PERIOD_S = 365 * 86400
MONITOR_FIELDS = {"name", "interval", "grace", "max_consecutive_misses", "channels", "tags"}
MONITOR_FIELDS |= {"schedule", "timezone", "max_runtime", "recovery_threshold", "reminder_interval"}
MIN_REMINDER_INTERVAL_S = 60
MONITOR_FIELDS |= {"slug"}
MAX_SLUG_CHARS = 100
_SLUG = re.compile(r"[a-z0-9_-]{1,%d}" % MAX_SLUG_CHARS)  # as ingest reads slug URLs

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TIME_MS = 0
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant ISO-8601 years can spell
# ASCII only: str.isdigit() and int() also take "²" or "١٢٣", and int() refuses 4300+ digits.
_EPOCH_MS = re.compile(r"[0-9]{1,20}")


class InvalidField(ValueError):
    """Input the API refuses: ``field`` names the culprit; ``status`` is the 4xx to answer."""

    def __init__(self, field: str, problem: str, status: int = 400):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.status = status


def _seconds(field: str, value, minimum: int) -> int:
    if isinstance(value, bool) or value is None:
        raise InvalidField(field, "must be a number of seconds or a duration such as \"5m\"")
    if isinstance(value, int):
        seconds: int | float = value  # as is: float() of a 400-digit number overflows
    elif isinstance(value, float):
        seconds = value if math.isfinite(value) else -1.0  # int(inf) below would raise; -1 is out of range
    elif isinstance(value, str):
        try:
            seconds = parse_duration_s(value)
        except ValueError as exc:
            raise InvalidField(field, str(exc)) from None
    else:
        raise InvalidField(field, "must be a number of seconds or a duration such as \"5m\"")
    if seconds != int(seconds):
        raise InvalidField(field, "must be a whole number of seconds")
    if not minimum <= seconds <= MAX_PERIOD_S:
        raise InvalidField(field, f"must be between {minimum} second(s) and 365 days")
    return int(seconds)


def _string_list(field: str, value, max_items: int, max_chars: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidField(field, "must be a list of strings")
    if len(value) > max_items:
        raise InvalidField(field, f"at most {max_items} items")
    if any(not v or len(v) > max_chars for v in value):
        raise InvalidField(field, f"each item must be 1-{max_chars} characters")
    return list(dict.fromkeys(value))


# names ---------------------------------------------------------------------------------
MAX_NAME_CHARS = 200
UNSAFE_IN_NAMES_CLASS = (
    r"[\u0000-\u001f\u007f-\u009f"  # C0 and C1 controls and DEL: NUL, BEL, ESC (ANSI sequences), CR, LF, tab
    r"\u202a-\u202e\u2066-\u2069"  # bidi embeddings, overrides and isolates (they reorder what follows)
    r"\u200b\u2060\ufeff"  # zero-width space, word joiner, BOM: invisible, with no use in a name
    r"\u2028\u2029]"  # line and paragraph separators: line breaks
)  # the same syntax in Python and ECMA regexes: the OpenAPI document states it as is
UNSAFE_IN_NAMES = re.compile(UNSAFE_IN_NAMES_CLASS)
"""What no name may hold (heartbeats, tags, channels, projects, keys): names reach terminals
(``pingura keys list``), chat messages, emails and the dashboard, where these characters
move, hide or recolour the text around them. Kept: the joiners U+200C/U+200D (Persian and
Indic spelling, emoji sequences) and the marks U+200E/U+200F/U+061C (right-to-left text
needs them, and they reorder nothing beyond their neighbours)."""


def name_field(field: str, value, *, max_chars: int = MAX_NAME_CHARS, required: bool = True) -> str:
    """A name as stored: trimmed, 1-``max_chars`` characters (or empty when not ``required``),
    none of :data:`UNSAFE_IN_NAMES`. The one rule for every name the API or the CLI takes."""
    if not isinstance(value, str):
        raise InvalidField(field, f"required, 1-{max_chars} characters" if required else "must be a string")
    name = value.strip()
    if (required and not name) or len(name) > max_chars:
        raise InvalidField(field, f"required, 1-{max_chars} characters" if required else
                           f"at most {max_chars} characters")
    return safe_text(field, name)


def safe_text(field: str, text: str) -> str:
    """``text`` as it is, if it holds none of :data:`UNSAFE_IN_NAMES` (tags: names not trimmed)."""
    unsafe = UNSAFE_IN_NAMES.search(text)
    if unsafe:
        raise InvalidField(field, f"must not hold control, bidi-override or invisible characters "
                                  f"(U+{ord(unsafe.group()):04X} at {unsafe.start() + 1})")
    return text


def _one_to_ten(field: str, value) -> int:
    """A whole number from 1 to 10; ``3.0`` counts (JSON has one number type, and JSON
    Schema calls 3.0 an integer), ``3.5`` and ``true`` do not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise InvalidField(field, "must be a whole number from 1 to 10")
    return value


def monitor_fields(body, *, creating: bool, known_channels: set[str]) -> dict:
    """Validated monitor fields from a create (all, with defaults) or update (those given) body.

    Schedule mode or interval mode: a body gives a ``schedule`` (not null) or an
    ``interval``, never both, and a create one of them (no silent default period, as
    the dashboard's form has none); an update giving an ``interval`` leaves schedule mode."""
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    unknown = sorted(set(body) - MONITOR_FIELDS)
    if unknown:
        raise InvalidField(unknown[0], "unknown field")
    out: dict = {}
    if "name" in body or creating:
        out["name"] = name_field("name", body.get("name"))
    out.update(_schedule_fields(body, creating))
    if "interval" in body or (creating and out["schedule"] is None):
        interval = body.get("interval")
        if interval is None or (isinstance(interval, str) and not interval.strip()):
            raise InvalidField("interval", INTERVAL_REQUIRED)
        out["interval_s"] = _seconds("interval", interval, 1)
    elif creating:
        out["interval_s"] = DEFAULT_INTERVAL_S  # unused in schedule mode; an update to interval mode sets one
    if "grace" in body or creating:
        out["grace_s"] = _seconds("grace", body.get("grace", DEFAULT_GRACE_S), 0)
    if "max_consecutive_misses" in body or creating:
        out["max_consecutive_misses"] = _one_to_ten("max_consecutive_misses", body.get("max_consecutive_misses", 1))
    if "channels" in body or creating:
        channels = _string_list("channels", body.get("channels", []), MAX_CHANNELS, MAX_CHANNEL_ID_CHARS)
        missing = [c for c in channels if c not in known_channels]
        if missing:
            raise InvalidField("channels", f"unknown channel id {missing[0]!r}")
        out["channels"] = channels
    if "tags" in body or creating:
        out["tags"] = [safe_text("tags", tag) for tag in
                       _string_list("tags", body.get("tags", []), MAX_TAGS, MAX_TAG_CHARS)]
    if "slug" in body:
        out["slug"] = slug_field(body["slug"])
    if "max_runtime" in body or creating:
        runtime = body.get("max_runtime")
        out["max_runtime_s"] = None if runtime is None else _seconds("max_runtime", runtime, 1)
    if "recovery_threshold" in body or creating:
        out["recovery_threshold"] = _one_to_ten("recovery_threshold", body.get("recovery_threshold", 1))
    if "reminder_interval" in body or creating:
        every = body.get("reminder_interval")
        out["reminder_interval_s"] = (
            None if every is None else _seconds("reminder_interval", every, MIN_REMINDER_INTERVAL_S)
        )
    return out


def _schedule_fields(body: dict, creating: bool) -> dict:
    """``schedule`` and ``timezone`` (a cron expression in an IANA zone), checked together."""
    out: dict = {}
    if "timezone" in body or creating:
        timezone = body.get("timezone", "UTC")
        if not isinstance(timezone, str):
            raise InvalidField("timezone", "must be an IANA time zone name such as \"Europe/Berlin\"")
        try:
            zone(timezone)
        except InvalidSchedule as exc:
            raise InvalidField("timezone", str(exc)) from None
        out["timezone"] = timezone
    schedule = body.get("schedule")
    if schedule is not None:
        if "interval" in body:
            raise InvalidField("schedule", "give a schedule or an interval, not both (no interval: schedule mode)")
        try:
            out["schedule"] = check_schedule(schedule, out.get("timezone", "UTC"), now_ms())
        except InvalidSchedule as exc:
            raise InvalidField("schedule", str(exc)) from None
    elif "schedule" in body or "interval" in body or creating:
        out["schedule"] = None  # interval mode
    return out


def slug_field(value) -> str | None:
    """A heartbeat's slug (its name in ``/ping/{ping_key}/{slug}``), or None to take it away.
    Unique in its project: the handler checks that, against the project's heartbeats."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise InvalidField("slug", f"must be 1-{MAX_SLUG_CHARS} characters: lower-case letters, digits, - and _ "
                                   "(or null for none)")
    return value


def parse_time_ms(field: str, value: str | None, default: int) -> int:
    """Epoch milliseconds or an ISO-8601 time (UTC unless it says otherwise), from 1970 to 9999."""
    if value is None or value == "":
        return default
    if _EPOCH_MS.fullmatch(value):
        ms = int(value)
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidField(field, "must be an ISO-8601 time or epoch milliseconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # Exact integer arithmetic; an offset may move year 1 or 9999 past either end, checked below.
        ms = (parsed - _EPOCH) // timedelta(milliseconds=1)
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise InvalidField(field, "must be between 1970-01-01 and 9999-12-31")
    return ms


def parse_range_ms(query: Mapping[str, str], now_ms: int, default_span_ms: int | None) -> tuple[int, int]:
    """``from`` and ``to`` of a query, checked: ``to`` defaults to now, ``from`` to
    ``default_span_ms`` before ``to`` (None: the epoch), never before 1970."""
    to_ms = parse_time_ms("to", query.get("to"), min(now_ms, MAX_TIME_MS))
    default_from = MIN_TIME_MS if default_span_ms is None else max(MIN_TIME_MS, to_ms - default_span_ms)
    from_ms = parse_time_ms("from", query.get("from"), default_from)
    if from_ms > to_ms:
        raise InvalidField("from", "must not be after to")
    return from_ms, to_ms


def parse_whole_number(field: str, value: str, minimum: int, maximum: int) -> int:
    """A query parameter in ASCII digits within ``[minimum, maximum]``."""
    if not (re.fullmatch(r"[0-9]{1,18}", value) and minimum <= int(value) <= maximum):
        raise InvalidField(field, f"must be a whole number from {minimum} to {maximum}")
    return int(value)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
