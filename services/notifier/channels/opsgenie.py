"""Opsgenie, through the Alert API: a ``down`` creates an alert, the ``up`` of the same
incident closes it (same ``alias``: ``<monitor id>:<incident>``). A ``flapping`` alert creates
one of its own (its id); an ``ingest_down`` creates one that its ``ingest_up`` closes
(``ingest:<scope>:<n>``): see :func:`~services.notifier.messages.incident_key`.

Follows Atlassian's "Opsgenie Alert API" docs
(https://docs.opsgenie.com/docs/alert-api: "Create Alert" POST ``/v2/alerts`` with
``message`` (at most 130 characters), ``alias`` (512), ``description`` (15000), ``tags``,
``details``, ``entity``, ``source``, ``priority`` P1-P5; "Close Alert" POST
``/v2/alerts/{identifier}/close?identifierType=alias``) and "Authentication"
(``Authorization: GenieKey <key>``; EU accounts use ``api.eu.opsgenie.com``). Requests are
processed asynchronously: 202 Accepted is success; 422 is a bad request (permanent);
429 is retried.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ConfigField
from services.notifier.channels.http import validate_token, validate_url
from services.notifier.messages import incident_key, render
from shared.events import Alert
from shared.settings import Settings

API_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
MESSAGE_MAX_CHARS = 130
ALIAS_MAX_CHARS = 512
DESCRIPTION_MAX_CHARS = 15000
TAG_MAX_CHARS = 50
MAX_TAGS = 20
SOURCE = "Pingura"


class OpsgenieChannel(Channel):
    kind = "opsgenie"
    label = "Opsgenie"
    digest_one_by_one = True  # each alert creates or closes its own Opsgenie alert
    config_fields = (
        ConfigField(
            "api_key", "string", required=True, secret=True,
            help="The API key of an Opsgenie API integration (Settings > Integrations > API).",
        ),
        ConfigField(
            "region", "string", choices=tuple(API_URLS), help="us (api.opsgenie.com) unless set; eu for EU accounts.",
        ),
        ConfigField(
            "priority", "string", choices=PRIORITIES,
            help="Priority of created alerts; Opsgenie's default (P3) unless set.",
        ),
        ConfigField("url", "url", help="API base URL, overriding region (e.g. a proxy)."),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        normalized = {"api_key": validate_token(config.get("api_key"), "api_key", "an API key")}
        normalized["region"] = config.get("region", "us")
        if config.get("priority") is not None:
            normalized["priority"] = config["priority"]
        if config.get("url") is not None:
            normalized["url"] = validate_url(config["url"], settings)
        return normalized

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        base = URL(config.get("url") or API_URLS[config.get("region", "us")])
        headers = {"Authorization": f"GenieKey {config['api_key']}"}
        message = render(alert, settings.ping_base_url)
        close = (base / "v2" / "alerts" / alias(alert) / "close").with_query(identifierType="alias")
        requests = []
        if alert.kind in ("down", "flapping", "ingest_down", "test"):
            requests.append((base / "v2" / "alerts", create_alert(alert, config, settings)))
        if alert.kind in ("up", "ingest_up", "test"):  # a test closes what it opened
            requests.append((close, {"source": SOURCE, "note": message.text}))
        for target, body in requests:
            await channel_http.send(
                http, settings, target, receiver="Opsgenie", json_body=body, headers=headers,
                secrets=[config["api_key"]],
            )  # fmt: skip


def alias(alert: Alert) -> str:
    """One per incident: Opsgenie folds its reminders into the open alert, its ``up``
    (``ingest_up``) closes it."""
    return incident_key(alert, ALIAS_MAX_CHARS)


def create_alert(alert: Alert, config: dict, settings: Settings) -> dict:
    message = render(alert, settings.ping_base_url)
    details = {field.label: field.value for field in message.fields}
    details["Link"] = message.url
    body = {
        "message": _cut(message.title, MESSAGE_MAX_CHARS),
        "alias": alias(alert),
        "description": _cut(f"{message.text}\n\n{message.url}", DESCRIPTION_MAX_CHARS),
        "tags": [tag[:TAG_MAX_CHARS] for tag in alert.tags[:MAX_TAGS]],
        "details": details,
        "entity": message.name or alert.monitor_name or alert.monitor_id,
        "source": SOURCE,
    }
    if alert.kind == "test":
        body["priority"] = "P5"
    elif config.get("priority"):
        body["priority"] = config["priority"]
    return body


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
