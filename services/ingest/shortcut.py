"""Pings to Pingura's own URL skip aiohttp's router.

Every ping to ``/api/heartbeat/{token}[/{suffix}]`` went through ``Application._handle``:
the router's resolve, a match-info object, and (because the API's sub-application has
middlewares) a wrapper that fixes ``request.app`` per application. That was about 6 µs of
the ~95 µs of interpreter time a ping costs in ``pingura serve`` (py-spy, docs/PERFORMANCE.md
section 18). A path made only of the characters a token and a suffix can hold is matched
here against the same routes and handed to the route's handler directly, with the match
info aiohttp would have built; anything else (another method, an ``Expect`` header, a
percent escape, a dot segment, a trailing slash) takes the router, so its answers (405 with
``Allow``, 404, 100-continue) stay aiohttp's own.

Only for an application whose own middlewares list is empty: a middleware of the root
application would have run for a ping too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import AbstractRoute, UrlMappingMatchInfo

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PINGURA_PATHS = ("/api/heartbeat/{token}", "/api/heartbeat/{token}/{suffix}")
_PREFIX = "/api/heartbeat/"
_PLAIN = re.compile(r"/api/heartbeat/([A-Za-z0-9_-]+)(?:/([A-Za-z0-9_-]+))?")
"""Unreserved characters only: such a path reads the same before and after aiohttp's
percent-decoding and normalising, so matching the raw path is matching what the router sees."""


def routes_by_method(app: web.Application) -> dict[tuple[int, str], AbstractRoute]:
    """``(number of path parts, method)`` -> route, for Pingura's ping paths in ``app``."""
    found: dict[tuple[int, str], AbstractRoute] = {}
    for resource in app.router.resources():
        if resource.canonical in PINGURA_PATHS:
            parts = 1 if resource.canonical == PINGURA_PATHS[0] else 2
            for route in resource:
                found[(parts, route.method)] = route
    return found


def with_ping_shortcut(app: web.Application, handle: Handler) -> Handler:
    """``handle`` (the application's ``_handle``), with pings to Pingura's URL sent straight
    to their route's handler; ``handle`` itself when the shortcut does not apply."""
    routes = routes_by_method(app)
    if not routes or app.middlewares:
        return handle
    match = _PLAIN.fullmatch

    async def handle_with_shortcut(request: web.Request) -> web.StreamResponse:
        path = request.raw_path
        if path.startswith(_PREFIX):
            found = match(path.partition("?")[0])
            if found is not None and hdrs.EXPECT not in request.headers:
                token, suffix = found.groups()
                route = routes.get((1 if suffix is None else 2, request.method))
                if route is not None:
                    info = UrlMappingMatchInfo(
                        {"token": token} if suffix is None else {"token": token, "suffix": suffix}, route
                    )
                    info.add_app(app)
                    info.freeze()
                    request._match_info = info
                    return await route.handler(request)
        return await handle(request)

    return handle_with_shortcut
