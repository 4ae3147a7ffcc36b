"""Validation of API bodies: every error names the field, in one line."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.durations import parse_duration_s

DEFAULT_INTERVAL_S = 86400
DEFAULT_GRACE_S = 3600
MAX_PERIOD_S = 365 * 86400
MONITOR_FIELDS = {"name", "interval", "grace", "max_consecutive_misses", "channels", "tags"}


class InvalidField(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


def _seconds(field: str, value, minimum: int) -> int:
    if isinstance(value, bool) or value is None:
        raise InvalidField(field, "must be a number of seconds or a duration such as \"5m\"")
    if isinstance(value, (int, float)):
        seconds = float(value)
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


def monitor_fields(body, *, creating: bool, known_channels: set[str]) -> dict:
    """Validated monitor fields from a create (all, with defaults) or update (those given) body."""
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    unknown = sorted(set(body) - MONITOR_FIELDS)
    if unknown:
        raise InvalidField(unknown[0], "unknown field")
    out: dict = {}
    if "name" in body or creating:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidField("name", "required, 1-200 characters")
        out["name"] = name.strip()
    if "interval" in body or creating:
        out["interval_s"] = _seconds("interval", body.get("interval", DEFAULT_INTERVAL_S), 1)
    if "grace" in body or creating:
        out["grace_s"] = _seconds("grace", body.get("grace", DEFAULT_GRACE_S), 0)
    if "max_consecutive_misses" in body or creating:
        misses = body.get("max_consecutive_misses", 1)
        if isinstance(misses, bool) or not isinstance(misses, int) or not 1 <= misses <= 10:
            raise InvalidField("max_consecutive_misses", "must be a whole number from 1 to 10")
        out["max_consecutive_misses"] = misses
    if "channels" in body or creating:
        channels = _string_list("channels", body.get("channels", []), 50, 64)
        missing = [c for c in channels if c not in known_channels]
        if missing:
            raise InvalidField("channels", f"unknown channel id {missing[0]!r}")
        out["channels"] = channels
    if "tags" in body or creating:
        out["tags"] = _string_list("tags", body.get("tags", []), 20, 50)
    return out


def parse_time_ms(field: str, value: str | None, default: int) -> int:
    """Epoch milliseconds or an ISO-8601 time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return default
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidField(field, "must be an ISO-8601 time or epoch milliseconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
