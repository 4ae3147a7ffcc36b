"""Every route of the JSON API, declared once: aiohttp registers them from :data:`ROUTES`,
and the OpenAPI document (:mod:`.openapi`) is generated from the same table and the types
it names.

A route's handler takes the request and, when the route declares them, ``body=`` (its
request type, decoded from JSON) and ``query=`` (its query-string type), already checked:
a refusal is a 400 naming the field before the handler runs.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from services.query.api import (
    account,
    account_security,
    audit,
    badges,
    channels,
    deliveries,
    heartbeats,
    history,
    ingest,
    instances,
    keys,
    maintenance,
    members,
    openapi,
    project_metrics,
    projects,
    sso,
    status_pages,
)
from services.query.api import schemas as s
from services.query.api.channel_users import CHANNEL_USERS, ChannelUsers
from services.query.api.errors import json_body
from services.query.api.route_types import NO_CONTENT, NOT_FOUND, PAGE, Answer, Handler, Route, created, ok
from services.query.api.schemas import badges as badge_types
from services.query.api.schemas import status_pages as page_types
from services.query.api.schemas.decode import decode_body, decode_query

HEARTBEAT = ok("The heartbeat.", s.heartbeats.Heartbeat)


async def serve_openapi(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: public, like any API's description."""
    return web.Response(
        body=openapi.document_bytes(ROUTES),
        content_type="application/json",
        headers={"Cache-Control": "no-cache"},
    )


