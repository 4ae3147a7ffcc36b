"""The Kafka bus (aiokafka), for running services as separate processes.

- Producer: idempotent, ``acks=all``; ``publish`` returns once the broker acknowledged,
  while ``linger_ms`` lets concurrent publishes share a batch (throughput under load).
  A broker that does not answer within ``publish_timeout_ms`` -> :class:`BusUnavailable`.
- Partitions are chosen by :func:`partition_for` (not Kafka's default partitioner), so every
  producer, and the embedded bus, put a monitor's events in the same partition number.
- Group consumers never auto-commit; the rebalance listener hands gained and lost
  partitions to the service (``on_assign``/``on_revoke``) so it can restore or flush state.
- Offsets never go back: the broker keeps each partition's log start and end offsets
  whatever retention deleted. A committed offset outside them is reset to the log start
  (``auto_offset_reset="earliest"``): below it, the records skipped no longer exist; above
  the end (the topic was deleted and created again), every record of the new topic is
  unread. ``latest`` would skip records that exist. Either reset is logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError

from shared.bus.base import (
    Bus,
    BusUnavailable,
    Consumer,
    PartitionsCallback,
    Record,
    TopicPartition,
    TopicSpec,
    partition_for,
)
from shared.settings import Settings

log = structlog.get_logger()


class KafkaBus(Bus):
    kind = "kafka"

    def __init__(self, settings: Settings):
        assert settings.kafka_bootstrap, "KafkaBus needs PINGURA_KAFKA_BOOTSTRAP"
        self._settings = settings
        self._bootstrap = settings.kafka_bootstrap
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, int] = {}

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id="pingura",
            enable_idempotence=True,
            acks="all",
            linger_ms=self._settings.kafka_linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=self._settings.publish_timeout_ms,
        )
        await _retrying(self._producer.start, "producer")

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        specs = list(specs)
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id="pingura-admin")
        await _retrying(admin.start, "admin")
        try:
            existing = set(await admin.list_topics())
            missing = [s for s in specs if s.name not in existing]
            if missing:
                response = await admin.create_topics(
                    [_new_topic(s, self._settings.kafka_replication_factor) for s in missing]
                )
                for topic, code, *rest in getattr(response, "topic_errors", []):
                    # 36: another service created it first, which is fine.
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise BusUnavailable(f"could not create topic {topic}: error {code} {rest}")
                log.info("bus.kafka.topics_created", topics=[s.name for s in missing])
        finally:
            await admin.close()
        assert self._producer is not None
        for spec in specs:
            # A topic keeps the partition count it was created with: keys must not move.
            for _ in range(50):
                found = await self._producer.partitions_for(spec.name)
                if found:
                    break
                await asyncio.sleep(0.1)
            self._partitions[spec.name] = len(found) if found else spec.partitions

    def partitions(self, topic: str) -> int:
        return self._partitions[topic]

    async def publish(self, topic: str, key: str, value: bytes, partition: int | None = None) -> int:
        assert self._producer is not None
        if partition is None:
            partition = partition_for(key, self.partitions(topic))
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self._settings.publish_timeout_ms / 1000):
                sent = await self._producer.send(topic, value, key=key.encode(), partition=partition)
                metadata = await sent
        except (KafkaError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka did not acknowledge: {type(exc).__name__}") from None
        if self._append_seconds is not None:  # loop thread only: counted without a lock (metrics/onloop.py)
            self._append_seconds.observe(time.perf_counter() - began)
        return metadata.offset

    async def publish_many(
        self, topic: str, items: list[tuple[str, bytes]], partition: int | None = None
    ) -> None:
        """Enqueue every record in order (the producer batches them), then await all acks.
        Thousands of concurrent ``send`` calls would crawl; one after another is fast."""
        if not items:
            return
        assert self._producer is not None
        count = self.partitions(topic)
        try:
            async with asyncio.timeout(self._settings.publish_timeout_ms / 1000 + len(items) / 10_000):
                acks = [
                    await self._producer.send(
                        topic,
                        value,
                        key=key.encode(),
                        partition=partition_for(key, count) if partition is None else partition,
                    )
                    for key, value in items
                ]
                await asyncio.gather(*acks)
        except (KafkaError, TimeoutError) as exc:
            raise BusUnavailable(f"kafka did not acknowledge: {type(exc).__name__}") from None

    def reader(self, partitions: list[TopicPartition]) -> Consumer:
        return KafkaConsumer(self, [], None, None, None, fixed=list(partitions))

    def consumer(
        self,
        topics: list[str],
        group: str | None = None,
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> Consumer:
        if group is None:
            return self.reader([(t, p) for t in topics for p in range(self.partitions(t))])
        return self._watch(group, KafkaConsumer(self, topics, group, on_assign, on_revoke))


def _new_topic(spec: TopicSpec, replication: int) -> NewTopic:
    configs: dict[str, str] = {}
    if spec.compacted:
        configs["cleanup.policy"] = "compact"
    elif spec.retention_ms:
        configs["retention.ms"] = str(spec.retention_ms)
    return NewTopic(spec.name, spec.partitions, replication, topic_configs=configs)


async def _retrying(start, what: str, attempts: int = 30) -> None:
    """Services may start before the broker answers (compose, restarts): keep trying a while."""
    for attempt in range(1, attempts + 1):
        try:
            await start()
            return
        except KafkaError as exc:
            if attempt == attempts:
                raise BusUnavailable(f"kafka {what} could not connect: {exc}") from None
            log.warning("bus.kafka.connect_retry", what=what, attempt=attempt, error=str(exc))
            await asyncio.sleep(1)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, consumer: KafkaConsumer):
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:
        if revoked and self._consumer.on_revoke is not None:
            await self._consumer.on_revoke({(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned) -> None:
        if assigned and self._consumer.on_assign is not None:
            await self._consumer.on_assign({(tp.topic, tp.partition) for tp in assigned})
        if assigned:
            # After the hand-off and off the listener: offset requests made inside it (and
            # cut short by a timeout) held the rebalance up long enough that a member missed
            # its assignment and a partition went unread (seen in the kill-an-evaluator test).
            self._consumer.diagnose_later(assigned)


class KafkaConsumer(Consumer):
    def __init__(self, bus: KafkaBus, topics, group, on_assign, on_revoke, fixed=None):
        self._bus = bus
        self._topics = topics
        self._group = group
        self.on_assign = on_assign
        self.on_revoke = on_revoke
        self._fixed = fixed
        self._consumer: AIOKafkaConsumer | None = None
        self._diagnoses: set[asyncio.Task] = set()
        self._read_to: dict[TopicPartition, int] = {}  # next offset, as of the last poll

    def diagnose_later(self, assigned) -> None:
        task = asyncio.create_task(self.report_out_of_range(list(assigned)), name="kafka-offset-check")
        self._diagnoses.add(task)
        task.add_done_callback(self._diagnoses.discard)

    async def start(self) -> None:
        s = self._bus._settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bus._bootstrap,
            group_id=self._group,
            client_id=f"pingura-{self._group or 'reader'}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(1000, s.kafka_session_timeout_ms // 3),
            max_poll_interval_ms=300_000,
        )
        await _retrying(self._consumer.start, "consumer")
        if self._fixed is not None:
            tps = [KafkaTP(t, p) for t, p in self._fixed]
            self._consumer.assign(tps)
            await self._consumer.seek_to_beginning(*tps)
        else:
            self._consumer.subscribe(self._topics, listener=_Listener(self))

    async def report_out_of_range(self, assigned) -> None:
        """Log committed offsets the fetcher will reset: aiokafka does so quietly, and
        records that expired before the group read them are alerts nobody was sent."""
        consumer = self._consumer
        if consumer is None:
            return
        tps = list(assigned)
        try:
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
        except (KafkaError, TimeoutError, AssertionError) as exc:  # only a diagnosis
            log.warning(
                "bus.kafka.offset_check_failed", group=self._group, error=str(exc) or type(exc).__name__
            )
            return
        for tp, offset in zip(tps, committed, strict=False):
            if offset is None:
                continue
            if offset < starts[tp]:
                log.warning(
                    "bus.kafka.records_expired_unread",
                    group=self._group,
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=offset,
                    first=starts[tp],
                )
            elif offset > ends[tp]:
                log.warning(
                    "bus.kafka.committed_beyond_end",
                    group=self._group,
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=offset,
                    end=ends[tp],
                    reset_to=starts[tp],
                )

    async def close(self) -> None:
        for task in list(self._diagnoses):
            task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()  # a group member leaves: its partitions are revoked first
            self._consumer = None

    def assignment(self) -> set[TopicPartition]:
        assert self._consumer is not None
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    async def position(self, tp: TopicPartition) -> int:
        assert self._consumer is not None
        return await self._consumer.position(KafkaTP(*tp))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        assert self._consumer is not None
        self._consumer.seek(KafkaTP(*tp), offset)

    def lags(self) -> dict[TopicPartition, int]:
        """The broker's high watermark (as of the last fetch) minus what was read, per owned
        partition read at least once since it was assigned."""
        consumer = self._consumer
        if consumer is None:
            return {}
        lags = {}
        for tp in consumer.assignment():
            end, read = consumer.highwater(tp), self._read_to.get((tp.topic, tp.partition))
            if end is not None and read is not None:
                lags[(tp.topic, tp.partition)] = max(0, end - read)
        return lags

    async def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        assert self._consumer is not None
        tps = [KafkaTP(*tp) for tp in partitions]
        if not tps:
            return {}
        ends = await self._consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def poll(self, max_records: int = 1000, timeout_ms: int = 1000) -> list[Record]:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        records: list[Record] = []
        for tp, messages in batches.items():
            if messages:
                self._read_to[(tp.topic, tp.partition)] = messages[-1].offset + 1
            for m in messages:
                key = m.key.decode() if m.key is not None else ""
                records.append(Record(tp.topic, tp.partition, m.offset, key, m.value, m.timestamp))
        return records

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        if self._group is None:
            raise RuntimeError("a consumer without a group cannot commit")
        owned = self.assignment()
        mine = {KafkaTP(*tp): offset for tp, offset in offsets.items() if tp in owned}
        if not mine:
            return
        try:
            await self._consumer.commit(mine)
        except CommitFailedError as exc:
            # A rebalance took the partitions; the next owner replays from the last commit,
            # and every write downstream is idempotent.
            log.warning("bus.kafka.commit_failed", group=self._group, error=str(exc))
