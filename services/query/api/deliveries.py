"""Deliveries: every try to send an alert to a channel, the test button, and the dead letters.

- ``GET /channels/{id}/deliveries``: the channel's tries, newest first (the heartbeat's are
  ``GET /heartbeats/{id}/deliveries``, in :mod:`.history`); one row per try.
- ``POST /channels/{id}/test``: sends a test notification now, from this process, through
  the same channel code and SSRF-guarded session as the notifier, and records the try.
- ``GET /deliveries/failed``: dead letters, the (alert, channel) pairs whose delivery failed
  for good (a permanent error, or retries out of time); ``POST /deliveries/failed/{id}/resend``
  sends one again, once, and records the outcome (delivered: it leaves the list).

Tries made here are published on ``deliveries`` like the notifier's, so they reach the same
table and the notifier's record; they do not go through the notifier's lanes (one manual
message does not need its rate limit).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from services.notifier.logic import alert_for_test
from services.notifier.retries import TryResult
from services.notifier.sending import try_send
from services.query.api.context import API, PROJECT
from services.query.api.errors import not_found
from services.query.api.schemas.history import PageQuery
from services.query.audit import record_change
from shared.bus import BusUnavailable
from shared.clock import now_ms
from shared.events import ChannelConfig, DeliveryAttempt, encode
from shared.ids import new_id

log = structlog.get_logger()


# shapes ------------------------------------------------------------------------------------
def attempt_json(row: dict) -> dict:
    """One try as the API shows it."""
    return {
        "id": row["id"], "alert_id": row["alert_id"], "kind": row["kind"],
        "heartbeat_id": row["monitor_id"] or None, "channel_id": row["channel_id"], "attempt": row["attempt"],
        "outcome": row["outcome"], "ok": row["ok"], "attempts": row["attempts"], "status_code": row["status_code"],
        "error": row["error"], "latency_ms": row["latency_ms"], "at": row["at"],
        "next_attempt_at": row["next_attempt_at"], "digest": row["digest"], "resend": row["resend"],
    }  # fmt: skip


def _failed_json(row: dict) -> dict:
    alert = row["alert"]
    return {
        "id": row["id"], "alert_id": row["alert_id"], "kind": alert.kind, "heartbeat_id": alert.monitor_id,
        "heartbeat_name": alert.monitor_name, "channel_id": row["channel_id"], "attempts": row["attempts"],
        "status_code": row["status_code"], "error": row["error"], "failed_at": row["failed_at"],
    }  # fmt: skip


def _result_json(result: TryResult, **extra) -> dict:
    body: dict = {"ok": result.ok}
    if result.status_code is not None:
        body["status_code"] = result.status_code
    if not result.ok:
        body["error"] = result.error
    return {**body, "latency_ms": result.latency_ms, **extra}


def _channel_or_404(request: web.Request, channel_id: str) -> ChannelConfig:
    channel = request.app[API].channels.get(channel_id)
    if channel is None or channel.project_id != request[PROJECT].id:
        raise not_found("channel")
    return channel


# handlers ----------------------------------------------------------------------------------
async def list_channel_deliveries(request: web.Request, query: PageQuery) -> web.Response:
    """Every try to deliver to the channel (test notifications included), newest first."""
    channel = _channel_or_404(request, request.match_info["id"])
    rows, cursor = await request.app[API].store.channel_deliveries(
        channel.project_id, channel.id, limit=query.limit, before=query.before
    )
    return web.json_response({"deliveries": [attempt_json(r) for r in rows], "next": cursor})


async def test_channel(request: web.Request) -> web.Response:
    """Send a test notification (an alert of kind ``test``) to the channel now; the answer
    says how it went, and the try is recorded with the channel's deliveries."""
    ctx = request.app[API]
    channel = _channel_or_404(request, request.match_info["id"])
    at = now_ms()
    alert = alert_for_test(channel, new_id("test"), at)
    result = await try_send(channel, [alert], ctx.senders, ctx.settings)
    attempt = DeliveryAttempt(
        alert_id=alert.id, channel_id=channel.id, monitor_id="", project_id=channel.project_id, kind="test",
        attempt=1, at_ms=at, outcome="delivered" if result.ok else "failed", first_attempt_ms=at,
        status_code=result.status_code, error=result.error, latency_ms=result.latency_ms,
    )  # fmt: skip
    try:
        await ctx.bus.publish(ctx.topics.deliveries, attempt.monitor_id, encode(attempt))
    except BusUnavailable as exc:  # it was sent: say how it went, even if the record is missing
        log.warning("query.channel.test_unrecorded", channel_id=channel.id, error=str(exc))
    log.info("query.channel.tested", channel_id=channel.id, ok=result.ok, status_code=result.status_code)
    return web.json_response(_result_json(result))


async def list_failed(request: web.Request, query: PageQuery) -> web.Response:
    """The project's dead letters, newest first."""
    rows, cursor = await request.app[API].store.failed_deliveries(
        request[PROJECT].id, limit=query.limit, before=query.before
    )
    return web.json_response({"failed": [_failed_json(r) for r in rows], "next": cursor})


async def resend_failed(request: web.Request) -> web.Response:
    """Send a dead letter's alert to its channel once more; record the try. Delivered, it
    leaves the list; failed again, it stays (with this try's error)."""
    ctx = request.app[API]
    alert_id, separator, channel_id = request.match_info["id"].rpartition("|")
    if not separator or not alert_id:
        raise not_found("failed delivery")
    row = await ctx.store.failed_delivery(request[PROJECT].id, alert_id, channel_id)
    if row is None:
        raise not_found("failed delivery")
    channel = _channel_or_404(request, channel_id)
    alert = row["alert"]
    at = now_ms()
    result = await try_send(channel, [alert], ctx.senders, ctx.settings)
    number = row["attempts"] + 1
    attempt = DeliveryAttempt(
        alert_id=alert.id, channel_id=channel.id, monitor_id=alert.monitor_id, project_id=alert.project_id,
        kind=alert.kind, attempt=number, at_ms=at, outcome="delivered" if result.ok else "failed",
        first_attempt_ms=row["first_attempt_ms"], status_code=result.status_code, error=result.error,
        latency_ms=result.latency_ms, resend=True, alert=None if result.ok else alert,
    )  # fmt: skip
    await ctx.bus.publish(ctx.topics.deliveries, attempt.monitor_id, encode(attempt))  # BusUnavailable: a 503
    resent = {"alert_id": alert.id, "channel_id": channel.id, "attempt": number, "outcome": attempt.outcome}
    await record_change(request, "delivery.resend", "delivery", f"{alert.id}|{channel.id}", None, resent)
    log.info("query.delivery.resent", alert_id=alert.id, channel_id=channel.id, ok=result.ok, attempt=number)
    return web.json_response(_result_json(result, attempt=number))
