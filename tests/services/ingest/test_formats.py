"""What existing tools send, over real HTTP to the real ingest app on the real embedded bus:
each format becomes the same ``Ping`` event, and each family answers as its clients expect."""

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ingest.app import ingest_app
from shared.ids import new_token
from shared.settings import Settings
from tests.services.ingest.support import TOPICS, add_monitor, open_bus, pings_on_bus

RID = "3F2A4B1C-0D5E-4F60-8A7B-9C0D1E2F3A4B"


@pytest.fixture
async def ingest(tmp_path):
    bus, index = await open_bus(tmp_path)
    client = TestClient(TestServer(ingest_app(Settings(), bus, TOPICS, index)))
    await client.start_server()
    token = new_token()
    await add_monitor(bus, token)
    await index.sync()
    yield bus, client, token
    await client.close()
    await index.close()
    await bus.close()


async def last_ping(bus):
    return (await pings_on_bus(bus))[-1]


# Pingura's own URL ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["POST", "GET", "HEAD"])
async def test_start_says_a_run_began(ingest, method):
    bus, client, token = ingest
    r = await client.request(method, f"/api/heartbeat/{token}/start?rid={RID}")
    assert r.status == 200
    ping = await last_ping(bus)
    assert (ping.kind, ping.rid, ping.method) == ("start", RID.lower(), method)


async def test_log_records_the_body_as_output_without_saying_how_the_run_went(ingest):
    bus, client, token = ingest
    r = await client.post(f"/api/heartbeat/{token}/log", data=b"step 2 of 5 done\n")
    assert (r.status, await r.text()) == (200, "OK\n")
    ping = await last_ping(bus)
    assert (ping.kind, ping.output, ping.output_truncated) == ("log", "step 2 of 5 done\n", False)


async def test_a_run_id_that_is_not_a_uuid_is_refused_with_a_reason(ingest):
    bus, client, token = ingest
    r = await client.post(f"/api/heartbeat/{token}?rid=12345")
    assert r.status == 400 and "rid must be a UUID" in await r.text()
    assert await pings_on_bus(bus) == []


async def test_a_150_kb_log_is_accepted_and_its_first_100_kib_kept(ingest):
    bus, client, token = ingest
    log = b"".join(b"%06d borg create: file archived\n" % i for i in range(5000))[:150_000]
    r = await client.post(f"/api/heartbeat/{token}", data=log)  # as borgmatic sends it: no Content-Type
    assert r.status == 200
    ping = await last_ping(bus)
    assert ping.output == log[: 100 * 1024].decode() and ping.output_truncated is True
    assert ping.message is None  # too long for a message; the output holds it


async def test_a_100_kb_log_is_no_413_any_more_and_is_kept_whole(ingest):
    bus, client, token = ingest
    log = ("\u00e9" * 50_000).encode()  # 100,000 bytes, as borgmatic's default limit sends
    r = await client.post(f"/api/heartbeat/{token}/fail", data=log, headers={"Content-Type": "text/plain"})
    assert r.status == 200
    ping = await last_ping(bus)
    assert (ping.kind, ping.output, ping.output_truncated) == ("fail", log.decode(), False)


async def test_curl_d_text_is_output_and_message_while_metadata_stays_metadata(ingest):
    bus, client, token = ingest
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    await client.post(f"/api/heartbeat/{token}", data=b"backup done: 3 files", headers=form)
    await client.post(f"/api/heartbeat/{token}", data=b"status=ok&message=m&duration=2s", headers=form)
    text, metadata = await pings_on_bus(bus)
    assert (text.message, text.output) == ("backup done: 3 files", "backup done: 3 files")
    assert (metadata.status, metadata.message, metadata.duration_s, metadata.output) == ("ok", "m", 2.0, None)


# Healthchecks' /ping URLs -----------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS"])
async def test_a_ping_url_takes_any_method_and_answers_ok_as_healthchecks_does(ingest, method):
    bus, client, token = ingest
    r = await client.request(method, f"/ping/{token}")
    assert r.status == 200
    if method != "HEAD":
        assert await r.text() == "OK"
    assert r.headers["Ping-Body-Limit"] == str(100 * 1024)
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert (await last_ping(bus)).method == method


@pytest.mark.parametrize(
    "suffix, kind, exit_code",
    [
        ("", "success", None),
        ("/start", "start", None),
        ("/fail", "fail", None),
        ("/log", "log", None),
        ("/0", "success", 0),
        ("/1", "fail", 1),
        ("/255", "fail", 255),
        ("/007", "fail", 7),
    ],
)
async def test_every_word_healthchecks_takes_after_the_uuid(ingest, suffix, kind, exit_code):
    bus, client, token = ingest
    r = await client.post(f"/ping/{token}{suffix}", data=b"the output")
    assert (r.status, await r.text()) == (200, "OK")
    ping = await last_ping(bus)
    assert (ping.kind, ping.exit_code, ping.output) == (kind, exit_code, "the output")


