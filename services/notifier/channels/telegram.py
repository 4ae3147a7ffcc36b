"""Telegram, through a bot: ``sendMessage`` to a chat, formatted as HTML.

Follows the Telegram Bot API docs (https://core.telegram.org/bots/api): "Making requests"
(``https://api.telegram.org/bot<token>/METHOD``, JSON bodies, answers
``{"ok": false, "description", "parameters": {"retry_after"}}`` on errors), "sendMessage"
(``chat_id``, ``text`` of at most 4096 characters after entity parsing,
``parse_mode``, ``link_preview_options``) and "Formatting options" (HTML: ``<b>``, ``<i>``,
``<a href>``, ``<code>``; ``<``, ``>``, ``&`` escaped). ``disable_web_page_preview``, the
older spelling of ``link_preview_options.is_disabled``, is sent too for self-hosted Bot
API servers that predate it.
"""

from __future__ import annotations

import re

import aiohttp
from yarl import URL

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField
from services.notifier.channels.http import json_retry_after, validate_url
from services.notifier.messages import Message, fit_lines
from shared.settings import Settings

DEFAULT_URL = "https://api.telegram.org"
TEXT_MAX_CHARS = 4096
_BOT_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
_CHAT_ID = re.compile(r"-?[0-9]+|@[A-Za-z][A-Za-z0-9_]{3,}")


class TelegramChannel(Channel):
    kind = "telegram"
    label = "Telegram"
    default_rate_limit_per_minute = 20  # "no more than 20 messages per minute in the same group" (Bot FAQ)
    config_fields = (
        ConfigField(
            "bot_token", "string", required=True, secret=True,
            help="The bot's token from @BotFather (123456:ABC-...). Add the bot to the chat first.",
        ),
        ConfigField(
            "chat_id", "string", required=True,
            help="The chat to post in: its numeric id (groups are negative) or @channelusername.",
        ),
        ConfigField("url", "url", help=f"Bot API server; {DEFAULT_URL} unless set."),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        token = config["bot_token"].strip()
        if not _BOT_TOKEN.fullmatch(token):
            raise ChannelConfigError("config.bot_token: must be a bot token like 123456:ABC-DEF...")
        chat_id = config["chat_id"].strip()
        if not _CHAT_ID.fullmatch(chat_id):
            raise ChannelConfigError("config.chat_id: must be a numeric chat id or @channelusername")
        normalized = {"bot_token": token, "chat_id": chat_id}
        if config.get("url") is not None:
            normalized["url"] = validate_url(config["url"], settings)
        return normalized

    async def send_message(
        self, message: Message, config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        base = URL(config.get("url") or DEFAULT_URL)
        target = base / f"bot{config['bot_token']}" / "sendMessage"
        body = {
            "chat_id": config["chat_id"],
            "text": telegram_text(message),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
            "disable_web_page_preview": True,
        }
        await channel_http.send(
            http, settings, target, receiver="Telegram", json_body=body, secrets=[config["bot_token"]],
            retry_after_in_body=json_retry_after(("parameters", "retry_after")),
        )  # fmt: skip


def telegram_text(message: Message) -> str:
    if message.kind == "digest":
        return fit_lines(message.html, TEXT_MAX_CHARS)  # whole lines: no tag is cut
    text = f"<b>{_esc(message.title)}</b>\n{message.html}"
    if len(text) > TEXT_MAX_CHARS:  # cutting HTML could split a tag: cut the plain text instead
        text = _esc(fit_lines(message.text, TEXT_MAX_CHARS // 2))
    return text


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
