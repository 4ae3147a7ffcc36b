"""The OpenAPI 3.1 document of the JSON API, served at ``GET /api/v1/openapi.json`` without a key.

One place describes every route, parameter, body and error; ``tests/services/query/api/
test_openapi.py`` holds it to the routes actually registered (both ways) and to the body
fields the handlers know, and ``tests/e2e/test_schemathesis.py`` holds the real server's
answers to it. Whatever the code already declares (statuses, check-in kinds, channel kinds
and their settings, limits) is read from the code here rather than copied.

The document is built on first request, not at import: a part of it lagging the code
breaks this one route (and its tests), never the API.

Paths are relative to the sub-app, as its router has them (``/heartbeats/{id}``); the
document's ``servers`` entry supplies the ``/api/v1`` prefix.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

import msgspec
from aiohttp import web

from services.notifier.channels import CHANNELS, ConfigField
from services.query.api.heartbeats import DEFAULT_LIMIT, MAX_LIMIT
from services.query.api.history import CHECKIN_KINDS, DEFAULT_PAGE_ROWS, EXPORT_FORMATS, MAX_TIMING_POINTS
from services.query.auth.accounts import MAX_NAME_CHARS
from services.query.auth.sessions import COOKIE as SESSION_COOKIE
from services.query.auth.sessions import CSRF_HEADER
from services.query.catalog import SORTS, STATUSES
from services.query.store import MAX_PAGE_ROWS, UPTIME_WINDOWS_MS
from services.query.validation import (
    DEFAULT_GRACE_S,
    MAX_CHANNEL_ID_CHARS,
    MAX_PERIOD_S,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TIME_MS,
    UNSAFE_IN_NAMES_CLASS,
)
from services.query.validation import MAX_CHANNELS as MAX_CHANNELS_PER_HEARTBEAT
from shared.events import Alert, DeliveryAttempt, MonitorStatus

OPENAPI_PATH = "/openapi.json"
"""Where the document is served, relative to the API sub-app (``/api/v1``)."""
OPENAPI_VERSION = "3.1.0"
API_PREFIX = "/api/v1"

JsonSchema = dict[str, Any]
EXPORT_MEDIA_TYPES = {fmt: content_type.split(";")[0] for fmt, (content_type, _) in EXPORT_FORMATS.items()}


# small builders ---------------------------------------------------------------------------
def _ref(name: str) -> JsonSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: JsonSchema) -> JsonSchema:
    """``schema`` (of one type) or JSON null: OpenAPI 3.1 says so with a type list."""
    return {**schema, "type": [schema["type"], "null"]}


def _object(properties: dict[str, JsonSchema], required: list[str] | None = None, *,
            description: str = "", closed: bool = False) -> JsonSchema:
    """An object schema. Answers are open (``additionalProperties`` allowed: fields may be
    added); request bodies the server checks field by field are ``closed``."""
    out: JsonSchema = {"type": "object", "properties": properties}
    if required is None:
        required = list(properties)
    if required:
        out["required"] = required
    if description:
        out["description"] = description
    if closed:
        out["additionalProperties"] = False
    return out


DURATION_PATTERN = r"^ *(?:[0-9]+(?:\.[0-9]+)?|(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d) *)+) *$"
"""What :func:`shared.durations.parse_duration_s` reads (it also takes exponents, upper case)."""
TIME_PATTERN = (
    r"^(?:[0-9]{1,15}"  # epoch milliseconds
    r"|(?:19[7-9][0-9]|[2-9][0-9]{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?)$"
)
"""The common spellings :func:`services.query.validation.parse_time_ms` reads (it reads every
ISO-8601 form ``datetime.fromisoformat`` does); the range (1970 to 9999) is checked too."""
TIMESTAMP: JsonSchema = {
    "type": "string", "format": "date-time", "examples": ["2025-01-31T23:59:59.999Z"],
    "description": "UTC, ISO-8601 with milliseconds.",
}  # fmt: skip


def _not_blank_pattern() -> str:
    """A character ``str.strip()`` keeps: regex ``\\S`` differs between dialects (ECMA's keeps
    U+0085 and U+001C-U+001F, which Python strips), so the class is spelled out."""
    spaces = [c for c in range(0x3001) if chr(c).isspace()]
    runs: list[list[int]] = []
    for c in spaces:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return "[^" + "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in runs) + "]"


NO_UNSAFE_CHARS: JsonSchema = {"not": {"pattern": UNSAFE_IN_NAMES_CLASS}}
"""Names hold no control, bidi-override or invisible characters (validation.UNSAFE_IN_NAMES)."""
NAME: JsonSchema = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS, "pattern": _not_blank_pattern(),
                    **NO_UNSAFE_CHARS,
                    "description": f"1-{MAX_NAME_CHARS} characters, not only spaces (trimmed); no control "
                                   "characters (C0, C1), bidi embeddings, overrides or isolates (U+202A-U+202E, "
                                   "U+2066-U+2069), U+200B, U+2060, U+FEFF, U+2028 or U+2029."}


def _literal_values(literal) -> list[str]:
    return list(typing.get_args(literal))


def _field_type(struct: type[msgspec.Struct], name: str):
    return next(f.type for f in msgspec.structs.fields(struct) if f.name == name)


# schemas ------------------------------------------------------------------------------------
def _error_schemas() -> dict[str, JsonSchema]:
    return {
        "Error": _object(
            {
                "error": {"type": "string", "minLength": 1, "description": "One line saying what is wrong."},
                "field": {"type": "string", "description":
                          "The field at fault (``name``, ``config.url``, ``limit``, ``body``), when one is."},
            },
            required=["error"],
            description="Every failure of the API, whatever its status.",
        ),
    }


def _project_schemas() -> dict[str, JsonSchema]:
    return {
        "CurrentProject": _object(
            {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "admin": {"type": "boolean", "description": "An admin project's keys may create projects."},
                "read_only": {"type": "boolean", "description": "Whether the key in use may only read."},
                "key_name": {"type": "string", "description": "The name of the key in use."},
                "auto_create": {"type": "boolean", "description": "Whether a ping to an unknown slug with "
                                                                  "``?create=1`` creates the heartbeat."},
                "ping_key": {"type": ["string", "null"],
                             "description": "Secret of the slug URLs ``/ping/{ping_key}/{slug}``; null until made "
                                            "(``POST /projects/me/ping-key``). Absent for a read-only key."},
            },
            required=["id", "name", "admin", "read_only", "key_name", "auto_create"],
        ),
        "ProjectUpdate": _object({"auto_create": {"type": "boolean"}}, required=[], closed=True),
        "ProjectCreate": _object({"name": NAME}, description="Other fields are ignored."),
        "ProjectCreated": _object(
            {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "api_key": {"type": "string", "description": "The new project's first key; shown only now."},
                "key_id": {"type": "string", "description": "That key's id (to revoke it)."},
            },
        ),
    }


def _key_schemas() -> dict[str, JsonSchema]:
    key = {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "read_only": {"type": "boolean"},
        "created_at": TIMESTAMP,
    }
    create = {"name": NAME, "read_only": {"type": "boolean", "default": False,
                                          "description": "May only read, and never sees ping tokens or URLs."}}
    return {
        "ApiKey": _object(key, description="An API key of the project; the key itself is never shown again."),
        "ApiKeyCreate": _object(create, required=["name"], closed=True),
        "ApiKeyCreated": _object({**key, "key": {"type": "string", "description": "The key; shown only now."}}),
        "ApiKeyList": _object({"keys": {"type": "array", "items": _ref("ApiKey")}}),
        "Session": _object(
            {
                "project": _object({"id": {"type": "string"}, "name": {"type": "string"}}),
                "key_name": {"type": "string"},
                "read_only": {"type": "boolean"},
                "csrf_token": {"type": ["string", "null"], "description":
                               f"Send it back in ``{CSRF_HEADER}`` on every write made with the session cookie. "
                               "Null when the caller used a key rather than the cookie."},
            },
        ),
    }


def _period(field: str, minimum_s: int, default_s: int | None, when_absent: str = "") -> JsonSchema:
    return {
        "description": f"Seconds, or a duration such as ``\"5m\"``, ``\"1h30m\"``; {minimum_s} s to 365 days. "
                       + (f"Default {default_s}." if default_s is not None else when_absent),
        "oneOf": [
            {"type": "integer", "minimum": minimum_s, "maximum": MAX_PERIOD_S},
            {"type": "string", "pattern": DURATION_PATTERN, "examples": ["90", "90s", "5m", "1h30m", "1d"]},
        ],
    }


def _schedule_and_run_fields() -> dict[str, JsonSchema]:
    """Heartbeat body fields of schedules, runs, recovery and reminders."""
    from services.evaluator.schedule import ALIASES, MAX_EXPRESSION_CHARS
    from services.query.validation import MIN_REMINDER_INTERVAL_S

    def optional_period(minimum_s: int, when_null: str) -> JsonSchema:
        return {
            "description": f"Seconds, or a duration such as ``\"5m\"``, ``\"4h\"``; {minimum_s} s to 365 days. "
                           f"Null (the default): {when_null}.",
            "oneOf": [*_period("", minimum_s, 0)["oneOf"], {"type": "null"}],
        }  # fmt: skip

    return {
        "schedule": {
            "type": ["string", "null"], "minLength": 1, "maxLength": MAX_EXPRESSION_CHARS,
            "examples": ["0 2 * * *", "*/15 * * * 1-5", "@daily"],
            "description": "A cron expression (5 fields) or one of " + ", ".join(ALIASES) + ", read in "
                           "``timezone``: the check-in is expected at the schedule's next run after the last "
                           "one. Not together with ``interval``; an update giving ``interval`` leaves schedule "
                           "mode. Null (the default): interval mode.",
        },
        "timezone": {"type": "string", "default": "UTC", "examples": ["Europe/Berlin", "America/New_York"],
                     "description": "IANA time zone name the ``schedule`` is read in."},
        "max_runtime": optional_period(1, "the grace period"),
        "recovery_threshold": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1,
                               "description": "Successes in a row that end an incident (the ``up`` alert)."},
        "reminder_interval": optional_period(MIN_REMINDER_INTERVAL_S, "no reminders"),
    }  # fmt: skip


def _heartbeat_schemas() -> dict[str, JsonSchema]:
    channels = {"type": "array", "maxItems": MAX_CHANNELS_PER_HEARTBEAT,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_CHANNEL_ID_CHARS},
                "description": "Ids of this project's channels, alerted when the heartbeat goes down or up."}
    tags = {"type": "array", "maxItems": MAX_TAGS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS, **NO_UNSAFE_CHARS}}
    fields = {
        "name": NAME,
        "interval": _period("interval", 1, None, "On create: required, unless a ``schedule`` is given (no "
                                                 "default period)."),
        "grace": _period("grace", 0, DEFAULT_GRACE_S),
        "max_consecutive_misses": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1,
                                   "description": "Misses in a row before it is down."},
        "channels": channels,
        "tags": tags,
        **_schedule_and_run_fields(),
        "slug": {"type": ["string", "null"], "pattern": "^[a-z0-9_-]{1,100}$",
                 "description": "Its name in the slug URL ``/ping/{ping_key}/{slug}``, unique in the project; "
                                "null: none."},
    }
    heartbeat = _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "status_since": _nullable(TIMESTAMP),
            "status_reason": {"type": ["string", "null"]},
            "last_checkin_at": _nullable(TIMESTAMP),
            "next_expected_at": _nullable(TIMESTAMP),
            "interval": {"type": ["integer", "null"], "description": "Seconds; null in schedule mode."},
            "grace": {"type": "integer", "description": "Seconds."},
            "max_consecutive_misses": {"type": "integer"},
            "schedule": {"type": ["string", "null"], "description": "Cron expression; null in interval mode."},
            "timezone": {"type": "string"},
            "max_runtime": {"type": ["integer", "null"], "description": "Seconds; null: the grace period."},
            "recovery_threshold": {"type": "integer"},
            "reminder_interval": {"type": ["integer", "null"], "description": "Seconds; null: no reminders."},
            "channels": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "slug": {"type": ["string", "null"]},
            "paused": {"type": "boolean"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "token": {"type": "string", "description": "Absent for a read-only key."},
            "ping_url": {"type": "string", "description": "Absent for a read-only key."},
        },
        required=["id", "name", "status", "status_since", "status_reason", "last_checkin_at", "next_expected_at",
                  "interval", "grace", "max_consecutive_misses", "channels", "tags", "paused", "created_at",
                  "updated_at"],  # fmt: skip
    )
    counts = _object({s: {"type": "integer", "minimum": 0} for s in STATUSES},
                     description="How many of the project's heartbeats are in each status (filters aside).")
    return {
        "Heartbeat": heartbeat,
        "HeartbeatCreate": {
            **_object(fields, required=["name"], closed=True),
            # As the server: an interval, or a schedule that is not null (never both: see schedule).
            "anyOf": [{"required": ["interval"]},
                      {"required": ["schedule"], "properties": {"schedule": {"type": "string"}}}],
        },
        "HeartbeatUpdate": _object(fields, required=[], closed=True),
        "HeartbeatList": _object(
            {"heartbeats": {"type": "array", "items": _ref("Heartbeat")},
             "next": {"type": ["string", "null"],
                      "description": "Cursor of the next page (``before``); null at the end."},
             "counts": counts},
        ),
    }


def _history_schemas() -> dict[str, JsonSchema]:
    checkin = {
        "id": {"type": "string"},
        "received_at": TIMESTAMP,
        "kind": {"type": "string", "enum": list(CHECKIN_KINDS)},
        "exit_code": {"type": ["integer", "null"], "minimum": 0, "maximum": 255},
        "status": {"type": ["string", "null"]},
        "message": {"type": ["string", "null"]},
        "duration": {"type": ["number", "null"], "description": "Seconds."},
        "duration_raw": {"type": ["string", "null"], "description": "The duration as the ping spelled it."},
        "source_ip": {"type": "string"},
        "user_agent": {"type": "string"},
        "method": {"type": "string"},
        "measured_duration": {"type": ["number", "null"],
                              "description": "Seconds from the run's ``start`` to this ping that ended it, as "
                                             "the evaluator measured it (null: no start, or the job sent a "
                                             "duration)."},
        "rid": {"type": ["string", "null"], "description": "The run id the ping carried (``?rid=``, a UUID; or "
                                                           "Cronitor's ``series``), tying a start to its end."},
        "output": {"type": ["string", "null"], "description": "The job's output: the ping's text body, its first "
                                                              "``PINGURA_MAX_OUTPUT_BYTES`` (100 KiB)."},
        "output_truncated": {"type": "boolean", "description": "The body was longer; the rest was dropped. In a "
                                                                "page, also true when only the first 2,000 "
                                                                "characters are shown: the check-in itself has all."},
    }
    percent = {"type": ["number", "null"], "minimum": 0, "maximum": 100,
               "description": "Percent of the observed time not spent down; null when nothing was observed."}
    stat = {"type": ["number", "null"], "description": "Seconds, over the pings with a duration: the measured "
                                                        "one, else the one reported."}
    return {
        "Checkin": _object({**checkin, "received_at_ms": {"type": "integer"}},
                           required=[*checkin]),
        "CheckinPage": _object({"checkins": {"type": "array", "items": _ref("Checkin")},
                                "next": {"type": ["string", "null"]}}),
        "ExportRow": _object(checkin),
        "Uptime": _object(
            {
                "heartbeat_id": {"type": "string"},
                "uptime": _object({window: percent for window in UPTIME_WINDOWS_MS}),
                "range": _object(
                    {
                        "from": TIMESTAMP,
                        "to": TIMESTAMP,
                        "uptime": percent,
                        "outages": {"type": "integer", "minimum": 0,
                                    "description": "Stretches down within the range (one begun before counts)."},
                        "downtime_s": {"type": "number", "minimum": 0},
                        "observed_s": {"type": "number", "minimum": 0,
                                       "description": "Time watched: not new nor paused, in the heartbeat's life."},
                    },
                    description="Present when ``from`` or ``to`` was given.",
                ),
            },
            required=["heartbeat_id", "uptime"],
        ),
        "TimingPoint": _object(
            {
                "bucket": TIMESTAMP,
                "bucket_ms": {"type": "integer"},
                "count": {"type": "integer", "minimum": 0, "description": "Pings (misses aside)."},
                "avg_duration_s": stat,
                "p50_duration_s": stat,
                "p95_duration_s": stat,
                "max_duration_s": stat,
                "fails": {"type": "integer", "minimum": 0},
                "misses": {"type": "integer", "minimum": 0},
            },
        ),
        "Timings": _object({"heartbeat_id": {"type": "string"}, "bucket_s": {"type": "integer", "minimum": 60},
                            "points": {"type": "array", "items": _ref("TimingPoint")}}),
        "StatusChange": _object(
            {
                "id": {"type": "string"},
                "at": TIMESTAMP,
                "status": {"type": "string", "enum": _literal_values(MonitorStatus)},
                "previous": {"type": "string", "enum": _literal_values(MonitorStatus)},
                "reason": {"type": "string"},
            },
        ),
        "StatusChangePage": _object({"changes": {"type": "array", "items": _ref("StatusChange")},
                                     "next": {"type": ["string", "null"]}}),
    }


def _delivery_schemas() -> dict[str, JsonSchema]:
    kind = {"type": "string", "enum": [*_literal_values(_field_type(DeliveryAttempt, "kind")), ""],
            "description": "The alert's kind (``test``: a test notification); empty in rows older than kinds."}
    status_code = {"type": ["integer", "null"], "description": "The receiver's answer (HTTP status or SMTP code)."}
    return {
        "DeliveryAttempt": _object(
            {
                "id": {"type": "string"},
                "alert_id": {"type": "string"},
                "kind": kind,
                "heartbeat_id": {"type": ["string", "null"], "description": "Null for a test notification."},
                "channel_id": {"type": "string"},
                "attempt": {"type": "integer", "minimum": 0, "description": "1 for the first try of the pair."},
                "outcome": {"type": "string", "enum": _literal_values(_field_type(DeliveryAttempt, "outcome"))},
                "ok": {"type": "boolean"},
                "attempts": {"type": "integer", "minimum": 0},
                "status_code": status_code,
                "error": {"type": "string", "description": "Why it failed; empty when delivered."},
                "latency_ms": {"type": "integer", "minimum": 0},
                "at": TIMESTAMP,
                "next_attempt_at": _nullable(TIMESTAMP),
                "digest": {"type": "integer", "minimum": 0,
                           "description": "How many alerts the message carried; 0: this one alone."},
                "resend": {"type": "boolean", "description": "Sent again by a person."},
            },
            description="One try to send one alert to one channel.",
        ),
        "DeliveryAttemptPage": _object({"deliveries": {"type": "array", "items": _ref("DeliveryAttempt")},
                                        "next": {"type": ["string", "null"]}}),
        "FailedDelivery": _object(
            {
                "id": {"type": "string", "description": "``{alert_id}|{channel_id}``: what a resend names."},
                "alert_id": {"type": "string"},
                "kind": {"type": "string", "enum": _literal_values(_field_type(Alert, "kind"))},
                "heartbeat_id": {"type": "string"},
                "heartbeat_name": {"type": "string"},
                "channel_id": {"type": "string"},
                "attempts": {"type": "integer", "minimum": 0},
                "status_code": status_code,
                "error": {"type": "string"},
                "failed_at": TIMESTAMP,
            },
            description="A dead letter: an alert whose delivery to a channel failed for good.",
        ),
        "FailedDeliveryPage": _object({"failed": {"type": "array", "items": _ref("FailedDelivery")},
                                       "next": {"type": ["string", "null"]}}),
        "DeliveryResult": _object(
            {
                "ok": {"type": "boolean"},
                "status_code": {"type": "integer", "description": "Present when the receiver answered."},
                "error": {"type": "string", "description": "Present when it failed."},
                "latency_ms": {"type": "integer", "minimum": 0},
                "attempt": {"type": "integer", "minimum": 1, "description": "The try's number (resends only)."},
            },
            required=["ok", "latency_ms"],
            description="How a try made by this request went.",
        ),
    }


_SETTING_TYPES: dict[str, JsonSchema] = {
    "string": {"type": "string"},
    "url": {"type": "string", "format": "uri"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "map": {"type": "object", "additionalProperties": {"type": "string"}},
    "list": {"type": "array", "items": {"type": "string"}},
    "text": {"type": "string"},
}


def _setting_schema(field: ConfigField) -> JsonSchema:
    schema = {**_SETTING_TYPES[field.type], "description": field.help}
    if field.choices is not None:
        schema["enum"] = list(field.choices)
    return schema


def _config_schema_name(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.replace("-", "_").split("_")) + "Config"


def _channel_schemas() -> dict[str, JsonSchema]:
    """A channel body per kind, each from the kind's own declaration of its settings."""
    configs = {
        _config_schema_name(kind): _object(
            {f.name: _setting_schema(f) for f in channel.config_fields},
            required=[f.name for f in channel.config_fields if f.required],
            description=f"Settings of a ``{kind}`` channel (see ``GET /channel-kinds``).", closed=True,
        )
        for kind, channel in sorted(CHANNELS.items())
    }
    bodies = [
        _object(
            {
                "kind": {"type": "string", "const": kind},
                "name": {"type": "string", "maxLength": MAX_NAME_CHARS, **NO_UNSAFE_CHARS,
                         "description": "Defaults to the kind; the characters of a name (see ``name`` of "
                                        "``HeartbeatCreate``)."},
                "config": _ref(_config_schema_name(kind)),
            },
            # Without settings the config is {}: required only when some setting is.
            required=["kind", "config"] if any(f.required for f in channel.config_fields) else ["kind"],
            closed=True,
        )
        for kind, channel in sorted(CHANNELS.items())
    ]
    return {
        **configs,
        "ChannelCreate": {"oneOf": bodies, "description": f"One of the kinds: {', '.join(sorted(CHANNELS))}."},
        "Channel": _object(
            {
                "id": {"type": "string"},
                "kind": {"type": "string"},
                "name": {"type": "string"},
                "config": {"type": "object", "description": "As saved, with secret settings masked (``****abcd``)."},
                "created_at": TIMESTAMP,
            },
        ),
        "ChannelList": _object({"channels": {"type": "array", "items": _ref("Channel")}}),
        "ChannelKind": _object(
            {
                "kind": {"type": "string"},
                "label": {"type": "string"},
                "settings": {"type": "array", "items": _object(
                    {
                        "name": {"type": "string"},
                        "type": {"type": "string", "enum": list(_SETTING_TYPES)},
                        "required": {"type": "boolean"},
                        "secret": {"type": "boolean"},
                        "help": {"type": "string"},
                        "choices": {"type": "array", "items": {"type": "string"}},
                    },
                    required=["name", "type", "required", "secret", "help"],
                )},
                "available": {"type": "boolean", "description": "Whether this server can make channels of it."},
                "unavailable_reason": {"type": "string", "description": "Why not, when not (e.g. no SMTP server)."},
            },
            required=["kind", "label", "settings", "available"],
        ),
        "ChannelKindList": _object({"kinds": {"type": "array", "items": _ref("ChannelKind")}}),
    }


