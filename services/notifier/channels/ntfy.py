"""ntfy (ntfy.sh or a self-hosted server): a push notification published as JSON.

Follows ntfy's docs "Publishing" (https://docs.ntfy.sh/publish/): "Publish as JSON" (POST
to the server's root URL, not the topic URL, with ``topic``, ``title``, ``message``,
``priority`` as a number 1-5, ``tags`` as a list, ``click``), "Message priority"
(1/min, 2/low, 3/default, 4/high, 5/max or urgent), "Tags & emojis" (a tag that is an
emoji short code shows as that emoji) and "Authentication" (access tokens as
``Authorization: Bearer tk_...``). Topic names are 1-64 of ``[-_A-Za-z0-9]``.
"""

from __future__ import annotations

import re

import aiohttp

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField
from services.notifier.channels.http import validate_token, validate_url
from services.notifier.messages import Message, fit_lines
from shared.settings import Settings

DEFAULT_URL = "https://ntfy.sh"
PRIORITIES = {
    "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "min": 1, "low": 2, "default": 3, "high": 4, "max": 5, "urgent": 5,
}  # fmt: skip
DEFAULT_PRIORITY = 3
MESSAGE_MAX_CHARS = 4096  # ntfy's default message size limit (4 KB); more becomes an attachment
_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_TAG = re.compile(r"[^,\s][^,]{0,63}")
STATE_TAGS = {"down": "rotating_light", "up": "white_check_mark"}
"""Emoji short codes ntfy shows in front of the title."""


class NtfyChannel(Channel):
    kind = "ntfy"
    label = "ntfy"
    config_fields = (
        ConfigField("topic", "string", required=True, help="The topic to publish to (letters, digits, - and _)."),
        ConfigField("url", "url", help=f"The ntfy server; {DEFAULT_URL} unless set."),
        ConfigField(
            "priority", "string", choices=tuple(PRIORITIES),
            help="Priority of down alerts, 1-5 or min/low/default/high/urgent; default (3) unless set. "
                 "Recoveries are sent at most at default.",
        ),
        ConfigField("tags", "list", help="Extra tags; emoji short codes (e.g. warning) show as emojis."),
        ConfigField("token", "string", secret=True, help="Access token (tk_...) for a protected topic."),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        topic = config["topic"].strip()
        if not _TOPIC.fullmatch(topic):
            raise ChannelConfigError("config.topic: must be 1-64 letters, digits, - or _")
        normalized: dict = {"topic": topic, "url": validate_url(config.get("url", DEFAULT_URL), settings)}
        if config.get("priority") is not None:
            normalized["priority"] = config["priority"]
        tags = [tag.strip() for tag in config.get("tags", [])]
        for tag in tags:
            if not _TAG.fullmatch(tag):
                raise ChannelConfigError(f"config.tags: {tag!r} must be 1-64 characters without commas")
        if tags:
            normalized["tags"] = tags
        if config.get("token") is not None:
            normalized["token"] = validate_token(config["token"], "token", "an access token")
        return normalized

    async def send_message(
        self, message: Message, config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        headers = {"Authorization": f"Bearer {config['token']}"} if config.get("token") else {}
        await channel_http.send(
            http, settings, config.get("url", DEFAULT_URL), receiver="ntfy", json_body=ntfy_payload(message, config),
            headers=headers, secrets=[config.get("token", "")],
        )  # fmt: skip


def ntfy_payload(message: Message, config: dict) -> dict:
    priority = PRIORITIES[config.get("priority", "default")]
    if not message.problem:
        priority = min(priority, DEFAULT_PRIORITY)  # good news need not wake anyone
    text = message.text if message.kind != "digest" else message.text.partition("\n")[2]
    return {
        "topic": config["topic"],
        "title": message.title,
        "message": fit_lines(text, MESSAGE_MAX_CHARS),
        "priority": priority,
        "tags": [STATE_TAGS["down" if message.problem else "up"], *config.get("tags", [])],
        "click": message.url,
    }
