"""Microsoft Teams, through a Workflows (Power Automate) webhook: an Adaptive Card.

Follows Microsoft's docs "Create incoming webhooks with Workflows for Microsoft Teams"
(https://support.microsoft.com/office/create-incoming-webhooks-with-workflows-for-microsoft-teams-8ae491c7-0394-4861-ba59-055e33f75498)
and the request shape of "Send an Adaptive Card" in "Create and send messages"
(https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using):
``{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <AdaptiveCard>}]}``; the card follows the Adaptive Cards schema 1.4
(https://adaptivecards.io/explorer/: ``TextBlock``, ``FactSet``, ``Action.OpenUrl``). The
Office 365 connectors' MessageCard is retired and not sent. Workflows answer 202 Accepted.

A TextBlock and a FactSet value are a Markdown subset whose escapes are not documented, so
job-supplied text is made inert (:func:`~services.notifier.channels.chat.inert`): no link.
"""

from __future__ import annotations

from services.notifier.channels.chat import IncomingWebhookChannel, inert
from services.notifier.messages import Message

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"


class TeamsChannel(IncomingWebhookChannel):
    kind = "teams"
    label = "Microsoft Teams"
    receiver = "Teams"
    url_help = (
        'The URL of a Teams Workflows webhook ("When a Teams webhook request is received"). '
        "Masked once saved."
    )

    def payload(self, message: Message) -> dict:
        return teams_payload(message)


def teams_payload(message: Message) -> dict:
    body: list[dict] = [
        {
            "type": "TextBlock", "text": inert(message.title), "size": "Large", "weight": "Bolder",
            "color": "Attention" if message.problem else "Good", "wrap": True,
        },
    ]  # fmt: skip
    if message.kind == "digest":
        body += [
            {"type": "TextBlock", "text": inert(line), "wrap": True} for line in message.text.split("\n")[1:]
        ]
    else:
        body.append({"type": "TextBlock", "text": inert(message.text), "wrap": True})
        facts = [
            {"title": inert(field.label), "value": inert(field.value)}
            for field in message.facts("heartbeat", "status", "why")
        ]
        body.append({"type": "FactSet", "facts": facts})
    card = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Pingura", "url": message.url}],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }
