"""The channel registry: kind -> channel. One module per channel kind.

The registry's channels describe and validate; they keep no connections. What a process
sends with (the HTTP session, Kafka producers) is its own, opened and closed by it:
:class:`services.notifier.sending.Senders`.
"""

from __future__ import annotations

from typing import Any

from services.notifier.channels.base import (
    Channel,
    ChannelConfigError,
    ConfigField,
    TransportError,
    mask_config,
)
from services.notifier.channels.discord import DiscordChannel
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.googlechat import GoogleChatChannel
from services.notifier.channels.kafka import KafkaChannel
from services.notifier.channels.mattermost import MattermostChannel
from services.notifier.channels.ntfy import NtfyChannel
from services.notifier.channels.opsgenie import OpsgenieChannel
from services.notifier.channels.pagerduty import PagerDutyChannel
from services.notifier.channels.pushover import PushoverChannel
from services.notifier.channels.rocketchat import RocketChatChannel
from services.notifier.channels.slack import SlackChannel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.channels.telegram import TelegramChannel
from services.notifier.channels.webhook import WebhookChannel
from shared.settings import Settings

CHANNELS: dict[str, Channel] = {
    channel.kind: channel
    for channel in (
        WebhookChannel(), EmailChannel(), KafkaChannel(),
        SlackChannel(), MattermostChannel(), RocketChatChannel(), DiscordChannel(), TeamsChannel(), GoogleChatChannel(),
        PagerDutyChannel(), OpsgenieChannel(), TelegramChannel(), NtfyChannel(), PushoverChannel(),
    )
}  # fmt: skip


def validate_channel(kind: str, config: dict, settings: Settings) -> dict:
    """Validate a channel's config for its kind; returns the normalized config.

    Raises :class:`ChannelConfigError` naming the bad field (``kind`` or ``config.<field>``).
    """
    channel = CHANNELS.get(kind)
    if channel is None:
        known = ", ".join(sorted(CHANNELS))
        raise ChannelConfigError(f"kind: unknown channel kind {kind!r} (known: {known})")
    if not isinstance(config, dict):
        raise ChannelConfigError("config: must be an object")
    return channel.validate(config, settings)


def channel_kinds() -> list[dict[str, Any]]:
    """Every kind with its label and declared settings, by kind name: what forms are drawn from."""
    return [CHANNELS[kind].describe() for kind in sorted(CHANNELS)]


def shown_config(kind: str, config: dict) -> dict:
    """A saved config as the API may show it: the kind's secret settings masked.

    A kind no longer registered declares nothing, so every value of its config is masked.
    """
    channel = CHANNELS.get(kind)
    if channel is None:
        return {name: "****" for name in config}
    return mask_config(channel.config_fields, config)


__all__ = [
    "CHANNELS", "Channel", "ChannelConfigError", "ConfigField", "TransportError", "channel_kinds",
    "shown_config", "validate_channel",
]  # fmt: skip
