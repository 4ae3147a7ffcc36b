"""Pure decisions of the notifier: what a webhook says, who gets an alert, when to retry.

No I/O and no clock reads here; the consumer feeds these with what it knows.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.events import Alert, ChannelConfig
from shared.settings import Settings

DeliveryKey = tuple[str, str]
"""``(alert_id, channel_id)``: an alert goes to a channel at most once."""


def iso_utc_ms(at_ms: int) -> str:
    """``1700000000123`` -> ``"2023-11-14T22:13:20.123Z"`` (integer maths: no float rounding)."""
    seconds, millis = divmod(at_ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=millis * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_payload(alert: Alert) -> dict:
    """The JSON body of a webhook: a public format, documented in docs/events.md.

    Top-level ``kind`` ("down"/"up") names the alert so receivers can route on one field.
    """
    return {
        "kind": alert.kind,
        "alert_id": alert.id,
        "incident": alert.incident,
        "reason": alert.reason,
        "at": iso_utc_ms(alert.at_ms),
        "at_ms": alert.at_ms,
        "monitor": {"id": alert.monitor_id, "name": alert.monitor_name, "tags": list(alert.tags)},
        "project_id": alert.project_id,
        "consecutive_problems": alert.consecutive_problems,
        "last_ping_at": iso_utc_ms(alert.last_ping_ms) if alert.last_ping_ms is not None else None,
    }


@dataclass(frozen=True)
class DeliveryPlan:
    to_send: list[ChannelConfig] = field(default_factory=list)
    already_delivered: list[str] = field(default_factory=list)
    """Channel ids this alert already reached (or finally failed on): a replay."""
    unknown: list[str] = field(default_factory=list)
    """Channel ids that do not exist, were deleted, or belong to another project."""


def plan_deliveries(
    alert: Alert, channels: Mapping[str, ChannelConfig], delivered: Container[DeliveryKey]
) -> DeliveryPlan:
    """Which of the alert's channels to send to now, in the order the alert lists them."""
    plan = DeliveryPlan()
    for channel_id in dict.fromkeys(alert.channels):  # a channel listed twice is paged once
        channel = channels.get(channel_id)
        # Another project's channel counts as unknown: an alert must not reach it even
        # if a monitor config names it by mistake.
        if channel is None or channel.deleted or channel.project_id != alert.project_id:
            plan.unknown.append(channel_id)
        elif (alert.id, channel_id) in delivered:
            plan.already_delivered.append(channel_id)
        else:
            plan.to_send.append(channel)
    return plan


def attempt_delays_s(settings: Settings) -> tuple[float, ...]:
    """Seconds to wait before each try: the first goes at once, then one retry per
    configured delay (``(1, 5, 30)`` -> 4 tries)."""
    return (0.0, *settings.webhook_retry_delays_s)
