"""The API's scalar input rules (names, periods, times, whole numbers): every refusal names the
field, in one line. The body and query-string types (:mod:`services.query.api.schemas`) use them.

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
from shared.clock import MAX_ISO_MS, now_ms
from shared.durations import parse_duration_s
from shared.errors import PinguraError

MAX_CHANNELS = 50
MAX_CHANNEL_ID_CHARS = 64
MAX_TAGS = 20
MAX_TAG_CHARS = 50
DEFAULT_INTERVAL_S = 86400
"""The interval of a heartbeat a ping to an unknown slug creates (``services.ingest.provision``
holds the same; a test keeps them equal). The API has no default: a create gives an
``interval`` or a ``schedule``."""
DEFAULT_GRACE_S = 3600
INTERVAL_REQUIRED = 'required (e.g. "5m", "1h" or seconds), unless a schedule is given'
MAX_PERIOD_S = 365 * 86400
MIN_REMINDER_INTERVAL_S = 60

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_TIME_MS = 0
MAX_TIME_MS = MAX_ISO_MS  # 9999-12-31T23:59:59.999Z, the last instant ISO-8601 years can spell
# ASCII only: str.isdigit() and int() also take "²" or "١٢٣", and int() refuses 4300+ digits.
_EPOCH_MS = re.compile(r"[0-9]{1,20}")


class InvalidField(PinguraError, ValueError):
    """Input the API refuses: ``field`` names the culprit; ``status`` is the 4xx to answer."""

    def __init__(self, field: str, problem: str, status: int = 400):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.status = status


def seconds(field: str, value, minimum: int, maximum: int = MAX_PERIOD_S) -> int:
    """A period in whole seconds from ``minimum`` to ``maximum`` (365 days; a whole number of
    days): a number, or a duration string."""
    if isinstance(value, bool) or value is None:
        raise InvalidField(field, 'must be a number of seconds or a duration such as "5m"')
    if isinstance(value, int):
        amount: int | float = value  # as is: float() of a 400-digit number overflows
    elif isinstance(value, float):
        amount = value if math.isfinite(value) else -1.0  # int(inf) below would raise; -1 is out of range
    elif isinstance(value, str):
        try:
            amount = parse_duration_s(value)
        except ValueError as exc:
            raise InvalidField(field, str(exc)) from None
    else:
        raise InvalidField(field, 'must be a number of seconds or a duration such as "5m"')
    if amount != int(amount):
        raise InvalidField(field, "must be a whole number of seconds")
    if not minimum <= amount <= maximum:
        raise InvalidField(field, f"must be between {minimum} second(s) and {maximum // 86400} days")
    return int(amount)


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
        raise InvalidField(
            field, f"required, 1-{max_chars} characters" if required else f"at most {max_chars} characters"
        )
    return safe_text(field, name)


def safe_text(field: str, text: str) -> str:
    """``text`` as it is, if it holds none of :data:`UNSAFE_IN_NAMES` (tags: names not trimmed)."""
    unsafe = UNSAFE_IN_NAMES.search(text)
    if unsafe:
        raise InvalidField(
            field,
            f"must not hold control, bidi-override or invisible characters "
            f"(U+{ord(unsafe.group()):04X} at {unsafe.start() + 1})",
        )
    return text


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


def zone_field(field: str, name: str) -> None:
    """``name`` is an IANA time zone, or :class:`InvalidField` naming ``field``."""
    try:
        zone(name)
    except InvalidSchedule as exc:
        raise InvalidField(field, str(exc)) from None


def schedule_field(field: str, expression: str, timezone: str) -> str:
    """A cron schedule (read in ``timezone``) that runs, as kept; or :class:`InvalidField`."""
    try:
        return check_schedule(expression, timezone, now_ms())
    except InvalidSchedule as exc:
        raise InvalidField(field, str(exc)) from None
