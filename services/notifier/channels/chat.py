"""What the chat kinds that post to an incoming webhook share (Slack, Mattermost,
Rocket.Chat, Microsoft Teams, Google Chat, Discord): one secret ``url`` setting, which is
itself the credential, and one JSON POST of the rendered message to it.

A kind declares only what differs: its ``kind``, ``label``, ``default_rate_limit_per_minute``,
the ``url`` setting's help (``url_help``), any further settings (``extra_fields``), how its
payload is built (:meth:`IncomingWebhookChannel.payload`, the builder living in the kind's
own module) and any request details (``receiver``, ``headers``, ``retry_after_key_path``,
:meth:`IncomingWebhookChannel.target`).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ConfigField
from services.notifier.channels.http import json_retry_after, url_secrets, validate_url
from services.notifier.messages import Message
from shared.settings import Settings


class IncomingWebhookChannel(Channel):
    url_help: ClassVar[str]
    """The help of the ``url`` setting: what the receiver's webhook URL looks like."""
    extra_fields: ClassVar[tuple[ConfigField, ...]] = ()
    """Settings after ``url``; a kind that declares any also checks them in :meth:`normalize`."""
    receiver: ClassVar[str | None] = None
    """How errors name the other side; None: the ``label``."""
    headers: ClassVar[Mapping[str, str] | None] = None
    """Headers of each request beyond the defaults."""
    retry_after_key_path: ClassVar[tuple[str, ...] | None] = None
    """Where a JSON error body says how many seconds to wait (see :func:`channel_http.send`);
    None: the kind's bodies do not say."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "url_help" in cls.__dict__:
            url = ConfigField("url", "url", required=True, secret=True, help=cls.url_help)
            cls.config_fields = (url, *cls.extra_fields)
        super().__init_subclass__(**kwargs)  # appends the common settings

    @abc.abstractmethod
    def payload(self, message: Message) -> dict:
        """The JSON body posted for ``message`` (an alert or a digest)."""

    def target(self, config: dict) -> str | URL:
        """Where to post: the configured URL."""
        return config["url"]

    def normalize(self, config: dict, settings: Settings) -> dict:
        return {"url": validate_url(config.get("url"), settings)}

    async def send_message(
        self, message: Message, config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        path = self.retry_after_key_path
        await channel_http.send(
            http, settings, self.target(config), receiver=self.receiver or self.label,
            json_body=self.payload(message), headers=self.headers, secrets=url_secrets(config["url"]),
            retry_after_in_body=json_retry_after(path) if path is not None else None,
        )  # fmt: skip


# job-supplied text --------------------------------------------------------------------------
# A message carries what others wrote (a heartbeat's name, a job's failure message and
# output): it must read as written, never as markup, and never mention anyone. Builders pass
# every string they place (title, text, field labels and values) through one of these.
ZERO_WIDTH_SPACE = "\u200b"
_MENTION = re.compile(r"([@#<])")  # @channel/@all/@here/@user, #channel, <!channel>, <users/all>, <url|text>
_LINK = re.compile(r"\](?=[(\[])")  # [text](url), [text][ref], ![alt](url)
_INLINE_MARKUP = re.compile(r"([\\`*_~\[\]<>|&$])")
_LINE_MARKUP = re.compile(r"^([ \t]*(?:\d+(?=[.)]))?)([#>+=.)-])", re.MULTILINE)  # headings, quotes, lists


def inert(text: str) -> str:
    """``text`` with a zero-width space after each ``@``, ``#`` and ``<`` and between ``]``
    and ``(``: it looks the same, but no parser finds a mention or a link in it. For fields
    shown as plain text, or parsed by a Markdown with no backslash escapes."""
    return _LINK.sub("]" + ZERO_WIDTH_SPACE, _MENTION.sub(r"\1" + ZERO_WIDTH_SPACE, text))


def markdown(text: str) -> str:
    """``text`` for a field parsed as Markdown (CommonMark and Discord's): markup characters
    backslash-escaped, so it reads as written, then made :func:`inert` (a receiver may look
    for mentions before it renders)."""
    return inert(_LINE_MARKUP.sub(lambda m: m[1] + "\\" + m[2], _INLINE_MARKUP.sub(r"\\\1", text)))
