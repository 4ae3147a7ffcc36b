"""The evaluator's I/O adapter around the pure core.

Reads ``pings`` (pings and ticks) as the ``evaluator`` consumer group; for each partition
it owns it keeps a :class:`PartitionEvaluator`, fed the partition's monitor configs from the
co-partitioned ``monitors`` topic. The core decides; this only carries its outputs: events to
``status`` and ``alerts`` (durable before the snapshot is written and the offset committed),
relays into every ``pings`` partition and ingest reports into partition 0, an outage of
Pingura to the log.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from services.evaluator.logic import Outage, Output, PartitionEvaluator
from services.evaluator.logic.ingest import WatchRule
from services.evaluator.store import StateStore, apply_config_record, apply_window_record
from shared import clock
from shared.bus import Bus, Consumer, TopicPartition
from shared.bus.deadletter import DeadLetters
from shared.bus.view import APPLY_SLICE, cancel_and_wait
from shared.events import (
    Alert,
    IngestReported,
    InstanceRemoved,
    Missed,
    Ping,
    StatusRelayed,
    Tick,
    decode,
    encode,
)  # fmt: skip
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

POLL_RECORDS = 5000
LAST_TICK_SEARCH_RECORDS = 50_000
"""How far back from its resume point a partition is searched for its last tick."""
LAST_TICK_WINDOW_RECORDS = 2_000


class Evaluator:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        topics: Topics,
        group: str = "evaluator",
        metrics: Metrics | None = None,
    ):
        self._settings = settings
        self._metrics = metrics
        self._bus = bus
        self._topics = topics
        self._group = group
        self._store = StateStore(bus, topics)
        self.partitions: dict[int, PartitionEvaluator] = {}
        self._config_reader: Consumer | None = None
        self._window_reader: Consumer | None = None
        self._last_offset: dict[int, int] = {}
        self._consumer: Consumer | None = None
        self._task: asyncio.Task | None = None
        self._last_checkpoint = time.monotonic()
        # The rebalance listener runs beside the loop: both take this lock, so partitions
        # never change under a batch. A batch polled just before a rebalance is applied to
        # what is owned after it; records of partitions no longer owned are skipped, and
        # re-read ones are skipped per monitor (``applied_offset``).
        self._lock = asyncio.Lock()
        self._stopping = False
        self.dead_letters = DeadLetters(bus, topics, "evaluator")
        self.unknown_monitor_count = 0

    async def start(self) -> None:
        self._consumer = self._bus.consumer(
            [self._topics.pings], group=self._group, on_assign=self._assigned, on_revoke=self._revoked
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="evaluator")

    async def close(self) -> None:
        self._stopping = True
        if self._task is not None:
            # Let the batch in hand finish (a poll waits 200 ms at most), then stop.
            done, _ = await asyncio.wait([self._task], timeout=10)
            if not done:
                await cancel_and_wait(self._task)
        async with self._lock:
            await self._checkpoint()  # the last word before the partitions go to another instance
        if self._consumer is not None:
            await self._consumer.close()
        await self._forget(set(self.partitions))

    # partition hand-off ------------------------------------------------------
    async def _assigned(self, tps: set[TopicPartition]) -> None:
        async with self._lock:
            await self._take(tps)

    async def _take(self, tps: set[TopicPartition]) -> None:
        gained = {p: self._evaluator(p) for _, p in tps if p not in self.partitions}
        snapshots = await self._store.restore(gained)
        if self._settings.outage_gap_ms:
            for partition, evaluator in gained.items():
                evaluator.last_tick_ms = await self._last_tick((self._topics.pings, partition))
        self.partitions.update(gained)
        outputs: list[Output] = []
        for evaluator in gained.values():  # what it has open, said again for partition 0's tally
            report = evaluator.ingest_report()
            if report is not None:
                outputs.append(report)
        await self._open_config_reader(outputs)
        await self._publish(outputs)
        log.info(
            "evaluator.partitions.assigned",
            partitions=sorted(gained),
            snapshots=snapshots,
            monitors=sum(len(e.monitors) for e in gained.values()),
        )

    def _evaluator(self, partition: int) -> PartitionEvaluator:
        settings = self._settings
        watch = WatchRule(
            window_ms=settings.ingest_watch_window_s * 1000, min_overdue=settings.ingest_watch_min_overdue,
            open_share=settings.ingest_watch_open_share, close_share=settings.ingest_watch_close_share,
        )  # fmt: skip
        return PartitionEvaluator(
            partition, settings.lateness_ms, settings.outage_gap_ms, watch=watch,
            operator_channels=settings.ingest_alert_channels, partitions=self._bus.partitions(self._topics.pings),
        )  # fmt: skip

    async def _last_tick(self, tp: TopicPartition) -> int:
        """The newest tick before where this group resumes ``tp`` (0: none found): the clock
        as it stood when the evaluator last ran, so that the first tick after a stop shows how
        long nothing was ticking. Snapshots can't say: they are written only when a monitor
        changes. Read backwards a window at a time (ticks come every 250 ms, so the first
        window holds one unless pings are very dense), at most ``LAST_TICK_SEARCH_RECORDS``."""
        assert self._consumer is not None
        resume_at = await self._consumer.position(tp)
        reader = self._bus.reader([tp])
        await reader.start()
        try:
            first = max(0, resume_at - LAST_TICK_SEARCH_RECORDS)
            upper = resume_at
            while upper > first:
                lower = max(first, upper - LAST_TICK_WINDOW_RECORDS)
                reader.seek(tp, lower)
                newest = 0
                while await reader.position(tp) < upper:
                    records = await reader.poll(max_records=LAST_TICK_WINDOW_RECORDS, timeout_ms=100)
                    if not records:
                        break
                    for record in records:
                        if record.offset < upper and record.key == "":
                            event = decode(record.value)
                            if isinstance(event, Tick):
                                newest = max(newest, event.at_ms)
                if newest:
                    return newest
                upper = lower
            return 0
        except Exception as exc:  # noqa: BLE001 (a diagnosis only: without it, no outage is detected at the first tick)
            log.warning("evaluator.last_tick.unreadable", partition=tp[1], error=str(exc))
            return 0
        finally:
            await reader.close()

    async def _revoked(self, tps: set[TopicPartition]) -> None:
        async with self._lock:
            await self._checkpoint()
            await self._forget({p for _, p in tps})
        log.info("evaluator.partitions.revoked", partitions=sorted(p for _, p in tps))

    async def _forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.partitions.pop(partition, None)
            self._last_offset.pop(partition, None)
        for reader in (self._config_reader, self._window_reader):
            if reader is not None:
                await reader.close()
        self._config_reader = self._window_reader = None

    async def _open_config_reader(self, outputs: list[Output]) -> None:
        """One reader over the ``monitors`` partitions matching the owned ``pings`` ones,
        read to its end (configs carry revisions, so re-reading is harmless)."""
        for reader in (self._config_reader, self._window_reader):
            if reader is not None:
                await reader.close()
        self._config_reader = self._bus.reader([(self._topics.monitors, p) for p in sorted(self.partitions)])
        await self._config_reader.start()
        # Maintenance windows are a project's, not a partition's: every partition reads them all.
        self._window_reader = self._bus.reader([(self._topics.maintenance, 0)])
        await self._window_reader.start()
        # At start, windows change no held alert: those read were applied before the restart (a
        # window ended early or deleted while no evaluator ran frees its holds at its old end).
        await self._catch_up_configs(outputs, until_end=True, starting=True)

    async def _catch_up_configs(self, outputs: list[Output], until_end: bool, starting: bool = False) -> None:
        for reader in (self._window_reader, self._config_reader):
            if reader is None:
                continue
            while True:
                records = await reader.poll(max_records=5000, timeout_ms=100 if until_end else 0)
                for record in records:
                    if reader is self._window_reader:
                        # Read at start, an older revision must not release what a newer one holds.
                        apply_window_record(self.partitions, record, outputs, recheck=not starting)
                    else:
                        apply_config_record(self.partitions, record, outputs)
                if not records and (not until_end or await reader.caught_up()):
                    break

    # the loop ------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._consumer is not None
        while not self._stopping:
            try:
                records = await self._consumer.poll(max_records=POLL_RECORDS, timeout_ms=200)
                async with self._lock:
                    await self._process(records)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Nothing was committed for this batch: rebuild from snapshots and re-read it.
                log.exception("evaluator.loop.failed")
                await asyncio.sleep(1)
                await self._rewind()

    async def _process(self, records) -> None:
        outputs: list[Output] = []
        await self._catch_up_configs(outputs, until_end=False)
        partitions, last_offset = self.partitions, self._last_offset
        for n, record in enumerate(records):
            if n and not n % APPLY_SLICE:
                await asyncio.sleep(0)  # a full batch is ~25 ms of work: let the pings in between
            evaluator = partitions.get(record.partition)
            if evaluator is None:
                continue  # no longer ours
            try:
                event = decode(record.value)
            except Exception as exc:  # noqa: BLE001 (whatever does not decode is poison: set aside, the partition moves on)
                self.dead_letters.set_aside(record, str(exc))
                last_offset[record.partition] = record.offset
                continue
            if isinstance(event, Tick):
                outputs += evaluator.advance(event.at_ms)
            elif isinstance(event, Ping):
                if event.monitor_id not in evaluator.monitors:
                    await self._config_for(event, record, outputs)
                outputs += evaluator.apply_ping(event, record.offset)
            elif isinstance(event, StatusRelayed):
                outputs += evaluator.apply_relay(event)
            elif isinstance(event, IngestReported):
                outputs += evaluator.apply_ingest_report(event, record.offset)
            elif isinstance(event, InstanceRemoved):
                outputs += evaluator.apply_instance_removed(event, record.offset)
            last_offset[record.partition] = record.offset
        await self._publish(outputs)
        behind = len(records) >= POLL_RECORDS
        interval_ms = (
            self._settings.checkpoint_backlog_interval_ms if behind else self._settings.checkpoint_interval_ms
        )
        if (
            time.monotonic() - self._last_checkpoint
            >= max(interval_ms, self._settings.checkpoint_interval_ms) / 1000
        ):
            await self._checkpoint()

    async def _config_for(self, ping: Ping, record, outputs: list[Output]) -> None:
        """Config and pings travel on different topics: before calling a monitor unknown,
        read every config written before this ping was accepted."""
        await self._catch_up_configs(outputs, until_end=True)
        if ping.monitor_id not in self.partitions[record.partition].monitors:
            self.unknown_monitor_count += 1
            log.info("evaluator.ping.unknown_monitor", monitor_id=ping.monitor_id, partition=record.partition)

    async def _publish(self, outputs: list[Output]) -> None:
        if not outputs:
            return
        status, alerts, relays, reports = [], [], [], []
        for event in outputs:
            if isinstance(event, Alert):
                alerts.append((event.monitor_id, encode(event)))
            elif isinstance(event, StatusRelayed):
                relays.append(encode(event))
            elif isinstance(event, IngestReported):
                reports.append(encode(event))
            elif isinstance(event, Outage):
                start, end = event.clock_stopped_ms, event.clock_resumed_ms
                log.warning(
                    "evaluator.outage.detected",
                    partition=event.partition,
                    clock_stopped_ms=start,
                    clock_resumed_ms=end,
                    gap_s=round((end - start) / 1000, 1),
                    windows_skipped=event.windows_skipped,
                )
            else:
                status.append((event.monitor_id, encode(event)))
        pings = self._topics.pings
        await asyncio.gather(
            self._bus.publish_many(self._topics.status, status),
            self._bus.publish_many(self._topics.alerts, alerts),
            *(  # every partition hears of it, its own too: dependents decide in their own log's order
                self._bus.publish(pings, "", relay, partition=p)
                for relay in relays
                for p in range(self._bus.partitions(pings))
            ),
            self._report(reports),
        )
        metrics = self._metrics
        for event in outputs:
            if isinstance(event, Alert):
                log.info(
                    "evaluator.alert.emitted", alert_id=event.id, kind=event.kind, monitor_id=event.monitor_id
                )
                if metrics is not None:
                    metrics.alert(event.kind)
            elif isinstance(event, Missed) and metrics is not None:
                metrics.misses.inc()

    async def _report(self, reports: list[bytes]) -> None:
        """Ingest reports into partition 0, which tallies them (one operator alert per incident
        across partitions), one after the other: a partition's newest report wins there."""
        for report in reports:
            await self._bus.publish(self._topics.pings, "", report, partition=0)

    async def _checkpoint(self) -> None:
        self._last_checkpoint = time.monotonic()
        if self._consumer is None:
            return
        commits = {}
        for partition, evaluator in list(self.partitions.items()):
            offset = self._last_offset.get(partition)
            if offset is None:
                continue
            await self._store.save(evaluator, offset)
            commits[(self._topics.pings, partition)] = offset + 1
        if commits:
            await self.dead_letters.flush()
            await self._consumer.commit(commits)

    async def _rewind(self) -> None:
        """After a failed batch, rebuild the owned partitions from snapshots and committed offsets."""
        assert self._consumer is not None
        async with self._lock:
            await self._forget(set(self.partitions))  # no checkpoint of a half-applied batch
        await self._consumer.close()
        await self._consumer.start()


async def publish_ticks(bus: Bus, topics: Topics, now_ms: int | None = None) -> None:
    """Write one tick into every partition of ``pings`` (the event-time clock)."""
    at_ms = clock.now_ms() if now_ms is None else now_ms
    value = encode(Tick(at_ms=at_ms))
    await asyncio.gather(
        *(bus.publish(topics.pings, "", value, partition=p) for p in range(bus.partitions(topics.pings)))
    )


__all__ = ["Evaluator", "publish_ticks"]
