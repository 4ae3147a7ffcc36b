from datetime import UTC, datetime

import pytest

from services.query.history_tables import alert_kind
from services.query.store import (
    DAY_MS,
    OUTPUT_PREVIEW_CHARS,
    UPTIME_WINDOWS_MS,
    HistoryStore,
    decode_cursor,
    encode_cursor,
)
from tests.services.query.factories import a_delivery, a_miss, a_ping, a_status_change

HOUR_MS = 3600 * 1000


async def windowed_uptime(store, project_id, monitor_id, now_ms, created_ms):
    """Uptime per window (24h, 7d, 30d, 90d) cut to the monitor's life, as the API asks for it."""
    spans = [(max(now_ms - window_ms, created_ms), now_ms) for window_ms in UPTIME_WINDOWS_MS.values()]
    answered = await store.uptime_spans(project_id, monitor_id, spans)
    return {name: span.percent for name, span in zip(UPTIME_WINDOWS_MS, answered, strict=True)}


async def latest_status(store, project_id, monitor_id):
    changes, _ = await store.status_changes(project_id, monitor_id, limit=1)
    return changes[0]["status"] if changes else None


async def test_history_is_newest_first_and_paginates(store, project_id, monitor_id, now_ms):
    # Two pings share a millisecond: the cursor must still split between them correctly.
    times = [now_ms - i * 1000 for i in range(7)] + [now_ms - 3000]
    events = [a_ping(project_id, monitor_id, t, n) for n, t in enumerate(times)]
    await store.insert_events(events, "t-paginate")

    pages, cursor = [], None
    while True:
        rows, cursor = await store.history(project_id, monitor_id, limit=3, before=cursor)
        pages.append(rows)
        if cursor is None:
            break

    assert [len(p) for p in pages] == [3, 3, 2]
    seen = [(r["received_at_ms"], r["id"]) for page in pages for r in page]
    assert seen == sorted(((e.received_ms, e.id) for e in events), reverse=True)


async def test_a_history_row_carries_every_field_of_the_ping(store, project_id, monitor_id, now_ms):
    ping = a_ping(
        project_id, monitor_id, now_ms + 7, kind="fail", exit_code=3, status="partial",
        message="disk full", duration_s=90.5, duration_raw="1m30.5s", source_ip="203.0.113.9",
        user_agent="curl/8", method="GET", instance="web-7",
    )  # fmt: skip
    await store.insert_events([ping, a_miss(project_id, monitor_id, now_ms)], "t-fields")

    rows, cursor = await store.history(project_id, monitor_id)

    iso = datetime.fromtimestamp(now_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + ".007Z"
    assert rows[0] == {
        "id": ping.id, "received_at": iso, "received_at_ms": now_ms + 7, "kind": "fail", "exit_code": 3,
        "status": "partial", "message": "disk full", "duration": 90.5, "duration_raw": "1m30.5s",
        "source_ip": "203.0.113.9", "user_agent": "curl/8", "method": "GET", "measured_duration": None,
        "rid": None, "output": None, "output_truncated": False, "instance": "web-7", "verdicts": [],
        "verdict_reason": None, "alerted": False, "keyword": None,
    }  # fmt: skip
    assert rows[1]["kind"] == "missed" and rows[1]["received_at_ms"] == now_ms
    assert rows[1]["id"] == f"{monitor_id}:miss:{now_ms}" and rows[1]["duration"] is None
    assert cursor is None


async def test_a_check_in_keeps_its_run_id_and_output_and_exports_them(store, project_id, monitor_id, now_ms):
    output = "".join(f'line {i}: \u00e9\u20ac \U0001f600 "quoted", tab\t\n' for i in range(2000))
    start = a_ping(
        project_id, monitor_id, now_ms - 2000, kind="start", rid="3f2a4b1c-0d5e-4f60-8a7b-9c0d1e2f3a4b"
    )
    log = a_ping(project_id, monitor_id, now_ms - 1000, kind="log", output="step 1\n")
    end = a_ping(
        project_id, monitor_id, now_ms, kind="success", rid=start.rid, output=output, output_truncated=True
    )
    await store.insert_events([start, log, end], "t-output")

    rows, _ = await store.history(project_id, monitor_id)
    preview = output[:OUTPUT_PREVIEW_CHARS]  # a page carries the start of each output
    assert [(r["kind"], r["rid"], r["output"], r["output_truncated"]) for r in rows] == [
        ("success", start.rid, preview, True),
        ("log", None, "step 1\n", False),
        ("start", start.rid, None, False),
    ]
    whole = await store.checkin(project_id, monitor_id, end.id)
    assert (whole["rid"], whole["output"], whole["output_truncated"]) == (start.rid, output, True)
    assert [r["kind"] for r in (await store.history(project_id, monitor_id, kinds=["start", "log"]))[0]] == [
        "log",
        "start",
    ]
    [chunk] = [c async for c in store.export(project_id, monitor_id, now_ms - 10_000, now_ms + 1)]
    assert [(r["rid"], r["output"], r["output_truncated"]) for r in chunk] == [
        (start.rid, None, False),
        (None, "step 1\n", False),
        (start.rid, output, True),
    ]


async def test_migrate_gives_check_ins_the_run_id_and_output_columns(store, ch):
    await store.migrate()  # again: adding them is idempotent
    rows = await ch.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'checkins' AND name IN ('rid', 'output', 'output_truncated') ORDER BY name"
    )
    assert rows == [("output", "Nullable(String)"), ("output_truncated", "Bool"), ("rid", "Nullable(String)")]


