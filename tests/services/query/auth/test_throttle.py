"""Wrong API keys and failed sign-ins are throttled per client address: 429 with
``Retry-After`` and a one-line reason, logged once per address, while a valid key from the
same address still works; the table of addresses stays bounded."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from structlog.testing import capture_logs

from services.query.api.openapi import build_document
from services.query.api.routes import ROUTES
from services.query.auth.sessions import COOKIE
from services.query.auth.throttle import FailureThrottle, address_group
from tests.services.query.api.tenants import new_tenant
from tests.services.query.auth.instances import another_instance

on_session_loop = pytest.mark.asyncio(loop_scope="session")  # the api fixture's loop
PER_MINUTE = 3
LOOPBACK_PROXY = (ipaddress.ip_network("127.0.0.0/8"),)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttled(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "auth.throttled"]


# the table ----------------------------------------------------------------------------------
def test_an_address_may_fail_n_times_at_once_then_once_every_60_over_n_seconds():
    clock = Clock()
    throttle = FailureThrottle(PER_MINUTE, clock=clock)
    for _ in range(PER_MINUTE):
        assert throttle.wait_s("192.0.2.1") == 0
        throttle.failed("192.0.2.1")
    assert throttle.wait_s("192.0.2.1") == 20 and throttle.wait_s("192.0.2.2") == 0
    clock.now += 19.5
    assert throttle.wait_s("192.0.2.1") == 1  # rounded up: a retry after it is answered
    clock.now += 0.5
    assert throttle.wait_s("192.0.2.1") == 0
    throttle.failed("192.0.2.1")
    assert throttle.wait_s("192.0.2.1") == 20


def test_it_logs_once_each_time_an_address_runs_out():
    clock = Clock()
    throttle = FailureThrottle(PER_MINUTE, clock=clock)
    with capture_logs() as logs:
        for _ in range(PER_MINUTE):
            throttle.failed("192.0.2.1")
        for _ in range(5):  # refused meanwhile: those are not looked up, nor logged
            assert throttle.wait_s("192.0.2.1")
        clock.now += 20  # room for one more, which runs it out again: still the same episode
        throttle.failed("192.0.2.1")
        assert len(throttled(logs)) == 1
        clock.now += 60  # full again: the next time it runs out is news
        for _ in range(PER_MINUTE):
            throttle.failed("192.0.2.1")
    assert [(e["address"], e["log_level"]) for e in throttled(logs)] == [("192.0.2.1", "warning")] * 2


def test_a_failure_counted_too_early_can_be_taken_back():
    throttle = FailureThrottle(1, clock=Clock())
    throttle.failed("192.0.2.1")
    throttle.forgive("192.0.2.1")
    assert throttle.wait_s("192.0.2.1") == 0
    throttle.forgive("192.0.2.1")  # never above the allowance
    throttle.failed("192.0.2.1")
    assert throttle.wait_s("192.0.2.1") == 60


def test_the_table_forgets_the_address_that_failed_longest_ago():
    throttle = FailureThrottle(1, max_addresses=3, clock=Clock())
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        throttle.failed(address)
    throttle.failed("192.0.2.1")  # failed again: now the newest
    throttle.failed("192.0.2.4")
    assert len(throttle) == 3
    assert throttle.wait_s("192.0.2.2") == 0  # forgotten
    assert all(throttle.wait_s(a) for a in ("192.0.2.1", "192.0.2.3", "192.0.2.4"))


def test_ipv6_clients_count_per_64():
    assert (
        address_group("2001:db8:1:2:aaaa::1") == address_group("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    )
    assert address_group("2001:db8:1:3::1") != address_group("2001:db8:1:2::1")
    assert address_group("::ffff:192.0.2.1") == address_group("192.0.2.1") == "192.0.2.1"
    assert address_group("") == "" and address_group("not an address") == "not an address"


# over HTTP ----------------------------------------------------------------------------------
def _from(address: str, **headers) -> dict:
    return {"X-Forwarded-For": address, **headers}


async def _get(instance, headers: dict) -> tuple[int, dict, dict]:
    async with instance.http.get(instance.url + "/keys", headers=headers) as r:
        return r.status, dict(r.headers), await r.json()


@on_session_loop
async def test_wrong_keys_get_429_with_retry_after_past_the_limit_and_a_valid_key_still_works(api):
    tenant = await new_tenant(api)
    async with another_instance(
        api, auth_failures_per_minute=PER_MINUTE, trusted_proxies=LOOPBACK_PROXY
    ) as there:
        with capture_logs() as logs:
            answers = [
                await _get(there, _from("198.51.100.7", Authorization=f"Bearer pk_guess{i}"))
                for i in range(PER_MINUTE + 5)
            ]
        assert [status for status, _, _ in answers] == [401] * PER_MINUTE + [429] * 5
        _, headers, body = answers[-1]
        assert headers["Retry-After"] == "20" and headers["Cache-Control"] == "no-store"
        assert body == {
            "error": "too many failed sign-ins or wrong API keys from your address; retry in 20 s"
        }
        assert [e["address"] for e in throttled(logs)] == ["198.51.100.7"]  # once, not per request
        # The other header is the same door; a valid key is not held up; another address is not either.
        assert (await _get(there, _from("198.51.100.7", **{"X-Api-Key": "pk_guess", "Authorization": ""})))[
            0
        ] == 429
        assert (await _get(there, _from("198.51.100.7", **tenant.headers)))[0] == 200
        assert (await _get(there, _from("198.51.100.8", Authorization="Bearer pk_guess")))[0] == 401


@on_session_loop
async def test_wrong_keys_sent_all_at_once_are_throttled_as_one_after_another(api):
    async with another_instance(
        api, auth_failures_per_minute=PER_MINUTE, trusted_proxies=LOOPBACK_PROXY
    ) as there:
        answers = await asyncio.gather(
            *(_get(there, _from("198.51.100.70", Authorization=f"Bearer pk_guess{i}")) for i in range(30))
        )
    assert sorted(status for status, _, _ in answers) == [401] * PER_MINUTE + [429] * (30 - PER_MINUTE)


@on_session_loop
async def test_a_key_made_a_moment_ago_on_another_instance_is_no_failure(api):
    tenant = await new_tenant(api)
    async with another_instance(api, auth_failures_per_minute=1, trusted_proxies=LOOPBACK_PROXY) as there:
        for _ in range(3):  # each made on the first instance, used at once on the second
            key, _ = await tenant.new_key()
            assert (await _get(there, _from("198.51.100.71", Authorization=f"Bearer {key}")))[0] == 200
        assert there.ctx.keys.failures.wait_s("198.51.100.71") == 0


@on_session_loop
async def test_failed_sign_ins_are_throttled_too_and_a_valid_key_still_signs_in(api):
    tenant = await new_tenant(api)
    key, _ = await tenant.new_key()
    async with another_instance(
        api, auth_failures_per_minute=PER_MINUTE, trusted_proxies=LOOPBACK_PROXY
    ) as there:
        login = there.url.removesuffix("/api/v1") + "/login"

        async def sign_in(secret: str, address: str = "203.0.113.9"):
            async with there.http.post(
                login, data={"key": secret}, allow_redirects=False, headers=_from(address, Authorization="")
            ) as r:
                body = await r.json() if r.content_type == "application/json" else None
                return r.status, r.headers.get("Retry-After"), body, r.cookies.get(COOKIE)

        answers = [await sign_in(f"pk_guess{i}") for i in range(PER_MINUTE + 2)]
        assert [status for status, *_ in answers] == [303] * PER_MINUTE + [429] * 2
        status, retry_after, body, cookie = answers[-1]
        assert retry_after == "20" and "too many failed sign-ins" in body["error"] and cookie is None
        # Wrong keys on the API from the same address were counted with them.
        assert (await _get(there, _from("203.0.113.9", Authorization="Bearer pk_guess")))[0] == 429
        status, _, _, cookie = await sign_in(key)
        assert status == 303 and cookie.value
        assert (await sign_in("pk_guess", "203.0.113.10"))[0] == 303  # another address: back to the form


def test_the_api_document_declares_429_with_retry_after_on_every_authenticated_operation():
    doc = build_document(ROUTES)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if op.get("security") != []:
                assert op["responses"]["429"] == {"$ref": "#/components/responses/TooManyRequests"}, (
                    method,
                    path,
                )
    assert "Retry-After" in doc["components"]["responses"]["TooManyRequests"]["headers"]
