"""Which brokers a Kafka channel may reach: its ``bootstrap_servers`` read and written back,
and the internal-address guard on every connection its producer opens.

A broker named in a channel is chosen by whoever can create channels, so it gets the webhook's
guard (:mod:`services.notifier.safety`). The Kafka client opens its own connections, to the
bootstrap servers and to every broker the cluster advertises, all through aiokafka's
``create_conn``; importing this module replaces that function with :func:`guarded_create_conn`,
which, inside a send that set a :class:`BrokerGuard` in :data:`GUARD`, checks the host, resolves
it and connects to the exact address it checked (so neither metadata nor a DNS answer that
changes between check and connect can point inside). Outside such a send (Pingura's own bus,
the own broker) it is aiokafka's original.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Iterable
from contextlib import suppress
from contextvars import ContextVar

import aiokafka.client
import structlog

from services.notifier.channels.base import ChannelConfigError
from services.notifier.safety import UnsafeTarget, blocked_reason, check_host
from shared.errors import PinguraError
from shared.settings import Network, Settings

log = structlog.get_logger()

MAX_BOOTSTRAP_SERVERS = 10
DEFAULT_KAFKA_PORT = 9092
HINT = "allow it with PINGURA_WEBHOOK_ALLOWED_NETWORKS"
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class Refused(PinguraError, OSError):
    """A connection the guard did not allow: aiokafka takes it as a broker it cannot reach
    (logged, retried), and the send waiting on the guard fails with the reason."""


class BrokerGuard:
    """Checks each address a producer for a channel-named cluster is about to connect to.

    A refusal is raised to aiokafka as :class:`Refused` (an exception it does not expect
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
                raise UnsafeTarget(f"Kafka broker {join_servers([(host, port)])}: {exc}") from None
            answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in answers))
            for address in found:
                reason = blocked_reason(ipaddress.ip_address(address), self.allowed)
                if reason is not None:
                    raise UnsafeTarget(
                        f"Kafka broker {join_servers([(host, port)])} resolves to an internal address "
                        f"({address}: {reason}); {HINT}"
                    )
        except UnsafeTarget as exc:
            if self.refusal is None:
                self.refusal = exc
                log.warning("notifier.kafka.broker_refused", host=host, port=port, reason=str(exc))
            self.refused.set()
            raise Refused(str(exc)) from None
        return found


GUARD: ContextVar[BrokerGuard | None] = ContextVar("pingura_kafka_guard", default=None)
_create_conn = aiokafka.client.create_conn


async def guarded_create_conn(host: str, port: int, **kwargs):
    """aiokafka's ``create_conn``, checked by the guard of the context it runs in.

    aiokafka has no hook for the connections its client opens (bootstrap and each broker
    from metadata are both opened by ``create_conn``), so this replaces it in the client's
    module. Without a guard in the context (Pingura's own bus, the own broker) it is the
    original; with one, it connects to the checked addresses themselves, not to the name.
    """
    guard = GUARD.get()
    if guard is None:
        return await _create_conn(host, port, **kwargs)
    addresses = await guard.addresses(host, port)
    for address in addresses[:-1]:
        with suppress(OSError):
            return await _create_conn(address, port, **kwargs)
    return await _create_conn(addresses[-1], port, **kwargs)


aiokafka.client.create_conn = guarded_create_conn


async def until_refused(guard: BrokerGuard | None, work: Awaitable[None]) -> None:
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


async def check_addresses(servers: Iterable[tuple[str, int]], allowed: tuple[Network, ...]) -> None:
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
                    f"host {host!r} resolves to an internal address ({sockaddr[0]}: {reason}); {HINT}"
                )


def parse_servers(raw: str) -> list[tuple[str, int]]:
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


def join_servers(servers: Iterable[tuple[str, int]]) -> str:
    return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in servers)


def own_servers(settings: Settings) -> list[tuple[str, int]] | None:
    try:
        return parse_servers(settings.kafka_bootstrap or "")
    except ChannelConfigError:
        return None