@pytest.mark.parametrize(
    "path, status, text",
    [
        ("/ping/{token}/256", 400, "invalid url format"),
        ("/ping/{token}/start?rid=684e2e73-017e-465f-8149-d70b7c5aaa490", 400, "invalid uuid format"),
        ("/ping/{token}/start?rid=12345", 400, "invalid uuid format"),
        ("/ping/{token}/nope", 404, "not found"),
        ("/ping/{token}/start/more", 404, "not found"),
        ("/ping/" + "A" * 32, 404, "not found"),
        ("/ping/d9045283-e12f-44c1-b661-411e6f375cc5", 404, "not found"),  # a UUID no check has
    ],
)
async def test_ping_urls_answer_refusals_in_healthchecks_words(ingest, path, status, text):
    bus, client, token = ingest
    r = await client.get(path.format(token=token))
    assert (r.status, await r.text()) == (status, text)
    assert await pings_on_bus(bus) == []


async def test_a_run_id_in_upper_case_is_taken_as_healthchecks_takes_it(ingest):
    bus, client, token = ingest
    assert (await client.get(f"/ping/{token}/start?rid={RID}")).status == 200
    assert (await client.post(f"/ping/{token}?rid={RID.lower()}")).status == 200
    start, end = await pings_on_bus(bus)
    assert start.rid == end.rid == RID.lower()


async def test_the_same_words_work_on_pinguras_own_url(ingest):
    bus, client, token = ingest
    for suffix in ("start", "log", "fail", "0"):
        assert (await client.get(f"/api/heartbeat/{token}/{suffix}?rid={RID}")).status == 200
    assert [p.kind for p in await pings_on_bus(bus)] == ["start", "log", "fail", "success"]


# Uptime Kuma's push URL -------------------------------------------------------------------
async def test_an_uptime_kuma_push_is_a_ping_answered_in_kumas_json(ingest):
    bus, client, token = ingest
    r = await client.get(f"/api/push/{token}?status=up&msg=OK&ping=123")
    assert (r.status, await r.json()) == (200, {"ok": True})
    r = await client.get(f"/api/push/{token}?status=down&msg=disk%20full")
    assert (r.status, await r.json()) == (200, {"ok": True})
    up, down = await pings_on_bus(bus)
    assert (up.kind, up.message, up.duration_s, up.duration_raw) == ("success", "OK", 0.123, "123ms")
    assert (down.kind, down.message, down.duration_s) == ("fail", "disk full", None)


async def test_borgmatics_uptime_kuma_hook_is_understood(ingest):
    bus, client, token = ingest
    for query in ("status=up&msg=start", "status=up&msg=finish", "status=down&msg=fail"):
        assert (
            await client.get(f"/api/push/{token}?{query}", headers={"User-Agent": "borgmatic"})
        ).status == 200
    assert [(p.kind, p.message) for p in await pings_on_bus(bus)] == [
        ("success", "start"),
        ("success", "finish"),
        ("fail", "fail"),
    ]


@pytest.mark.parametrize(
    "path, status",
    [(f"/api/push/{'A' * 32}?status=up", 404), ("/api/push/nope", 404), ("/api/push/{token}?ping=-5", 404)],
)
async def test_kuma_refusals_are_its_json(ingest, path, status):
    bus, client, token = ingest
    r = await client.post(path.format(token=token))
    body = await r.json()
    assert r.status == status and body["ok"] is False and body["msg"]
    assert await pings_on_bus(bus) == []


# Cronitor's words -------------------------------------------------------------------------
@pytest.mark.parametrize("base", ["/api/heartbeat/{token}", "/ping/{token}"])
async def test_cronitors_run_complete_and_fail_words(ingest, base):
    bus, client, token = ingest
    url = base.format(token=token)
    for suffix in ("/run", "/complete", "/fail"):  # borgmatic's cronitor hook: GET {ping_url}/{word}
        assert (await client.get(url + suffix, headers={"User-Agent": "borgmatic"})).status == 200
    assert [p.kind for p in await pings_on_bus(bus)] == ["start", "success", "fail"]