# parameters and responses -------------------------------------------------------------------
def _query(name: str, schema: JsonSchema, description: str, *, empty_is_absent: bool = False) -> JsonSchema:
    """A query parameter; ``empty_is_absent``: the server reads ``?name=`` as if it were not sent."""
    param = {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    if empty_is_absent:
        param["allowEmptyValue"] = True
    return param


ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _limit(default: int, maximum: int) -> JsonSchema:
    return _query("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
                  f"Rows per page, 1-{maximum} (ASCII digits).")


LIMIT = _limit(DEFAULT_PAGE_ROWS, MAX_PAGE_ROWS)
BEFORE = _query("before", {"type": "string"}, "The ``next`` of the previous page.")
TIME = {"type": "string", "pattern": TIME_PATTERN,
        "description": "ISO-8601 (UTC unless it says otherwise) or epoch milliseconds, from 1970-01-01 to 9999-12-31.",
        "examples": ["2025-01-01T00:00:00Z", "1735689600000", str(MAX_TIME_MS)]}
FROM = _query("from", TIME, "Start of the range (inclusive).", empty_is_absent=True)
TO = _query("to", TIME, "End of the range (exclusive); default now.", empty_is_absent=True)
CSRF = {"name": CSRF_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
        "description": "Required with the session cookie (from ``GET /session``); ignored with a key."}

_ERRORS = {
    "400": "Bad input: ``field`` names the culprit.",
    "401": "No key or session, or an unknown, revoked or expired one.",
    "403": "A read-only key writing, a non-admin key creating a project, a key revoking itself, or a "
           f"write with the session cookie but without its ``{CSRF_HEADER}``.",
    "404": "No such resource in the caller's project (another project's ids are 404 too).",
    "405": "The path exists, but not with this method (``Allow`` lists those that do).",
    "413": "The body is larger than the server accepts.",
    "415": "A body that is not JSON (``Content-Type`` other than JSON, or a charset other than UTF-8).",
    "429": "Too many wrong API keys or failed sign-ins from the caller's address; retry after "
           "``Retry-After`` seconds (a valid key is still accepted).",
    "503": "The event bus is unavailable; retry after ``Retry-After`` seconds.",
}


_ERROR_NAMES = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
                "405": "MethodNotAllowed", "413": "PayloadTooLarge", "415": "UnsupportedMediaType",
                "429": "TooManyRequests", "503": "Unavailable"}  # fmt: skip
