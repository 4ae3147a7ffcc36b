"""The history tables in ClickHouse: how they are made and migrated, and how events become rows.

The write side of :mod:`services.query.store` (which reads them back). Writes are
replayed freely (the bus delivers at least once), so duplicates are kept out twice over:
each insert carries a deduplication token (an identical replay is dropped by the table),
and every table is ReplacingMergeTree keyed by the event's deterministic id, read with
``FINAL``, so even a replay batched differently never shows a row twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from services.query.audit_table import AUDIT_COLUMNS, AUDIT_TABLE, audit_row
from shared.clickhouse import ClickHouse
from shared.events import (
    AuditEntry,
    CheckinJudged,
    Delivery,
    DeliveryAttempt,
    Missed,
    Ping,
    RunMeasured,
    StatusChanged,
    encode,
)

ROWS_PER_TURN = 1000
"""History rows built between two turns of the event loop (about a millisecond)."""

CHECKIN_COLUMNS = (
    "id", "project_id", "monitor_id", "received_at", "kind", "exit_code", "status", "message",
    "duration", "duration_raw", "source_ip", "user_agent", "method", "rid", "output", "output_truncated",
    "instance",
)  # fmt: skip
STATUS_COLUMNS = ("id", "project_id", "monitor_id", "at", "status", "previous", "reason")
DELIVERY_COLUMNS = (
    "id", "project_id", "monitor_id", "at", "alert_id", "kind", "channel_id", "ok", "attempts", "error",
    "attempt", "outcome", "status_code", "latency_ms", "next_attempt_at", "digest", "resend", "alert",
)  # fmt: skip

_CHECKINS_TABLE = """
CREATE TABLE IF NOT EXISTS checkins (
    id String,
    project_id String,
    monitor_id String,
    received_at DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    exit_code Nullable(UInt8),
    status Nullable(String),
    message Nullable(String),
    duration Nullable(Float64),
    duration_raw Nullable(String),
    source_ip String,
    user_agent String,
    method LowCardinality(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (project_id, monitor_id, received_at, id)
TTL {ttl}
SETTINGS non_replicated_deduplication_window = 10000
"""

_STATUS_TABLE = """
CREATE TABLE IF NOT EXISTS status_changes (
    id String,
    project_id String,
    monitor_id String,
    at DateTime64(3, 'UTC'),
    status LowCardinality(String),
    previous LowCardinality(String),
    reason String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (project_id, monitor_id, at, id)
TTL {ttl}
SETTINGS non_replicated_deduplication_window = 10000
"""

# Added by migrate(), to tables made before them too (old rows read NULL / false). A job's
# output is text that repeats itself: ZSTD keeps it small.
_CHECKINS_ADDED_COLUMNS = (
    "rid Nullable(String)",
    "output Nullable(String) CODEC(ZSTD(3))",
    "output_truncated Bool DEFAULT false",
    "instance Nullable(String)",
)

# Lets a page of rare kinds ("missed", "fail") skip the granules holding none of them.
# Added by migrate() (also to tables made before it): new parts get it, merges spread it to old ones.
_CHECKINS_KIND_INDEX = "kind_idx kind TYPE set(16) GRANULARITY 1"
# ``?instance=`` of a fleet of thousands: granules without that name are skipped.
_CHECKINS_INSTANCE_INDEX = "instance_idx instance TYPE bloom_filter GRANULARITY 4"

_DELIVERIES_TABLE = """
CREATE TABLE IF NOT EXISTS deliveries (
    id String,
    project_id String,
    monitor_id String,
    at DateTime64(3, 'UTC'),
    alert_id String,
    kind LowCardinality(String),
    channel_id String,
    ok Bool,
    attempts UInt16,
    error String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (project_id, monitor_id, at, id)
TTL {ttl}
SETTINGS non_replicated_deduplication_window = 10000
"""
"""One row per try of an (alert, channel) pair (:class:`DeliveryAttempt`), id
``{alert_id}|{channel_id}|{attempt}``; ``ok`` says whether that try delivered and ``attempts``
repeats ``attempt``. Rows of notifiers from before attempts were recorded
(:class:`Delivery`) are one per pair, id ``{alert_id}|{channel_id}``, ``outcome`` delivered or
failed. A test notification has ``monitor_id`` ``""``. The columns below came with attempts
and are added by :func:`migrate` to tables made before them."""
_DELIVERY_ATTEMPT_COLUMNS = (
    "attempt UInt16 DEFAULT 0",
    "outcome LowCardinality(String) DEFAULT ''",
    "status_code Nullable(UInt16)",
    "latency_ms UInt32 DEFAULT 0",
    "next_attempt_at Nullable(DateTime64(3, 'UTC'))",
    "digest UInt16 DEFAULT 0",
    "resend Bool DEFAULT false",
    "alert String DEFAULT '' CODEC(ZSTD(3))",
)
"""``alert``: the alert as JSON on a ``failed`` row (what a resend sends), else empty."""
_DELIVERIES_CHANNEL_INDEX = "channel_idx channel_id TYPE bloom_filter GRANULARITY 4"

_RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS runs (
    ping_id String,
    project_id String,
    monitor_id String,
    ended_at DateTime64(3, 'UTC'),
    started_at DateTime64(3, 'UTC'),
    rid String,
    duration_s Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ended_at)
ORDER BY (project_id, monitor_id, ended_at, ping_id)
TTL {ttl}
SETTINGS non_replicated_deduplication_window = 10000
"""
"""Runs the evaluator measured (:class:`RunMeasured`), one row per ping that ended one: its
``ping_id`` is the check-in's ``id`` and ``ended_at`` its ``received_at``, so a page of
check-ins finds its measurements in the page's own time span of this table."""
RUN_COLUMNS = ("ping_id", "project_id", "monitor_id", "ended_at", "started_at", "rid", "duration_s")

_VERDICTS_TABLE = """
CREATE TABLE IF NOT EXISTS checkin_verdicts (
    ping_id String,
    project_id String,
    monitor_id String,
    at DateTime64(3, 'UTC'),
    verdicts Array(LowCardinality(String)),
    alerted Bool,
    reason String,
    duration_s Nullable(Float64),
    usual_low_s Nullable(Float64),
    usual_high_s Nullable(Float64),
    keyword Nullable(String),
    instance Nullable(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (project_id, monitor_id, at, ping_id)
TTL {ttl}
SETTINGS non_replicated_deduplication_window = 10000
"""
"""What the rules found in a check-in (:class:`CheckinJudged`), one row per ping that they found
something in: ``ping_id`` is the check-in's ``id`` and ``at`` its ``received_at`` (the evaluator
judges a ping at its event time), so a page of check-ins finds its verdicts in the page's own
time span, as it finds its measured runs."""
VERDICT_COLUMNS = (
    "ping_id", "project_id", "monitor_id", "at", "verdicts", "alerted", "reason", "duration_s",
    "usual_low_s", "usual_high_s", "keyword", "instance",
)  # fmt: skip


# Rows go to ClickHouse as JSONEachRow arrays built by msgspec (see ClickHouse.insert_raw);
# times as seconds with a millisecond fraction, which DateTime64(3) reads exactly.
_json_rows = msgspec.json.Encoder()


def _checkin_row(event: Ping | Missed) -> list[Any]:
    if isinstance(event, Missed):
        return [event.id, event.project_id, event.monitor_id, event.deadline_ms / 1000, "missed",
                None, None, None, None, None, "", "", "", None, None, False, None]  # fmt: skip
    return [
        event.id, event.project_id, event.monitor_id, event.received_ms / 1000, event.kind,
        event.exit_code, event.status, event.message, event.duration_s, event.duration_raw,
        event.source_ip, event.user_agent, event.method, event.rid, event.output, event.output_truncated,
        event.instance,
    ]  # fmt: skip


def _verdict_row(event: CheckinJudged) -> list[Any]:
    return [event.ping_id, event.project_id, event.monitor_id, event.at_ms / 1000, event.verdicts,
            event.alerted, event.reason, event.duration_s, event.usual_low_s, event.usual_high_s,
            event.keyword, event.instance]  # fmt: skip


def _status_row(event: StatusChanged) -> list[Any]:
    return [event.id, event.project_id, event.monitor_id, event.at_ms / 1000, event.status,
            event.previous, event.reason]  # fmt: skip


def alert_kind(alert_id: str) -> str:
    """``down`` or ``up``, from an alert id ``{monitor_id}:{incident}:{kind}``; ``""`` if it says neither."""
    kind = alert_id.rpartition(":")[2]
    return kind if kind in ("down", "up") else ""


def _delivery_row(event: Delivery | DeliveryAttempt) -> list[Any]:
    if isinstance(event, Delivery):
        return [f"{event.alert_id}|{event.channel_id}", event.project_id, event.monitor_id, event.at_ms / 1000,
                event.alert_id, alert_kind(event.alert_id), event.channel_id, event.ok, event.attempts,
                event.error, event.attempts, "delivered" if event.ok else "failed", None, 0, None, 0, False,
                ""]  # fmt: skip
    next_at = event.next_attempt_ms / 1000 if event.next_attempt_ms is not None else None
    alert = encode(event.alert).decode() if event.alert is not None else ""
    return [f"{event.alert_id}|{event.channel_id}|{event.attempt}", event.project_id, event.monitor_id,
            event.at_ms / 1000, event.alert_id, event.kind, event.channel_id, event.outcome == "delivered",
            min(event.attempt, 65535), event.error, min(event.attempt, 65535), event.outcome, event.status_code,
            min(max(event.latency_ms, 0), 2**32 - 1), next_at, min(event.digest, 65535), event.resend,
            alert]  # fmt: skip


async def migrate(ch: ClickHouse, retention_days: int) -> None:
    """Create the tables if missing; bring their TTL to the configured retention."""
    for table, ddl, time_column in (
        ("checkins", _CHECKINS_TABLE, "received_at"),
        ("status_changes", _STATUS_TABLE, "at"),
        ("deliveries", _DELIVERIES_TABLE, "at"),
        ("runs", _RUNS_TABLE, "ended_at"),
        ("checkin_verdicts", _VERDICTS_TABLE, "at"),
        ("audit_log", AUDIT_TABLE, "at"),
    ):
        ttl = f"toDateTime({time_column}) + INTERVAL {retention_days} DAY"
        await ch.command(ddl.format(ttl=ttl))
        # CREATE IF NOT EXISTS keeps an old TTL; a changed retention setting must still apply.
        engine = await ch.query(
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {table:String}",
            {"table": table},
        )
        if f"toIntervalDay({retention_days})" not in engine[0][0]:
            await ch.command(f"ALTER TABLE {table} MODIFY TTL {ttl}")
    for column in _CHECKINS_ADDED_COLUMNS:
        await ch.command(f"ALTER TABLE checkins ADD COLUMN IF NOT EXISTS {column}")
    for index in (_CHECKINS_KIND_INDEX, _CHECKINS_INSTANCE_INDEX):
        await ch.command(f"ALTER TABLE checkins ADD INDEX IF NOT EXISTS {index}")
    for column in _DELIVERY_ATTEMPT_COLUMNS:
        await ch.command(f"ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS {column}")
    await ch.command(f"ALTER TABLE deliveries ADD INDEX IF NOT EXISTS {_DELIVERIES_CHANNEL_INDEX}")


async def insert_events(ch: ClickHouse, events: list, dedup_token: str) -> None:
    """Write Ping/Missed as check-ins, StatusChanged as status changes, DeliveryAttempt (and
    legacy Delivery) as deliveries, RunMeasured as runs, CheckinJudged as verdicts, AuditEntry
    as the audit log; other events are ignored."""
    checkins, changes, deliveries, runs, verdicts, audit = [], [], [], [], [], []
    for start in range(0, len(events), ROWS_PER_TURN):
        if start:
            await asyncio.sleep(0)  # a batch is up to 20,000 events: the loop gets a turn between slices
        for e in events[start : start + ROWS_PER_TURN]:
            if isinstance(e, Ping | Missed):
                checkins.append(_checkin_row(e))
            elif isinstance(e, StatusChanged):
                changes.append(_status_row(e))
            elif isinstance(e, Delivery | DeliveryAttempt):
                deliveries.append(_delivery_row(e))
            elif isinstance(e, CheckinJudged):
                verdicts.append(_verdict_row(e))
            elif isinstance(e, AuditEntry):
                audit.append(audit_row(e))
            elif isinstance(e, RunMeasured):
                runs.append(
                    [
                        e.ping_id,
                        e.project_id,
                        e.monitor_id,
                        e.ended_ms / 1000,
                        e.started_ms / 1000,
                        e.rid,
                        e.duration_s,
                    ]
                )
    for table, rows, columns in (
        ("checkins", checkins, CHECKIN_COLUMNS),
        ("status_changes", changes, STATUS_COLUMNS),
        ("deliveries", deliveries, DELIVERY_COLUMNS),
        ("runs", runs, RUN_COLUMNS),
        ("checkin_verdicts", verdicts, VERDICT_COLUMNS),
        ("audit_log", audit, AUDIT_COLUMNS),
    ):
        if rows:
            payload = b"\n".join(map(_json_rows.encode, rows))
            await ch.insert_raw(
                table,
                columns,
                payload,
                "JSONCompactEachRow",
                settings={"insert_deduplication_token": f"{dedup_token}:{table}"},
            )
