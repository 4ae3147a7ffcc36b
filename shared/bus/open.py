"""Opening the bus a process runs on, from its settings: the embedded log (a SQLite file in
the data dir) unless ``PINGURA_KAFKA_BOOTSTRAP`` names a Kafka cluster.

Every process that needs the bus opens it here, so the file, its partition count and the
topics it must hold are said once: ``pingura serve`` and each single service, ``pingura keys``
when no server answers, and the benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.bus.base import Bus
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.metrics import Metrics
from shared.topics import Topics

BUS_FILE = "bus.sqlite3"
"""The embedded log, in the data dir (:mod:`services.datadir` lists every file there)."""


async def open_bus(settings: Settings, metrics: Metrics | None = None) -> Bus:
    """The bus, started, with every Pingura topic in place. The caller closes it. With
    ``metrics``, it records its publish latency (and fsyncs) and its consumers' lag there."""
    topics = Topics(settings.topic_prefix)
    bus: Bus
    if settings.embedded:
        from shared.bus.local import LocalBus  # each adapter imports only its own driver

        bus = LocalBus(
            settings.data_dir / BUS_FILE,
            default_partitions=settings.partition_count,
            fast_topics=frozenset({topics.pings}),
        )
    else:
        from shared.bus.kafka import KafkaBus

        bus = KafkaBus(settings)
    if metrics is not None:
        bus.use_metrics(metrics)
    await bus.start()
    await bus.ensure_topics(topics.specs(settings.partition_count))
    return bus
