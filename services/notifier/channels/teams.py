"""Microsoft Teams, through a Workflows (Power Automate) webhook: an Adaptive Card.

Follows Microsoft's docs "Create incoming webhooks with Workflows for Microsoft Teams"
(https://support.microsoft.com/office/create-incoming-webhooks-with-workflows-for-microsoft-teams-8ae491c7-0394-4861-ba59-055e33f75498)
and the request shape of "Send an Adaptive Card" in "Create and send messages"
(https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using):
``{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <AdaptiveCard>}]}``; the card follows the Adaptive Cards schema 1.4
(https://adaptivecards.io/explorer/: ``TextBlock``, ``FactSet``, ``Action.OpenUrl``). The
Office 365 connectors' MessageCard is retired and not sent. Workflows answer 202 Accepted.
"""

from __future__ import annotations

import aiohttp

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ConfigField
from services.notifier.channels.http import url_secrets, validate_url
from services.notifier.messages import Message, render
from shared.events import Alert
from shared.settings import Settings

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"


class TeamsChannel(Channel):
    kind = "teams"
    label = "Microsoft Teams"
    config_fields = (
        ConfigField(
            "url", "url", required=True, secret=True,
            help="The URL of a Teams Workflows webhook (\"When a Teams webhook request is received\"). "
                 "Masked once saved.",
        ),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        return {"url": validate_url(config.get("url"), settings)}

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        await self.send_message(render(alert, settings.ping_base_url), config, http, settings)

    async def send_message(
        self, message: Message, config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        await channel_http.send(
            http, settings, config["url"], receiver="Teams", json_body=teams_payload(message),
            secrets=url_secrets(config["url"]),
        )  # fmt: skip


def teams_payload(message: Message) -> dict:
    body: list[dict] = [
        {
            "type": "TextBlock", "text": message.title, "size": "Large", "weight": "Bolder",
            "color": "Attention" if message.problem else "Good", "wrap": True,
        },
    ]  # fmt: skip
    if message.kind == "digest":
        body += [{"type": "TextBlock", "text": line, "wrap": True} for line in message.text.split("\n")[1:]]
    else:
        body.append({"type": "TextBlock", "text": message.text, "wrap": True})
        facts = [{"title": field.label, "value": field.value} for field in message.facts("heartbeat", "status", "why")]
        body.append({"type": "FactSet", "facts": facts})
    card = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Pingura", "url": message.url}],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }
