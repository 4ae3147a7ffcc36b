"""Slack, through an incoming webhook: a Block Kit message with a ``text`` fallback.

Follows Slack's docs "Sending messages using incoming webhooks"
(https://api.slack.com/messaging/webhooks) and the Block Kit reference
(https://api.slack.com/reference/block-kit/blocks: ``header``, ``section``, ``context``,
``actions`` with a link ``button``), with their limits: header text 150 characters,
section text 3000, at most 10 section fields of 2000, at most 10 context elements.
``text`` is what notifications and screen readers show. Slack answers 200 ``ok``;
errors are 400 ``invalid_payload``, 403 ``action_prohibited``, 404 ``channel_not_found``,
410 ``channel_is_archived`` (permanent) and 429 with ``Retry-After`` or 5xx (retried).
"""

from __future__ import annotations

from services.notifier.channels.chat import IncomingWebhookChannel, inert
from services.notifier.messages import Message

HEADER_MAX_CHARS = 150
SECTION_MAX_CHARS = 3000
FIELD_MAX_CHARS = 2000
MAX_FIELDS = 10
BUTTON_TEXT = "Open in Pingura"


class SlackChannel(IncomingWebhookChannel):
    kind = "slack"
    label = "Slack"
    default_rate_limit_per_minute = 60  # "1 message per second" per webhook (docs: Rate limits)
    url_help = (
        "The incoming webhook URL Slack gave (https://hooks.slack.com/services/...). "
        "It is the credential: masked once saved."
    )

    def payload(self, message: Message) -> dict:
        return slack_payload(message)


def slack_payload(message: Message) -> dict:
    """``{"text", "blocks"}`` of a message (an alert or a digest)."""
    if message.kind == "digest":
        lines = message.text.split("\n")[1:]
        body = _cut("\n".join(_mrkdwn(line) for line in lines), SECTION_MAX_CHARS)
        fields: list[dict] = []
    else:
        name = message.name  # the text starts with it: link it
        linked = f"<{message.url}|{_mrkdwn(name)}>" if name else ""
        body = _cut(linked + _mrkdwn(message.text.removeprefix(name)), SECTION_MAX_CHARS)
        fields = [
            {"type": "mrkdwn", "text": _cut(f"*{field.label}*\n{_mrkdwn(field.value)}", FIELD_MAX_CHARS)}
            for field in message.facts("heartbeat", "status", "why")[:MAX_FIELDS]
        ]
    section: dict = {"type": "section", "text": {"type": "mrkdwn", "text": body}}
    if fields:
        section["fields"] = fields
    blocks = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(inert(message.title), HEADER_MAX_CHARS)},
        },
        section,
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Pingura · {message.at_iso}"}]},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": BUTTON_TEXT}, "url": message.url}
            ],
        },
    ]
    return {"text": _mrkdwn(message.title), "blocks": blocks}


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask (so ``<!channel>`` in a
    heartbeat's name cannot ping anyone), then made inert like every chat kind's text."""
    return inert(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
