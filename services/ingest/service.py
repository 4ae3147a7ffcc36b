"""The ingest service, built from the settings and the bus: the ping routes over the token
index. The routes are mounted at once and answer ``503`` until the index is loaded
(:func:`services.ingest.app.attach` sees to it); starting loads it."""

from __future__ import annotations

from aiohttp import web

from services.datadir import TOKEN_SNAPSHOT_FILE
from services.ingest.app import add_ingest_routes, attach
from services.ingest.store import TokenIndex
from services.ingest.token_snapshot import SnapshotFile
from services.parts import Parts, Readiness
from shared.bus import Bus
from shared.bus.local import LocalBus
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import Topics


class IngestService:
    name = "ingest"

    def __init__(self, settings: Settings, bus: Bus, metrics: Metrics | None = None):
        self._settings = settings
        self._bus = bus
        self._metrics = metrics
        self._topics = Topics(settings.topic_prefix)
        # On the embedded log a restart reads the index as of a saved offset, not the whole topic.
        snapshot = None
        if isinstance(bus, LocalBus):
            snapshot = SnapshotFile(settings.data_dir / TOKEN_SNAPSHOT_FILE, bus.log_id)
        self.index = TokenIndex(bus, self._topics, snapshot=snapshot)
        self._parts = Parts()

    def mount(self, app: web.Application, readiness: Readiness) -> None:
        attach(
            app, self._settings, self._bus, self._topics, self.index
        )  # pings answer 503 until the index is ready
        add_ingest_routes(app, self._metrics)

    async def start(self) -> None:
        await self._parts.start(self.index)

    async def close(self) -> None:
        await self._parts.close()


def build_ingest(settings: Settings, bus: Bus, metrics: Metrics | None = None) -> IngestService:
    return IngestService(settings, bus, metrics)
