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
advertises (a client connects to those too).

Producers are kept, one per bootstrap address and event loop, until :meth:`KafkaChannel.close`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import weakref
from collections import OrderedDict
from collections.abc import Iterable

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
from services.notifier.safety import UnsafeTarget, blocked_reason, check_host
from shared.events import Alert, encode
from shared.settings import Network, Settings
from shared.topics import Topics

log = structlog.get_logger()

MAX_TOPIC_CHARS = 249
MAX_BOOTSTRAP_SERVERS = 10
DEFAULT_KAFKA_PORT = 9092
MAX_PRODUCERS = 32
"""Producers kept open at once (the least recently used is closed beyond it): each channel
may name its own broker, and each producer holds connections and a sender task."""

_TOPIC = re.compile(r"[A-Za-z0-9._-]+")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# Errors that trying again within the notifier's retries will not fix.
_PERMANENT = (
    UnknownTopicOrPartitionError,  # raised once the metadata wait ran out: the topic is not there
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,  # idempotent producing needs IDEMPOTENT_WRITE
    InvalidTopicError,
    RecordTooLargeError,
    UnsupportedVersionError,
)
_HINT = "allow it with PINGURA_WEBHOOK_ALLOWED_NETWORKS"


class KafkaChannel(Channel):
    kind = "kafka"
    label = "Kafka topic"
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

    def __init__(self) -> None:
        # Per event loop: a producer belongs to the loop it was started on.
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Producers] = weakref.WeakKeyDictionary()

    def normalize(self, config: dict, settings: Settings) -> dict:
        raw = config.get("bootstrap_servers")
        servers = _parse_servers(raw) if raw is not None and raw.strip() else None
        if servers is not None and settings.kafka_bootstrap and set(servers) == set(_own_servers(settings) or ()):
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
        return {"topic": topic, "bootstrap_servers": _join(servers)}

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
        pool = self._pool()
        try:
            if not own:  # literal addresses were checked at save; names are resolved now
                await _check_addresses(_parse_servers(bootstrap), settings.webhook_allowed_networks)
            producer = await pool.get(bootstrap, settings)
            if not own:
                await producer.partitions_for(config["topic"])  # metadata naming the brokers it will write to
                brokers = [(b.host, b.port) for b in producer.client.cluster.brokers()]
                try:
                    await _check_addresses(brokers, settings.webhook_allowed_networks)
                except UnsafeTarget:
                    pool.discard(bootstrap)
                    raise
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
        except UnsafeTarget as exc:
            raise TransportError(f"refused: {exc}", permanent=True) from None
        except ChannelConfigError as exc:
            raise TransportError(str(exc), permanent=True) from None
        except _PERMANENT as exc:
            raise TransportError(f"Kafka: {_describe(exc)} (topic {config['topic']!r})", permanent=True) from None
        except KafkaError as exc:
            raise TransportError(f"Kafka: {_describe(exc)}", permanent=False) from None

    async def close(self) -> None:
        """Flush and close every producer this channel started on the running loop.

        The notifier calls it on shutdown, after its in-flight deliveries ended."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    def _pool(self) -> _Producers:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Producers()
        return pool


class _Producers:
    """Started producers by bootstrap address, least recently used first."""

    def __init__(self) -> None:
        self._producers: OrderedDict[str, AIOKafkaProducer] = OrderedDict()
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

    def discard(self, bootstrap: str) -> None:
        """Forget the producer of ``bootstrap`` and close it in the background."""
        producer = self._producers.pop(bootstrap, None)
        self._starting.pop(bootstrap, None)
        if producer is not None:
            task = asyncio.create_task(producer.stop())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for bootstrap in list(self._producers):
            self.discard(bootstrap)
        if self._closing:
            await asyncio.wait(self._closing)


# addresses --------------------------------------------------------------------------------
async def _check_addresses(servers: Iterable[tuple[str, int]], allowed: tuple[Network, ...]) -> None:
    """Refuse (:class:`UnsafeTarget`) a server that is, or resolves to, an internal address.

    Stricter than the webhook's resolver, which drops internal addresses and connects to
    the rest: the Kafka client resolves names itself, so one internal answer is enough to refuse.
    """
    loop = asyncio.get_running_loop()
    for host, port in servers:
        check_host(host, allowed)
        try:
            answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            continue  # an unknown name: the client reports it
        for *_, sockaddr in answers:
            reason = blocked_reason(ipaddress.ip_address(sockaddr[0]), allowed)
            if reason is not None:
                raise UnsafeTarget(f"host {host!r} resolves to an internal address ({sockaddr[0]}: {reason}); {_HINT}")


def _parse_servers(raw: str) -> list[tuple[str, int]]:
    """``"a.example:9092, [2001:db8::1]:9093"`` -> ``[("a.example", 9092), ("2001:db8::1", 9093)]``."""
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise ChannelConfigError("config.bootstrap_servers: give at least one host:port")
    if len(parts) > MAX_BOOTSTRAP_SERVERS:
        raise ChannelConfigError(f"config.bootstrap_servers: at most {MAX_BOOTSTRAP_SERVERS} servers")
    return list(dict.fromkeys(_parse_server(part) for part in parts))


def _parse_server(part: str) -> tuple[str, int]:
    shown = part if len(part) <= 80 else part[:77] + "..."
    bad = ChannelConfigError(f"config.bootstrap_servers: {shown!r} is not a host:port")
    if part.startswith("["):
        host, closing, rest = part[1:].partition("]")
        if not closing or (rest and not rest.startswith(":")):
            raise bad
        port_text = rest[1:] if rest else ""
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise bad from None
    else:
        host, _, port_text = part.partition(":")
        if ":" in port_text:
            raise ChannelConfigError(f"config.bootstrap_servers: {shown!r}: put an IPv6 address in brackets")
        if not _is_host_name(host):
            raise bad
        host = host.lower()
    if not port_text:
        return host, DEFAULT_KAFKA_PORT
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise bad
    return host, int(port_text)


def _is_host_name(host: str) -> bool:
    name = host.rstrip(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _join(servers: Iterable[tuple[str, int]]) -> str:
    return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in servers)


def _own_servers(settings: Settings) -> list[tuple[str, int]] | None:
    try:
        return _parse_servers(settings.kafka_bootstrap or "")
    except ChannelConfigError:
        return None


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
