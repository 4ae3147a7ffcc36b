"""A ping names the instance (host, pod, worker) that sent it, for a heartbeat run by a fleet:
``?instance=`` or the ``X-Pingura-Instance`` header on every URL family, Cronitor's ``?host=`` on
Cronitor's URL; the query wins over the header. Over real HTTP (the runner ``pingura serve``
uses, raw sockets as clients) to the real ingest app on the real embedded bus."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.events import Ping, decode
from shared.rules import MAX_INSTANCE_CHARS
from tests.services.ingest.support import (
    TOKEN,
    TOPICS,
    add_monitor,
    add_project,
    exchange,
    ping_count,
    request,
    serve,
    status_of,
)

PING_KEY, SLUG = "k" * 22, "backup-db"
HEADER = "X-Pingura-Instance"
URLS = {
    "pingura": f"/api/heartbeat/{TOKEN}",
    "pingura /start": f"/api/heartbeat/{TOKEN}/start",
    "healthchecks": f"/ping/{TOKEN}",
    "healthchecks /fail": f"/ping/{TOKEN}/fail",
    "slug": f"/ping/{PING_KEY}/{SLUG}",
    "slug /2": f"/ping/{PING_KEY}/{SLUG}/2",
    "cronitor": f"/p/{PING_KEY}/{SLUG}?state=complete",
    "uptime kuma": f"/api/push/{TOKEN}?status=up&msg=OK&ping=",
}


@pytest.fixture
async def served(tmp_path):
    served = await serve(tmp_path)
    await add_monitor(served.bus, TOKEN, slug=SLUG, project_id="p")
    await add_project(served.bus, "p", ping_key=PING_KEY)
    await served.index.sync()
    reader = served.bus.reader([(TOPICS.pings, p) for p in range(2)])
    await reader.start()
    yield served, reader
    await reader.close()
    await served.close()


def with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


async def send(
    served, target: str, headers: dict[str, str | bytes] | None = None
) -> tuple[int | None, bytes]:
    served, _reader = served
    response = await exchange(served.port, request("GET", target, headers))
    return status_of(response), response.partition(b"\r\n\r\n")[2]


async def stored(served) -> Ping:
    _served, reader = served
    [record] = await reader.poll(timeout_ms=1000)
    ping = decode(record.value)
    assert isinstance(ping, Ping)
    return ping


async def refused(served, target: str, headers: dict[str, str | bytes] | None = None) -> str:
    """The one-line reason of a 400, having checked nothing reached the bus."""
    before = ping_count(served[0].bus)
    status, body = await send(served, target, headers)
    assert status == 400, body
    assert ping_count(served[0].bus) == before
    return body.decode()


# Every format names it the same two ways ---------------------------------------------------
@pytest.mark.parametrize("family", sorted(URLS))
async def test_every_format_takes_the_instance_from_the_query(served, family):
    status, body = await send(served, with_query(URLS[family], "instance=web-7"))
    assert status == 200, body
    assert (await stored(served)).instance == "web-7"


@pytest.mark.parametrize("family", sorted(URLS))
async def test_every_format_takes_the_instance_from_the_header(served, family):
    status, body = await send(served, URLS[family], {HEADER: "pod-backup-5f9c"})
    assert status == 200, body
    assert (await stored(served)).instance == "pod-backup-5f9c"


@pytest.mark.parametrize("family", sorted(URLS))
async def test_a_ping_that_names_no_instance_has_none(served, family):
    status, body = await send(served, URLS[family])
    assert status == 200, body
    assert (await stored(served)).instance is None


async def test_the_query_wins_over_the_header(served):
    status, _ = await send(served, with_query(URLS["pingura"], "instance=from-url"), {HEADER: "from-header"})
    assert status == 200
    assert (await stored(served)).instance == "from-url"


async def test_the_first_of_a_repeated_instance_parameter_counts(served):
    status, _ = await send(served, with_query(URLS["pingura"], "instance=first&instance=second"))
    assert status == 200
    assert (await stored(served)).instance == "first"


async def test_cronitors_host_names_the_instance_on_cronitors_url(served):
    status, _ = await send(served, with_query(URLS["cronitor"], "host=db-2.internal"))
    assert status == 200
    assert (await stored(served)).instance == "db-2.internal"


async def test_instance_wins_over_cronitors_host_and_host_over_the_header(served):
    assert (await send(served, with_query(URLS["cronitor"], "host=h&instance=i")))[0] == 200
    assert (await stored(served)).instance == "i"
    assert (await send(served, with_query(URLS["cronitor"], "host=h"), {HEADER: "x"}))[0] == 200
    assert (await stored(served)).instance == "h"


async def test_host_means_nothing_on_other_urls(served):
    # Only Cronitor's clients send it meaning the instance; elsewhere it may be anything.
    status, _ = await send(served, with_query(URLS["pingura"], "host=%20not%20an%20instance"))
    assert status == 200
    assert (await stored(served)).instance is None


async def test_a_name_of_64_characters_of_any_script_is_kept_exactly(served):
    name = ("wörker-ü-東京-🚀" * 10)[:MAX_INSTANCE_CHARS]
    status, _ = await send(served, with_query(URLS["pingura"], "instance=" + quote(name)))
    assert status == 200
    assert (await stored(served)).instance == name


async def test_a_utf8_header_is_kept_exactly(served):
    status, _ = await send(served, URLS["slug"], {HEADER: "nœud-3 (eu)".encode()})
    assert status == 200
    assert (await stored(served)).instance == "nœud-3 (eu)"


# Refused with a one-line reason -------------------------------------------------------------
async def test_an_empty_instance_is_refused(served):
    assert "instance is empty" in await refused(served, with_query(URLS["pingura"], "instance="))


async def test_an_instance_of_65_characters_is_refused(served):
    reason = await refused(served, with_query(URLS["pingura"], "instance=" + "a" * 65))
    assert reason == "instance is longer than 64 characters\n"


async def test_a_control_character_is_refused(served):
    reason = await refused(served, with_query(URLS["pingura"], "instance=web%0A7"))
    assert "not printable" in reason and reason.count("\n") == 1


async def test_a_space_at_either_end_is_refused(served):
    assert "starts or ends with a space" in await refused(
        served, with_query(URLS["pingura"], "instance=web-7+")
    )
    assert "starts or ends with a space" in await refused(
        served, with_query(URLS["pingura"], "instance=%20web")
    )


async def test_an_instance_that_is_not_utf8_is_refused_in_the_query_and_in_the_header(served):
    assert "instance in the query string is not UTF-8" in await refused(
        served, with_query(URLS["pingura"], "instance=caf%E9")
    )
    assert f"{HEADER} is not UTF-8" in await refused(served, URLS["pingura"], {HEADER: b"caf\xe9"})


async def test_a_bad_cronitor_host_is_refused_naming_host(served):
    assert "host is longer than 64" in await refused(served, with_query(URLS["cronitor"], "host=" + "h" * 65))
    assert "host in the query string is not UTF-8" in await refused(
        served, with_query(URLS["cronitor"], "host=caf%E9")
    )


async def test_a_host_that_is_not_utf8_is_nobodys_business_on_other_urls(served):
    status, _ = await send(served, with_query(URLS["healthchecks"], "host=caf%E9"))
    assert status == 200
    assert (await stored(served)).instance is None


async def test_healthchecks_urls_refuse_with_the_reason_too(served):
    assert "instance is empty" in await refused(served, with_query(URLS["healthchecks"], "instance="))


async def test_uptime_kuma_refuses_in_its_own_json(served):
    status, body = await send(served, URLS["uptime kuma"], {HEADER: "x" * 65})
    assert status == 400
    assert body == b'{"ok": false, "msg": "X-Pingura-Instance is longer than 64 characters"}'


# Any name: stored exactly as sent, or refused with a 400 ------------------------------------
PROFILE = settings(
    max_examples=int(os.environ.get("PINGURA_INSTANCE_EXAMPLES", "120")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
names = st.text(max_size=70) | st.text(st.characters(codec="utf-8"), min_size=60, max_size=70)


def acceptable(name: str) -> bool:
    """The rule, restated: 1-64 printable characters, no space at either end."""
    return 1 <= len(name) <= 64 and name.isprintable() and name.strip() == name


@given(name=names, family=st.sampled_from(sorted(URLS)))
@PROFILE
async def test_any_instance_in_the_query_round_trips_exactly_or_gets_a_400(served, name, family):
    before = ping_count(served[0].bus)
    status, body = await send(served, with_query(URLS[family], "instance=" + quote(name, safe="")))
    if acceptable(name):
        assert status == 200, body
        assert (await stored(served)).instance == name
    else:
        assert status == 400, body
        assert ping_count(served[0].bus) == before


# A header cannot carry CR, LF or NUL, and HTTP drops spaces and tabs around its value.
header_values = st.binary(max_size=70).filter(lambda b: not set(b) & set(b"\r\n\x00"))


@given(value=header_values, family=st.sampled_from(sorted(URLS)))
@PROFILE
async def test_any_instance_header_round_trips_exactly_or_gets_a_4xx_never_a_5xx(served, value, family):
    before = ping_count(served[0].bus)
    status, body = await send(served, URLS[family], {HEADER: value})
    assert status is not None and status < 500, body
    try:
        sent = value.strip(b" \t").decode("utf-8")
    except UnicodeDecodeError:
        sent = None
    if status == 200:
        assert sent is not None and acceptable(sent), value
        assert (await stored(served)).instance == sent
    else:
        # Refused by ingest, or by the HTTP parser before it (bytes no header may hold).
        assert status == 400 and not (sent is not None and acceptable(sent)), value
        assert ping_count(served[0].bus) == before