"""The components every operation's failures point at. 405 is declared by none: it is the
answer to a method an operation does not have."""


def _error_responses() -> dict[str, JsonSchema]:
    out = {}
    for status, name in _ERROR_NAMES.items():
        response: JsonSchema = {"description": _ERRORS[status],
                                "content": {"application/json": {"schema": _ref("Error")}}}
        if status == "405":
            response["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True}}
        if status in ("429", "503"):
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": True,
                                                   "description": "Seconds to wait before trying again."}}
        out[name] = response
    return out


def _json(schema: JsonSchema, description: str) -> JsonSchema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, JsonSchema], *, tag: str, params: list[JsonSchema] | None = None,
        body: str | None = None, errors: tuple[str, ...] = (), public: bool = False,
        write: bool = False, operation_id: str) -> JsonSchema:
    """One operation. Every authenticated one may answer 401, 429 (wrong keys) and 503
    (resolving a key may read the bus); a write also 403, and with a body 400, 413 and 415."""
    statuses = set(errors)
    if not public:
        statuses |= {"401", "429", "503"}
    if write:
        statuses |= {"403"}
    if body is not None:
        statuses |= {"400", "413", "415"}
    responses = dict(ok)
    for status in sorted(statuses):
        responses[status] = {"$ref": f"#/components/responses/{_ERROR_NAMES[status]}"}
    op: JsonSchema = {"operationId": operation_id, "summary": summary, "tags": [tag], "responses": responses}
    parameters = list(params or [])
    if write:
        parameters.append({"$ref": "#/components/parameters/CsrfToken"})
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if public:
        op["security"] = []
    return op


