import ipaddress
import socket

import pytest

from services.notifier.channels import ChannelConfigError, TransportError, validate_channel
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.safety import (
    GuardedResolver,
    UnsafeTarget,
    blocked_reason,
    check_host,
    guarded_session,
)
from shared.settings import Settings
from tests.services.notifier.support import make_alert

NOTHING_ALLOWED = Settings()
LOOPBACK_ALLOWED = Settings(webhook_allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://api.localhost/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # CGNAT
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://127.1/",  # legacy forms the OS reads as 127.0.0.1
        "http://2130706433/",
    ],
)
def test_it_refuses_webhooks_to_internal_addresses_unless_allowed(url):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("webhook", {"url": url}, NOTHING_ALLOWED)

    assert str(failure.value).startswith("config.url: host ")


def test_an_operator_can_allow_an_internal_network():
    assert validate_channel("webhook", {"url": "http://127.0.0.1:8080/hook"}, LOOPBACK_ALLOWED)["url"]
    assert validate_channel("webhook", {"url": "http://[::ffff:127.0.0.1]/hook"}, LOOPBACK_ALLOWED)["url"]
    with pytest.raises(ChannelConfigError, match="private"):
        validate_channel("webhook", {"url": "http://10.0.0.1/"}, LOOPBACK_ALLOWED)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("fd12::1", "unique-local"),
        ("::", "unspecified"),
        ("ff02::1", "multicast"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_it_names_why_an_address_is_blocked(address, reason):
    assert blocked_reason(ipaddress.ip_address(address), ()) == reason


def test_public_names_pass_the_literal_check_and_are_left_to_the_resolver():
    check_host("hooks.example.com", ())  # no exception: the name is checked once resolved


def test_a_host_with_a_nul_byte_is_no_legacy_ip_literal_and_raises_nothing_unexpected():
    check_host("a\x00b", ())  # inet_aton raises ValueError here, not OSError


class ScriptedDNS:
    """DNS beyond this machine, imitated: answers a name with fixed addresses."""

    def __init__(self, *addresses: str):
        self.addresses = addresses

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self):
        pass


async def test_the_resolver_drops_internal_addresses_from_an_answer():
    resolver = GuardedResolver((), inner=ScriptedDNS("10.0.0.5", "93.184.216.34", "169.254.169.254"))

    answer = await resolver.resolve("rebind.example.com", 443)

    assert [r["host"] for r in answer] == ["93.184.216.34"]


async def test_the_resolver_refuses_a_name_that_resolves_only_inside():
    # The name passed validation (it is not a literal IP); now DNS points it at metadata.
    resolver = GuardedResolver((), inner=ScriptedDNS("169.254.169.254"))

    with pytest.raises(UnsafeTarget, match=r"169\.254\.169\.254 \(link-local\)"):
        await resolver.resolve("rebind.example.com", 80)


async def test_a_literal_localhost_is_refused_at_send_time(receiver):
    # Unvalidated config on purpose: the send-time guard must hold on its own.
    http = guarded_session(NOTHING_ALLOWED)
    try:
        with pytest.raises(TransportError) as failure:
            await WebhookChannel().send(
                make_alert(), {"url": receiver.url(host="localhost")}, http, NOTHING_ALLOWED
            )
    finally:
        await http.close()

    assert failure.value.permanent is True
    assert "internal address (loopback)" in str(failure.value)
    assert receiver.received() == []


async def test_a_name_rebound_to_an_internal_address_is_refused_at_send_time(receiver):
    # hooks.example.com passed validation; by send time its DNS answer points at loopback.
    http = guarded_session(NOTHING_ALLOWED, dns=ScriptedDNS("127.0.0.1"))
    try:
        with pytest.raises(TransportError) as failure:
            await WebhookChannel().send(
                make_alert(), {"url": receiver.url(host="hooks.example.com")}, http, NOTHING_ALLOWED
            )
    finally:
        await http.close()

    assert failure.value.permanent is True
    assert "resolves only to internal addresses: 127.0.0.1 (loopback)" in str(failure.value)
    assert receiver.received() == []


async def test_a_name_resolving_to_an_allowed_network_is_reached(receiver):
    http = guarded_session(LOOPBACK_ALLOWED, dns=ScriptedDNS("10.9.9.9", "127.0.0.1"))
    try:
        await WebhookChannel().send(
            make_alert(), {"url": receiver.url(host="hooks.example.com")}, http, LOOPBACK_ALLOWED
        )
    finally:
        await http.close()

    [request] = receiver.received()
    assert request.headers["Host"].startswith("hooks.example.com")
