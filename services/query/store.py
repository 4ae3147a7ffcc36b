"""Check-in history and status changes in ClickHouse (server or chDB).

Writes are replayed freely (the bus delivers at least once), so duplicates are kept out
twice over: each insert carries a deduplication token (an identical replay is dropped
by the table), and both tables are ReplacingMergeTree keyed by the event's deterministic
id, read with ``FINAL``, so even a replay batched differently never shows a row twice.

Every user-supplied value reaches SQL as a bound ``{name:Type}`` parameter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from services.query.uptime import uptime_percent
from shared.clickhouse import ClickHouse
from shared.events import Missed, Ping, StatusChanged

DAY_MS = 24 * 3600 * 1000
UPTIME_WINDOWS_MS = {"24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS, "90d": 90 * DAY_MS}
MAX_PAGE_ROWS = 1000
MAX_TIMING_BUCKETS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CHECKIN_COLUMNS = (
    "id", "project_id", "monitor_id", "received_at", "kind", "exit_code", "status", "message",
    "duration", "duration_raw", "source_ip", "user_agent", "method",
)  # fmt: skip
STATUS_COLUMNS = ("id", "project_id", "monitor_id", "at", "status", "previous", "reason")

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

_ROW_FIELDS = (
    "id", "received_at_ms", "kind", "exit_code", "status", "message", "duration", "duration_raw",
    "source_ip", "user_agent", "method",
)  # fmt: skip
_ROW_SELECT = """
SELECT id, toUnixTimestamp64Milli(received_at) AS received_at_ms, kind, exit_code, status, message,
       duration, duration_raw, source_ip, user_agent, method
