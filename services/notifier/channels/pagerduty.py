"""PagerDuty, through the Events API v2: a ``down`` triggers an alert, the ``up`` of the
same incident resolves it (same ``dedup_key``: ``<monitor id>:<incident>``). A ``flapping``
alert triggers one of its own (its id); an ``ingest_down`` triggers one that its
``ingest_up`` resolves (``ingest:<scope>:<n>``): see
:func:`~services.notifier.messages.incident_key`.

Follows PagerDuty's developer docs "Events API v2 Overview" and "Send an Alert Event"
(https://developer.pagerduty.com/docs/events-api-v2-overview,
https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty):
POST ``https://events.pagerduty.com/v2/enqueue`` with ``routing_key``, ``event_action``
(``trigger``/``resolve``), ``dedup_key`` (at most 255 characters), and for a trigger a
``payload`` of ``summary`` (at most 1024), ``source``, ``severity``
(critical/error/warning/info), ``timestamp``, ``custom_details``, plus ``client``,
``client_url`` and ``links``. Answers: 202 accepted; 400 invalid event (permanent); 429
too many events (retried); 5xx retried.
"""

from __future__ import annotations

import re

import aiohttp

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField
from services.notifier.channels.http import validate_url
from services.notifier.messages import OPERATOR_KINDS, incident_key, render
from shared.events import Alert
from shared.settings import Settings

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES = ("critical", "error", "warning", "info")
SUMMARY_MAX_CHARS = 1024
DEDUP_KEY_MAX_CHARS = 255
_ROUTING_KEY = re.compile(r"[A-Za-z0-9]{32}")


class PagerDutyChannel(Channel):
    kind = "pagerduty"
    label = "PagerDuty"
    digest_one_by_one = True  # each alert opens or closes its own PagerDuty alert
    default_rate_limit_per_minute = 120  # Events API v2: 120 events a minute per integration key
    config_fields = (
        ConfigField(
            "routing_key", "string", required=True, secret=True,
            help="The Integration Key (32 characters) of an Events API v2 integration on a PagerDuty service.",
        ),
        ConfigField(
            "severity", "string", choices=SEVERITIES, help="Severity of triggered alerts; critical unless set.",
        ),
        ConfigField("url", "url", help=f"Events API endpoint; {DEFAULT_URL} unless set."),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        key = config.get("routing_key", "").strip()
        if not _ROUTING_KEY.fullmatch(key):
            raise ChannelConfigError("config.routing_key: must be the 32-character integration key")
        normalized = {"routing_key": key, "severity": config.get("severity", "critical")}
        if config.get("url") is not None:
            normalized["url"] = validate_url(config["url"], settings)
        return normalized

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        events = [pagerduty_event(alert, config, settings)]
        if alert.kind == "test":  # pages once to show the path works, then closes what it opened
            resolve = {
                "routing_key": config["routing_key"],
                "dedup_key": dedup_key(alert),
                "event_action": "resolve",
            }
            events.append(resolve)
        for event in events:
            await channel_http.send(
                http, settings, config.get("url", DEFAULT_URL), receiver="PagerDuty", json_body=event,
                secrets=[config["routing_key"]],
            )  # fmt: skip


def dedup_key(alert: Alert) -> str:
    """One per incident: its reminders add to the open alert, its ``up`` (``ingest_up``) resolves it."""
    return incident_key(alert, DEDUP_KEY_MAX_CHARS)


def pagerduty_event(alert: Alert, config: dict, settings: Settings) -> dict:
    event: dict = {"routing_key": config["routing_key"], "dedup_key": dedup_key(alert)}
    if alert.kind in ("up", "ingest_up"):
        event["event_action"] = "resolve"
        return event
    message = render(alert, settings.ping_base_url)
    facts = {field.key: field.value for field in message.fields}
    summary = f"{message.title}: {facts['why']}" if "why" in facts else message.title
    operator = alert.kind in OPERATOR_KINDS
    event["event_action"] = "trigger"
    event["payload"] = {
        "summary": summary if len(summary) <= SUMMARY_MAX_CHARS else summary[: SUMMARY_MAX_CHARS - 1] + "…",
        "source": message.name or alert.monitor_name or alert.monitor_id,
        "severity": "info" if alert.kind == "test" else config.get("severity", "critical"),
        "timestamp": message.at_iso,
        "component": "ingest" if operator else alert.monitor_id,
        "class": "ingest" if operator else "flapping" if alert.kind == "flapping" else "heartbeat",
        "custom_details": {
            **facts, "heartbeat_id": alert.monitor_id, "incident": alert.incident, "alert_id": alert.id,
            "reason": alert.reason, "tags": list(alert.tags),
        },
    }  # fmt: skip
    event["client"] = "Pingura"
    event["client_url"] = message.url
    event["links"] = [
        {"href": message.url, "text": "Pingura dashboard" if operator else "Heartbeat in Pingura"}
    ]
    return event
