"""Rocket.Chat, through an incoming webhook integration: ``text`` plus one attachment
coloured by state (the Slack-compatible shape Mattermost gets too).

Follows Rocket.Chat's docs "Incoming webhook integration"
(https://docs.rocket.chat/docs/integrations, "Incoming" and the example payload with
``attachments``: ``title``, ``title_link``, ``text``, ``color``, ``fields`` of
``{"short", "title", "value"}``). Rocket.Chat answers 200 ``{"success": true}``.
"""

from __future__ import annotations

from services.notifier.channels.chat import IncomingWebhookChannel
from services.notifier.channels.mattermost import attachment_payload
from services.notifier.messages import Message


class RocketChatChannel(IncomingWebhookChannel):
    kind = "rocketchat"
    label = "Rocket.Chat"
    url_help = "The incoming webhook URL (https://<your server>/hooks/<id>/<token>). Masked once saved."

    def payload(self, message: Message) -> dict:
        return attachment_payload(message)
