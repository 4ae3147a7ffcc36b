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
job's message from pinging anyone, and every text is escaped for Discord's Markdown (so a
``[masked](link)`` or ``<@&role>`` in it shows as written).
"""

from __future__ import annotations

from yarl import URL

from services.notifier.channels.base import ConfigField
from services.notifier.channels.chat import IncomingWebhookChannel, markdown
from services.notifier.messages import Message
from shared.settings import Settings

TITLE_MAX_CHARS = 256
DESCRIPTION_MAX_CHARS = 4096
FIELD_NAME_MAX_CHARS = 256
FIELD_VALUE_MAX_CHARS = 1024
MAX_FIELDS = 25
_INLINE_FIELDS = frozenset({"since", "down_for", "last_checkin", "tags"})


class DiscordChannel(IncomingWebhookChannel):
    kind = "discord"
    label = "Discord"
    # Commonly observed per channel; Discord publishes no number, and its 429 says how long to wait.
    default_rate_limit_per_minute = 30
    url_help = "The channel webhook URL (https://discord.com/api/webhooks/<id>/<token>). Masked once saved."
    extra_fields = (
        ConfigField(
            "wait", "boolean",
            help="Ask Discord to confirm the message was posted (wait=true) rather than only queued.",
        ),
    )  # fmt: skip
    retry_after_key_path = ("retry_after",)

    def normalize(self, config: dict, settings: Settings) -> dict:
        normalized = super().normalize(config, settings)
        if config.get("wait"):
            normalized["wait"] = True
        return normalized

    def target(self, config: dict) -> URL:
        url = URL(config["url"])
        return url.update_query(wait="true") if config.get("wait") else url

    def payload(self, message: Message) -> dict:
        return discord_payload(message)


def discord_payload(message: Message) -> dict:
    title = markdown(message.title)
    if message.kind == "digest":
        description = message.text.partition("\n")[2]
        fields: list[dict] = []
    else:
        description = message.text
        fields = [
            {
                "name": _cut(markdown(field.label), FIELD_NAME_MAX_CHARS),
                "value": _cut(markdown(field.value), FIELD_VALUE_MAX_CHARS),
                "inline": field.key in _INLINE_FIELDS,
            }
            for field in message.facts("heartbeat", "status", "why")[:MAX_FIELDS]
        ]
    embed = {
        "title": _cut(title, TITLE_MAX_CHARS),
        "description": _cut(markdown(description), DESCRIPTION_MAX_CHARS),
        "url": message.url,
        "color": int(message.color.removeprefix("#"), 16),
        "fields": fields,
        "timestamp": message.at_iso,
        "footer": {"text": "Pingura"},
    }
    return {"content": _cut(title, 2000), "embeds": [embed], "allowed_mentions": {"parse": []}}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
