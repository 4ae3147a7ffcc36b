"""The OpenAPI 3.1 document of the JSON API, served at ``GET /api/v1/openapi.json`` without a key.

One place describes every route, parameter, body and error; ``tests/services/query/api/
test_openapi.py`` holds it to the routes actually registered (both ways), and
``tests/e2e/test_schemathesis.py`` holds the real server's answers to it. Whatever the code
already declares (statuses, check-in kinds, channel kinds and their settings, limits) is
read from the code here rather than copied, so the two cannot drift apart silently.

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
from services.query.api.history import (
    CHECKIN_KINDS,
    DEFAULT_PAGE_ROWS,
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    MAX_TIMING_POINTS,
)
from services.query.api.keys import KEY_FIELDS
from services.query.auth.accounts import MAX_NAME_CHARS
from services.query.auth.sessions import COOKIE as SESSION_COOKIE
from services.query.auth.sessions import CSRF_HEADER
from services.query.catalog import SORTS, STATUSES
from services.query.store import MAX_PAGE_ROWS, UPTIME_WINDOWS_MS
from services.query.validation import DEFAULT_GRACE_S, DEFAULT_INTERVAL_S, MAX_PERIOD_S, MAX_TIME_MS, MONITOR_FIELDS
from shared.events import MonitorStatus

OPENAPI_PATH = "/openapi.json"
"""Where the document is served, relative to the API sub-app (``/api/v1``)."""
OPENAPI_VERSION = "3.1.0"
API_PREFIX = "/api/v1"
MAX_CHANNELS_PER_HEARTBEAT = 50
MAX_CHANNEL_ID_CHARS = 64
MAX_TAGS = 20
MAX_TAG_CHARS = 50

JsonSchema = dict[str, Any]
EXPORT_MEDIA_TYPES = {fmt: content_type.split(";")[0] for fmt, (content_type, _) in EXPORT_FORMATS.items()}


# small builders ---------------------------------------------------------------------------
def _ref(name: str) -> JsonSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: JsonSchema) -> JsonSchema:
    """``schema`` or JSON null (OpenAPI 3.1: a type list, or anyOf for a $ref)."""
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    out = {**schema, "type": [*types, "null"]}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


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


TIMESTAMP: JsonSchema = {
    "type": "string", "format": "date-time", "examples": ["2025-01-31T23:59:59.999Z"],
    "description": "UTC, ISO-8601 with milliseconds.",
}  # fmt: skip
NAME: JsonSchema = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS, "pattern": r"\S",
                    "description": f"1-{MAX_NAME_CHARS} characters, not only spaces (trimmed)."}


def _literal_values(literal) -> list[str]:
    return list(typing.get_args(literal))


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
            },
        ),
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
    assert set(create) == KEY_FIELDS, "the key body schema lags services.query.api.keys"
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


def _period(field: str, minimum_s: int, default_s: int) -> JsonSchema:
    return {
        "description": f"Seconds, or a duration such as ``\"5m\"``, ``\"1h30m\"``; {minimum_s} s to 365 days. "
                       f"Default {default_s}.",
        "oneOf": [
            {"type": "integer", "minimum": minimum_s, "maximum": MAX_PERIOD_S},
            {"type": "string", "pattern": r"^\s*(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+\s*$",
             "examples": ["90s", "5m", "1h30m", "1d"]},
        ],
    }


def _heartbeat_schemas() -> dict[str, JsonSchema]:
    channels = {"type": "array", "maxItems": MAX_CHANNELS_PER_HEARTBEAT, "uniqueItems": False,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_CHANNEL_ID_CHARS},
                "description": "Ids of this project's channels, alerted when the heartbeat goes down or up."}
    tags = {"type": "array", "maxItems": MAX_TAGS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS}}
    fields = {
        "name": NAME,
        "interval": _period("interval", 1, DEFAULT_INTERVAL_S),
        "grace": _period("grace", 0, DEFAULT_GRACE_S),
        "max_consecutive_misses": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1,
                                   "description": "Misses in a row before it is down."},
        "channels": channels,
        "tags": tags,
    }
    assert set(fields) == MONITOR_FIELDS, "the heartbeat body schema lags services.query.validation"
    heartbeat = _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "status_since": _nullable(TIMESTAMP),
            "status_reason": {"type": ["string", "null"]},
            "last_checkin_at": _nullable(TIMESTAMP),
            "next_expected_at": _nullable(TIMESTAMP),
            "interval": {"type": "integer", "description": "Seconds."},
            "grace": {"type": "integer", "description": "Seconds."},
            "max_consecutive_misses": {"type": "integer"},
            "channels": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
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
        "HeartbeatCreate": _object(fields, required=["name"], closed=True),
        "HeartbeatUpdate": _object(fields, required=[], closed=True),
        "HeartbeatList": _object(
            {"heartbeats": {"type": "array", "items": _ref("Heartbeat")},
             "next": {"type": ["string", "null"], "description": "Cursor of the next page (``before``); null at the end."},
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
    }
    percent = {"type": ["number", "null"], "minimum": 0, "maximum": 100,
               "description": "Percent of the observed time not spent down; null when nothing was observed."}
    stat = {"type": ["number", "null"], "description": "Seconds, over the pings that reported a duration."}
    assert list(checkin) == EXPORT_COLUMNS, "the export row schema lags services.query.api.history"
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
                                       "description": "Time watched: not new, not paused, within the heartbeat's life."},
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
        "Delivery": _object(
            {
                "alert_id": {"type": "string"},
                "kind": {"type": "string", "enum": ["down", "up", ""],
                         "description": "What the alert said; empty for an alert id of another form."},
                "channel_id": {"type": "string"},
                "ok": {"type": "boolean"},
                "attempts": {"type": "integer", "minimum": 0},
                "at": TIMESTAMP,
                "error": {"type": "string", "description": "Why the last try failed; empty when it succeeded."},
            },
        ),
        "DeliveryList": _object({"deliveries": {"type": "array", "items": _ref("Delivery")}}),
    }


_SETTING_TYPES: dict[str, JsonSchema] = {
    "string": {"type": "string"},
    "url": {"type": "string", "format": "uri"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "map": {"type": "object", "additionalProperties": {"type": "string"}},
}


def _setting_schema(field: ConfigField) -> JsonSchema:
    schema = {**_SETTING_TYPES[field.type], "description": field.help}
    if field.choices is not None:
        schema["enum"] = list(field.choices)
    return schema


def _channel_schemas() -> dict[str, JsonSchema]:
    configs = {
        f"{channel.kind.capitalize()}Config": _object(
            {f.name: _setting_schema(f) for f in channel.config_fields},
            required=[f.name for f in channel.config_fields if f.required],
            description=f"Settings of a ``{channel.kind}`` channel.", closed=True,
        )
        for channel in CHANNELS.values()
    }
    return {
        **configs,
        "ChannelCreate": _object(
            {
                "kind": {"type": "string", "enum": sorted(CHANNELS)},
                "name": {"type": "string", "maxLength": MAX_NAME_CHARS, "description": "Defaults to the kind."},
                "config": {"anyOf": [_ref(name) for name in configs],
                           "description": "The settings of the kind (see ``GET /channel-kinds``)."},
            },
            required=["kind"], closed=True,
        ),
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
            },
        ),
        "ChannelKindList": _object({"kinds": {"type": "array", "items": _ref("ChannelKind")}}),
    }


# parameters and responses -------------------------------------------------------------------
def _query(name: str, schema: JsonSchema, description: str) -> JsonSchema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _limit(default: int, maximum: int) -> JsonSchema:
    return _query("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
                  f"Rows per page, 1-{maximum} (ASCII digits).")


LIMIT = _limit(DEFAULT_PAGE_ROWS, MAX_PAGE_ROWS)
BEFORE = _query("before", {"type": "string"}, "The ``next`` of the previous page.")
TIME = {"type": "string", "description": "ISO-8601 (UTC unless it says otherwise) or epoch milliseconds, "
                                         "from 1970-01-01 to 9999-12-31.",
        "examples": ["2025-01-01T00:00:00Z", "1735689600000", str(MAX_TIME_MS)]}
FROM = _query("from", TIME, "Start of the range (inclusive).")
TO = _query("to", TIME, "End of the range (exclusive); default now.")
CSRF = {"name": CSRF_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
        "description": "Required with the session cookie (from ``GET /session``); ignored with a key."}

_ERRORS = {
    "400": "Bad input: ``field`` names the culprit.",
    "401": "No key or session, or an unknown, revoked or expired one.",
    "403": "A read-only key writing, a non-admin key creating a project, or a session write without "
           f"a valid ``{CSRF_HEADER}``.",
    "404": "No such resource in the caller's project (another project's ids are 404 too).",
    "405": "The path exists, but not with this method (``Allow`` lists those that do).",
    "413": "The body is larger than the server accepts.",
    "415": "A body that is not JSON (``Content-Type`` other than JSON, or a charset other than UTF-8).",
    "503": "The event bus is unavailable; retry after ``Retry-After`` seconds.",
}


def _error_responses() -> dict[str, JsonSchema]:
    names = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
             "405": "MethodNotAllowed", "413": "PayloadTooLarge", "415": "UnsupportedMediaType",
             "503": "Unavailable"}
    out = {}
    for status, name in names.items():
        response: JsonSchema = {"description": _ERRORS[status],
                                "content": {"application/json": {"schema": _ref("Error")}}}
        if status == "405":
            response["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True}}
        if status == "503":
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "required": False}}
        out[name] = response
    return out


_ERROR_REFS = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
               "413": "PayloadTooLarge", "415": "UnsupportedMediaType", "503": "Unavailable"}


def _json(schema: JsonSchema, description: str) -> JsonSchema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, JsonSchema], *, tag: str, params: list[JsonSchema] | None = None,
        body: str | None = None, errors: tuple[str, ...] = (), public: bool = False,
        write: bool = False, operation_id: str) -> JsonSchema:
    """One operation. Every authenticated one may answer 401 and 503 (resolving a key may
    read the bus); a write also 403, and with a body 400, 413 and 415."""
    statuses = set(errors)
    if not public:
        statuses |= {"401", "503"}
    if write:
        statuses |= {"403"}
    if body is not None:
        statuses |= {"400", "413", "415"}
    responses = dict(ok)
    for status in sorted(statuses):
        responses[status] = {"$ref": f"#/components/responses/{_ERROR_REFS[status]}"}
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
                "The project's heartbeats, oldest first, a page at a time",
                {"200": _json(_ref("HeartbeatList"), "A page, and the counts per status.")},
                tag="heartbeats", errors=("400",), operation_id="listHeartbeats",
                params=[
                    _limit(DEFAULT_LIMIT, MAX_LIMIT), BEFORE,
                    _query("sort", {"type": "string", "enum": list(SORTS), "default": SORTS[0]},
                           "By name, or by creation; a ``before`` cursor belongs to one sort."),
                    _query("status", {"type": "string", "enum": list(STATUSES)}, "Only heartbeats in this status."),
                    _query("tag", {"type": "string"}, "Only heartbeats carrying this tag."),
                    _query("q", {"type": "string"}, "Only heartbeats whose name contains this (any case)."),
                ],
            ),
            "post": _op("Create a heartbeat", {"201": heartbeat}, tag="heartbeats", body="HeartbeatCreate",
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
                        _query("kind", {"type": "string", "pattern": f"^({'|'.join(CHECKIN_KINDS)})(,({'|'.join(CHECKIN_KINDS)}))*$",
                                        "examples": ["fail", "fail,missed"]},
                               f"Only check-ins of these kinds, comma-separated: {', '.join(CHECKIN_KINDS)}."),
                        FROM, TO],
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
                        _query("bucket", {"type": "string", "examples": ["1m", "1h", "1d"]},
                               f"Bucket length, a duration of at least 1m; at most {MAX_TIMING_POINTS} buckets in "
                               "the range. Default: the roundest one giving about 500.")],
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
                               "csv, a JSON array, or JSON lines (one object a line)."),
                        FROM, TO],
            ),
        },
        "/heartbeats/{id}/status-changes": {
            "get": _op("Status changes, newest first, a page at a time",
                       {"200": _json(_ref("StatusChangePage"), "A page.")}, tag="history", errors=("400", "404"),
                       params=[ID_PARAM, LIMIT, BEFORE], operation_id="listStatusChanges"),
        },
        "/heartbeats/{id}/deliveries": {
            "get": _op("The latest alert deliveries to channels (one row per alert and channel), newest first",
                       {"200": _json(_ref("DeliveryList"), "The deliveries.")}, tag="history",
                       errors=("400", "404"), params=[ID_PARAM, LIMIT], operation_id="listDeliveries"),
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
        "tags": [{"name": t} for t in ("meta", "auth", "projects", "keys", "heartbeats", "history", "channels")],
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
                **_history_schemas(), **_channel_schemas(),
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
