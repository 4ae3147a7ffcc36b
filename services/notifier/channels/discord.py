"""Discord, through a channel webhook: one embed (title, description, colour, link,
fields, timestamp) and a short ``content`` line.

Follows Discord's developer docs "Execute Webhook"
(https://discord.com/developers/docs/resources/webhook#execute-webhook: ``content``,
``embeds``, ``allowed_mentions``, query ``wait``) and the Embed object
(https://discord.com/developers/docs/resources/message#embed-object, with its limits:
title 256, description 4096, 25 fields of name 256 / value 1024, 6000 in all). Without
``wait`` Discord answers 204; with ``wait=true`` 200 and the message. A 429 carries
``Retry-After`` and ``retry_after`` (seconds) in its JSON body
(https://discord.com/developers/docs/topics/rate-limits).

``allowed_mentions: {"parse": []}`` keeps an ``@everyone`` in a heartbeat's name or a
job's message from pinging anyone.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ConfigField
from services.notifier.channels.http import json_retry_after, url_secrets, validate_url
from services.notifier.messages import Message, render
from shared.events import Alert
from shared.settings import Settings

TITLE_MAX_CHARS = 256
DESCRIPTION_MAX_CHARS = 4096
FIELD_NAME_MAX_CHARS = 256
FIELD_VALUE_MAX_CHARS = 1024
MAX_FIELDS = 25
_INLINE_FIELDS = frozenset({"since", "down_for", "last_checkin", "tags"})


class DiscordChannel(Channel):
    kind = "discord"
    label = "Discord"
    # Commonly observed per channel; Discord publishes no number, and its 429 says how long to wait.
    default_rate_limit_per_minute = 30
    config_fields = (
        ConfigField(
            "url", "url", required=True, secret=True,
            help="The channel webhook URL (https://discord.com/api/webhooks/<id>/<token>). Masked once saved.",
        ),
        ConfigField(
            "wait", "boolean",
            help="Ask Discord to confirm the message was posted (wait=true) rather than only queued.",
        ),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        normalized = {"url": validate_url(config.get("url"), settings)}
        if config.get("wait"):
            normalized["wait"] = True
        return normalized

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        await self.send_message(render(alert, settings.ping_base_url), config, http, settings)

    async def send_message(
        self, message: Message, config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        url = URL(config["url"])
        if config.get("wait"):
            url = url.update_query(wait="true")
        await channel_http.send(
            http, settings, url, receiver="Discord", json_body=discord_payload(message),
            secrets=url_secrets(config["url"]),
            retry_after_in_body=json_retry_after(("retry_after",)),
        )  # fmt: skip


def discord_payload(message: Message) -> dict:
    if message.kind == "digest":
        description = message.text.partition("\n")[2]
        fields: list[dict] = []
    else:
        description = message.text
        fields = [
            {
                "name": _cut(field.label, FIELD_NAME_MAX_CHARS),
                "value": _cut(field.value, FIELD_VALUE_MAX_CHARS),
                "inline": field.key in _INLINE_FIELDS,
            }
            for field in message.facts("heartbeat", "status", "why")[:MAX_FIELDS]
        ]
    embed = {
        "title": _cut(message.title, TITLE_MAX_CHARS),
        "description": _cut(description, DESCRIPTION_MAX_CHARS),
        "url": message.url,
        "color": int(message.color.removeprefix("#"), 16),
        "fields": fields,
        "timestamp": message.at_iso,
        "footer": {"text": "Pingura"},
    }
    return {"content": _cut(message.title, 2000), "embeds": [embed], "allowed_mentions": {"parse": []}}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
