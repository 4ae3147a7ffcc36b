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
cluster, bootstrap or advertised, is checked before it is opened (:class:`_BrokerGuard`) and
made to the address that was checked, so neither metadata nor a DNS answer that changes
between check and connect can point it inside.

Producers are kept, one per bootstrap address, in a :class:`KafkaProducers` pool that the
process owns and closes on shutdown (:class:`services.notifier.sending.Senders` holds it and
binds a :class:`KafkaChannel` to it). The registry's instance only describes and validates.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Iterable
from contextlib import suppress
from contextvars import ContextVar

import aiohttp
import aiokafka.client
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
from shared.errors import PinguraError
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
        servers = _parse_servers(raw) if raw is not None and raw.strip() else None
        if (
            servers is not None
            and settings.kafka_bootstrap
            and set(servers) == set(_own_servers(settings) or ())
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
        pool = self._producers
        if pool is None:  # the registry's instance: a bug, not the receiver's fault
            raise TransportError(
                "internal error: this Kafka channel has no producers to send with", permanent=True
            )
        guard = None if own else pool.guard(bootstrap, settings.webhook_allowed_networks)
        token = _GUARD.set(guard)  # the producer's tasks, started below, carry it for their life
        try:
            await _until_refused(guard, self._produce_on(pool, bootstrap, alerts, config, settings, own))
        except UnsafeTarget as exc:
            pool.discard(bootstrap)  # its client may keep trying the refused broker: start afresh
            raise TransportError(f"refused: {exc}", permanent=True) from None
        finally:
            _GUARD.reset(token)

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
                await _check_addresses(_parse_servers(bootstrap), settings.webhook_allowed_networks)
            producer = await pool.get(bootstrap, settings)
            if not own:
                await producer.partitions_for(config["topic"])  # metadata naming the brokers it will write to
                brokers = [(b.host, b.port) for b in producer.client.cluster.brokers()]
                await _check_addresses(brokers, settings.webhook_allowed_networks)
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
        self._guards: dict[str, _BrokerGuard] = {}
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

    def guard(self, bootstrap: str, allowed: tuple[Network, ...]) -> _BrokerGuard:
        """The guard of the producer of ``bootstrap`` (kept with it: its tasks report to it)."""
        guard = self._guards.get(bootstrap)
        if guard is not None and guard.refusal is not None:
            self.discard(bootstrap)  # refused a broker while no send was waiting: start afresh
            guard = None
        if guard is None:
            guard = self._guards[bootstrap] = _BrokerGuard(allowed)
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


# connections ------------------------------------------------------------------------------
class _Refused(PinguraError, OSError):
    """A connection the guard did not allow: aiokafka takes it as a broker it cannot reach
    (logged, retried), and the send waiting on the guard fails with the reason."""


class _BrokerGuard:
    """Checks each address a producer for a channel-named cluster is about to connect to.

    A refusal is raised to aiokafka as :class:`_Refused` (an exception it does not expect
    would end its background tasks with a traceback) and kept here for the send."""

    def __init__(self, allowed: tuple[Network, ...]) -> None:
        self.allowed = allowed
        self.refusal: UnsafeTarget | None = None
        self.refused = asyncio.Event()

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to now, all allowed; else refused."""
        try:
            try:
                check_host(host, self.allowed)
            except UnsafeTarget as exc:
                raise UnsafeTarget(f"Kafka broker {_join([(host, port)])}: {exc}") from None
            answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in answers))
            for address in found:
                reason = blocked_reason(ipaddress.ip_address(address), self.allowed)
                if reason is not None:
                    raise UnsafeTarget(
                        f"Kafka broker {_join([(host, port)])} resolves to an internal address "
                        f"({address}: {reason}); {_HINT}"
                    )
        except UnsafeTarget as exc:
            if self.refusal is None:
                self.refusal = exc
                log.warning("notifier.kafka.broker_refused", host=host, port=port, reason=str(exc))
            self.refused.set()
            raise _Refused(str(exc)) from None
        return found


_GUARD: ContextVar[_BrokerGuard | None] = ContextVar("pingura_kafka_guard", default=None)
_create_conn = aiokafka.client.create_conn


async def _guarded_create_conn(host: str, port: int, **kwargs):
    """aiokafka's ``create_conn``, checked by the guard of the context it runs in.

    aiokafka has no hook for the connections its client opens (bootstrap and each broker
    from metadata are both opened by ``create_conn``), so this replaces it in the client's
    module. Without a guard in the context (Pingura's own bus, the own broker) it is the
    original; with one, it connects to the checked addresses themselves, not to the name.
    """
    guard = _GUARD.get()
    if guard is None:
        return await _create_conn(host, port, **kwargs)
    addresses = await guard.addresses(host, port)
    for address in addresses[:-1]:
        with suppress(OSError):
            return await _create_conn(address, port, **kwargs)
    return await _create_conn(addresses[-1], port, **kwargs)


aiokafka.client.create_conn = _guarded_create_conn


async def _until_refused(guard: _BrokerGuard | None, work: Awaitable[None]) -> None:
    """Await ``work``, or raise the guard's refusal as soon as there is one: the client
    would otherwise retry the refused broker until the notifier's timeout, saying nothing."""
    if guard is None:
        await work
        return
    task = asyncio.ensure_future(work)
    refused = asyncio.ensure_future(guard.refused.wait())
    try:
        await asyncio.wait({task, refused}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        refused.cancel()
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
    if not task.cancelled() and task.exception() is None:
        return
    if guard.refusal is not None:  # the failure was the refusal (aiokafka reports it as unreachable)
        raise guard.refusal
    task.result()


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
                raise UnsafeTarget(
                    f"host {host!r} resolves to an internal address ({sockaddr[0]}: {reason}); {_HINT}"
                )


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
