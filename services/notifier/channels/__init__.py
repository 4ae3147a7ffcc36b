"""The channel registry: kind -> channel. One module per channel kind."""

from __future__ import annotations

from typing import Any

from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField, TransportError, mask_config
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
    "CHANNELS", "Channel", "ChannelConfigError", "ConfigField", "TransportError", "channel_kinds", "shown_config",
    "validate_channel",
]  # fmt: skip
