"""``GET /metrics``: an app-level route, like ``/healthz`` (not in the API's route table).

Who may scrape (:func:`refusal`):

- with ``Authorization: Bearer <PINGURA_METRICS_TOKEN>``: anyone (compared in constant time);
  a wrong token, or any credential while no token is set, is refused;
- without a credential: only a loopback peer, and only when the request was not forwarded.
  A reverse proxy on the same host connects from loopback on behalf of anyone, so a request
  carrying ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP`` needs the token whatever
  ``PINGURA_TRUSTED_PROXIES`` says (that setting decides which address a ping is recorded
  from; it never grants access). A proxy that adds none of those headers cannot be told from
  a local client: do not pass ``/metrics`` through it, or set a token.

Anything else: ``403`` with a one-line reason. The token is never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from shared.metrics.exposition import CONTENT_TYPE, labelled, render
from shared.metrics.registry import Metrics

FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
NO_TOKEN_SET = "forbidden: this server has no metrics token (PINGURA_METRICS_TOKEN); scrape from loopback"
WRONG_TOKEN = "forbidden: wrong metrics token"
NOT_LOOPBACK = "forbidden: /metrics needs Authorization: Bearer <metrics token> from a non-loopback address"
FORWARDED = "forbidden: a forwarded request to /metrics needs Authorization: Bearer <metrics token>"


def is_loopback(remote: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def refusal(remote: str | None, headers: Mapping[str, str], token: str | None) -> str | None:
    """Why a scrape from ``remote`` with ``headers`` is refused, or None when it is allowed."""
    given = headers.get("Authorization")
    if given is not None:
        if not token:
            return NO_TOKEN_SET
        scheme, _, credential = given.strip().partition(" ")
        ok = hmac.compare_digest(credential.strip().encode(), token.encode())
        return None if ok and scheme.lower() == "bearer" else WRONG_TOKEN
    if not is_loopback(remote):
        return NOT_LOOPBACK
    if any(name in headers for name in FORWARDING_HEADERS):
        return FORWARDED
    return None


def forbidden(reason: str) -> web.Response:
    return web.Response(status=403, text=reason + "\n", headers={"Cache-Control": "no-store"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def metrics_handler(metrics: Metrics, token: str | None) -> Handler:
    """The route's handler: this process's metrics, each sample labelled with its process."""

    async def handle(request: web.Request) -> web.StreamResponse:
        reason = refusal(request.remote, request.headers, token)
        if reason is not None:
            return forbidden(reason)
        body = render(list(labelled(metrics.registry.collect(), metrics.process)))
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})

    return handle


def mount_metrics(app: web.Application, metrics: Metrics, token: str | None) -> None:
    app.router.add_get("/metrics", metrics_handler(metrics, token), allow_head=False)