async def test_cronitors_state_series_message_and_duration_metric(ingest):
    bus, client, token = ingest
    url = f"/api/heartbeat/{token}"
    await client.get(f"{url}?state=run&series=1732720000.5&host=web1&env=production")
    await client.get(
        f"{url}?state=complete&series=1732720000.5&message=Processed+3&metric=duration:12.5"
        "&metric=count:3&stamp=1732720012.0"
    )
    await client.get(f"{url}?state=fail&series=x&message=boom")
    await client.get(f"{url}?state=ok")
    run, complete, fail, ok = await pings_on_bus(bus)
    assert (run.kind, run.rid) == ("start", "1732720000.5")
    assert (complete.kind, complete.rid, complete.message, complete.duration_s) == (
        "success",
        "1732720000.5",
        "Processed 3",
        12.5,
    )
    assert (fail.kind, fail.message, ok.kind) == ("fail", "boom", "success")


@pytest.mark.parametrize(
    "query, words",
    [
        ("state=tick", "state must be"),
        ("series=" + "s" * 101, "series"),
        ("metric=duration:fast", "duration"),
    ],
)
async def test_cronitor_words_ingest_cannot_read_are_refused(ingest, query, words):
    _bus, client, token = ingest
    r = await client.get(f"/api/heartbeat/{token}?{query}")
    assert r.status == 400 and words in await r.text()


async def test_every_format_is_the_same_event(ingest):
    """Whichever tool spoke, the evaluator and the history see one kind of ``Ping``."""
    bus, client, token = ingest
    await asyncio.gather(
        client.get(f"/api/heartbeat/{token}/fail?message=m"),
        client.get(f"/ping/{token}/fail?message=m"),
        client.get(f"/api/heartbeat/{token}?state=fail&message=m"),
        client.get(f"/api/push/{token}?status=down&msg=m"),
    )
    pings = await pings_on_bus(bus)
    assert {(p.kind, p.message, p.monitor_id) for p in pings} == {("fail", "m", "hb_1")} and len(pings) == 4


# what is not UTF-8 ---------------------------------------------------------------------
# A 200 means stored as sent: a field ingest reads that is not UTF-8 is refused, naming it,
# rather than stored with U+FFFD in place of what the job sent.
@pytest.mark.parametrize(
    "path, status, answer",
    [
        ("/api/heartbeat/{token}?message=caf%E9", 400, "message in the query string is not UTF-8\n"),
        ("/api/heartbeat/{token}/fail?series=%FF", 400, "series in the query string is not UTF-8\n"),
        ("/ping/{token}?status=%ED%A0%80", 400, "status in the query string is not UTF-8"),
        (
            "/api/push/{token}?status=down&msg=caf%E9",
            400,
            {"ok": False, "msg": "msg in the query string is not UTF-8"},
        ),
    ],
)
async def test_a_query_parameter_that_is_not_utf_8_is_refused_in_each_familys_words(
    ingest, path, status, answer
):
    bus, client, token = ingest
    r = await client.get(path.format(token=token))
    assert (r.status, await (r.json() if isinstance(answer, dict) else r.text())) == (status, answer)
    assert await pings_on_bus(bus) == []


@pytest.mark.parametrize("path", ["/api/heartbeat/{token}", "/ping/{token}/fail"])
async def test_a_form_field_that_is_not_utf_8_is_refused_and_one_in_utf_8_is_stored_exactly(ingest, path):
    bus, client, token = ingest
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in (b"message=caf%E9", b"status=caf\xe9"):
        r = await client.post(path.format(token=token), data=body, headers=form)
        assert r.status == 400 and "in the form body is not UTF-8" in await r.text()
    assert await pings_on_bus(bus) == []
    r = await client.post(path.format(token=token), data=b"message=caf%C3%A9+%E2%9C%93&x=%FF", headers=form)
    assert r.status == 200
    assert (await last_ping(bus)).message == "caf\u00e9 \u2713"


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b'{"message": "\\ud800"}', "application/json", None),  # a lone surrogate: not JSON text can carry
        (b'{"message": "\xff"}', "application/json", None),
        (
            b'{"message": "\\ud800"}',
            None,
            '{"message": "\\ud800"}',
        ),  # undeclared: not metadata, so text, as sent
        (
            b"--x\r\nContent-Disposition: form-data; name=message\r\n\r\n\xff\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
            None,
        ),  # not read: the ping counts, nothing of the body is stored
    ],
)
async def test_json_with_bytes_or_surrogates_utf_8_cannot_carry_is_refused_or_kept_as_sent(
    ingest, body, content_type, message
):
    bus, client, token = ingest
    headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
    r = await client.post(f"/api/heartbeat/{token}", data=body, headers=headers)
    if content_type == "application/json":
        assert (r.status, await r.text()) == (400, "body is not valid JSON\n")
        assert await pings_on_bus(bus) == []
    else:
        assert r.status == 200
        ping = await last_ping(bus)
        assert (ping.message, ping.output) == (message, message)
