"""The notifier service, built from the settings and the bus: the consumer that delivers
alerts to channels (it opens and closes the connections it sends on). No routes."""

from __future__ import annotations

from aiohttp import web

from services.notifier.channels import CHANNELS
from services.notifier.consumer import Notifier
from services.parts import Parts, Readiness
from shared.bus import Bus
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import Topics


class NotifierService:
    name = "notifier"

    def __init__(self, settings: Settings, bus: Bus, metrics: Metrics | None = None):
        if metrics is not None:
            metrics.know_channel_kinds(CHANNELS)
        self.notifier = Notifier(settings, bus, Topics(settings.topic_prefix), metrics=metrics)
        self._parts = Parts()

    def mount(self, app: web.Application, readiness: Readiness) -> None:
        pass

    async def start(self) -> None:
        await self._parts.start(self.notifier)

    async def close(self) -> None:
        await self._parts.close()


def build_notifier(settings: Settings, bus: Bus, metrics: Metrics | None = None) -> NotifierService:
    return NotifierService(settings, bus, metrics)
