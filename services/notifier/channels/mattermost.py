"""Mattermost, through an incoming webhook: Slack-compatible ``text`` plus one attachment
coloured by state.

Follows Mattermost's docs "Incoming webhooks"
(https://developers.mattermost.com/integrate/webhooks/incoming/) and "Message attachments"
(https://developers.mattermost.com/integrate/reference/message-attachments/): ``fallback``,
``color``, ``title``, ``title_link``, ``text`` (Markdown), ``fields`` of
``{"short", "title", "value"}``. Mattermost answers 200 ``ok``.

Job-supplied text is escaped for Markdown where Markdown is parsed (the attachment's text and
fields, Rocket.Chat's too) and made inert elsewhere (the message text, title and fallback:
Rocket.Chat parses its message text with no backslash escapes), so neither kind finds markup,
a link or a mention (``@channel``, ``@all``, ``<!channel>``) in it.
"""

from __future__ import annotations

from services.notifier.channels.chat import IncomingWebhookChannel, inert, markdown
from services.notifier.messages import Message

_SHORT_FIELDS = frozenset({"since", "down_for", "last_checkin", "tags"})


class MattermostChannel(IncomingWebhookChannel):
    kind = "mattermost"
    label = "Mattermost"
    url_help = "The incoming webhook URL (https://<your server>/hooks/<id>). Masked once saved."

    def payload(self, message: Message) -> dict:
        return attachment_payload(message)


def attachment_payload(message: Message) -> dict:
    """The Slack-compatible ``{"text", "attachments": [...]}`` Mattermost and Rocket.Chat read."""
    if message.kind == "digest":
        text, fields = message.text.partition("\n")[2], []
    else:
        text = message.text
        fields = [
            {
                "short": field.key in _SHORT_FIELDS,
                "title": markdown(field.label),
                "value": markdown(field.value),
            }
            for field in message.facts("heartbeat", "status")
        ]
    title = inert(message.title)
    attachment = {
        "fallback": title,
        "color": message.color,
        "title": title,
        "title_link": message.url,
        "text": markdown(text),
        "fields": fields,
    }
    return {"text": title, "attachments": [attachment]}