FROM checkins FINAL
WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
"""


def ms_to_datetime(ms: int) -> datetime:
    # Exact integer arithmetic: a float division could land a microsecond off the millisecond.
    return _EPOCH + timedelta(milliseconds=ms)


def iso_utc(ms: int) -> str:
    return ms_to_datetime(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_cursor(received_at_ms: int, row_id: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([received_at_ms, row_id])).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        received_at_ms, row_id = msgspec.json.decode(raw, type=tuple[int, str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValueError("cursor: not a cursor this API issued") from None
    if not 0 <= received_at_ms < 2**53:
        raise ValueError("cursor: not a cursor this API issued")
    return received_at_ms, row_id


def _row(values: tuple) -> dict[str, Any]:
    row = dict(zip(_ROW_FIELDS, values, strict=True))
    return {"id": row["id"], "received_at": iso_utc(row["received_at_ms"]), **row}


# Rows go to ClickHouse as JSONEachRow arrays built by msgspec (see ClickHouse.insert_raw);
# times as seconds with a millisecond fraction, which DateTime64(3) reads exactly.
_json_rows = msgspec.json.Encoder()


def _checkin_row(event: Ping | Missed) -> list[Any]:
    if isinstance(event, Missed):
        return [event.id, event.project_id, event.monitor_id, event.deadline_ms / 1000, "missed",
                None, None, None, None, None, "", "", ""]  # fmt: skip
    return [
        event.id, event.project_id, event.monitor_id, event.received_ms / 1000, event.kind,
        event.exit_code, event.status, event.message, event.duration_s, event.duration_raw,
        event.source_ip, event.user_agent, event.method,
    ]  # fmt: skip


def _status_row(event: StatusChanged) -> list[Any]:
    return [event.id, event.project_id, event.monitor_id, event.at_ms / 1000, event.status,
            event.previous, event.reason]  # fmt: skip


def _finite(value: float | None) -> float | None:
    # quantiles() over no values gives NaN; JSON has no NaN.
    return None if value is None or value != value else value


class HistoryStore:
    def __init__(self, ch: ClickHouse, retention_days: int):
        self._ch = ch
        self._retention_days = int(retention_days)

    async def migrate(self) -> None:
        """Create the tables if missing; bring their TTL to the configured retention."""
        for table, ddl, time_column in (
            ("checkins", _CHECKINS_TABLE, "received_at"),
            ("status_changes", _STATUS_TABLE, "at"),
        ):
            ttl = f"toDateTime({time_column}) + INTERVAL {self._retention_days} DAY"
            await self._ch.command(ddl.format(ttl=ttl))
            # CREATE IF NOT EXISTS keeps an old TTL; a changed retention setting must still apply.
            engine = await self._ch.query(
                "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {table:String}",
                {"table": table},
            )
            if f"toIntervalDay({self._retention_days})" not in engine[0][0]:
                await self._ch.command(f"ALTER TABLE {table} MODIFY TTL {ttl}")

    async def insert_events(self, events: list, dedup_token: str) -> None:
        """Write Ping/Missed as check-ins and StatusChanged as status changes; other events are ignored."""
        checkins = [_checkin_row(e) for e in events if isinstance(e, Ping | Missed)]
        changes = [_status_row(e) for e in events if isinstance(e, StatusChanged)]
        for table, rows, columns in (
            ("checkins", checkins, CHECKIN_COLUMNS),
            ("status_changes", changes, STATUS_COLUMNS),
        ):
            if rows:
                payload = b"\n".join(map(_json_rows.encode, rows))
                await self._ch.insert_raw(
                    table, columns, payload, "JSONCompactEachRow",
                    settings={"insert_deduplication_token": f"{dedup_token}:{table}"},
                )

    async def history(
        self, project_id: str, monitor_id: str, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict], str | None]:
        """Check-ins newest first, and the cursor of the next (older) page or None."""
        if not 1 <= limit <= MAX_PAGE_ROWS:
            raise ValueError(f"limit: must be between 1 and {MAX_PAGE_ROWS}")
        params: dict[str, Any] = {"project_id": project_id, "monitor_id": monitor_id, "limit": limit + 1}
        sql = _ROW_SELECT
        if before is not None:
            params["after_ms"], params["after_id"] = decode_cursor(before)
            sql += """ AND received_at <= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')
                AND (received_at < fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR id < {after_id:String})"""
        sql += " ORDER BY received_at DESC, id DESC LIMIT {limit:UInt32}"
        rows = [_row(r) for r in await self._ch.query(sql, params)]
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]["received_at_ms"], rows[-1]["id"])

    async def export(
        self, project_id: str, monitor_id: str, from_ms: int, to_ms: int, chunk_rows: int = 10_000
    ) -> AsyncIterator[list[dict]]:
        """Check-ins in ``[from_ms, to_ms)``, oldest first, ``chunk_rows`` at a time (flat memory)."""
        params: dict[str, Any] = {
            "project_id": project_id, "monitor_id": monitor_id, "from_ms": from_ms, "to_ms": to_ms,
            "limit": chunk_rows, "after_ms": from_ms, "after_id": "",
        }  # fmt: skip
        # Keyset from (from_ms, "") on: every id sorts after "", so the first chunk starts at from_ms.
        sql = _ROW_SELECT + """
            AND received_at >= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')
            AND received_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
            AND (received_at > fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR id > {after_id:String})
            ORDER BY received_at, id LIMIT {limit:UInt32}"""
        while True:
            rows = [_row(r) for r in await self._ch.query(sql, params)]
            if rows:
                yield rows
            if len(rows) < chunk_rows:
                return
            params["after_ms"], params["after_id"] = rows[-1]["received_at_ms"], rows[-1]["id"]

    async def timings(
        self, project_id: str, monitor_id: str, from_ms: int, to_ms: int, bucket_s: int
    ) -> list[dict]:
        """Per time bucket (aligned to the epoch; only buckets holding check-ins), oldest first:
        ping count, duration stats in seconds over pings that reported one, fails and misses."""
        if bucket_s <= 0 or (to_ms - from_ms) / (bucket_s * 1000) > MAX_TIMING_BUCKETS:
            raise ValueError(f"bucket_s: must be positive and give at most {MAX_TIMING_BUCKETS} buckets")
        rows = await self._ch.query(
            """
            SELECT intDiv(toUnixTimestamp64Milli(received_at), {bucket_ms:Int64}) * {bucket_ms:Int64} AS bucket_ms,
                   countIf(kind != 'missed'), avg(duration), quantiles(0.5, 0.95)(duration), max(duration),
                   countIf(kind = 'fail'), countIf(kind = 'missed')
            FROM checkins FINAL
            WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
              AND received_at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
              AND received_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
            GROUP BY bucket_ms ORDER BY bucket_ms
            """,
            {"project_id": project_id, "monitor_id": monitor_id, "from_ms": from_ms, "to_ms": to_ms,
             "bucket_ms": bucket_s * 1000},
        )  # fmt: skip
        return [
            {
                "bucket": iso_utc(bucket_ms),
                "bucket_ms": bucket_ms,
                "count": count,
                "avg_duration_s": _finite(avg),
                "p50_duration_s": _finite(quantiles[0]),
                "p95_duration_s": _finite(quantiles[1]),
                "max_duration_s": _finite(max_duration),
                "fails": fails,
                "misses": misses,
            }
            for bucket_ms, count, avg, quantiles, max_duration, fails, misses in rows
        ]

    async def uptime(self, project_id: str, monitor_id: str, now_ms: int, created_ms: int) -> dict[str, float | None]:
        """Uptime percentage per window (24h, 7d, 30d, 90d), from the monitor's creation at the earliest.

        Reads one transition before the widest window and those inside it, so the cost
        follows the window, not the length of the history.
        """
        start_ms = max(now_ms - max(UPTIME_WINDOWS_MS.values()), created_ms)
        params = {"project_id": project_id, "monitor_id": monitor_id, "start_ms": start_ms, "now_ms": now_ms}
        where = "WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}"
        before = await self._ch.query(
            f"""SELECT status FROM status_changes {where}
                AND at < fromUnixTimestamp64Milli({{start_ms:Int64}}, 'UTC')
                ORDER BY at DESC, id DESC LIMIT 1""",
            params,
        )
        transitions = await self._ch.query(
            f"""SELECT toUnixTimestamp64Milli(at), status FROM status_changes FINAL {where}
                AND at >= fromUnixTimestamp64Milli({{start_ms:Int64}}, 'UTC')
                AND at < fromUnixTimestamp64Milli({{now_ms:Int64}}, 'UTC')
                ORDER BY at, id""",
            params,
        )
        initial_status = before[0][0] if before else "new"  # no status change yet: never pinged
        return {
            name: uptime_percent(transitions, initial_status, max(now_ms - window_ms, created_ms), now_ms)
            for name, window_ms in UPTIME_WINDOWS_MS.items()
        }

    async def current_status(self, project_id: str) -> dict[str, dict]:
        """The latest status change of each monitor of the project that has one."""
        rows = await self._ch.query(
            """
            SELECT monitor_id, argMax(status, (at, id)), toUnixTimestamp64Milli(max(at)), argMax(reason, (at, id))
            FROM status_changes WHERE project_id = {project_id:String}
            GROUP BY monitor_id
            """,
            {"project_id": project_id},
        )
        return {
            monitor_id: {"status": status, "at_ms": at_ms, "reason": reason}
            for monitor_id, status, at_ms, reason in rows
        }
