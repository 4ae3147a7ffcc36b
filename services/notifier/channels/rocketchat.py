"""Rocket.Chat, through an incoming webhook integration: ``text`` plus one attachment
coloured by state (the Slack-compatible shape Mattermost gets too).

Follows Rocket.Chat's docs "Incoming webhook integration"
(https://docs.rocket.chat/docs/integrations, "Incoming" and the example payload with
``attachments``: ``title``, ``title_link``, ``text``, ``color``, ``fields`` of
``{"short", "title", "value"}``). Rocket.Chat answers 200 ``{"success": true}``.
"""

from __future__ import annotations

import aiohttp

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ConfigField
from services.notifier.channels.http import url_secrets, validate_url
from services.notifier.channels.mattermost import attachment_payload
from services.notifier.messages import Message, render
from shared.events import Alert
from shared.settings import Settings


class RocketChatChannel(Channel):
    kind = "rocketchat"
    label = "Rocket.Chat"
    config_fields = (
        ConfigField(
            "url", "url", required=True, secret=True,
            help="The incoming webhook URL (https://<your server>/hooks/<id>/<token>). Masked once saved.",
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
            http, settings, config["url"], receiver="Rocket.Chat", json_body=attachment_payload(message),
            secrets=url_secrets(config["url"]),
        )  # fmt: skip
