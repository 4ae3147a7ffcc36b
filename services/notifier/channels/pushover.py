"""Pushover: a push notification through the Message API.

Follows Pushover's API docs (https://pushover.net/api): POST
``https://api.pushover.net/1/messages.json`` form-encoded with ``token`` (the
application's), ``user`` (a user or group key), ``message`` (at most 1024 characters),
``title`` (250), ``url`` (512), ``url_title`` (100), ``timestamp`` (Unix seconds),
``html=1`` (HTML formatting: ``<b>``, ``<i>``, ``<a href>``...), ``priority`` -2..2
(2, emergency, needs ``retry`` of at least 30 s and ``expire`` of at most 10800 s) and
``sound``. Answers: 200 ``{"status": 1}``; 4xx ``{"status": 0, "errors": [...]}``
(permanent, 429 when over the monthly limit: retried); 5xx retried.
"""

from __future__ import annotations

import re

import aiohttp

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField
from services.notifier.channels.http import validate_url
from services.notifier.messages import Message, fit_lines
from shared.settings import Settings

DEFAULT_URL = "https://api.pushover.net/1/messages.json"
MESSAGE_MAX_CHARS = 1024
TITLE_MAX_CHARS = 250
URL_MAX_CHARS = 512
EMERGENCY = 2
MIN_RETRY_S = 30
MAX_EXPIRE_S = 10800
DEFAULT_RETRY_S = 60
DEFAULT_EXPIRE_S = 3600
_KEY = re.compile(r"[A-Za-z0-9]{30}")
_SOUND = re.compile(r"[A-Za-z0-9_-]{1,32}")


class PushoverChannel(Channel):
    kind = "pushover"
    label = "Pushover"
    config_fields = (
        ConfigField("token", "string", required=True, secret=True, help="Your Pushover application's API token."),
        ConfigField("user", "string", required=True, secret=True, help="The user or group key to notify."),
        ConfigField(
            "priority", "integer",
            help="Priority of down alerts, -2 (silent) to 2 (emergency: repeats until acknowledged); 0 unless "
                 "set. Recoveries are sent at most at 0.",
        ),
        ConfigField(
            "retry_s", "integer",
            help=f"Emergency only: seconds between repeats (at least {MIN_RETRY_S}); {DEFAULT_RETRY_S} unless set.",
        ),
        ConfigField(
            "expire_s", "integer",
            help=f"Emergency only: stop repeating after this many seconds (at most {MAX_EXPIRE_S}); "
                 f"{DEFAULT_EXPIRE_S} unless set.",
        ),
        ConfigField("sound", "string", help="A Pushover sound name (e.g. siren); the user's default unless set."),
        ConfigField("url", "url", help=f"Message API endpoint; {DEFAULT_URL} unless set."),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        normalized: dict = {}
        for name in ("token", "user"):
            value = config[name].strip()
            if not _KEY.fullmatch(value):
                raise ChannelConfigError(f"config.{name}: must be a 30-character Pushover key")
            normalized[name] = value
        priority = config.get("priority", 0)
        if not -2 <= priority <= EMERGENCY:
            raise ChannelConfigError("config.priority: must be from -2 to 2")
        normalized["priority"] = priority
        if priority == EMERGENCY:
            retry_s, expire_s = (
                config.get("retry_s", DEFAULT_RETRY_S),
                config.get("expire_s", DEFAULT_EXPIRE_S),
            )
            if retry_s < MIN_RETRY_S:
                raise ChannelConfigError(f"config.retry_s: must be at least {MIN_RETRY_S}")
            if not 0 < expire_s <= MAX_EXPIRE_S:
                raise ChannelConfigError(f"config.expire_s: must be from 1 to {MAX_EXPIRE_S}")
            normalized |= {"retry_s": retry_s, "expire_s": expire_s}
        if config.get("sound") is not None:
            if not _SOUND.fullmatch(config["sound"]):
                raise ChannelConfigError("config.sound: must be a Pushover sound name")
            normalized["sound"] = config["sound"]
        if config.get("url") is not None:
            normalized["url"] = validate_url(config["url"], settings)
        return normalized

    async def send_message(
        self, message: Message, config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        await channel_http.send(
            http, settings, config.get("url", DEFAULT_URL), receiver="Pushover", data=pushover_form(message, config),
            secrets=[config["token"], config["user"]],
        )  # fmt: skip


def pushover_form(message: Message, config: dict) -> dict[str, str]:
    priority = config.get("priority", 0)
    if not message.problem:
        priority = min(priority, 0)  # good news need not wake anyone
    form = {
        "token": config["token"],
        "user": config["user"],
        "title": _cut(message.title, TITLE_MAX_CHARS),
        "message": pushover_html(message),
        "html": "1",
        "timestamp": str(message.at_ms // 1000),
        "priority": str(priority),
    }
    if len(message.url) <= URL_MAX_CHARS:
        form |= {"url": message.url, "url_title": "Open in Pingura"}
    if priority == EMERGENCY:
        form["retry"] = str(config.get("retry_s", DEFAULT_RETRY_S))
        form["expire"] = str(config.get("expire_s", DEFAULT_EXPIRE_S))
    if config.get("sound"):
        form["sound"] = config["sound"]
    return form


def pushover_html(message: Message) -> str:
    html = message.html if message.kind != "digest" else message.html.partition("\n")[2]
    if len(html) <= MESSAGE_MAX_CHARS:
        return html
    if message.kind == "digest":
        return fit_lines(html, MESSAGE_MAX_CHARS)  # whole lines: no tag is cut
    text = fit_lines(message.text, MESSAGE_MAX_CHARS // 2)  # room for escaping
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
