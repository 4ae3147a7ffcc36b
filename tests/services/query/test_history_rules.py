"""The history keeps what issue 18's rules need of it: the instance that sent each check-in, and
what the rules found in it (``CheckinJudged`` -> ``checkin_verdicts``), returned with the check-in,
filtered on, exported, and marked as outliers on the timing graph. On the session's ClickHouse
(a server, or chDB in-process), the writer on a real embedded bus."""

from __future__ import annotations

import pytest

from services.query import checkin_findings
from services.query.consumer import GROUP, HistoryWriter
from shared.bus.local import LocalBus
from shared.events import CheckinJudged, encode
from shared.settings import Settings
from shared.topics import Topics
from tests.polling import eventually
from tests.services.query.factories import a_miss, a_ping

TOPICS = Topics()
HOUR_MS = 3600_000


def judged(ping, *verdicts, alerted=False, reason="", **fields) -> CheckinJudged:
    """What the evaluator writes about ``ping``: dated at the ping's event time, as it judges it."""
    return CheckinJudged(
        id=f"{ping.monitor_id}:judged:{ping.id}",
        monitor_id=ping.monitor_id,
        project_id=ping.project_id,
        ping_id=ping.id,
        at_ms=ping.received_ms,
        verdicts=list(verdicts),
        alerted=alerted,
        reason=reason,
        instance=ping.instance,
        **fields,
    )


def _time_and_id(event) -> tuple[int, str]:
    return getattr(event, "received_ms", None) or event.deadline_ms, event.id


def found(row: dict) -> tuple:
    return row["verdicts"], row["verdict_reason"], row["alerted"], row["keyword"]


async def every_page(store, project_id, monitor_id, **filters) -> list[dict]:
    rows, cursor = [], None
    while True:
        page, cursor = await store.history(project_id, monitor_id, limit=2, before=cursor, **filters)
        rows += page
        if cursor is None:
            return rows


# instances ---------------------------------------------------------------------------------
async def test_migrate_gives_check_ins_an_instance_column_and_verdicts_a_table(store, ch):
    await store.migrate()  # again: adding them is idempotent
    columns = await ch.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() AND "
        "((table = 'checkins' AND name = 'instance') OR (table = 'checkin_verdicts' AND name IN "
        "('ping_id', 'verdicts', 'alerted'))) ORDER BY table, name"
    )
    assert columns == [
        ("checkin_verdicts", "alerted", "Bool"),
        ("checkin_verdicts", "ping_id", "String"),
        ("checkin_verdicts", "verdicts", "Array(LowCardinality(String))"),
        ("checkins", "instance", "Nullable(String)"),
    ]
    engine = await ch.query(
        "SELECT engine, sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'checkin_verdicts'"
    )
    assert engine == [("ReplacingMergeTree", "project_id, monitor_id, at, ping_id")]


async def test_each_check_in_keeps_the_instance_that_sent_it_and_a_page_narrows_to_one(
    store, project_id, monitor_id, now_ms
):
    pings = [
        a_ping(project_id, monitor_id, now_ms - i * 1000, i, instance=f"web-{i % 3}") for i in range(7)
    ] + [a_ping(project_id, monitor_id, now_ms - 500, 9)]  # one that named none
    await store.insert_events([*pings, a_miss(project_id, monitor_id, now_ms - 100)], "t-rules-instances")

    rows, _ = await store.history(project_id, monitor_id, limit=100)
    web_1 = await every_page(store, project_id, monitor_id, instance="web-1")
    exported = [row async for chunk in store.export(project_id, monitor_id, 0, now_ms + 1) for row in chunk]

    assert {row["id"]: row["instance"] for row in rows} == {
        **{p.id: p.instance for p in pings},
        f"{monitor_id}:miss:{now_ms - 100}": None,
    }
    assert [row["id"] for row in web_1] == [pings[1].id, pings[4].id]
    oldest_first = sorted([*pings, a_miss(project_id, monitor_id, now_ms - 100)], key=_time_and_id)
    assert [(row["id"], row["instance"]) for row in exported] == [
        (e.id, getattr(e, "instance", None)) for e in oldest_first
    ]
    assert (await store.checkin(project_id, monitor_id, pings[2].id))["instance"] == "web-2"


async def test_a_name_no_check_in_carries_finds_nothing(store, project_id, monitor_id, now_ms):
    await store.insert_events([a_ping(project_id, monitor_id, now_ms, instance="db-1")], "t-rules-none")
    assert (await store.history(project_id, monitor_id, instance="db-2"))[0] == []


