"""The JSON API, mounted at ``/api/v1``: projects, heartbeats (monitors), channels, history.

Writes go to the compacted config topics (the single source of truth); reads come
from this service's views of those topics and from ClickHouse. Every request but the
OpenAPI document's is authenticated by a project API key (``Authorization: Bearer ...`` or
``X-Api-Key``) or a dashboard session cookie; a project sees only its own monitors,
channels and history, and another project's ids are 404.
One module per resource; ``errors`` holds what they share (auth, JSON errors, bodies); ``routes``
is the one table of routes; ``schemas`` the request and response types.
"""

from __future__ import annotations

from aiohttp import web

from services.query.api.context import API, ApiContext
from services.query.api.errors import errors_and_auth
from services.query.api.routes import add_routes


def api_app(ctx: ApiContext) -> web.Application:
    """The API as a sub-application mounted at ``/api/v1``: its middleware (auth, errors)
    never runs on the ping path."""
    app = web.Application(client_max_size=ctx.settings.max_api_body_bytes, middlewares=[errors_and_auth])
    app[API] = ctx
    add_routes(app)
    return app


__all__ = ["ApiContext", "api_app"]
