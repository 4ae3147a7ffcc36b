"""Google Chat, through a space's incoming webhook: ``text`` plus a card.

Follows Google's docs "Build a Google Chat app as a webhook"
(https://developers.google.com/workspace/chat/quickstart/webhooks: POST JSON to the
webhook URL, which carries its ``key`` and ``token``) and the message resource
(https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages:
``text``, ``cardsV2`` of ``{"cardId", "card": {"header", "sections": [{"widgets"}]}}`` with
``decoratedText`` and ``buttonList`` widgets, https://developers.google.com/workspace/chat/api/reference/rest/v1/cards).
Webhooks are limited to one message per second per space; over it Google answers 429.

The card's texts are escaped HTML; the message ``text`` and the card's title are made inert
(:func:`~services.notifier.channels.chat.inert`), so ``<users/all>`` in a name mentions no one.
"""

from __future__ import annotations

import re
from typing import ClassVar

from services.notifier.channels.chat import ZERO_WIDTH_SPACE, IncomingWebhookChannel, inert
from services.notifier.messages import Message


class GoogleChatChannel(IncomingWebhookChannel):
    kind = "googlechat"
    label = "Google Chat"
    default_rate_limit_per_minute = 60  # 60 writes a minute per space, webhooks included (docs: Usage limits)
    url_help = (
        "The space's webhook URL (https://chat.googleapis.com/v1/spaces/.../messages?key=...&token=...). "
        "Masked once saved."
    )
    headers: ClassVar[dict[str, str]] = {"Content-Type": "application/json; charset=UTF-8"}

    def payload(self, message: Message) -> dict:
        return googlechat_payload(message)


def googlechat_payload(message: Message) -> dict:
    if message.kind == "digest":
        lines = message.html.partition("\n")[2]
        widgets: list[dict] = [{"textParagraph": {"text": _inert_html(lines).replace("\n", "<br>")}}]
    else:
        widgets = [{"textParagraph": {"text": _inert_html(message.html)}}]
        widgets += [
            {
                "decoratedText": {
                    "topLabel": inert(field.label),
                    "text": _inert_html(_html(field.value)),
                    "wrapText": True,
                }
            }
            for field in message.facts("heartbeat", "status", "why")
        ]
    button = {"text": "Open in Pingura", "onClick": {"openLink": {"url": message.url}}}
    widgets.append({"buttonList": {"buttons": [button]}})
    card = {
        "header": {"title": inert(message.title), "subtitle": f"Pingura · {message.at_iso}"},
        "sections": [{"widgets": widgets}],
    }
    return {"text": inert(message.title), "cardsV2": [{"cardId": "pingura-alert", "card": card}]}


_TAG_OR_TEXT = re.compile(r"<[^>]*>|[^<]+")


def _inert_html(html: str) -> str:
    """Escaped HTML with its text (not its tags) made inert: ``<`` is already ``&lt;`` there."""

    def text(match: re.Match) -> str:
        part = match[0]
        if part.startswith("<"):
            return part
        return part.replace("@", "@" + ZERO_WIDTH_SPACE).replace("](", "]" + ZERO_WIDTH_SPACE + "(")

    return _TAG_OR_TEXT.sub(text, html)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
