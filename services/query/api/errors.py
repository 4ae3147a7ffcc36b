"""Authentication (a key or the session cookie), read-only and CSRF refusals, and every
failure turned into a JSON error: ``{"error": ..., "field": ...}``.

Bad input is a 4xx with a one-line reason naming its field; an unavailable bus a 503;
too many wrong keys from one address a 429. Anything else is a bug or broken storage:
logged as ``query.api.error`` and answered with a fixed 500 that never echoes the request.

Every answer says ``Cache-Control: no-store`` (unless its handler chose otherwise, as the
public OpenAPI document does): each is one caller's own, and many carry a secret (a new
key, a project's first key, its ping key, a heartbeat's token and ping URL), so no
browser or proxy cache may keep one.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog
from aiohttp import hdrs, web

from services.notifier.channels import ChannelConfigError
from services.query.api.context import API, CALLER, KEY_ID, PROJECT, READ_ONLY
from services.query.auth.caller import SAFE_METHODS, Unauthenticated, authenticate
from services.query.auth.sessions import CSRF_HEADER
from services.query.auth.throttle import Throttled, client_address
from services.query.validation import InvalidField
from shared.bus import BusUnavailable
from shared.clock import now_ms
from shared.events import Role

log = structlog.get_logger()

MAX_MESSAGE_CHARS = 300
INTERNAL_ERROR = "internal error; the operator can find it in the logs as query.api.error"
# What ``curl -d`` sends when told nothing else, as the README's examples do.
_FORM_DEFAULT = "application/x-www-form-urlencoded"


def one_line(text: str) -> str:
    """Reasons quote input (field names, values): keep them to one short line whatever it holds."""
    flat = " ".join(text.split())  # every line break str.splitlines() knows is whitespace to split()
    return flat if len(flat) <= MAX_MESSAGE_CHARS else flat[: MAX_MESSAGE_CHARS - 3] + "..."


def error(status: int, message: str, field: str | None = None, headers=None) -> web.Response:
    body = {"error": one_line(message)}
    if field is not None:
        body["field"] = one_line(field)
    return web.json_response(body, status=status, headers=headers)


def answer(body: msgspec.Struct, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer of a declared type (see :mod:`services.query.api.schemas`)."""
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json", headers=headers
    )


def not_found(what: str) -> web.HTTPNotFound:
    """To raise for an id the caller's project does not have (``what``: a constant, never input)."""
    return web.HTTPNotFound(text=f'{{"error": "{what} not found"}}', content_type="application/json")


@web.middleware
async def errors_and_auth(request: web.Request, handler):
    try:
        response = await _errors_and_auth(request, handler)
    except web.HTTPException as exc:
        exc.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
        raise
    if not response.prepared:  # a streamed answer (the CSV export) set its own before it began
        response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    return response


async def _errors_and_auth(request: web.Request, handler):
    try:
        refused = await _authenticate(request)
        if refused is not None:
            return refused
        return await handler(request)
    except InvalidField as exc:
        return error(exc.status, str(exc), exc.field)
    except ChannelConfigError as exc:
        # Its messages start with the field they name: "config.url: ...".
        return error(400, str(exc), str(exc).partition(": ")[0])
    except BusUnavailable:
        return error(503, "the event bus is unavailable, retry later", headers={"Retry-After": "5"})
    except web.HTTPException as exc:
        # aiohttp's own (no such route, wrong method) come as text: answer in JSON like the rest.
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        allow = {hdrs.ALLOW: exc.headers[hdrs.ALLOW]} if hdrs.ALLOW in exc.headers else None
        return error(exc.status, exc.reason, headers=allow)
    except asyncio.CancelledError:
        raise
    except Exception:
        # The route's pattern, not the path: a public route's path holds a secret (a badge key).
        route = request.match_info.route.resource
        log.exception("query.api.error", method=request.method, route=route.canonical if route else "?")
        if request.writer is not None and request.writer.output_size:
            raise  # a streamed answer has begun: only closing the connection can still tell the client
        return error(500, INTERNAL_ERROR)


async def _authenticate(request: web.Request) -> web.Response | None:
    """Who is calling (see :mod:`services.query.auth.caller`), and may they do this?

    A read-only key writes nothing; a write made with the session cookie must carry the
    session's CSRF token, which another site's page cannot read."""
    route = getattr(request.match_info.handler, "route", None)  # see routes.bound
    if route is not None and route.public:  # the API's own description (openapi.json)
        return None
    ctx = request.app[API]
    try:
        caller = await authenticate(
            request.headers,
            request.cookies,
            now_ms(),
            ctx.keys,
            ctx.projects,
            ctx.sessions,
            client_address(request, ctx.settings.trusted_proxies),
            ctx.users,
            ctx.memberships,
        )
    except Unauthenticated as exc:  # 401, or 403 for a disabled user or a removed member
        return error(exc.status, str(exc))
    except Throttled as exc:
        return error(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    needed: Role = (
        route.needs if route is not None else "viewer" if request.method in SAFE_METHODS else "member"
    )
    if not caller.may(needed):
        if caller.user is None and caller.read_only:
            if request.method in SAFE_METHODS:
                return error(403, f"a read-only API key cannot read this (it needs the {needed} role)")
            return error(403, "this API key is read-only")
        return error(403, f"this needs the {needed} role in the project (the caller is {caller.role})")
    if (
        request.method not in SAFE_METHODS
        and caller.session is not None
        and not ctx.sessions.csrf_ok(caller.session, request.headers.get(CSRF_HEADER))
    ):
        return error(403, f"a write with the session cookie needs {CSRF_HEADER} (from GET /api/v1/session)")
    request[CALLER] = caller
    request[PROJECT] = caller.project
    request[READ_ONLY] = caller.read_only
    request[KEY_ID] = caller.key.id if caller.key is not None else None
    return None


async def json_body(request: web.Request) -> dict:
    """The request body as a JSON object, or an InvalidField saying why not."""
    if hdrs.CONTENT_TYPE in request.headers:
        media_type = request.content_type
        if media_type not in ("application/json", _FORM_DEFAULT) and not media_type.endswith("+json"):
            raise InvalidField("body", "Content-Type must be application/json", status=415)
        if (request.charset or "utf-8").lower() not in ("utf-8", "utf8"):
            raise InvalidField("body", "must be UTF-8 (drop the charset or say utf-8)", status=415)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise InvalidField("body", f"larger than {request.client_max_size} bytes", status=413) from None
    try:
        body = msgspec.json.decode(raw)
    except RecursionError:
        raise InvalidField("body", "JSON nested too deeply") from None
    except ValueError as exc:  # msgspec.DecodeError, and UnicodeDecodeError for bytes that are not UTF-8
        raise InvalidField("body", f"is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    return body
