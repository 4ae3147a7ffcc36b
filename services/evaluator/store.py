"""Evaluator state on the bus: snapshots of monitor state in a compacted topic, one of
each partition's own state (the outages of Pingura it saw; key ``""``) beside them, and a
record per heartbeat down as the partition knows it from the relays (key ``down:`` + id).

Each snapshot records the ``pings`` offset it reflects; its state is the public layout
declared in ``shared.snapshots``. The evaluator writes the
snapshots of changed monitors (and of the partition, if it changed), *then* commits its input
offset, so after a crash it restores state at or past the committed offset and replays the
rest; the per-monitor ``applied_offset`` makes that replay skip what a snapshot already holds
(an outage replayed is already among the partition's and is not added twice).
"""

from __future__ import annotations

import asyncio

import structlog

from services.evaluator.logic import Output, PartitionEvaluator
from shared.bus import Bus, Record
from shared.bus.view import APPLY_SLICE, decode_as, drain
from shared.events import (
    DOWN_KEY_PREFIX,
    DownSnapshot,
    MaintenanceWindow,
    MonitorConfig,
    MonitorSnapshot,
    PartitionSnapshot,
    encode,
)
from shared.snapshots import (
    PARTITION_STATE_VERSION,
    STATE_VERSION,
    UnreadableSnapshot,
    decode_down,
    decode_partition_state,
    decode_state,
    encode_down,
    encode_partition_state,
    encode_state,
)
from shared.topics import Topics

log = structlog.get_logger()


class StateStore:
    def __init__(self, bus: Bus, topics: Topics):
        self._bus = bus
        self._topics = topics

    async def restore(self, evaluators: dict[int, PartitionEvaluator]) -> int:
        """Rebuild each partition's evaluator from its snapshots (one reader for all);
        returns the number of snapshots read."""

        offsets: dict[int, int] = {}  # one int per checkpoint's offset, not one per monitor (32 B)

        def apply(record: Record) -> None:
            snapshot = decode_as(
                record, (MonitorSnapshot, PartitionSnapshot, DownSnapshot), "evaluator.snapshot.poison"
            )
            evaluator = evaluators.get(record.partition)
            if snapshot is None or evaluator is None:
                return
            try:
                if isinstance(snapshot, PartitionSnapshot):
                    evaluator.restore_partition(decode_partition_state(snapshot))
                    return
                if isinstance(snapshot, DownSnapshot):
                    evaluator.holds.downs.restore_one(snapshot.monitor_id, decode_down(snapshot))
                    return
                state = decode_state(snapshot)
            except (
                UnreadableSnapshot
            ) as exc:  # config rebuilds a monitor; a partition knows no outages. Don't stop
                log.warning(
                    "evaluator.snapshot.unreadable",
                    partition=record.partition,
                    offset=record.offset,
                    error=str(exc),
                )
                return
            state.applied_offset = offsets.setdefault(snapshot.offset, snapshot.offset)
            evaluator.restore(state)
            evaluator.clock_ms = max(evaluator.clock_ms, snapshot.clock_ms)

        if not evaluators:
            return 0
        reader = self._bus.reader([(self._topics.evaluator_state, p) for p in evaluators])
        await reader.start()
        try:
            return await drain(reader, apply)
        finally:
            await reader.close()

    async def save(self, evaluator: PartitionEvaluator, offset: int) -> int:
        """Write snapshots of the monitors changed since the last save, and of the partition
        if it changed, at ``offset``; returns the number of monitor snapshots."""
        items = []
        changed, partition = evaluator.changed(), evaluator.partition_changed()
        for n, state in enumerate(changed):
            if n and not n % APPLY_SLICE:
                await asyncio.sleep(0)  # a second of pings at 3,300/s is 3,300 snapshots to encode
            state.applied_offset = max(state.applied_offset, offset)
            snapshot = MonitorSnapshot(
                monitor_id=state.monitor_id,
                partition=evaluator.partition,
                offset=offset,
                clock_ms=evaluator.clock_ms,
                state=encode_state(state),
                state_v=STATE_VERSION,
            )
            items.append((state.monitor_id, encode(snapshot)))
        await self._bus.publish_many(self._topics.evaluator_state, items)
        if partition is not None:  # key "" in its own partition (keys of monitors go by hash)
            own = PartitionSnapshot(
                partition=evaluator.partition,
                offset=offset,
                clock_ms=evaluator.clock_ms,
                state=encode_partition_state(partition),
                state_v=PARTITION_STATE_VERSION,
            )
            await self._bus.publish(
                self._topics.evaluator_state, "", encode(own), partition=evaluator.partition
            )
        downs = await self._save_downs(evaluator, offset)
        evaluator.saved(changed, partition)  # only now: a failed or cancelled write leaves them dirty
        evaluator.holds.downs.saved(downs)
        return len(items)

    async def _save_downs(self, evaluator: PartitionEvaluator, offset: int) -> list[str]:
        """A record for each heartbeat whose being down changed, into the evaluator's partition;
        returns their ids."""
        changes = evaluator.holds.downs.changes()
        partition = evaluator.partition
        items = [
            (
                DOWN_KEY_PREFIX + monitor_id,
                encode(DownSnapshot(
                    partition=partition, offset=offset, monitor_id=monitor_id,
                    state=encode_down(entry), state_v=PARTITION_STATE_VERSION,
                )),
            )
            for monitor_id, entry in changes
        ]  # fmt: skip
        await self._bus.publish_many(self._topics.evaluator_state, items, partition=partition)
        return [monitor_id for monitor_id, _ in changes]


def apply_config_record(
    evaluators: dict[int, PartitionEvaluator], record: Record, outputs: list[Output]
) -> None:
    evaluator = evaluators.get(record.partition)
    cfg = decode_as(record, MonitorConfig, "evaluator.config.poison")
    if evaluator is not None and cfg is not None:
        outputs.extend(evaluator.apply_config(cfg))


def apply_window_record(
    evaluators: dict[int, PartitionEvaluator], record: Record, outputs: list[Output], recheck: bool = True
) -> None:
    """A maintenance window, for every partition (windows are a project's)."""
    window = decode_as(record, MaintenanceWindow, "evaluator.window.poison")
    if window is not None:
        for evaluator in evaluators.values():
            outputs.extend(evaluator.apply_window(window, recheck))
