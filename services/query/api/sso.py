"""Single sign-on: OpenID Connect, and sign-in from a trusted proxy's header (issue 20).

Browser routes, public (no key: the person is signing in), under ``/api/v1/sso/`` so the
OpenAPI document describes them with the rest:

- ``GET /sso/providers``: what the sign-in page offers (its SSO button, ``sso-login.js``);
- ``GET /sso/oidc/start``: a redirect (302) to the identity provider, with the sign-in's
  cookie (:mod:`services.query.auth.oidc`);
- ``GET /sso/oidc/callback``: where the provider sends the browser back (the redirect URI to
  register: ``<PINGURA_PUBLIC_URL>/api/v1/sso/oidc/callback``): the state, the code, the ID
  token checked, the user found, linked or made, the groups applied
  (:mod:`services.query.auth.sso_users`), then the session cookie and a redirect to ``/``;
- ``GET /sso/proxy``: the session of the user the proxy's header names
  (:mod:`services.query.auth.trusted_header`), and a redirect to ``/``.

A refusal is a small page saying why in one line, with a way back to the sign-in page. A
sign-in through the provider or the proxy skips Pingura's own second factor: the provider
(or the proxy) is where the person proved who they are.
"""

from __future__ import annotations

import hmac
import html
import json

import structlog
from aiohttp import web

from services.query.api.context import API, ApiContext
from services.query.api.errors import answer, one_line
from services.query.api.route_types import Answer, Route, ok
from services.query.api.schemas.sso import OidcProvider, ProxySignIn, SsoProviders
from services.query.auth import oidc
from services.query.auth.oidc import SignIn, SignInRefused
from services.query.auth.routes import came_over_https
from services.query.auth.sessions import load_secret
from services.query.auth.signin import start_session
from services.query.auth.sso_users import apply_groups, groups_of, oidc_user
from services.query.auth.trusted_header import header_email
from services.query.auth.users import normalize_email
from services.query.validation import InvalidField
from services.query.web.pages import SECURITY_HEADERS
from shared.clock import now_ms
from shared.events import User
from shared.sso_settings import provider_name

log = structlog.get_logger()

START = "/api/v1/sso/oidc/start"
PROXY = "/api/v1/sso/proxy"
_PAGE_HEADERS = {
    k: v for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"
}  # the API's no-store stays


def refusal_page(status: int, message: str) -> web.Response:
    """Why the sign-in did not happen, in one line, and the way back."""
    line = one_line(message)
    text = html.escape(line[:1].upper() + line[1:])
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in refused · Pingura</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
</head>
<body class="page-login">
<main id="main" class="login-card">
  <h1 class="brand-large"><img src="/static/favicon.svg" alt="" width="32" height="32"> Pingura</h1>
  <p id="sso-error" class="note note-error" role="alert">{text}</p>
  <p><a href="/login">Back to sign-in</a></p>
</main>
</body>
</html>
"""
    return web.Response(status=status, text=body, content_type="text/html", headers=_PAGE_HEADERS)


def _secret(ctx: ApiContext) -> bytes:
    if ctx.sso.secret is None:
        ctx.sso.secret = oidc.state_secret(load_secret(ctx.settings))
    return ctx.sso.secret


async def _signed_in(request: web.Request, user: User, how: str) -> web.Response:
    """:func:`start_session`'s cookie, with a redirect to the dashboard; or its refusal as a page."""
    opened = await start_session(request, user)
    if opened.status != 200:
        reason = json.loads(opened.text or "{}").get("error", "the session could not be opened")
        log.info("auth.sso.refused", how=how, user_id=user.id, status=opened.status)
        return refusal_page(opened.status, reason)
    response = web.Response(status=302, headers={"Location": "/"})
    for name, morsel in opened.cookies.items():
        response.cookies[name] = morsel
    log.info("auth.sso.signed_in", how=how, user_id=user.id)
    return response


async def providers(request: web.Request) -> web.Response:
    ctx = request.app[API]
    settings = ctx.settings
    found = SsoProviders(oidc=None, proxy=None)
    if settings.oidc_issuer is not None:
        found.oidc = OidcProvider(name=provider_name(settings), start=START)
    if header_email(request, settings, ctx.sso) is not None:
        found.proxy = ProxySignIn(start=PROXY)
    return answer(found)


async def oidc_start(request: web.Request) -> web.Response:
    ctx = request.app[API]
    if ctx.settings.oidc_issuer is None:
        return refusal_page(404, "single sign-on is not configured on this Pingura")
    try:
        async with oidc.client() as http:
            meta = await oidc.metadata(ctx.settings, ctx.sso.oidc, http)
    except SignInRefused as exc:
        log.warning("auth.sso.provider_unavailable", reason=str(exc))
        return refusal_page(exc.status, str(exc))
    sign_in = SignIn.new(_secret(ctx), now_ms())
    response = web.Response(
        status=302, headers={"Location": oidc.authorization_url(ctx.settings, meta, sign_in)}
    )
    response.set_cookie(
        oidc.COOKIE,
        sign_in.cookie(),
        max_age=oidc.SIGN_IN_TTL_S,
        path=oidc.COOKIE_PATH,
        httponly=True,
        samesite="Lax",  # sent on the provider's redirect back (a top-level GET from its site)
        secure=came_over_https(request, ctx),
    )
    return response


