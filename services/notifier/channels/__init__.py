"""The channel registry: kind -> channel. One module per channel kind."""

from __future__ import annotations

from services.notifier.channels.base import Channel, ChannelConfigError, TransportError
from services.notifier.channels.webhook import WebhookChannel
from shared.settings import Settings

CHANNELS: dict[str, Channel] = {channel.kind: channel for channel in (WebhookChannel(),)}


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


__all__ = ["CHANNELS", "Channel", "ChannelConfigError", "TransportError", "validate_channel"]
