"""Kafka: each alert produced to a topic of the user's choice, as the public ``alerts`` stream has it.

The record is exactly what this Pingura writes to its own ``alerts`` topic
(:func:`shared.events.encode` of the :class:`Alert`, docs/events.md), keyed by monitor id so
a monitor's alerts stay in order, with a ``pingura-alert-id`` header for consumers that
dedupe. Produced idempotently with ``acks=all``.

The broker is this Pingura's own (``PINGURA_KAFKA_BOOTSTRAP``) unless the channel names
another. The own broker is the operator's and trusted, but its Pingura topics are off
limits: an alert written into ``pingura.channels`` or ``pingura.alerts`` would be read back
as Pingura's own data. Another broker is chosen by whoever can create channels, so it gets
the webhook's internal-address guard (:mod:`services.notifier.safety`): literal addresses at
save, and at send time every address its name resolves to and every broker the cluster
advertises (a client connects to those too). Every connection the client opens to such a
cluster, bootstrap or advertised, is checked before it is opened (:class:`~services.notifier.channels.kafka_brokers.BrokerGuard`) and
made to the address that was checked, so neither metadata nor a DNS answer that changes
between check and connect can point it inside.

Producers are kept, one per bootstrap address, in a :class:`KafkaProducers` pool that the
process owns and closes on shutdown (:class:`services.notifier.sending.Senders` holds it and
binds a :class:`KafkaChannel` to it). The registry's instance only describes and validates.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict

import aiohttp
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    InvalidTopicError,
    KafkaError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
    UnsupportedVersionError,
)

from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField, TransportError
from services.notifier.channels.kafka_brokers import (
    GUARD,
    BrokerGuard,
    check_addresses,
    join_servers,
    own_servers,
    parse_servers,
    until_refused,
)
from services.notifier.safety import UnsafeTarget, check_host
from shared.events import Alert, encode
from shared.settings import Network, Settings
from shared.topics import Topics

log = structlog.get_logger()

MAX_TOPIC_CHARS = 249
MAX_PRODUCERS = 32
"""Producers kept open at once (the least recently used is closed beyond it): each channel
may name its own broker, and each producer holds connections and a sender task."""

_TOPIC = re.compile(r"[A-Za-z0-9._-]+")
# Errors that trying again within the notifier's retries will not fix.
_PERMANENT = (
    UnknownTopicOrPartitionError,  # raised once the metadata wait ran out: the topic is not there
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,  # idempotent producing needs IDEMPOTENT_WRITE
    InvalidTopicError,
    RecordTooLargeError,
    UnsupportedVersionError,
)


class KafkaChannel(Channel):
    kind = "kafka"
    label = "Kafka topic"
    digest_one_by_one = True  # a record per alert, the stream's format; lanes send each, paced
    config_fields = (
        ConfigField(
            "topic", "string", required=True,
            help="Topic each alert is produced to (JSON as on Pingura's alerts topic, keyed by heartbeat id).",
        ),
        ConfigField(
            "bootstrap_servers", "string",
            help="host:port[,host:port...] of the Kafka cluster; empty: this Pingura's own broker.",
        ),
    )  # fmt: skip

    def __init__(self, producers: KafkaProducers | None = None) -> None:
        """``producers``: the pool to send with; without one the channel describes and validates."""
        self._producers = producers

    def normalize(self, config: dict, settings: Settings) -> dict:
        raw = config.get("bootstrap_servers")
        servers = parse_servers(raw) if raw is not None and raw.strip() else None
        if (
            servers is not None
            and settings.kafka_bootstrap
            and set(servers) == set(own_servers(settings) or ())
        ):
            servers = None  # the own broker spelled out: the same as leaving it empty
        if servers is None and settings.embedded:
            raise ChannelConfigError(
                "config.bootstrap_servers: required: this Pingura runs without Kafka, so it has no broker to default to"
            )
        topic = _validate_topic(config["topic"], settings, own_broker=servers is None)
        if servers is None:
            return {"topic": topic}
        for host, _ in servers:
            try:
                check_host(host, settings.webhook_allowed_networks)
            except UnsafeTarget as exc:
                raise ChannelConfigError(f"config.bootstrap_servers: {exc}") from None
        return {"topic": topic, "bootstrap_servers": join_servers(servers)}

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        await self._produce([alert], config, settings)

    async def send_digest(
        self, alerts: list[Alert], config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        """A record per alert still (a topic's readers want the stream's format), sent as one batch."""
        await self._produce(alerts, config, settings)

    async def _produce(self, alerts: list[Alert], config: dict, settings: Settings) -> None:
        own = config.get("bootstrap_servers") is None
        bootstrap = settings.kafka_bootstrap if own else config["bootstrap_servers"]
        if bootstrap is None:
            raise TransportError("config.bootstrap_servers: required without Kafka", permanent=True)
        pool = self._producers
        if pool is None:  # the registry's instance: a bug, not the receiver's fault
            raise TransportError(
                "internal error: this Kafka channel has no producers to send with", permanent=True
            )
        guard = None if own else pool.guard(bootstrap, settings.webhook_allowed_networks)
        token = GUARD.set(guard)  # the producer's tasks, started below, carry it for their life
        try:
            await until_refused(guard, self._produce_on(pool, bootstrap, alerts, config, settings, own))
        except UnsafeTarget as exc:
            pool.discard(bootstrap)  # its client may keep trying the refused broker: start afresh
            raise TransportError(f"refused: {exc}", permanent=True) from None
        finally:
            GUARD.reset(token)

    async def _produce_on(
        self,
        pool: KafkaProducers,
        bootstrap: str,
        alerts: list[Alert],
        config: dict,
        settings: Settings,
        own: bool,
    ) -> None:
        try:
            if not own:  # literal addresses were checked at save; names are resolved now
                await check_addresses(parse_servers(bootstrap), settings.webhook_allowed_networks)
            producer = await pool.get(bootstrap, settings)
            if not own:
                await producer.partitions_for(config["topic"])  # metadata naming the brokers it will write to
                brokers = [(b.host, b.port) for b in producer.client.cluster.brokers()]
                await check_addresses(brokers, settings.webhook_allowed_networks)
            # Enqueued in order, then acknowledged together: a monitor's alerts keep their order.
            acks = [
                await producer.send(
                    config["topic"],
                    encode(alert),
                    key=alert.monitor_id.encode(),
                    headers=[("pingura-alert-id", alert.id.encode())],
                )
                for alert in alerts
            ]
            for outcome in await asyncio.gather(*acks, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome
        except ChannelConfigError as exc:
            raise TransportError(str(exc), permanent=True) from None
        except _PERMANENT as exc:
            raise TransportError(
                f"Kafka: {_describe(exc)} (topic {config['topic']!r})", permanent=True
            ) from None
        except KafkaError as exc:
            raise TransportError(f"Kafka: {_describe(exc)}", permanent=False) from None


class KafkaProducers:
    """Started producers by bootstrap address, least recently used first. Producers belong to
    the event loop they were started on; :meth:`close` flushes and closes every one."""

    def __init__(self) -> None:
        self._producers: OrderedDict[str, AIOKafkaProducer] = OrderedDict()
        self._guards: dict[str, BrokerGuard] = {}
        # One lock per address: a broker that is slow to answer holds up only its own channels.
        self._starting: dict[str, asyncio.Lock] = {}
        self._closing: set[asyncio.Task] = set()

    async def get(self, bootstrap: str, settings: Settings) -> AIOKafkaProducer:
        async with self._starting.setdefault(bootstrap, asyncio.Lock()):  # one start per address at once
            producer = self._producers.get(bootstrap)
            if producer is not None:
                self._producers.move_to_end(bootstrap)
                return producer
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap,
                client_id="pingura-notifier",
                acks="all",
                enable_idempotence=True,
                # Half a try: a missing topic is then reported (for good) before the
                # notifier's own per-try timeout cuts the try short.
                request_timeout_ms=max(1000, int(settings.webhook_timeout_s * 1000) // 2),
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producers[bootstrap] = producer
        log.info("notifier.kafka.producer_started", bootstrap_servers=bootstrap)
        while len(self._producers) > MAX_PRODUCERS:
            oldest, _ = next(iter(self._producers.items()))
            self.discard(oldest)
        return producer

    def guard(self, bootstrap: str, allowed: tuple[Network, ...]) -> BrokerGuard:
        """The guard of the producer of ``bootstrap`` (kept with it: its tasks report to it)."""
        guard = self._guards.get(bootstrap)
        if guard is not None and guard.refusal is not None:
            self.discard(bootstrap)  # refused a broker while no send was waiting: start afresh
            guard = None
        if guard is None:
            guard = self._guards[bootstrap] = BrokerGuard(allowed)
        return guard

    def discard(self, bootstrap: str) -> None:
        """Forget the producer of ``bootstrap`` and close it in the background."""
        producer = self._producers.pop(bootstrap, None)
        self._starting.pop(bootstrap, None)
        self._guards.pop(bootstrap, None)
        if producer is not None:
            task = asyncio.create_task(_stop(producer, bootstrap))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Flush and close every producer (it may be used again afterwards: they start anew)."""
        for bootstrap in list(self._producers):
            self.discard(bootstrap)
        if self._closing:
            await asyncio.wait(self._closing)

    def __len__(self) -> int:
        return len(self._producers)


