"""Pure decisions of the notifier: what a webhook says, who gets an alert, what a test
notification is. When to retry: :mod:`services.notifier.retries`.

No I/O and no clock reads here; the consumer feeds these with what it knows.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Literal

from shared.clock import iso_ms
from shared.events import Alert, ChannelConfig

DeliveryKey = tuple[str, str]
"""``(alert_id, channel_id)``: an alert goes to a channel at most once."""


def webhook_payload(alert: Alert, url: str) -> dict:
    """The JSON body of a webhook: a public format, documented in docs/events.md.

    Top-level ``kind`` ("down"/"up") names the alert so receivers can route on one field;
    ``url`` is the page to open; ``last_checkin`` says what the last check-in said (null if
    there was none; its kind, exit code and message null for alerts older than them).
    """
    checkin = None
    if alert.last_ping_ms is not None:
        checkin = {
            "at": iso_ms(alert.last_ping_ms), "at_ms": alert.last_ping_ms, "kind": alert.last_ping_kind,
            "exit_code": alert.last_ping_exit_code, "message": alert.last_ping_message,
        }  # fmt: skip
    return {
        "kind": alert.kind,
        "alert_id": alert.id,
        "incident": alert.incident,
        "reason": alert.reason,
        "at": iso_ms(alert.at_ms),
        "at_ms": alert.at_ms,
        "monitor": {"id": alert.monitor_id, "name": alert.monitor_name, "tags": list(alert.tags)},
        "project_id": alert.project_id,
        "consecutive_problems": alert.consecutive_problems,
        "last_ping_at": iso_ms(alert.last_ping_ms) if alert.last_ping_ms is not None else None,
        "url": url,
        "last_checkin": checkin,
    }


def plan_delivery(
    alert: Alert, channel_id: str, channels: Mapping[str, ChannelConfig], delivered: Container[DeliveryKey]
) -> Literal["send", "already_delivered", "unknown"]:
    """What to do about one of the alert's channels now."""
    channel = channels.get(channel_id)
    # Another project's channel counts as unknown: an alert must not reach it even
    # if a monitor config names it by mistake.
    if channel is None or channel.deleted or channel.project_id != alert.project_id:
        return "unknown"
    if (alert.id, channel_id) in delivered:
        return "already_delivered"
    return "send"


TEST_REASON = "Test notification from Pingura"


def alert_for_test(channel: ChannelConfig, alert_id: str, at_ms: int) -> Alert:
    """The synthetic alert ``POST /api/v1/channels/{id}/test`` sends: kind ``test``, no
    heartbeat behind it (``monitor_id`` empty), its own id so no receiver dedupes it away."""
    return Alert(
        id=alert_id, kind="test", monitor_id="", project_id=channel.project_id,
        monitor_name="Test notification", incident=0, reason=TEST_REASON, at_ms=at_ms,
        channels=[channel.id],
    )  # fmt: skip