# what the rules found ------------------------------------------------------------------------
async def test_a_check_in_comes_with_what_the_rules_found_in_it(store, project_id, monitor_id, now_ms):
    fast = a_ping(project_id, monitor_id, now_ms - 3000, 1, duration_s=3.0, instance="web-1")
    keyword = a_ping(project_id, monitor_id, now_ms - 2000, 2, output="ERROR: disk full")
    plain = a_ping(project_id, monitor_id, now_ms - 1000, 3)
    events = [
        fast, keyword, plain, a_miss(project_id, monitor_id, now_ms),
        judged(fast, "too_fast", alerted=True, reason="run took 3 s; usually 20 s to 1 min 20 s", duration_s=3.0,
               usual_low_s=20.0, usual_high_s=80.0),
        judged(keyword, "keyword_failure", alerted=True, reason='output says "ERROR"', keyword="ERROR"),
    ]  # fmt: skip
    await store.insert_events(events, "t-rules-found")

    rows, _ = await store.history(project_id, monitor_id)

    assert [found(row) for row in rows] == [
        ([], None, False, None),  # the miss
        ([], None, False, None),  # nothing found
        (["keyword_failure"], 'output says "ERROR"', True, "ERROR"),
        (["too_fast"], "run took 3 s; usually 20 s to 1 min 20 s", True, None),
    ]
    whole = await store.checkin(project_id, monitor_id, keyword.id)
    assert found(whole) == (["keyword_failure"], 'output says "ERROR"', True, "ERROR")
    [chunk] = [c async for c in store.export(project_id, monitor_id, now_ms - 10_000, now_ms + 1)]
    assert [row["verdicts"] for row in chunk] == [["too_fast"], ["keyword_failure"], [], []]


async def test_a_verdict_read_again_after_a_crash_shows_once(store, project_id, monitor_id, now_ms):
    ping = a_ping(project_id, monitor_id, now_ms)
    verdict = judged(ping, "too_early", "too_often", reason="arrived 50 min early")
    await store.insert_events([ping, verdict], "t-rules-replay-1")
    await store.insert_events([verdict], "t-rules-replay-2")  # batched differently: a new token

    rows, _ = await store.history(project_id, monitor_id)
    assert [found(row) for row in rows] == [(["too_early", "too_often"], "arrived 50 min early", False, None)]


async def test_a_page_narrowed_to_verdicts_pages_through_only_those(store, project_id, monitor_id, now_ms):
    pings = [a_ping(project_id, monitor_id, now_ms - i * 1000, i) for i in range(8)]
    verdicts = {0: "too_slow", 2: "too_fast", 3: "too_early", 5: "too_fast", 6: "over_max"}
    await store.insert_events(
        [*pings, *(judged(pings[i], v) for i, v in verdicts.items())], "t-rules-verdict-filter"
    )

    run_time = await every_page(store, project_id, monitor_id, verdicts=["too_fast", "too_slow"])
    fast_in_range = await every_page(
        store, project_id, monitor_id, verdicts=["too_fast"], from_ms=now_ms - 4000, to_ms=now_ms
    )

    assert [row["id"] for row in run_time] == [pings[0].id, pings[2].id, pings[5].id]
    assert [row["verdicts"] for row in run_time] == [["too_slow"], ["too_fast"], ["too_fast"]]
    assert [row["id"] for row in fast_in_range] == [pings[2].id]