R = Route
BADGE = "/badge/{badge_key}"
BADGE_ERRORS = (400, 404, 503)
"""Public, yet they wait for the views like the rest (503 while starting)."""
BADGE_ROUTES = tuple(
    R("GET", f"{BADGE}/{part}.{suffix}", handler, f"{whose} status as a {kind} (public: the badge key is the "
      "secret)", "badges", f"get{op}Badge{suffix.capitalize()}", answer, query=badge_types.BadgeQuery,
      errors=BADGE_ERRORS, public=True)
    for part, whose, op in (
        ("{what}", "A heartbeat's (``what``: its slug or id), or the project's worst (``what``: ``project``)", ""),
        ("tag/{tag}", "The worst of the tagged heartbeats'", "Tag"),
    )
    for suffix, kind, handler, answer in (
        ("svg", "flat SVG badge (``label | up/down``, or ``up/late/down`` with ``states=3``)", badges.svg_badge,
         {200: Answer("The badge.", media={"image/svg+xml": str})}),
        ("json", "JSON status", badges.json_badge, ok("The status.", badge_types.BadgeStatus)),
        ("shields", "Shields.io endpoint answer", badges.shields_badge, ok("For ``img.shields.io/endpoint``.",
         badge_types.ShieldsBadge)),
    )
)  # fmt: skip
STATUS_PAGE = "/projects/me/status-page"
PAGE_CONFIG = ok("The page as configured, with its public URLs.", page_types.StatusPageConfig)
STATUS_PAGE_ROUTES = (
    R("GET", STATUS_PAGE, status_pages.get_status_page, "The project's public status page as configured (404: "
      "it has none)", "status pages", "getStatusPage", PAGE_CONFIG, errors=NOT_FOUND),
    R("PUT", STATUS_PAGE, status_pages.put_status_page, "Set up the project's public status page, whole: title, "
      "intro, groups of its heartbeats each with the label to show (the first turns it on with a new key)",
      "status pages", "putStatusPage", PAGE_CONFIG, body=page_types.StatusPageWrite, role="admin"),
    R("DELETE", STATUS_PAGE, status_pages.delete_status_page, "Turn the status page off (its URLs answer 404)",
      "status pages", "deleteStatusPage", NO_CONTENT, role="admin"),
    R("POST", f"{STATUS_PAGE}/key", status_pages.rotate_status_page_key, "A new key for the status page's URLs "
      "(the old ones answer 404)", "status pages", "rotateStatusPageKey", PAGE_CONFIG, errors=NOT_FOUND, role="admin"),
    R("GET", "/status-page/{key}", status_pages.public_status_page, "A public status page's data (public: the "
      "key is the secret): the chosen heartbeats' labels, states, 90 days of daily uptime, recent changes",
      "status pages", "getPublicStatusPage", ok("The page's data.", page_types.PublicStatusPage),
      errors=BADGE_ERRORS, public=True),
)  # fmt: skip
ROUTES: tuple[Route, ...] = (
    R("GET", openapi.OPENAPI_PATH, serve_openapi, "This document", "meta", "getOpenApi",
      ok("OpenAPI 3.1 document.", dict[str, Any]), public=True),
    R("GET", "/session", projects.current_session, "Who is calling: project, key, and the CSRF token of a session",
      "auth", "getSession", ok("The caller.", s.accounts.Session)),
    R("POST", "/projects", projects.create_project, "Create a project (admin key only)", "projects", "createProject",
      created("Created; its first key is in ``api_key``.", s.accounts.ProjectCreated), body=s.accounts.ProjectCreate,
      role="admin"),
    R("GET", "/projects/me", projects.current_project, "The caller's project", "projects", "getCurrentProject",
      ok("The project.", s.accounts.CurrentProject)),
    R("PATCH", "/projects/me", projects.update_project,
      "Change the caller's project (its name, whether pings may create heartbeats)", "projects", "updateCurrentProject",
      ok("The project.", s.accounts.CurrentProject), body=s.accounts.ProjectUpdate, errors=(409,), role="admin"),
    R("POST", "/projects/me/ping-key", projects.rotate_ping_key,
      "Make the project's ping key for slug URLs, or a new one (the old one stops working)", "projects",
      "rotatePingKey", ok("The project, with its ping key.", s.accounts.CurrentProject), role="admin"),
    R("POST", "/projects/me/badge-key", projects.rotate_badge_key,
      "Make the project's badge key for the public badge URLs, or a new one (the old URLs stop working)",
      "projects", "rotateBadgeKey", ok("The project, with its badge key.", s.accounts.CurrentProject), role="admin"),
    *BADGE_ROUTES,
    *STATUS_PAGE_ROUTES,
    R("GET", "/metrics/{key}", project_metrics.project_metrics, "The project's heartbeats in the Prometheus text "
      "format (public: ``key`` is one of the project's read-only API keys; a key that can write is refused)",
      "metrics", "getProjectMetrics", {200: Answer("Text format 0.0.4.", media={"text/plain": str})},
      errors=(403, 404, 429, 503), public=True),
    R("GET", "/keys", keys.list_keys, "The project's live API keys", "keys", "listKeys",
      ok("Oldest first.", s.accounts.ApiKeyList), role="admin"),
    R("POST", "/keys", keys.create_key, "Create an API key", "keys", "createKey",
      created("Created; ``key`` is shown once.", s.accounts.ApiKeyCreated), body=s.accounts.ApiKeyCreate, role="admin"),
    R("DELETE", "/keys/{id}", keys.revoke_key, "Revoke an API key", "keys", "revokeKey", NO_CONTENT,
      errors=NOT_FOUND, role="admin"),
    R("GET", "/heartbeats", heartbeats.list_heartbeats,
      "The project's heartbeats by name (or by creation, or problems first), a page at a time, and the counts per "
      "status", "heartbeats", "listHeartbeats", ok("A page, and the counts per status.", s.heartbeats.HeartbeatList),
      query=s.heartbeats.HeartbeatListQuery, errors=(400,)),
    R("POST", "/heartbeats", heartbeats.create_heartbeat,
      "Create a heartbeat (``name``, and an ``interval`` or a ``schedule``)", "heartbeats", "createHeartbeat",
      {201: HEARTBEAT[200]}, body=s.heartbeats.HeartbeatCreate, errors=(409,)),
    R("GET", "/heartbeats/{id}", heartbeats.get_heartbeat, "A heartbeat", "heartbeats", "getHeartbeat", HEARTBEAT,
      errors=NOT_FOUND),
    R("PATCH", "/heartbeats/{id}", heartbeats.patch_heartbeat, "Change a heartbeat (only the fields given)",
      "heartbeats", "updateHeartbeat", HEARTBEAT, body=s.heartbeats.HeartbeatUpdate, errors=NOT_FOUND),
    R("DELETE", "/heartbeats/{id}", heartbeats.delete_heartbeat, "Delete a heartbeat", "heartbeats",
      "deleteHeartbeat", NO_CONTENT, errors=NOT_FOUND),
    R("POST", "/heartbeats/{id}/pause", heartbeats.pause_heartbeat, "Pause: no alerts, no misses, until resumed",
      "heartbeats", "pauseHeartbeat", HEARTBEAT, errors=NOT_FOUND),
    R("POST", "/heartbeats/{id}/resume", heartbeats.resume_heartbeat, "Resume a paused heartbeat", "heartbeats",
      "resumeHeartbeat", HEARTBEAT, errors=NOT_FOUND),
    R("POST", "/heartbeats/{id}/rotate-token", heartbeats.rotate_token,
      "Give the heartbeat a new ping token (the old URL stops working)", "heartbeats", "rotateToken", HEARTBEAT,
      errors=NOT_FOUND),
    R("GET", "/heartbeats/{id}/instances", instances.list_instances,
      "A fleet's instances by name, a page at a time, each with its last check-in and status, and the fleet's "
      "figures as of the last window judged", "heartbeats", "listInstances",
      ok("A page.", s.instances.InstancePage), query=s.instances.InstanceListQuery, errors=PAGE),
    R("DELETE", "/heartbeats/{id}/instances/{name}", instances.remove_instance,
      "Take an instance out of the fleet: it leaves without paging, until it pings again (applied by the "
      "evaluator in the order of the pings)", "heartbeats", "removeInstance",
      {202: Answer("Accepted: the evaluator applies it next (the list shows it within a few seconds).")},
      errors=PAGE),
    R("GET", "/heartbeats/{id}/checkins", history.list_checkins,
      "Check-ins (pings and misses), newest first, a page at a time", "history", "listCheckins",
      ok("A page.", s.history.CheckinPage), query=s.history.CheckinQuery, errors=PAGE),
    R("GET", "/heartbeats/{id}/checkins/{checkin_id}", history.get_checkin, "One check-in whole, with all of its "
      "output", "history", "getCheckin", ok("The check-in.", s.history.Checkin), errors=NOT_FOUND),
    R("GET", "/heartbeats/{id}/uptime", history.get_uptime,
      "Uptime over the last 24h, 7d, 30d and 90d, and over a range if asked", "history", "getUptime",
      ok("Percentages.", s.history.Uptime), query=s.history.RangeQuery, errors=PAGE),
    R("GET", "/heartbeats/{id}/timings", history.get_timings,
      "Durations and outcomes per time bucket (only buckets holding check-ins)", "history", "getTimings",
      ok("Oldest bucket first.", s.history.Timings), query=s.history.TimingsQuery, errors=PAGE),
    R("GET", "/heartbeats/{id}/export", history.export_checkins,
      "Every check-in in a range, oldest first, as a download", "history", "exportCheckins",
      {200: Answer("A streamed file (``Content-Disposition: attachment``).", media={
          file.media_type: file.body for file in s.history.EXPORT_FILES.values()})},
      query=s.history.ExportQuery, errors=PAGE),
    R("GET", "/heartbeats/{id}/status-changes", history.list_status_changes,
      "Status changes, newest first, a page at a time", "history", "listStatusChanges",
      ok("A page.", s.history.StatusChangePage), query=s.history.PageQuery, errors=PAGE),
    R("GET", "/heartbeats/{id}/deliveries", history.list_deliveries,
      "Every try to send the heartbeat's alerts to its channels, newest first, a page at a time", "deliveries",
      "listDeliveries", ok("A page.", s.deliveries.DeliveryAttemptPage), query=s.history.PageQuery, errors=PAGE),
    R("GET", "/channels", channels.list_channels, "The project's channels, oldest first, each with the heartbeats "
      "that alert to it", "channels", "listChannels", ok("The channels.", s.channels.ChannelList)),
    R("POST", "/channels", channels.create_channel, "Create a channel", "channels", "createChannel",
      created("Created.", s.channels.Channel), body=s.channels.ChannelCreate),
    R("GET", "/channels/{id}", channels.get_channel, "A channel", "channels", "getChannel",
      ok("The channel.", s.channels.Channel), errors=NOT_FOUND),
    R("PATCH", "/channels/{id}", channels.update_channel, "Change a channel's name or settings (only those given; "
      "a secret sent back as shown keeps its value; the kind cannot change)", "channels", "updateChannel",
      ok("The channel.", s.channels.Channel), body=s.channels.ChannelUpdate, errors=NOT_FOUND),
    R("DELETE", "/channels/{id}", channels.delete_channel, "Delete a channel", "channels", "deleteChannel",
      NO_CONTENT, errors=NOT_FOUND),
    R("GET", "/channel-kinds", channels.list_channel_kinds,
      "Every channel kind and its settings (what a channel form is drawn from)", "channels", "listChannelKinds",
      ok("By kind name.", s.channels.ChannelKindList)),
    R("GET", "/channels/{id}/deliveries", deliveries.list_channel_deliveries,
      "Every try to send to the channel (test notifications included), newest first", "deliveries",
      "listChannelDeliveries", ok("A page.", s.deliveries.DeliveryAttemptPage), query=s.history.PageQuery,
      errors=PAGE),
    R("POST", "/channels/{id}/test", deliveries.test_channel,
      "Send a test notification to the channel now (recorded with its deliveries)", "deliveries", "testChannel",
      ok("How it went (a failed send is still a 200).", s.deliveries.DeliveryResult), errors=NOT_FOUND),
    R("GET", "/deliveries/failed", deliveries.list_failed, "The project's dead letters, newest first, a page at a "
      "time", "deliveries", "listFailedDeliveries", ok("A page.", s.deliveries.FailedDeliveryPage),
      query=s.history.PageQuery, errors=(400,)),
    R("POST", "/deliveries/failed/{id}/resend", deliveries.resend_failed,
      "Send a dead letter's alert to its channel once more (delivered, it leaves the list)", "deliveries",
      "resendFailedDelivery", ok("How it went.", s.deliveries.DeliveryResult), errors=NOT_FOUND),
    R("GET", "/maintenance", maintenance.list_windows, "The project's maintenance windows, oldest first, each "
      "with the occurrence on now and the next", "maintenance", "listMaintenanceWindows",
      ok("The windows.", s.maintenance.MaintenanceList)),
    R("POST", "/maintenance", maintenance.create_window, "Create a maintenance window: one-off (``starts_at`` to "
      "``ends_at``) or recurring (``schedule``, ``duration``, ``timezone``), ``covering`` heartbeats, tags or the "
      "whole project", "maintenance", "createMaintenanceWindow", created("Created.", s.maintenance.Maintenance),
      body=s.maintenance.MaintenanceCreate),
    R("GET", "/maintenance/{id}", maintenance.get_window, "A maintenance window", "maintenance",
      "getMaintenanceWindow", ok("The window.", s.maintenance.Maintenance), errors=NOT_FOUND),
    R("PATCH", "/maintenance/{id}", maintenance.patch_window, "Change a maintenance window (only the fields "
      "given; a change of its times undoes an early end)", "maintenance", "updateMaintenanceWindow",
      ok("The window.", s.maintenance.Maintenance), body=s.maintenance.MaintenanceUpdate, errors=NOT_FOUND),
    R("DELETE", "/maintenance/{id}", maintenance.delete_window, "Delete a maintenance window (alerts it holds go "
      "out at once if still true)", "maintenance", "deleteMaintenanceWindow", NO_CONTENT, errors=NOT_FOUND),
    R("POST", "/maintenance/{id}/end", maintenance.end_window, "End the occurrence on now (a recurring window "
      "goes on with its next); 400 if none is on", "maintenance", "endMaintenanceWindow",
      ok("The window.", s.maintenance.Maintenance), errors=(400, 404)),
    *account.ROUTES,
    *account_security.ROUTES,
    *sso.ROUTES,
    *members.ROUTES,
    *audit.ROUTES,
    R("GET", "/ingest-incidents", ingest.list_ingest_incidents, "Open ingest incidents (pings stopped reaching "
      "Pingura; misses are held as unknown): Pingura's own and the caller's project's", "ingest",
      "listIngestIncidents", ok("Oldest first.", s.ingest.IngestIncidentList)),
)  # fmt: skip


def bound(route: Route) -> Handler:
    """The aiohttp handler of ``route``: its body and query string decoded into their types
    first. The middleware reads ``route`` from it (public or not)."""

    @functools.wraps(route.handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        arguments: dict[str, Any] = {}
        if route.body is not None:
            arguments["body"] = decode_body(await json_body(request), route.body)
        if route.query is not None:
            arguments["query"] = decode_query(request.query, route.query)
        return await route.handler(request, **arguments)

    handle.route = route  # type: ignore[attr-defined]  # read by errors._authenticate
    return handle


def add_routes(app: web.Application) -> None:
    app[status_pages.PUBLIC_CACHE] = {}
    app[CHANNEL_USERS] = ChannelUsers()
    for route in ROUTES:
        app.router.add_route(route.method, route.path, bound(route))
