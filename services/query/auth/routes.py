"""Logging in and out of the dashboard: ``POST /login``, ``POST /logout``.

The login form posts an API key; the answer is a session cookie (HttpOnly, SameSite=Strict)
and a redirect. The pages themselves (``GET /login``, ``/``) belong to the dashboard; they
learn who is signed in, and the CSRF token, from ``GET /api/v1/session``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from services.query.api.context import ApiContext
from services.query.auth.sessions import COOKIE, CSRF_HEADER
from services.query.auth.throttle import Throttled, client_address
from shared.bus import BusUnavailable
from shared.clock import now_ms

log = structlog.get_logger()

LOGIN_CONTEXT = web.AppKey("pingura.login", ApiContext)
CSRF_FIELD = "csrf_token"


def add_session_routes(app: web.Application, ctx: ApiContext) -> None:
    """``POST /login`` and ``POST /logout`` on the root app (``ctx``: the API's context)."""
    app[LOGIN_CONTEXT] = ctx
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)


def set_session_cookie(
    request: web.Request, response: web.StreamResponse, ctx: ApiContext, cookie: str
) -> None:
    """The session cookie as every sign-in sets it (a key's or a person's): HttpOnly,
    SameSite=Strict, path ``/``, Secure when the request came over HTTPS (directly or through a
    trusted proxy)."""
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=ctx.sessions.ttl_s,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=came_over_https(request, ctx),
    )


def _trusted_peer(request: web.Request, ctx: ApiContext) -> bool:
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(peer in network for network in ctx.settings.trusted_proxies)


def _first(header: str | None) -> str:
    return (header or "").split(",")[0].strip().lower()


def came_over_https(request: web.Request, ctx: ApiContext) -> bool:
    """Directly, or by ``X-Forwarded-Proto: https`` from a trusted proxy (TLS ends there)."""
    if request.secure:
        return True
    return _first(request.headers.get("X-Forwarded-Proto")) == "https" and _trusted_peer(request, ctx)


def same_origin(request: web.Request, ctx: ApiContext) -> bool:
    """False when the browser says another site sent this POST (no Origin: not a browser's cross-site form)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    hosts = {request.host.lower()}
    if _trusted_peer(request, ctx) and request.headers.get("X-Forwarded-Host"):
        hosts.add(_first(request.headers["X-Forwarded-Host"]))
    try:
        return urlsplit(origin).netloc.lower() in hosts
    except ValueError:  # not a URL ("http://[::1"): no browser sent that from this site
        return False


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": message}, status=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def login(request: web.Request) -> web.Response:
    ctx = request.app[LOGIN_CONTEXT]
    if not same_origin(request, ctx):
        log.warning("auth.login.cross_origin", origin=request.headers.get("Origin"))
        return web.Response(status=403, text="login refused: the form was sent from another site\n")
    form = await request.post()
    secret = form.get("key")
    address = client_address(request, ctx.settings.trusted_proxies)
    try:
        key = (
            await ctx.keys.resolve(secret.strip(), address)
            if isinstance(secret, str) and secret.strip()
            else None
        )
    except Throttled as exc:
        return _json_error(429, str(exc), {"Retry-After": str(exc.retry_after_s)})
    if key is None or ctx.projects.get(key.project_id) is None:
        log.info("auth.login.refused")
        return _redirect("/login?error=1")
    _, cookie = ctx.sessions.issue(key.id, now_ms())
    response = _redirect("/")
    set_session_cookie(request, response, ctx, cookie)
    log.info("auth.login.succeeded", key_id=key.id, project_id=key.project_id)
    return response


async def logout(request: web.Request) -> web.Response:
    """Ends the session (CSRF token required, from the header or the form's ``csrf_token``).

    A ``fetch`` sending the header gets 204; a form gets a redirect to the login page."""
    ctx = request.app[LOGIN_CONTEXT]
    from_script = CSRF_HEADER in request.headers
    session = ctx.sessions.read(request.cookies.get(COOKIE), now_ms())
    if session is not None:
        token = request.headers.get(CSRF_HEADER)
        if token is None:
            field = (await request.post()).get(CSRF_FIELD)
            token = field if isinstance(field, str) else None
        if not same_origin(request, ctx) or not ctx.sessions.csrf_ok(session, token):
            return _json_error(403, "logout needs this session's CSRF token")
        try:
            await ctx.sessions.revoke(session, now_ms())
        except BusUnavailable:
            # Not recorded, so not signed out: say so, and leave the cookie for a retry.
            return _json_error(
                503, "could not sign out: the event bus is unavailable, retry later", {"Retry-After": "5"}
            )
        log.info("auth.logout", key_id=session.key_id, user_id=session.user_id, session_id=session.id)
    response = web.Response(status=204) if from_script else _redirect("/login")
    response.del_cookie(COOKIE, path="/")
    return response
