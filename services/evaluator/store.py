"""Evaluator state on the bus: snapshots of monitor state in a compacted topic.

Each snapshot records the ``pings`` offset it reflects. The evaluator writes the
snapshots of changed monitors, *then* commits its input offset, so after a crash it
restores state at or past the committed offset and replays the rest; the per-monitor
``applied_offset`` makes that replay skip what a snapshot already holds.
"""

from __future__ import annotations

import msgspec
import structlog

from services.evaluator.logic import MonitorState, PartitionEvaluator
from shared.bus import Bus
from shared.bus.view import drain
from shared.events import MonitorConfig, MonitorSnapshot, decode, encode
from shared.topics import Topics

log = structlog.get_logger()


async def read_to_end(bus: Bus, topic: str, partition: int, apply) -> int:
    """Feed every record of one partition to ``apply``; returns how many were read."""
    reader = bus.reader([(topic, partition)])
    await reader.start()
    try:
        return await drain(reader, apply)
    finally:
        await reader.close()


class StateStore:
    def __init__(self, bus: Bus, topics: Topics):
        self._bus = bus
        self._topics = topics

    async def restore(self, evaluator: PartitionEvaluator) -> int:
        """Rebuild ``evaluator`` from its partition's snapshots; returns the monitors restored."""

        def apply(record) -> None:
            try:
                snapshot = decode(record.value)
                if not isinstance(snapshot, MonitorSnapshot):
                    raise TypeError(type(snapshot).__name__)
                state = msgspec.convert(snapshot.state["s"], MonitorState)
            except Exception as exc:  # a bad snapshot must not stop the partition: config rebuilds it
                log.warning("evaluator.snapshot.poison", partition=record.partition, offset=record.offset, error=str(exc))
                return
            state.applied_offset = snapshot.offset
            evaluator.restore(state)
            evaluator.clock_ms = max(evaluator.clock_ms, snapshot.state.get("clock_ms", 0))

        await read_to_end(self._bus, self._topics.evaluator_state, evaluator.partition, apply)
        return len(evaluator.monitors)

    async def save(self, evaluator: PartitionEvaluator, offset: int) -> int:
        """Write snapshots of the monitors changed since the last save, at ``offset``."""
        changed = evaluator.take_dirty()
        items = []
        for state in changed:
            state.applied_offset = max(state.applied_offset, offset)
            snapshot = MonitorSnapshot(
                monitor_id=state.monitor_id,
                partition=evaluator.partition,
                offset=offset,
                state={"s": msgspec.to_builtins(state), "clock_ms": evaluator.clock_ms},
            )
            items.append((state.monitor_id, encode(snapshot)))
        if items:
            await self._bus.publish_many(self._topics.evaluator_state, items)
        return len(items)


def apply_config_record(evaluator: PartitionEvaluator, record, outputs: list) -> None:
    try:
        cfg = decode(record.value)
    except Exception as exc:
        log.warning("evaluator.config.poison", partition=record.partition, offset=record.offset, error=str(exc))
        return
    if isinstance(cfg, MonitorConfig):
        outputs.extend(evaluator.apply_config(cfg))
