"""The JSON API, mounted at ``/api/v1``: projects, heartbeats (monitors), channels, history.

Writes go to the compacted config topics (the single source of truth); reads come
from this service's views of those topics and from ClickHouse. Every request but the
OpenAPI document's is authenticated by a project API key (``Authorization: Bearer ...`` or
``X-Api-Key``) or a dashboard session cookie; a project sees only its own monitors,
channels and history, and another project's ids are 404.
One module per resource; ``errors`` holds what they share (auth, JSON errors, bodies).
"""

from __future__ import annotations

from aiohttp import web

from services.query.api import channels, deliveries, heartbeats, history, keys, openapi, projects
from services.query.api.context import API, ApiContext
from services.query.api.errors import errors_and_auth


def api_app(ctx: ApiContext) -> web.Application:
    """The API as a sub-application mounted at ``/api/v1``: its middleware (auth, errors)
    never runs on the ping path."""
    app = web.Application(client_max_size=ctx.settings.max_api_body_bytes, middlewares=[errors_and_auth])
    app[API] = ctx
    app[deliveries.HTTP] = deliveries.DeliverySession()  # tests and resends send from here
    app.on_cleanup.append(deliveries.close_http)
    r = app.router
    r.add_post("/projects", projects.create_project)
    r.add_get("/projects/me", projects.current_project)
    r.add_patch("/projects/me", projects.update_project)
    r.add_post("/projects/me/ping-key", projects.rotate_ping_key)
    r.add_get("/session", projects.current_session)
    r.add_post("/keys", keys.create_key)
    r.add_get("/keys", keys.list_keys)
    r.add_delete("/keys/{id}", keys.revoke_key)
    r.add_post("/heartbeats", heartbeats.create_heartbeat)
    r.add_get("/heartbeats", heartbeats.list_heartbeats)
    r.add_get("/heartbeats/{id}", heartbeats.get_heartbeat)
    r.add_patch("/heartbeats/{id}", heartbeats.patch_heartbeat)
    r.add_delete("/heartbeats/{id}", heartbeats.delete_heartbeat)
    r.add_post("/heartbeats/{id}/pause", heartbeats.pause_heartbeat)
    r.add_post("/heartbeats/{id}/resume", heartbeats.resume_heartbeat)
    r.add_post("/heartbeats/{id}/rotate-token", heartbeats.rotate_token)
    r.add_get("/heartbeats/{id}/checkins", history.list_checkins)
    r.add_get("/heartbeats/{id}/checkins/{checkin_id}", history.get_checkin)
    r.add_get("/heartbeats/{id}/uptime", history.get_uptime)
    r.add_get("/heartbeats/{id}/timings", history.get_timings)
    r.add_get("/heartbeats/{id}/export", history.export_checkins)
    r.add_get("/heartbeats/{id}/status-changes", history.list_status_changes)
    r.add_get("/heartbeats/{id}/deliveries", history.list_deliveries)
    r.add_post("/channels", channels.create_channel)
    r.add_get("/channels", channels.list_channels)
    r.add_get("/channels/{id}", channels.get_channel)
    r.add_delete("/channels/{id}", channels.delete_channel)
    r.add_get("/channel-kinds", channels.list_channel_kinds)
    r.add_get("/channels/{id}/deliveries", deliveries.list_channel_deliveries)
    r.add_post("/channels/{id}/test", deliveries.test_channel)
    r.add_get("/deliveries/failed", deliveries.list_failed)
    r.add_post("/deliveries/failed/{id}/resend", deliveries.resend_failed)
    r.add_get(openapi.OPENAPI_PATH, openapi.serve_openapi)  # public: see errors._authenticate
    return app


__all__ = ["ApiContext", "api_app"]