async def _stop(producer: AIOKafkaProducer, bootstrap: str) -> None:
    await producer.stop()  # flushes what is still queued
    log.info("notifier.kafka.producer_stopped", bootstrap_servers=bootstrap)


# topics -----------------------------------------------------------------------------------
def _validate_topic(raw: str, settings: Settings, *, own_broker: bool) -> str:
    topic = raw.strip()
    if not topic:
        raise ChannelConfigError("config.topic: required")
    if len(topic) > MAX_TOPIC_CHARS:
        raise ChannelConfigError(f"config.topic: at most {MAX_TOPIC_CHARS} characters")
    if not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise ChannelConfigError("config.topic: only letters, digits, '.', '_' and '-' (and not '.' or '..')")
    if topic.startswith("__"):
        raise ChannelConfigError("config.topic: names starting with '__' are Kafka's internal topics")
    if own_broker:
        prefix = settings.topic_prefix
        own_topics = {spec.name for spec in Topics(prefix).specs(1)}
        if topic in own_topics or (prefix and topic.startswith(prefix)):
            raise ChannelConfigError(
                f"config.topic: {topic!r} is one of this Pingura's own topics ({prefix}*) on its broker; "
                "read alerts there directly, or choose another name"
            )
    return topic


def _describe(exc: KafkaError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text and text != type(exc).__name__ else type(exc).__name__
