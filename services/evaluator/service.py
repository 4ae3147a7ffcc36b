"""The evaluator service, built from the settings and the bus: the consumer that evaluates
each partition's check-ins, then the ticker that moves its clock. No routes."""

from __future__ import annotations

from aiohttp import web

from services.evaluator.consumer import Evaluator
from services.evaluator.ticker import Ticker
from services.parts import Parts, Readiness
from shared.bus import Bus
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import Topics


class EvaluatorService:
    name = "evaluator"

    def __init__(self, settings: Settings, bus: Bus, metrics: Metrics | None = None):
        topics = Topics(settings.topic_prefix)
        self.evaluator = Evaluator(settings, bus, topics, metrics=metrics)
        if metrics is not None:
            partitions = self.evaluator.partitions  # the same dict for the evaluator's life
            metrics.watch_clock(lambda: {n: p.clock_ms for n, p in list(partitions.items())})
        self.ticker = Ticker(settings, bus, topics)
        self._parts = Parts()

    def mount(self, app: web.Application, readiness: Readiness) -> None:
        pass

    async def start(self) -> None:
        await self._parts.start(self.evaluator)
        await self._parts.start(self.ticker)

    async def close(self) -> None:
        await self._parts.close()


def build_evaluator(settings: Settings, bus: Bus, metrics: Metrics | None = None) -> EvaluatorService:
    return EvaluatorService(settings, bus, metrics)
