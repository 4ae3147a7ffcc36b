"""Both buses for the evaluator's consumer-level tests: the local durable log, or the real Kafka
broker (its fixture starts one; never skipped in CI)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from shared.bus.local import LocalBus
from shared.settings import Settings
from shared.topics import Topics


@contextlib.asynccontextmanager
async def either_bus(request, tmp_path, topic_prefix: str, partitions: int, **common) -> AsyncIterator:
    """``(settings, bus, topics)`` on the bus ``request.param`` names (``local`` or ``kafka``),
    its topics made with ``partitions`` partitions; ``common``: settings for both."""
    topics = Topics(prefix=topic_prefix)
    if request.param == "local":
        settings, bus = Settings(**common), LocalBus(tmp_path / "bus.sqlite3")
    else:
        from shared.bus.kafka import KafkaBus

        bootstrap = request.getfixturevalue("kafka_bootstrap")
        settings = Settings(kafka_bootstrap=bootstrap, kafka_session_timeout_ms=6000, **common)
        bus = KafkaBus(settings)
    await bus.start()
    await bus.ensure_topics(topics.specs(partitions))
    try:
        yield settings, bus, topics
    finally:
        await bus.close()
