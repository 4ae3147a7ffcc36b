"""What every notification channel is: a kind name, a config validator and a transport.

Adding a channel means adding one module with a :class:`Channel` subclass and listing an
instance in :data:`services.notifier.channels.CHANNELS`; the notifier and the query API
find it there.
"""

from __future__ import annotations

import abc

import aiohttp

from shared.errors import PinguraError
from shared.events import Alert
from shared.settings import Settings


class NotifierError(PinguraError):
    """Base of the notifier's errors."""


class ChannelConfigError(NotifierError):
    """A channel's config is unusable. The message names the bad field: ``config.url: ...``."""


class TransportError(NotifierError):
    """One delivery try failed.

    ``permanent`` says whether trying again could help: a 404 or a blocked address will
    not fix itself, a 503 or a timeout might.
    """

    def __init__(self, message: str, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


class Channel(abc.ABC):
    kind: str
    """The ``ChannelConfig.kind`` this channel serves, e.g. ``"webhook"``."""

    @abc.abstractmethod
    def validate(self, config: dict, settings: Settings) -> dict:
        """Return the normalized config, or raise :class:`ChannelConfigError`.

        Called by the query API when a channel is saved and by the notifier before each
        delivery, so a config that became invalid (settings changed) fails loudly.
        """

    @abc.abstractmethod
    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        """Deliver ``alert`` once, with an already validated ``config``; raise :class:`TransportError`."""