@pytest.mark.parametrize("cursor", ["not a cursor!", encode_cursor(1, "x")[:-2], "W10", "WyJhIiwxXQ"])
async def test_a_cursor_it_did_not_issue_is_rejected(store, project_id, monitor_id, cursor):
    with pytest.raises(ValueError, match=r"^cursor: "):
        await store.history(project_id, monitor_id, before=cursor)


def test_a_cursor_round_trips_and_is_url_safe():
    cursor = encode_cursor(1_700_000_000_123, "mon/1:miss:+?")
    assert decode_cursor(cursor) == (1_700_000_000_123, "mon/1:miss:+?")
    assert all(c.isalnum() or c in "-_" for c in cursor)


async def test_a_replayed_batch_leaves_no_duplicates(store, ch, project_id, monitor_id, now_ms):
    pings = [a_ping(project_id, monitor_id, now_ms - i * 1000) for i in range(6)]
    changes = [a_status_change(project_id, monitor_id, now_ms - 10_000, "up", "new")]

    await store.insert_events(pings + changes, "pings/0:0-5,status/0:0-0")
    await store.insert_events(pings + changes, "pings/0:0-5,status/0:0-0")  # same batch again
    stored = await ch.query(
        "SELECT count() FROM checkins WHERE project_id = {p:String}", {"p": project_id}
    )  # without FINAL: the token alone kept the replay out
    assert stored == [(6,)]

    # After a crash the same records may come back batched differently (other tokens).
    await store.insert_events(pings[:2], "pings/0:0-1")
    await store.insert_events(pings[2:] + changes, "pings/0:2-5,status/0:0-0")

    rows, _ = await store.history(project_id, monitor_id, limit=100)
    assert sorted(r["id"] for r in rows) == sorted(p.id for p in pings)
    assert await latest_status(store, project_id, monitor_id) == "up"
    buckets = await store.timings(project_id, monitor_id, now_ms - 60_000, now_ms + 1, 60)
    assert sum(b["count"] for b in buckets) == 6


async def test_it_never_returns_another_projects_rows(store, project_id, monitor_id, now_ms):
    other_project = project_id + "_other"
    await store.insert_events(
        [
            a_ping(other_project, monitor_id, now_ms),
            a_status_change(other_project, monitor_id, now_ms - DAY_MS, "down", "up"),
        ],
        "t-tenancy",
    )

    rows, _ = await store.history(project_id, monitor_id)
    exported = [chunk async for chunk in store.export(project_id, monitor_id, 0, now_ms + 1)]
    timings = await store.timings(project_id, monitor_id, now_ms - HOUR_MS, now_ms + 1, 60)
    uptime = await windowed_uptime(store, project_id, monitor_id, now_ms, now_ms - 2 * DAY_MS)

    assert rows == [] and exported == [] and timings == []
    assert await latest_status(store, project_id, monitor_id) is None
    assert uptime == {"24h": None, "7d": None, "30d": None, "90d": None}
    assert len((await store.history(other_project, monitor_id))[0]) == 1


async def test_export_streams_every_row_in_chunks(store, project_id, monitor_id, now_ms):
    start_ms = now_ms - 2 * HOUR_MS
    events = [a_ping(project_id, monitor_id, start_ms + i * 1000, i) for i in range(25)]
    events.append(a_ping(project_id, monitor_id, start_ms + 5000, 99))  # same millisecond as another
    events.append(a_ping(project_id, monitor_id, start_ms - 1, 0))  # before the range
    events.append(a_ping(project_id, monitor_id, start_ms + 25_000, 0))  # at its (exclusive) end
    await store.insert_events(events, "t-export")

    chunks = [
        chunk
        async for chunk in store.export(project_id, monitor_id, start_ms, start_ms + 25_000, chunk_rows=10)
    ]

    assert [len(c) for c in chunks] == [10, 10, 6]
    exported = [(r["received_at_ms"], r["id"]) for chunk in chunks for r in chunk]
    expected = sorted((e.received_ms, e.id) for e in events if start_ms <= e.received_ms < start_ms + 25_000)
    assert exported == expected


