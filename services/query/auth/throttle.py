"""Failed sign-ins and wrong API keys, counted per client address; failed password sign-ins
also per account (:class:`SignInThrottle`).

Each address may fail ``per_minute`` times at once, then once every ``60 / per_minute``
seconds (a token bucket). Past that, a wrong key or sign-in is answered 429 with
``Retry-After`` instead of being looked up: no sync with the bus, no log line each.

A key that is valid still works from a throttled address: one bad script behind a NAT must
not lock the rest of the team out. That leaves a guesser an answer (429 or 200) at full
speed, which is harmless for Pingura's keys (``pk_`` + 256 random bits); what the throttle
bounds is the cost and the noise of a flood, and it makes one visible (``auth.throttled``,
logged once each time an address becomes throttled, not per request).

IPv6 clients count per /64: one host usually holds a whole /64. The table keeps at most
``max_addresses``; past that the address that failed longest ago is forgotten first, so a
spread-out flood costs a bounded amount of memory (about 200 bytes an address).

Passwords are not keys: a person's password may be guessable, so a throttled address or
account gets 429 *before* the password is checked, right or wrong (else a guesser would
still learn the right one at full speed). The account's count is kept per email as typed
(lower-cased), whether or not such a user exists, so a 429 tells nothing about which emails
have accounts. Someone failing on purpose can make an account wait too: one try every
``60 / n`` s, the same for its owner, which bounds the harm to a slower sign-in.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

import structlog
from aiohttp import web

from services.ingest.logic import client_ip
from shared.errors import PinguraError

log = structlog.get_logger()

MAX_ADDRESSES = 10_000


class Throttled(PinguraError):
    """Too many failures from this address; answer 429 with ``Retry-After``."""

    def __init__(self, retry_after_s: int, whose: str = "from your address"):
        super().__init__(f"too many failed sign-ins or wrong API keys {whose}; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def address_group(address: str) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]  # a Unix socket peer, or nothing: counted as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def client_address(request: web.Request, trusted_proxies: tuple) -> str:
    """Who is failing: the peer, or the client a trusted proxy names in ``X-Forwarded-For``
    (as ingest records a ping's source), grouped by :func:`address_group`."""
    return address_group(client_ip(request.remote, request.headers.get("X-Forwarded-For"), trusted_proxies))


class FailureThrottle:
    def __init__(
        self,
        per_minute: int,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
        counts: str = "address",
    ):
        self.per_minute = per_minute
        self._counts = counts  # what the log line names: an address, or an account
        self._rate_per_s = per_minute / 60.0
        self._max_addresses = max_addresses
        self._clock = clock
        # address -> (failures left, when counted, throttled and logged). Insertion order is
        # last-failure order: a failure moves its address to the end, eviction takes the front.
        self._table: dict[str, tuple[float, float, bool]] = {}

    def _left(self, address: str, now: float) -> tuple[float, bool]:
        left, then, logged = self._table.get(address, (float(self.per_minute), now, False))
        return min(float(self.per_minute), left + (now - then) * self._rate_per_s), logged

    def wait_s(self, address: str) -> int:
        """0 when ``address`` may still fail; otherwise the seconds until it may again."""
        if address not in self._table:
            return 0
        left, _ = self._left(address, self._clock())
        return 0 if left >= 1 else max(1, math.ceil((1 - left) / self._rate_per_s))

    def check(self, address: str) -> None:
        """Raise :class:`Throttled` when ``address`` may not fail now."""
        wait = self.wait_s(address)
        if wait:
            raise Throttled(wait)

    def failed(self, address: str) -> bool:
        """Count one failure of ``address``; the one that uses up its allowance is logged
        (and True is returned for it: news, once each time it runs out)."""
        now = self._clock()
        left, logged = self._left(address, now)
        left = max(0.0, left - 1)
        news = False
        if left >= 1:
            logged = False  # it has room again: the next time it runs out is news
        elif not logged:
            logged = news = True
            log.warning("auth.throttled", **{self._counts: address}, failures_per_minute=self.per_minute)
        self._table.pop(address, None)
        self._table[address] = (left, now, logged)
        while len(self._table) > self._max_addresses:
            del self._table[next(iter(self._table))]
        return news

    def forgive(self, address: str) -> None:
        """Take back one failure counted too early (the key turned out to exist after all)."""
        if address in self._table:
            left, then, logged = self._table[address]
            self._table[address] = (min(float(self.per_minute), left + 1), then, logged)

    def __len__(self) -> int:
        return len(self._table)


class SignInThrottle:
    """Failed password sign-ins per client address (the same count as wrong API keys, the
    key index's) and per account (its email): either running out answers 429."""

    def __init__(self, addresses: FailureThrottle | None, per_minute: int, max_accounts: int = MAX_ADDRESSES):
        self.addresses = addresses
        self.accounts = (
            FailureThrottle(per_minute, max_accounts, counts="account") if per_minute > 0 else None
        )

    def check(self, address: str | None, account: str) -> None:
        """Raise :class:`Throttled` when either may not fail now (the longer wait)."""
        by_address = self.addresses.wait_s(address) if self.addresses and address is not None else 0
        by_account = self.accounts.wait_s(account.lower()) if self.accounts else 0
        if by_account > by_address:
            raise Throttled(by_account, "for this account")
        if by_address:
            raise Throttled(by_address)

    def failed(self, address: str | None, account: str) -> bool:
        """Count a failure; True when it ran the account out (time to tell its owner)."""
        if self.addresses is not None and address is not None:
            self.addresses.failed(address)
        return self.accounts is not None and self.accounts.failed(account.lower())
