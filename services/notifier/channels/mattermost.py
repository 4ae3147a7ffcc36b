"""Mattermost, through an incoming webhook: Slack-compatible ``text`` plus one attachment
coloured by state.

Follows Mattermost's docs "Incoming webhooks"
(https://developers.mattermost.com/integrate/webhooks/incoming/) and "Message attachments"
(https://developers.mattermost.com/integrate/reference/message-attachments/): ``fallback``,
``color``, ``title``, ``title_link``, ``text`` (Markdown), ``fields`` of
``{"short", "title", "value"}``. Mattermost answers 200 ``ok``.
"""

from __future__ import annotations

import aiohttp

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ConfigField
from services.notifier.channels.http import url_secrets, validate_url
from services.notifier.messages import Message, render
from shared.events import Alert
from shared.settings import Settings

_SHORT_FIELDS = frozenset({"since", "down_for", "last_checkin", "tags"})


class MattermostChannel(Channel):
    kind = "mattermost"
    label = "Mattermost"
    config_fields = (
        ConfigField(
            "url", "url", required=True, secret=True,
            help="The incoming webhook URL (https://<your server>/hooks/<id>). Masked once saved.",
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
            http, settings, config["url"], receiver="Mattermost", json_body=attachment_payload(message),
            secrets=url_secrets(config["url"]),
        )  # fmt: skip


def attachment_payload(message: Message) -> dict:
    """The Slack-compatible ``{"text", "attachments": [...]}`` Mattermost and Rocket.Chat read."""
    if message.kind == "digest":
        text, fields = message.text.partition("\n")[2], []
    else:
        text = message.text
        fields = [
            {"short": field.key in _SHORT_FIELDS, "title": field.label, "value": field.value}
            for field in message.facts("heartbeat", "status")
        ]
    attachment = {
        "fallback": message.title,
        "color": message.color,
        "title": message.title,
        "title_link": message.url,
        "text": text,
        "fields": fields,
    }
    return {"text": message.title, "attachments": [attachment]}