# paths -----------------------------------------------------------------------------------------
KIND = f"(?:{'|'.join(CHECKIN_KINDS)})"


def _paths() -> dict[str, dict[str, JsonSchema]]:
    heartbeat = _json(_ref("Heartbeat"), "The heartbeat.")
    by_id = [ID_PARAM]
    no_content = {"204": {"description": "Done."}}
    return {
        OPENAPI_PATH: {
            "get": _op("This document", {"200": _json({"type": "object"}, "OpenAPI 3.1 document.")},
                       tag="meta", public=True, operation_id="getOpenApi"),
        },
        "/session": {
            "get": _op("Who is calling: project, key, and the CSRF token of a session",
                       {"200": _json(_ref("Session"), "The caller.")}, tag="auth", operation_id="getSession"),
        },
        "/projects": {
            "post": _op("Create a project (admin key only)",
                        {"201": _json(_ref("ProjectCreated"), "Created; its first key is in ``api_key``.")},
                        tag="projects", body="ProjectCreate", write=True, operation_id="createProject"),
        },
        "/projects/me": {
            "get": _op("The caller's project", {"200": _json(_ref("CurrentProject"), "The project.")},
                       tag="projects", operation_id="getCurrentProject"),
            "patch": _op("Change the caller's project (whether pings may create heartbeats)",
                         {"200": _json(_ref("CurrentProject"), "The project.")}, tag="projects",
                         body="ProjectUpdate", write=True, operation_id="updateCurrentProject"),
        },
        "/projects/me/ping-key": {
            "post": _op("Make the project's ping key for slug URLs, or a new one (the old one stops working)",
                        {"200": _json(_ref("CurrentProject"), "The project, with its ping key.")}, tag="projects",
                        write=True, operation_id="rotatePingKey"),
        },
        "/keys": {
            "get": _op("The project's live API keys", {"200": _json(_ref("ApiKeyList"), "Oldest first.")},
                       tag="keys", operation_id="listKeys"),
            "post": _op("Create an API key", {"201": _json(_ref("ApiKeyCreated"), "Created; ``key`` is shown once.")},
                        tag="keys", body="ApiKeyCreate", write=True, operation_id="createKey"),
        },
        "/keys/{id}": {
            "delete": _op("Revoke an API key", no_content, tag="keys", params=by_id, errors=("404",), write=True,
                          operation_id="revokeKey"),
        },
        "/heartbeats": {
            "get": _op(
                "The project's heartbeats by name (or by creation, or problems first), a page at a time, and the counts"
                " per status",
                {"200": _json(_ref("HeartbeatList"), "A page, and the counts per status.")},
                tag="heartbeats", errors=("400",), operation_id="listHeartbeats",
                params=[
                    _limit(DEFAULT_LIMIT, MAX_LIMIT),
                    _query("before", {"type": "string"}, "The ``next`` of the previous page (same ``sort``).",
                           empty_is_absent=True),
                    _query("sort", {"type": "string", "enum": list(SORTS), "default": SORTS[0]},
                           "By name (case-insensitive); by creation, oldest first; or ``status``: down, then late,"
                           " then the rest, each by name."),
                    _query("status", {"type": "string", "enum": list(STATUSES)}, "Only heartbeats in this status.",
                           empty_is_absent=True),
                    _query("tag", {"type": "string"}, "Only heartbeats carrying this tag.", empty_is_absent=True),
                    _query("q", {"type": "string"}, "Only heartbeats whose name contains this (any case).",
                           empty_is_absent=True),
                ],
            ),
            "post": _op("Create a heartbeat (``name``, and an ``interval`` or a ``schedule``)", {"201": heartbeat},
                        tag="heartbeats", body="HeartbeatCreate",
                        write=True, operation_id="createHeartbeat"),
        },
        "/heartbeats/{id}": {
            "get": _op("A heartbeat", {"200": heartbeat}, tag="heartbeats", params=by_id, errors=("404",),
                       operation_id="getHeartbeat"),
            "patch": _op("Change a heartbeat (only the fields given)", {"200": heartbeat}, tag="heartbeats",
                         params=by_id, body="HeartbeatUpdate", errors=("404",), write=True,
                         operation_id="updateHeartbeat"),
            "delete": _op("Delete a heartbeat", no_content, tag="heartbeats", params=by_id, errors=("404",),
                          write=True, operation_id="deleteHeartbeat"),
        },
        **{
            f"/heartbeats/{{id}}/{verb}": {
                "post": _op(summary, {"200": heartbeat}, tag="heartbeats", params=by_id, errors=("404",),
                            write=True, operation_id=operation_id),
            }
            for verb, summary, operation_id in (
                ("pause", "Pause: no alerts, no misses, until resumed", "pauseHeartbeat"),
                ("resume", "Resume a paused heartbeat", "resumeHeartbeat"),
                ("rotate-token", "Give the heartbeat a new ping token (the old URL stops working)", "rotateToken"),
            )
        },
        "/heartbeats/{id}/checkins": {
            "get": _op(
                "Check-ins (pings and misses), newest first, a page at a time",
                {"200": _json(_ref("CheckinPage"), "A page.")}, tag="history", errors=("400", "404"),
                operation_id="listCheckins",
                params=[ID_PARAM, LIMIT, BEFORE,
                        _query("kind", {"type": "string", "pattern": f"^{KIND}(?:,{KIND})*$",
                                        "examples": ["fail", "fail,missed"]},
                               f"Only check-ins of these kinds, comma-separated: {', '.join(CHECKIN_KINDS)}.",
                               empty_is_absent=True),
                        FROM, TO],
            ),
        },
        "/heartbeats/{id}/checkins/{checkin_id}": {
            "get": _op(
                "One check-in whole, with all of its output",
                {"200": _json(_ref("Checkin"), "The check-in.")}, tag="history", errors=("404",),
                operation_id="getCheckin",
                params=[ID_PARAM, {"name": "checkin_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            ),
        },
        "/heartbeats/{id}/uptime": {
            "get": _op("Uptime over the last 24h, 7d, 30d and 90d, and over a range if asked",
                       {"200": _json(_ref("Uptime"), "Percentages.")}, tag="history", errors=("400", "404"),
                       params=[ID_PARAM, FROM, TO], operation_id="getUptime"),
        },
        "/heartbeats/{id}/timings": {
            "get": _op(
                "Durations and outcomes per time bucket (only buckets holding check-ins)",
                {"200": _json(_ref("Timings"), "Oldest bucket first.")}, tag="history", errors=("400", "404"),
                operation_id="getTimings",
                params=[ID_PARAM, FROM, TO,
                        _query("bucket", {"type": "string", "pattern": DURATION_PATTERN, "examples": ["1m", "1h"]},
                               f"Bucket length, a duration of at least 1m; at most {MAX_TIMING_POINTS} buckets in "
                               "the range. Default: the roundest one giving about 500.", empty_is_absent=True)],
            ),
        },
        "/heartbeats/{id}/export": {
            "get": _op(
                "Every check-in in a range, oldest first, as a download",
                {"200": {
                    "description": "A streamed file (``Content-Disposition: attachment``).",
                    "content": {
                        EXPORT_MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
                        EXPORT_MEDIA_TYPES["json"]: {"schema": {"type": "array", "items": _ref("ExportRow")}},
                        EXPORT_MEDIA_TYPES["jsonl"]: {"schema": {"type": "string"}},
                    },
                }},
                tag="history", errors=("400", "404"), operation_id="exportCheckins",
                params=[ID_PARAM,
                        _query("format", {"type": "string", "enum": list(EXPORT_FORMATS), "default": "csv"},
                               "csv, a JSON array, or JSON lines (one object a line). CSV (RFC 4180, CRLF): "
                               "booleans true/false, null empty, and a text cell starting with = + - @ tab or "
                               "CR gets a leading ' so that no spreadsheet runs it as a formula; JSON is exact."),
                        FROM, TO],
            ),
        },
        "/heartbeats/{id}/status-changes": {
            "get": _op("Status changes, newest first, a page at a time",
                       {"200": _json(_ref("StatusChangePage"), "A page.")}, tag="history", errors=("400", "404"),
                       params=[ID_PARAM, LIMIT, BEFORE], operation_id="listStatusChanges"),
        },
        "/heartbeats/{id}/deliveries": {
            "get": _op("Every try to send the heartbeat's alerts to its channels, newest first, a page at a time",
                       {"200": _json(_ref("DeliveryAttemptPage"), "A page.")}, tag="deliveries",
                       errors=("400", "404"), params=[ID_PARAM, LIMIT, BEFORE], operation_id="listDeliveries"),
        },
        "/channels": {
            "get": _op("The project's channels, oldest first", {"200": _json(_ref("ChannelList"), "The channels.")},
                       tag="channels", operation_id="listChannels"),
            "post": _op("Create a channel", {"201": _json(_ref("Channel"), "Created.")}, tag="channels",
                        body="ChannelCreate", write=True, operation_id="createChannel"),
        },
        "/channels/{id}": {
            "get": _op("A channel", {"200": _json(_ref("Channel"), "The channel.")}, tag="channels", params=by_id,
                       errors=("404",), operation_id="getChannel"),
            "delete": _op("Delete a channel", no_content, tag="channels", params=by_id, errors=("404",), write=True,
                          operation_id="deleteChannel"),
        },
        "/channels/{id}/deliveries": {
            "get": _op("Every try to send to the channel (test notifications included), newest first",
                       {"200": _json(_ref("DeliveryAttemptPage"), "A page.")}, tag="deliveries",
                       errors=("400", "404"), params=[ID_PARAM, LIMIT, BEFORE],
                       operation_id="listChannelDeliveries"),
        },
        "/channels/{id}/test": {
            "post": _op("Send a test notification to the channel now (recorded with its deliveries)",
                        {"200": _json(_ref("DeliveryResult"), "How it went (a failed send is still a 200).")},
                        tag="deliveries", params=by_id, errors=("404",), write=True, operation_id="testChannel"),
        },
        "/deliveries/failed": {
            "get": _op("The project's dead letters, newest first, a page at a time",
                       {"200": _json(_ref("FailedDeliveryPage"), "A page.")}, tag="deliveries", errors=("400",),
                       params=[LIMIT, BEFORE], operation_id="listFailedDeliveries"),
        },
        "/deliveries/failed/{id}/resend": {
            "post": _op("Send a dead letter's alert to its channel once more (delivered, it leaves the list)",
                        {"200": _json(_ref("DeliveryResult"), "How it went.")}, tag="deliveries", params=by_id,
                        errors=("404",), write=True, operation_id="resendFailedDelivery"),
        },
        "/channel-kinds": {
            "get": _op("Every channel kind and its settings (what a channel form is drawn from)",
                       {"200": _json(_ref("ChannelKindList"), "By kind name.")}, tag="channels",
                       operation_id="listChannelKinds"),
        },
    }


_STATUS_LINES = "\n".join(f"- {status}: {text}" for status, text in _ERRORS.items())
DESCRIPTION = f"""\
Pingura's JSON API. Every request but this document's needs credentials, one of:

- a project API key, as ``Authorization: Bearer <key>`` or ``X-Api-Key: <key>``;
- the dashboard's session cookie ``{SESSION_COOKIE}`` (from ``POST /login``); a write made with
  it must also send the session's CSRF token (``GET {API_PREFIX}/session``) in ``{CSRF_HEADER}``.

A key header wins over the cookie. A read-only key may only read, and never sees ping
tokens or ping URLs.

Every failure is JSON: ``{{"error": "one line", "field": "the field at fault"}}``, with
``field`` present when one field is at fault. The statuses:
{_STATUS_LINES}

A 500 is a bug: its body is fixed and echoes nothing; the operator finds the cause in the
logs (``query.api.error``).
"""


def build_document(server_url: str = API_PREFIX) -> dict[str, Any]:
    """The whole document, as plain JSON data."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Pingura API", "version": "v1", "description": DESCRIPTION,
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"apiKey": []}, {"session": []}],
        "tags": [{"name": t} for t in ("meta", "auth", "projects", "keys", "heartbeats", "history", "channels", "deliveries")],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A project API key."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "A project API key."},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE, "description":
                            f"The dashboard's session; writes also need ``{CSRF_HEADER}``."},
            },
            "parameters": {"CsrfToken": CSRF},
            "responses": _error_responses(),
            "schemas": {
                **_error_schemas(), **_project_schemas(), **_key_schemas(), **_heartbeat_schemas(),
                **_history_schemas(), **_delivery_schemas(), **_channel_schemas(),
            },
        },
    }


@functools.cache
def document_bytes() -> bytes:
    """The document as served (built once: it depends on the code alone)."""
    return msgspec.json.encode(build_document())


async def serve_openapi(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: public, like any API's description."""
    return web.Response(body=document_bytes(), content_type="application/json",
                        headers={"Cache-Control": "no-cache"})


serve_openapi.public = True  # type: ignore[attr-defined]  # errors._authenticate lets it through without credentials