# the timing graph's outliers ------------------------------------------------------------------
async def test_timings_mark_the_runs_a_run_time_rule_judged_as_outliers(
    store, project_id, monitor_id, now_ms
):
    bucket_ms = (now_ms // HOUR_MS - 2) * HOUR_MS
    slow = a_ping(project_id, monitor_id, bucket_ms + 1000, 1, duration_s=400.0, instance="web-2")
    under = a_ping(project_id, monitor_id, bucket_ms + 2000, 2, duration_s=1.0)
    early = a_ping(project_id, monitor_id, bucket_ms + HOUR_MS, 3, duration_s=40.0)  # not about its duration
    usual = a_ping(project_id, monitor_id, bucket_ms + HOUR_MS + 1000, 4, duration_s=41.0)
    await store.insert_events([
        slow, under, early, usual,
        judged(slow, "too_slow", reason="run took 6 min 40 s; usually 20 s to 1 min 20 s", duration_s=400.0,
               usual_low_s=20.0, usual_high_s=80.0),
        judged(under, "under_min", "too_early", alerted=True, reason="run took 1 s, less than 5 s", duration_s=1.0),
        judged(early, "too_early", alerted=True, reason="arrived 50 min early"),
    ], "t-rules-outliers")  # fmt: skip

    points, outliers = await store.timings_and_outliers(project_id, monitor_id, bucket_ms, now_ms, 3600)

    assert [(p["bucket_ms"], p["count"], p["outliers"]) for p in points] == [
        (bucket_ms, 2, 2),
        (bucket_ms + HOUR_MS, 2, 0),
    ]
    assert outliers == [
        {"ping_id": slow.id, "at": outliers[0]["at"], "at_ms": slow.received_ms, "outlier": True,
         "verdicts": ["too_slow"], "alerted": False, "reason": "run took 6 min 40 s; usually 20 s to 1 min 20 s",
         "duration_s": 400.0, "usual_low_s": 20.0, "usual_high_s": 80.0, "instance": "web-2"},
        {"ping_id": under.id, "at": outliers[1]["at"], "at_ms": under.received_ms, "outlier": True,
         "verdicts": ["under_min", "too_early"], "alerted": True, "reason": "run took 1 s, less than 5 s",
         "duration_s": 1.0, "usual_low_s": None, "usual_high_s": None, "instance": None},
    ]  # fmt: skip
    assert outliers[0]["at"].endswith(":00:01.000Z")


async def test_outliers_beyond_those_listed_are_still_counted_in_their_buckets(
    store, project_id, monitor_id, now_ms, monkeypatch
):
    monkeypatch.setattr(checkin_findings, "MAX_OUTLIER_RUNS", 3)
    bucket_ms = (now_ms // HOUR_MS - 3) * HOUR_MS
    pings = [
        a_ping(project_id, monitor_id, bucket_ms + i * HOUR_MS // 2, i, duration_s=1.0) for i in range(5)
    ]
    await store.insert_events([*pings, *(judged(p, "too_fast") for p in pings)], "t-rules-many-outliers")

    points, outliers = await store.timings_and_outliers(project_id, monitor_id, bucket_ms, now_ms, 3600)

    assert [p["outliers"] for p in points] == [2, 2, 1]
    assert [run["ping_id"] for run in outliers] == [p.id for p in pings[2:]]  # the newest, oldest first


# the writer ----------------------------------------------------------------------------------
@pytest.fixture
async def bus(tmp_path):
    local = LocalBus(tmp_path / "bus.sqlite3")
    await local.start()
    await local.ensure_topics(TOPICS.specs(1))
    yield local
    await local.close()


async def test_the_writer_keeps_what_the_evaluator_judged_from_the_status_topic(
    bus, store, project_id, monitor_id, now_ms
):
    ping = a_ping(project_id, monitor_id, now_ms, instance="pod-7f9c", output="all good")
    verdict = judged(ping, "keyword_success", reason='output says "all good"', keyword="all good")
    await bus.publish(TOPICS.pings, monitor_id, encode(ping))
    for _ in range(2):  # a replay
        await bus.publish(TOPICS.status, monitor_id, encode(verdict))
    writer = HistoryWriter(Settings(), bus, TOPICS, store)
    await writer.start()
    try:
        await eventually(lambda: _committed(bus, 2))
    finally:
        await writer.close()

    [row], _ = await store.history(project_id, monitor_id)
    assert (row["instance"], *found(row)) == (
        "pod-7f9c",
        ["keyword_success"],
        'output says "all good"',
        False,
        "all good",
    )


async def _committed(bus, offset: int) -> bool:
    return await bus.committed(GROUP, (TOPICS.status, 0)) == offset


async def test_a_success_its_keywords_made_a_failure_counts_as_failed_on_the_timing_graph(
    store, project_id, monitor_id, now_ms
):
    bucket_ms = (now_ms // HOUR_MS - 2) * HOUR_MS
    said_error = a_ping(project_id, monitor_id, bucket_ms + 1000, 1, kind="success", exit_code=0)
    unmatched = a_ping(project_id, monitor_id, bucket_ms + 2000, 2, kind="success")
    ignored = a_ping(project_id, monitor_id, bucket_ms + 3000, 3, kind="success")
    failed = a_ping(project_id, monitor_id, bucket_ms + 4000, 4, kind="fail")
    await store.insert_events([
        said_error, unmatched, ignored, failed,
        judged(said_error, "keyword_failure", alerted=True, keyword="ERROR"),
        judged(unmatched, "unmatched_failed", alerted=True),
        judged(ignored, "ignored"),
    ], "t-rules-keyword-fails")  # fmt: skip

    points, _ = await store.timings_and_outliers(project_id, monitor_id, bucket_ms, now_ms, 3600)

    assert [(p["count"], p["fails"]) for p in points] == [(4, 3)]  # the ignored one is no failure