def _checked_sign_in(request: web.Request, ctx: ApiContext) -> tuple[SignIn, str]:
    """The sign-in this callback ends and its code, or :class:`SignInRefused` saying why not."""
    query = request.query
    if "error" in query:
        said = one_line(query.get("error_description") or query["error"])[:120]
        raise SignInRefused(f"the identity provider did not sign you in: {said}")
    sign_in = SignIn.read(request.cookies.get(oidc.COOKIE), _secret(ctx), now_ms())
    if sign_in is None:
        raise SignInRefused("this sign-in expired or was not started in this browser; start again")
    if not hmac.compare_digest(query.get("state", "").encode(), sign_in.state.encode()):
        raise SignInRefused("the answer's state is not this browser's sign-in; start again")
    if sign_in.spent_id in ctx.sessions.revoked:
        raise SignInRefused("this sign-in was used already (a replayed state); start again")
    if "iss" in query and query["iss"] != ctx.settings.oidc_issuer:  # RFC 9207: a mix-up of providers
        raise SignInRefused("the answer comes from another issuer than the configured one")
    code = query.get("code", "")
    if not code:
        raise SignInRefused("the identity provider's answer has no code; start again")
    return sign_in, code


async def oidc_callback(request: web.Request) -> web.Response:
    ctx = request.app[API]
    settings = ctx.settings
    if settings.oidc_issuer is None:
        return refusal_page(404, "single sign-on is not configured on this Pingura")
    try:
        sign_in, code = _checked_sign_in(request, ctx)
        # Spent before the code is used: a second callback with it is refused, on every instance.
        await ctx.sessions.revoked.revoke(sign_in.spent_id, "oidc", sign_in.expires_ms, now_ms())
        async with oidc.client() as http:
            meta = await oidc.metadata(settings, ctx.sso.oidc, http)
            tokens = await oidc.exchange_code(settings, meta, http, code, sign_in)
            claims = await oidc.id_token_claims(settings, meta, ctx.sso.oidc, http, tokens, sign_in)
            claims = await oidc.with_userinfo(settings, meta, http, claims, tokens)
        user = await oidc_user(ctx, f"{meta['issuer']}|{claims['sub']}", claims)
        if settings.oidc_roles:
            await apply_groups(request, ctx, user, groups_of(claims, settings.oidc_groups_claim))
    except SignInRefused as exc:
        log.info("auth.sso.refused", how="oidc", reason=str(exc), status=exc.status)
        response = refusal_page(exc.status, str(exc))
    else:
        response = await _signed_in(request, user, "oidc")
    response.del_cookie(oidc.COOKIE, path=oidc.COOKIE_PATH)
    return response


async def proxy_sign_in(request: web.Request) -> web.Response:
    ctx = request.app[API]
    if ctx.settings.trusted_header is None:
        return refusal_page(404, "sign-in from a trusted proxy's header is off on this Pingura")
    raw = header_email(request, ctx.settings, ctx.sso)
    if raw is None:
        return refusal_page(400, "no signed-in person from the authenticating proxy (not through the proxy?)")
    try:
        email = normalize_email(raw)
    except InvalidField:
        return refusal_page(400, "the authenticating proxy's header does not hold one email address")
    user = ctx.users.by_email(email)
    if user is None and await ctx.users.sync(2.0):
        user = ctx.users.by_email(email)
    if user is None:
        log.info("auth.trusted_header.unknown")
        return refusal_page(
            403, f"no account on this Pingura has the email {email}; ask a project's admin to invite you"
        )
    return await _signed_in(request, user, "trusted_header")


PAGE = {"text/html": str}
REFUSED = Answer(
    "Refused: a page saying why in one line (an expired, replayed or forged sign-in...).", media=PAGE
)
OFF = Answer("Not configured on this server (a page saying so).", media=PAGE)
UNREACHABLE = Answer(
    "The identity provider could not be reached or answered nonsense (a page saying so).", media=PAGE
)
SIGNED_IN = Answer("Signed in: the session cookie, and ``Location: /``.")
R = Route
ROUTES: tuple[Route, ...] = (
    R("GET", "/sso/providers", providers, "The single sign-on the sign-in page offers (public): OpenID Connect "
      "when configured, the authenticating proxy when this request came through it with its header", "auth",
      "getSsoProviders", ok("What to show.", SsoProviders), errors=(503,), public=True),
    R("GET", "/sso/oidc/start", oidc_start, "Start an OpenID Connect sign-in (public; a browser's): a redirect to "
      "the identity provider, with a short-lived cookie holding the sign-in", "auth", "startOidcSignIn",
      {302: Answer("To the identity provider (``Location``)."), 404: OFF, 502: UNREACHABLE},
      errors=(503,), public=True),
    R("GET", "/sso/oidc/callback", oidc_callback, "The identity provider's redirect back (public; the redirect URI "
      "to register): ``code``, ``state`` (and ``iss``) checked, the user found, linked or made, groups applied",
      "auth", "finishOidcSignIn", {302: SIGNED_IN, 400: REFUSED, 403: REFUSED, 404: OFF, 502: UNREACHABLE},
      errors=(503,), public=True),
    R("GET", "/sso/proxy", proxy_sign_in, "Sign in as the person the authenticating proxy's header names (public; "
      "believed only from the listed proxy addresses)", "auth", "proxySignIn",
      {302: SIGNED_IN, 400: REFUSED, 403: REFUSED, 404: OFF}, errors=(503,), public=True),
)  # fmt: skip
