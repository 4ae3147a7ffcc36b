"""Keeps webhooks from reaching into the operator's own network (SSRF guard).

A webhook URL is chosen by whoever can create channels, so without a guard it could
read cloud metadata (169.254.169.254) or poke services on loopback and the private
network. Two checks, because either alone has a hole:

- at config validation, a literal IP or a ``localhost`` name is refused right away,
  so the user gets the error when saving, not at 3 am;
- at send time, :class:`GuardedResolver` filters every address DNS returns, inside the
  connector that then connects to exactly those addresses. Checking a name once and
  connecting later would let a short-TTL record change in between (DNS rebinding).

aiohttp does not call the resolver for literal IPs, so HTTP channels must also call
:func:`check_host` before each request (the webhook channel does), and must not follow
redirects, which could point anywhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from shared.errors import PinguraError
from shared.settings import Network, Settings

log = structlog.get_logger()

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_ALLOW_HINT = "allow it with PINGURA_WEBHOOK_ALLOWED_NETWORKS"


class UnsafeTarget(PinguraError):
    """The target is an internal address the operator has not allowed."""


def blocked_reason(address: IPAddress, allowed_networks: Iterable[Network]) -> str | None:
    """Why ``address`` may not be reached (``"loopback"``, ...), or None when it may."""
    allowed_networks = tuple(allowed_networks)
    if any(address in network for network in allowed_networks):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d is how a dual-stack socket spells the IPv4 address it connects to.
        return blocked_reason(address.ipv4_mapped, allowed_networks)
    # 6to4 and Teredo addresses carry an IPv4 one a relay would reach on our behalf.
    for embedded in _tunnelled_ipv4(address):
        reason = blocked_reason(embedded, allowed_networks)
        if reason is not None:
            return reason
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in _SHARED_ADDRESS_SPACE:
        return "shared address space (CGNAT)"
    if address in _UNIQUE_LOCAL:
        return "unique-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "not globally routable"
    return None


def _tunnelled_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.sixtofour, *(address.teredo or ())]
    return [a for a in found if a is not None]


def check_host(host: str, allowed_networks: Iterable[Network]) -> None:
    """Refuse a literal internal IP or a ``localhost`` name; other names pass (the resolver
    checks what they resolve to). Raises :class:`UnsafeTarget`."""
    name = host.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is None:
        if name == "localhost" or name.endswith(".localhost"):
            address = ipaddress.ip_address("127.0.0.1")
        elif _is_legacy_ipv4(name):
            # "127.1", "2130706433", "0x7f.0.0.1": numbers the OS reads as an address.
            raise UnsafeTarget(f"host {host!r} is not a canonical IPv4 address")
        else:
            return
    reason = blocked_reason(address, allowed_networks)
    if reason is not None:
        raise UnsafeTarget(f"host {host!r} is an internal address ({reason}); {_ALLOW_HINT}")


def _is_legacy_ipv4(name: str) -> bool:
    try:
        socket.inet_aton(name)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return False
    return True


class GuardedResolver(AbstractResolver):
    """Resolves like ``inner`` but drops addresses that may not be reached; raises
    :class:`UnsafeTarget` when none remain."""

    def __init__(self, allowed_networks: Iterable[Network], inner: AbstractResolver | None = None):
        self._allowed_networks = tuple(allowed_networks)
        # ThreadedResolver (getaddrinfo, honours /etc/hosts) rather than DefaultResolver:
        # the connector does not close a resolver it was given, and this one needs no closing.
        self._inner = inner if inner is not None else ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        refused: list[str] = []
        for result in results:
            reason = blocked_reason(ipaddress.ip_address(result["host"]), self._allowed_networks)
            if reason is None:
                kept.append(result)
            else:
                refused.append(f"{result['host']} ({reason})")
        if refused:
            log.warning("notifier.webhook.address_refused", host=host, refused=refused)
        if not kept:
            refused_list = ", ".join(refused)
            raise UnsafeTarget(
                f"host {host!r} resolves only to internal addresses: {refused_list}; {_ALLOW_HINT}"
            )
        return kept

    async def close(self) -> None:
        await self._inner.close()


def guarded_session(settings: Settings, dns: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """The HTTP session channels send with: every name it resolves goes through the guard.

    Must be created inside the running event loop. ``dns`` replaces the system resolver
    (tests imitate DNS with it). ``trust_env=False`` keeps an ``HTTP_PROXY`` from the
    environment out of the path (a proxy would resolve names itself, unguarded).
    """
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(settings.webhook_allowed_networks, inner=dns))
    return aiohttp.ClientSession(connector=connector, trust_env=False)
