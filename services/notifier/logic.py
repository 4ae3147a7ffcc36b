"""Pure decisions of the notifier: what a webhook says, who gets an alert, what a test
notification is. When to retry: :mod:`services.notifier.retries`.

No I/O and no clock reads here; the consumer feeds these with what it knows.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Literal

import msgspec

from services.notifier.messages import OPERATOR_KINDS
from shared.clock import iso_ms
from shared.events import Alert, ChannelConfig

DeliveryKey = tuple[str, str]
"""``(alert_id, channel_id)``: an alert goes to a channel at most once."""


def webhook_payload(alert: Alert, url: str) -> dict:
    """The JSON body of a webhook: a public format, documented in docs/events.md.

    Top-level ``kind`` (``down``, ``up``, ``flapping``, ``test``; for operators ``ingest_down``,
    ``ingest_up``) names the alert so receivers can route on one field; ``url`` is the page
    to open; ``last_checkin`` says what the last check-in said (null if there was none; its
    kind, exit code and message null for alerts older than them). ``down_since`` (the
    incident's start, on ``up`` and reminders), ``missed_runs`` (on ``up``), ``held`` (why a
    released alert was held), ``dependents_held`` (on ``down``: ``{"count", "names"}``) and
    ``ingest`` (the numbers of an ingest alert) and ``instances`` (a fleet's: ``{"reported",
    "expected", "missing"}``) came later: readers must take them as optional.
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
        "down_since": iso_ms(alert.down_since_ms) if alert.down_since_ms is not None else None,
        "down_since_ms": alert.down_since_ms,
        "reminder": alert.reminder,
        "missed_runs": alert.missed_runs,
        "held": alert.held,
        "dependents_held": {
            "count": max(alert.dependents_held_count, len(alert.dependents_held)),
            "names": list(alert.dependents_held),
        },
        "ingest": msgspec.to_builtins(alert.ingest) if alert.ingest is not None else None,
        "instances": {
            "reported": alert.instances_reported, "expected": alert.instances_expected,
            "missing": list(alert.missing_instances),
        } if alert.instances_expected is not None else None,
    }  # fmt: skip


def plan_delivery(
    alert: Alert,
    channel_id: str,
    channels: Mapping[str, ChannelConfig],
    delivered: Container[DeliveryKey],
    operator_channels: Container[str] = (),
) -> Literal["send", "already_delivered", "unknown"]:
    """What to do about one of the alert's channels now.

    ``operator_channels`` (``PINGURA_INGEST_ALERT_CHANNELS``) get the operators' alerts
    (:data:`~services.notifier.messages.OPERATOR_KINDS`) whatever project owns them, and only
    they do; every other alert reaches only its own project's channels."""
    channel = channels.get(channel_id)
    if channel is None or channel.deleted:
        return "unknown"
    if alert.kind in OPERATOR_KINDS:
        if channel_id not in operator_channels:
            return "unknown"
    elif channel.project_id != alert.project_id:
        # Another project's channel counts as unknown: an alert must not reach it even
        # if a monitor config names it by mistake.
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