async def test_timings_summarise_durations_per_bucket(store, project_id, monitor_id, now_ms):
    bucket_start_ms = (now_ms // HOUR_MS - 3) * HOUR_MS
    durations = [1.0, 2.0, 3.0, 4.0, 10.0]
    events = [
        a_ping(project_id, monitor_id, bucket_start_ms + i * 1000, duration_s=d)
        for i, d in enumerate(durations)
    ]
    events += [
        a_ping(project_id, monitor_id, bucket_start_ms + 10_000, kind="fail"),  # no duration
        a_miss(project_id, monitor_id, bucket_start_ms + 20_000),
        a_ping(project_id, monitor_id, bucket_start_ms + HOUR_MS + 5, duration_s=7.0),
    ]
    await store.insert_events(events, "t-timings")

    buckets = await store.timings(project_id, monitor_id, bucket_start_ms, now_ms, 3600)

    assert buckets[0]["bucket_ms"] == bucket_start_ms and buckets[0]["bucket"].endswith(":00:00.000Z")
    assert {k: buckets[0][k] for k in ("count", "fails", "misses", "avg_duration_s", "max_duration_s")} == {
        "count": 6, "fails": 1, "misses": 1, "avg_duration_s": 4.0, "max_duration_s": 10.0,
    }  # fmt: skip
    assert buckets[0]["p50_duration_s"] == pytest.approx(3.0, abs=1.0)
    assert 4.0 <= buckets[0]["p95_duration_s"] <= 10.0
    assert buckets[1] | {"bucket": None} == {
        "bucket": None, "bucket_ms": bucket_start_ms + HOUR_MS, "count": 1, "avg_duration_s": 7.0,
        "p50_duration_s": 7.0, "p95_duration_s": 7.0, "max_duration_s": 7.0, "fails": 0, "misses": 0,
        "outliers": 0,
    }  # fmt: skip
    assert len(buckets) == 2


async def test_timings_refuse_a_bucket_that_makes_too_many_points(store, project_id, monitor_id, now_ms):
    with pytest.raises(ValueError, match=r"^bucket_s: "):
        await store.timings(project_id, monitor_id, now_ms - 90 * DAY_MS, now_ms, 1)


async def test_uptime_counts_down_time_only_while_observed(store, project_id, monitor_id, now_ms):
    created_ms = now_ms - 40 * DAY_MS
    changes = [
        ("up", "new", created_ms + HOUR_MS),
        ("down", "up", now_ms - 10 * DAY_MS),  # down 1 day, inside 30d/90d only
        ("up", "down", now_ms - 9 * DAY_MS),
        ("paused", "up", now_ms - 5 * DAY_MS),  # 2 paused days count for nothing
        ("up", "paused", now_ms - 3 * DAY_MS),
        ("late", "up", now_ms - 12 * HOUR_MS),  # late is not down
        ("down", "late", now_ms - 6 * HOUR_MS),  # down for the last 6 hours
    ]
    await store.insert_events(
        [a_status_change(project_id, monitor_id, at, s, prev) for s, prev, at in changes], "t-uptime"
    )

    uptime = await windowed_uptime(store, project_id, monitor_id, now_ms, created_ms)

    assert uptime["24h"] == 75.0
    assert uptime["7d"] == round(100 * (5 * DAY_MS - 6 * HOUR_MS) / (5 * DAY_MS), 3)
    # 30d and 90d both start at (or are cut to) creation; the first hour was "new".
    observed_ms = 40 * DAY_MS - HOUR_MS - 2 * DAY_MS
    assert uptime["90d"] == round(100 * (observed_ms - DAY_MS - 6 * HOUR_MS) / observed_ms, 3)
    observed_30d_ms = 30 * DAY_MS - 2 * DAY_MS
    assert uptime["30d"] == round(100 * (observed_30d_ms - DAY_MS - 6 * HOUR_MS) / observed_30d_ms, 3)


async def test_uptime_starts_from_the_status_in_force_before_the_window(
    store, project_id, monitor_id, now_ms
):
    # Down since 100 days ago: no change inside any window, yet every window is all down.
    await store.insert_events(
        [a_status_change(project_id, monitor_id, now_ms - 100 * DAY_MS, "down", "up")], "t-old"
    )

    uptime = await windowed_uptime(store, project_id, monitor_id, now_ms, now_ms - 200 * DAY_MS)

    assert uptime == {"24h": 0.0, "7d": 0.0, "30d": 0.0, "90d": 0.0}


async def test_user_input_is_bound_not_spliced_into_sql(store, project_id, now_ms):
    hostile_monitor = "m' OR 1=1 --{x:String}"
    await store.insert_events([a_ping(project_id, hostile_monitor, now_ms)], "t-hostile")

    rows, _ = await store.history(project_id, hostile_monitor)
    assert len(rows) == 1
    assert (await store.history(project_id, "m"))[0] == []


async def test_migrate_is_idempotent_and_follows_a_retention_change(store, ch):
    async def ttl_days(table: str) -> str:
        rows = await ch.query("SELECT engine_full FROM system.tables WHERE name = {t:String}", {"t": table})
        return rows[0][0]

    await store.migrate()
    await HistoryStore(ch, 401).migrate()
    assert "toIntervalDay(401)" in await ttl_days("checkins")
    assert "toIntervalDay(401)" in await ttl_days("status_changes")
    await store.migrate()
    assert "toIntervalDay(400)" in await ttl_days("checkins")


async def every_page(read, **filters) -> list[dict]:
    rows, cursor = [], None
    while True:
        page, cursor = await read(limit=2, before=cursor, **filters)
        rows += page
        if cursor is None:
            return rows


async def test_history_keeps_only_the_kinds_and_times_asked_for_on_every_page(
    store, project_id, monitor_id, now_ms
):
    events = [a_ping(project_id, monitor_id, now_ms - i * 1000, kind="fail" if i % 3 == 0 else "success")
              for i in range(12)]  # fmt: skip
    events += [a_miss(project_id, monitor_id, now_ms - 4500), a_miss(project_id, monitor_id, now_ms - 20_000)]
    await store.insert_events(events, "t-filters")

    async def read(**kw):
        return await store.history(project_id, monitor_id, **kw)

    fails_and_misses = await every_page(read, kinds=["fail", "missed"])
    assert [(r["received_at_ms"], r["kind"]) for r in fails_and_misses] == [
        (now_ms, "fail"), (now_ms - 3000, "fail"), (now_ms - 4500, "missed"), (now_ms - 6000, "fail"),
        (now_ms - 9000, "fail"), (now_ms - 20_000, "missed"),
    ]  # fmt: skip
    in_range = await every_page(read, from_ms=now_ms - 5000, to_ms=now_ms - 1000)  # to is exclusive
    assert [r["received_at_ms"] for r in in_range] == [now_ms - 2000, now_ms - 3000, now_ms - 4000, now_ms - 4500,
                                                       now_ms - 5000]  # fmt: skip
    both = await every_page(read, kinds=["missed"], from_ms=now_ms - 10_000)
    assert [r["received_at_ms"] for r in both] == [now_ms - 4500]


async def test_a_kind_stored_nowhere_gives_an_empty_page(store, project_id, monitor_id, now_ms):
    await store.insert_events([a_ping(project_id, monitor_id, now_ms)], "t-no-kind")

    assert await store.history(project_id, monitor_id, kinds=["log", "start"]) == ([], None)


async def test_migrate_gives_check_ins_a_skip_index_on_kind(store, ch):
    rows = await ch.query(
        "SELECT expr FROM system.data_skipping_indices WHERE table = 'checkins' AND name = 'kind_idx'"
    )
    assert rows == [("kind",)]


async def test_status_changes_are_paged_newest_first(store, project_id, monitor_id, now_ms):
    changes = [
        a_status_change(project_id, monitor_id, now_ms - 3000, "up", "new", "ping received"),
        a_status_change(project_id, monitor_id, now_ms - 2000, "down", "up", "missed 1 check-in"),
        a_status_change(project_id, monitor_id, now_ms - 2000, "late", "up"),  # same millisecond
        a_status_change(project_id, monitor_id, now_ms - 1000, "up", "down", "ping received"),
        a_status_change(project_id + "_other", monitor_id, now_ms, "paused", "up"),
    ]
    await store.insert_events(changes + changes[:2], "t-changes")  # a replay inside the batch

    async def read(**kw):
        return await store.status_changes(project_id, monitor_id, **kw)

    rows = await every_page(read)
    assert [(r["at_ms"], r["status"], r["previous"]) for r in rows] == [
        (now_ms - 1000, "up", "down"), (now_ms - 2000, "late", "up"), (now_ms - 2000, "down", "up"),
        (now_ms - 3000, "up", "new"),
    ]  # fmt: skip
    assert rows[0] == {"id": changes[3].id, "at": iso_of(now_ms - 1000), "at_ms": now_ms - 1000, "status": "up",
                       "previous": "down", "reason": "ping received"}  # fmt: skip


def iso_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def test_deliveries_are_stored_once_and_read_newest_first(store, project_id, monitor_id, now_ms):
    down = a_delivery(project_id, monitor_id, now_ms - 5000, incident=3, kind="down", channel_id="ch_a")
    failed = a_delivery(project_id, monitor_id, now_ms - 4000, incident=3, kind="down", channel_id="ch_b",
                        ok=False, attempts=4, error="receiver answered HTTP 500")  # fmt: skip
    up = a_delivery(project_id, monitor_id, now_ms - 1000, incident=3, kind="up", channel_id="ch_a")
    await store.insert_events([down, failed, up], "t-deliveries")
    await store.insert_events([failed, up], "t-deliveries-again")  # replayed, batched differently

    rows, cursor = await store.deliveries(project_id, monitor_id)

    assert cursor is None
    assert [(r["alert_id"], r["channel_id"], r["kind"]) for r in rows] == [
        (up.alert_id, "ch_a", "up"), (failed.alert_id, "ch_b", "down"), (down.alert_id, "ch_a", "down"),
    ]  # fmt: skip
    assert rows[1] == {"id": f"{failed.alert_id}|ch_b", "alert_id": failed.alert_id, "kind": "down",
                       "channel_id": "ch_b", "monitor_id": monitor_id, "attempt": 4, "outcome": "failed",
                       "ok": False, "attempts": 4, "status_code": None, "latency_ms": 0,
                       "error": "receiver answered HTTP 500", "at": iso_of(now_ms - 4000), "at_ms": now_ms - 4000,
                       "next_attempt_at": None, "digest": 0, "resend": False}  # fmt: skip


async def test_deliveries_recorded_before_they_named_a_project_are_found_by_monitor(
    store, project_id, monitor_id, now_ms
):
    await store.insert_events(
        [
            a_delivery("", monitor_id, now_ms - 2000, kind="down"),  # from a notifier of an older version
            a_delivery(project_id + "_other", monitor_id, now_ms - 1000, kind="up"),
        ],
        "t-legacy-deliveries",
    )

    rows, _ = await store.deliveries(project_id, monitor_id)

    assert [r["kind"] for r in rows] == ["down"]


@pytest.mark.parametrize(
    ("alert_id", "kind"),
    [
        ("mon_1:4:down", "down"),
        ("mon_1:4:up", "up"),
        ("a:b:c:4:up", "up"),
        ("weird", ""),
        ("m:1:sideways", ""),
    ],
)
def test_an_alerts_kind_is_the_last_part_of_its_id(alert_id, kind):
    assert alert_kind(alert_id) == kind


async def test_uptime_spans_answer_any_range_with_outages_and_down_time(
    store, project_id, monitor_id, now_ms
):
    changes = [
        ("up", "new", now_ms - 10 * HOUR_MS),
        ("down", "up", now_ms - 8 * HOUR_MS),
        ("up", "down", now_ms - 7 * HOUR_MS),
        ("paused", "up", now_ms - 6 * HOUR_MS),
        ("up", "paused", now_ms - 4 * HOUR_MS),
        ("down", "up", now_ms - 2 * HOUR_MS),
    ]
    await store.insert_events(
        [a_status_change(project_id, monitor_id, at, s, prev) for s, prev, at in changes], "t-spans"
    )

    spans = [(now_ms - 12 * HOUR_MS, now_ms), (now_ms - 7 * HOUR_MS - HOUR_MS // 2, now_ms - 3 * HOUR_MS)]
    whole, narrow = await store.uptime_spans(project_id, monitor_id, spans)

    # 10 h since the first ping, 2 h of them paused: 8 h observed, 1 h + 2 h down in 2 outages.
    assert (whole.observed_ms, whole.down_ms, whole.outages) == (8 * HOUR_MS, 3 * HOUR_MS, 2)
    assert whole.percent == 62.5
    # The last half hour of the first outage (it began before the range), 1 h up, 2 h paused, 1 h up.
    assert (narrow.observed_ms, narrow.down_ms, narrow.outages) == (5 * HOUR_MS // 2, HOUR_MS // 2, 1)
