"""The OpenAPI 3.1 document of the JSON API, served at ``GET /api/v1/openapi.json`` without a key.

Generated: the paths from the routes table (:data:`services.query.api.routes.ROUTES`), the
schemas from the types it names (``msgspec.json.schema_components``), the query parameters
from each route's query-string type. What is written here by hand is only what no type
says: ``info``, the credentials, and what each error status means.

The document is built on first request, not at import: a part of it lagging the code
breaks this one route (and its tests), never the API.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from services.query.api.schemas.channels import kind_bodies
from services.query.api.schemas.deliveries import Error
from services.query.auth.sessions import COOKIE as SESSION_COOKIE
from services.query.auth.sessions import CSRF_HEADER

if TYPE_CHECKING:
    from services.query.api.route_types import Route

OPENAPI_PATH = "/openapi.json"
"""Where the document is served, relative to the API sub-app (``/api/v1``)."""
OPENAPI_VERSION = "3.1.0"
API_PREFIX = "/api/v1"
REF = "#/components/schemas/{name}"
JsonSchema = dict[str, Any]

ERRORS = {
    400: ("BadRequest", "Bad input: ``field`` names the culprit."),
    401: ("Unauthorized", "No key or session, or an unknown, revoked or expired one."),
    403: ("Forbidden", "A caller below the route's role (a read-only key acts as a viewer, a read-write key as an "
                       "admin), a non-admin key creating a project, a key revoking itself, or a "
                       f"write with the session cookie but without its ``{CSRF_HEADER}``."),
    404: ("NotFound", "No such resource in the caller's project (another project's ids are 404 too)."),
    405: ("MethodNotAllowed", "The path exists, but not with this method (``Allow`` lists those that do)."),
    409: ("Conflict", "Taken: a token or ping key of the caller's choosing that another heartbeat or project has."),
    410: ("Gone", "A link that worked once and no longer does: an invitation used, revoked or expired."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts."),
    415: ("UnsupportedMediaType", "A body that is not JSON (``Content-Type`` other than JSON, or a charset other "
                                 "than UTF-8)."),
    429: ("TooManyRequests", "Too many wrong API keys or failed sign-ins from the caller's address; retry after "
                            "``Retry-After`` seconds (a valid key is still accepted)."),
    503: ("Unavailable", "The event bus is unavailable; retry after ``Retry-After`` seconds."),
}  # fmt: skip
"""Every failure is the JSON :class:`Error`. 405 is declared by no operation: it is the
answer to a method an operation does not have."""

_STATUS_LINES = "\n".join(f"- {status}: {text}" for status, (_, text) in ERRORS.items())
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
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "A project API key."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "A project API key."},
    "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                "description": f"The dashboard's session; writes also need ``{CSRF_HEADER}``."},
}  # fmt: skip
CSRF = {
    "name": CSRF_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Required with the session cookie (from ``GET /session``); ignored with a key.",
}
TAGS = (
    "meta",
    "auth",
    "projects",
    "keys",
    "heartbeats",
    "history",
    "channels",
    "deliveries",
    "maintenance",
    "badges",
    "metrics",
)


def _error_responses() -> dict[str, JsonSchema]:
    out = {}
    for status, (name, text) in ERRORS.items():
        response: JsonSchema = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": REF.format(name="Error")}}},
        }
        if status == 405:
            response["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True}}
        if status in (429, 503):
            response["headers"] = {
                "Retry-After": {
                    "schema": {"type": "string"},
                    "required": True,
                    "description": "Seconds to wait before trying again.",
                }
            }
        out[name] = response
    return out


def _types(routes: Sequence[Route]) -> list[Any]:
    """Every type the routes name, in order (the error body first)."""
    found: list[Any] = [Error]
    for route in routes:
        found += [t for t in (route.body, route.query) if t is not None]
        for answer in route.answers.values():
            found += [t for t in (answer.type, *answer.media.values()) if t is not None]
    return list(dict.fromkeys(found))


def _components(types: list[Any]) -> tuple[dict[Any, JsonSchema], dict[str, JsonSchema]]:
    """The schema of each type, and the components they refer to; a Struct's
    ``json_schema_extra`` (what JSON Schema can say but a field type cannot) is merged in."""
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    for kind in types:
        extra = getattr(kind, "json_schema_extra", None)
        if extra:
            components[kind.__name__].update(extra)
    components.update(kind_bodies(components["ChannelCreate"]))
    return dict(zip(types, schemas, strict=True)), components


def _parameters(route: Route, components: dict[str, JsonSchema]) -> list[JsonSchema]:
    params: list[JsonSchema] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        schema = components[route.query.__name__]
        empty_is_absent: frozenset[str] = getattr(route.query, "empty_is_absent", frozenset())
        for name, field in schema["properties"].items():
            field = dict(field)
            if "anyOf" in field and {"type": "null"} in field["anyOf"]:  # None: absent from the query string
                [field] = [{**field, **f} for f in field.pop("anyOf") if f != {"type": "null"}]
            if field.get("default", 0) is None:
                del field["default"]
            param: JsonSchema = {"name": name, "in": "query", "required": False, "schema": field}
            if "description" in field:
                param["description"] = field.pop("description")
            if name in empty_is_absent:
                param["allowEmptyValue"] = True
            params.append(param)
    if route.writes:
        params.append({"$ref": "#/components/parameters/CsrfToken"})
    return params


def operation(route: Route, schemas: dict[Any, JsonSchema], components: dict[str, JsonSchema]) -> JsonSchema:
    """One operation. Every authenticated one may answer 401, 429 (wrong keys) and 503
    (resolving a key may read the bus); a write also 403, and with a body 400, 413 and 415."""
    responses: JsonSchema = {}
    for status, answer in route.answers.items():
        response: JsonSchema = {"description": answer.description}
        if answer.type is not None:
            response["content"] = {"application/json": {"schema": schemas[answer.type]}}
        if answer.media:
            response["content"] = {media: {"schema": schemas[kind]} for media, kind in answer.media.items()}
        responses[str(status)] = response
    statuses = set(route.errors)
    if not route.public:
        statuses |= {401, 429, 503}
    if route.writes:
        statuses |= {403}
    if route.body is not None:
        statuses |= {400, 413, 415}
    for status in sorted(statuses):
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    op: JsonSchema = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
    }
    parameters = _parameters(route, components)
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas[route.body]}},
        }
    if route.public:
        op["security"] = []
    return op


def build_document(routes: Sequence[Route], server_url: str = API_PREFIX) -> dict[str, Any]:
    """The whole document, as plain JSON data."""
    types = _types(routes)
    schemas, components = _components(types)
    paths: dict[str, JsonSchema] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route, schemas, components)
    for route in routes:  # a query type is parameters, not a schema of its own
        if route.query is not None:
            components.pop(route.query.__name__, None)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Pingura API", "version": "v1", "description": DESCRIPTION,
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}, {"apiKey": []}, {"session": []}],
        "tags": [{"name": tag} for tag in TAGS],
        "paths": paths,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "parameters": {"CsrfToken": CSRF},
            "responses": _error_responses(),
            "schemas": dict(sorted(components.items())),
        },
    }  # fmt: skip


@functools.cache
def document_bytes(routes: tuple[Route, ...]) -> bytes:
    """The document as served (built once: it depends on the code alone)."""
    return msgspec.json.encode(build_document(routes))
