"""Check-in history, status changes and alert deliveries in ClickHouse (server or chDB).

The tables, their migrations and how events become rows (deduplicated on replay) are in
:mod:`services.query.history_tables`; this module reads them back, every table with
``FINAL`` so a replayed row never shows twice.

Pages are newest first and cut by a keyset cursor on the table's sort key
``(project_id, monitor_id, time, id)``, so reading a page costs about the page, however
long the history behind it.

Every user-supplied value reaches SQL as a bound ``{name:Type}`` parameter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import msgspec

from services.query import checkin_findings, history_tables
from services.query.uptime import SPANS_SQL, UptimeSpan
from services.query.validation import MAX_TIME_MS
from shared.clickhouse import ClickHouse
from shared.clock import iso_ms
from shared.events import Alert

DAY_MS = 24 * 3600 * 1000
UPTIME_WINDOWS_MS = {"24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS, "90d": 90 * DAY_MS}
MAX_PAGE_ROWS = 1000
MAX_TIMING_BUCKETS = 10_000

_ROW_FIELDS = (
    "id", "received_at_ms", "kind", "exit_code", "status", "message", "duration", "duration_raw",
    "source_ip", "user_agent", "method", "rid", "instance", "output", "output_truncated",
)  # fmt: skip
_ROW_SELECT = """
SELECT id, toUnixTimestamp64Milli(received_at) AS received_at_ms, kind, exit_code, status, message,
       duration, duration_raw, source_ip, user_agent, method, rid, instance, output, output_truncated
FROM checkins FINAL
WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
"""
OUTPUT_PREVIEW_CHARS = 2000
# Pages carry the start of each output (up to 100 KiB each, a page of them could weigh
# megabytes); the whole of it is one check-in away (HistoryStore.checkin).
_PAGE_SELECT = _ROW_SELECT.replace(
    " output, output_truncated",
    # New aliases: reusing ``output`` would make the length test measure the preview.
    " substringUTF8(output, 1, {preview_chars:UInt32}) AS output_preview,"
    " output_truncated OR lengthUTF8(output) > {preview_chars:UInt32} AS output_cut",
)
assert _PAGE_SELECT != _ROW_SELECT


def encode_cursor(received_at_ms: int, row_id: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([received_at_ms, row_id])).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        received_at_ms, row_id = msgspec.json.decode(raw, type=tuple[int, str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValueError("cursor: not a cursor this API issued") from None
    if not 0 <= received_at_ms <= MAX_TIME_MS:  # beyond, DateTime64 would wrap around silently
        raise ValueError("cursor: not a cursor this API issued")
    return received_at_ms, row_id


def _ping_id_ms(checkin_id: str) -> int | None:
    """The millisecond a ping id was made in (shared.ids.PingIds: 12 hex digits of ms first)."""
    if len(checkin_id) != 36 or not all(c in "0123456789abcdef" for c in checkin_id):
        return None
    received_ms = int(checkin_id[:12], 16)
    return received_ms if received_ms <= MAX_TIME_MS else None


def _row(values: tuple) -> dict[str, Any]:
    row = dict(zip(_ROW_FIELDS, values, strict=True))
    row["output_truncated"] = bool(row["output_truncated"])
    return {"id": row["id"], "received_at": iso_ms(row["received_at_ms"]), **row}


_ATTEMPT_SELECT = """
SELECT toUnixTimestamp64Milli(at), id, alert_id, kind, channel_id, monitor_id, if(attempt = 0, attempts, attempt),
       if(outcome = '', if(ok, 'delivered', 'failed'), outcome), ok, status_code, latency_ms, error,
       toUnixTimestamp64Milli(next_attempt_at), digest, resend
FROM deliveries FINAL
"""


def _attempt(r: tuple) -> dict[str, Any]:
    (
        at_ms,
        row_id,
        alert_id,
        kind,
        channel_id,
        monitor_id,
        attempt,
        outcome,
        ok,
        status_code,
        latency_ms,
        error,
        next_ms,
        digest,
        resend,
    ) = r
    return {
        "id": row_id, "alert_id": alert_id, "kind": kind, "channel_id": channel_id, "monitor_id": monitor_id,
        "attempt": attempt, "outcome": outcome, "ok": bool(ok), "attempts": attempt, "status_code": status_code,
        "latency_ms": latency_ms, "error": error, "at": iso_ms(at_ms), "at_ms": at_ms,
        "next_attempt_at": iso_ms(next_ms) if next_ms is not None else None, "digest": digest,
        "resend": bool(resend),
    }  # fmt: skip


_FAILED_SELECT = """
SELECT concat(alert_id, '|', channel_id) AS pair, alert_id, channel_id, any(monitor_id),
       argMax(outcome, attempt) AS last_outcome, max(attempt),
       toUnixTimestamp64Milli(argMax(at, attempt)) AS failed_at_ms, argMax(error, attempt),
       argMax(tuple(status_code), attempt).1, argMax(alert, attempt), toUnixTimestamp64Milli(min(at))
FROM deliveries FINAL
WHERE project_id = {project_id:String} AND kind != 'test'
  AND (alert_id, channel_id) IN (
      SELECT alert_id, channel_id FROM deliveries
      WHERE project_id = {project_id:String} AND outcome = 'failed' AND alert != '' AND kind != 'test' PAIR_FILTER)
  PAIR_FILTER
GROUP BY alert_id, channel_id
HAVING last_outcome = 'failed' PAGE_FILTER
ORDER BY failed_at_ms DESC, pair DESC
LIMIT {limit:UInt32}
"""
"""Pairs whose latest try failed for good (their dead letters), newest first. Only ``failed``
rows of attempts carry the alert, so legacy rows (no alert to send again) are left out."""
_alert_decoder = msgspec.json.Decoder(Alert)


def _failed(r: tuple) -> dict[str, Any]:
    pair, alert_id, channel_id, monitor_id, _, attempts, failed_at_ms, error, status_code, alert, first_ms = r
    return {
        "id": pair, "alert_id": alert_id, "channel_id": channel_id, "monitor_id": monitor_id, "attempts": attempts,
        "failed_at": iso_ms(failed_at_ms), "failed_at_ms": failed_at_ms, "error": error, "status_code": status_code,
        "alert": _alert_decoder.decode(alert), "first_attempt_ms": first_ms,
    }  # fmt: skip


def _finite(value: float | None) -> float | None:
    # quantiles() over no values gives NaN; JSON has no NaN.
    return None if value is None or value != value else value


class HistoryStore:
    def __init__(self, ch: ClickHouse, retention_days: int):
        self._ch = ch
        self._retention_days = int(retention_days)

    @property
    def clickhouse(self) -> ClickHouse:
        """The client, for readers with queries of their own (a status page's)."""
        return self._ch

    async def migrate(self) -> None:
        """Create the tables if missing; bring their TTL to the configured retention."""
        await history_tables.migrate(self._ch, self._retention_days)

    async def insert_events(self, events: list, dedup_token: str) -> None:
        """Write Ping/Missed as check-ins, StatusChanged as status changes, DeliveryAttempt (and
        legacy Delivery) as deliveries, RunMeasured as runs, CheckinJudged as verdicts; other
        events are ignored."""
        await history_tables.insert_events(self._ch, events, dedup_token)

    async def _newest_first(
        self,
        select: str,
        time_column: str,
        params: dict[str, Any],
        limit: int,
        before: str | None,
        to_row: Callable[[tuple], dict[str, Any]],
        ms_key: str,
    ) -> tuple[list[dict], str | None]:
        """One page of ``select`` newest first, and the cursor of the next (older) page or None.

        ``select`` ends in its WHERE conditions; ``to_row`` makes each row a dict holding
        ``id`` and the time in ms under ``ms_key``, which the cursor is made of."""
        if not 1 <= limit <= MAX_PAGE_ROWS:
            raise ValueError(f"limit: must be between 1 and {MAX_PAGE_ROWS}")
        params = {**params, "limit": limit + 1}
        sql = select
        if before is not None:
            params["after_ms"], params["after_id"] = decode_cursor(before)
            # The first condition alone narrows the primary key range; the second splits a millisecond.
            sql += f""" AND {time_column} <= fromUnixTimestamp64Milli({{after_ms:Int64}}, 'UTC')
                AND ({time_column} < fromUnixTimestamp64Milli({{after_ms:Int64}}, 'UTC') OR id < {{after_id:String}})"""
        sql += f" ORDER BY {time_column} DESC, id DESC LIMIT {{limit:UInt32}}"
        rows = [to_row(r) for r in await self._ch.query(sql, params)]
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1][ms_key], rows[-1]["id"])

    async def history(
        self,
        project_id: str,
        monitor_id: str,
        limit: int = 50,
        before: str | None = None,
        *,
        kinds: Sequence[str] = (),
        from_ms: int | None = None,
        to_ms: int | None = None,
        instance: str | None = None,
        verdicts: Sequence[str] = (),
    ) -> tuple[list[dict], str | None]:
        """Check-ins newest first, and the cursor of the next (older) page or None.

        ``kinds`` (empty: all) keeps those kinds only; ``from_ms`` (inclusive) and ``to_ms``
        (exclusive) bound the time; ``instance``: only the check-ins it sent; ``verdicts``: only
        those a rule found one of these in. A cursor carries no filter: pass the same ones again.
        """
        params: dict[str, Any] = {
            "project_id": project_id,
            "monitor_id": monitor_id,
            "preview_chars": OUTPUT_PREVIEW_CHARS,
        }
        sql = _PAGE_SELECT
        if kinds:
            params["kinds"] = list(kinds)
            sql += " AND kind IN {kinds:Array(String)}"
        if from_ms is not None:
            params["from_ms"] = from_ms
            sql += " AND received_at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')"
        if to_ms is not None:
            params["to_ms"] = to_ms
            sql += " AND received_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"
        if instance is not None:
            params["instance"] = instance
            sql += " AND instance = {instance:String}"
        if verdicts:
            sql += checkin_findings.judged_filter(params, verdicts, from_ms, to_ms, before)
        rows, cursor = await self._newest_first(
            sql, "received_at", params, limit, before, _row, "received_at_ms"
        )
        return await checkin_findings.annotate(self._ch, project_id, monitor_id, rows), cursor

    async def checkin(self, project_id: str, monitor_id: str, checkin_id: str) -> dict | None:
        """One check-in whole (its full output), or None. A ping id starts with its
        millisecond in hex, which bounds the lookup to that millisecond of the monitor."""
        params: dict[str, Any] = {"project_id": project_id, "monitor_id": monitor_id, "id": checkin_id}
        sql = _ROW_SELECT + " AND id = {id:String}"
        received_ms = _ping_id_ms(checkin_id)
        if received_ms is not None:
            params["at_ms"] = received_ms
            sql += " AND received_at = fromUnixTimestamp64Milli({at_ms:Int64}, 'UTC')"
        rows = [_row(r) for r in await self._ch.query(sql + " LIMIT 1", params)]
        return (await checkin_findings.annotate(self._ch, project_id, monitor_id, rows))[0] if rows else None

    async def status_changes(
        self, project_id: str, monitor_id: str, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict], str | None]:
        """Status changes newest first, and the cursor of the next (older) page or None."""
        sql = """
            SELECT toUnixTimestamp64Milli(at), id, status, previous, reason FROM status_changes FINAL
            WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}"""
        return await self._newest_first(
            sql, "at", {"project_id": project_id, "monitor_id": monitor_id}, limit, before,
            lambda r: {"id": r[1], "at": iso_ms(r[0]), "at_ms": r[0], "status": r[2], "previous": r[3],
                       "reason": r[4]},
            "at_ms",
        )  # fmt: skip

    async def deliveries(
        self, project_id: str, monitor_id: str, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict], str | None]:
        """Tries to deliver the monitor's alerts, newest first, and the cursor of the next page or None.

        Rows recorded before deliveries named their project (``project_id`` ``""``) are
        matched by monitor alone: monitor ids are unique, and callers check that the
        monitor is the project's first (the API answers 404 otherwise).
        """
        sql = (
            _ATTEMPT_SELECT
            + " WHERE project_id IN ({project_id:String}, '') AND monitor_id = {monitor_id:String}"
        )
        return await self._newest_first(
            sql, "at", {"project_id": project_id, "monitor_id": monitor_id}, limit, before, _attempt, "at_ms"
        )

    async def channel_deliveries(
        self, project_id: str, channel_id: str, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict], str | None]:
        """Tries to deliver to the channel (test notifications included), newest first, and the
        cursor of the next page or None."""
        sql = _ATTEMPT_SELECT + " WHERE project_id = {project_id:String} AND channel_id = {channel_id:String}"
        return await self._newest_first(
            sql, "at", {"project_id": project_id, "channel_id": channel_id}, limit, before, _attempt, "at_ms"
        )

    async def failed_deliveries(
        self, project_id: str, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict], str | None]:
        """The project's dead letters: (alert, channel) pairs whose latest try failed for good,
        newest first, each with its alert; and the cursor of the next page or None."""
        if not 1 <= limit <= MAX_PAGE_ROWS:
            raise ValueError(f"limit: must be between 1 and {MAX_PAGE_ROWS}")
        params: dict[str, Any] = {"project_id": project_id, "limit": limit + 1}
        page_filter = ""
        if before is not None:
            params["after_ms"], params["after_id"] = decode_cursor(before)
            page_filter = (
                "AND (failed_at_ms < {after_ms:Int64} "
                "OR (failed_at_ms = {after_ms:Int64} AND pair < {after_id:String}))"
            )
        sql = _FAILED_SELECT.replace("PAIR_FILTER", "").replace("PAGE_FILTER", page_filter)
        rows = [_failed(r) for r in await self._ch.query(sql, params)]
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]["failed_at_ms"], rows[-1]["id"])

    async def failed_delivery(self, project_id: str, alert_id: str, channel_id: str) -> dict | None:
        """One dead letter of the project, or None (no such pair, or not failed, or delivered since)."""
        pair_filter = "AND alert_id = {alert_id:String} AND channel_id = {channel_id:String}"
        sql = _FAILED_SELECT.replace("PAIR_FILTER", pair_filter).replace("PAGE_FILTER", "")
        rows = await self._ch.query(
            sql, {"project_id": project_id, "alert_id": alert_id, "channel_id": channel_id, "limit": 1}
        )
        return _failed(rows[0]) if rows else None

    async def export(
        self, project_id: str, monitor_id: str, from_ms: int, to_ms: int, chunk_rows: int = 10_000
    ) -> AsyncIterator[list[dict]]:
        """Check-ins in ``[from_ms, to_ms)``, oldest first, ``chunk_rows`` at a time (flat memory)."""
        params: dict[str, Any] = {
            "project_id": project_id, "monitor_id": monitor_id, "from_ms": from_ms, "to_ms": to_ms,
            "limit": chunk_rows, "after_ms": from_ms, "after_id": "",
        }  # fmt: skip
        # Keyset from (from_ms, "") on: every id sorts after "", so the first chunk starts at from_ms.
        sql = (
            _ROW_SELECT
            + """
            AND received_at >= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')
            AND received_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
            AND (received_at > fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR id > {after_id:String})
            ORDER BY received_at, id LIMIT {limit:UInt32}"""
        )
        while True:
            rows = [_row(r) for r in await self._ch.query(sql, params)]
            if rows:
                yield await checkin_findings.annotate(self._ch, project_id, monitor_id, rows)
            if len(rows) < chunk_rows:
                return
            params["after_ms"], params["after_id"] = rows[-1]["received_at_ms"], rows[-1]["id"]

    async def timings(
        self, project_id: str, monitor_id: str, from_ms: int, to_ms: int, bucket_s: int
    ) -> list[dict]:
        """The points of :meth:`timings_and_outliers`."""
        return (await self.timings_and_outliers(project_id, monitor_id, from_ms, to_ms, bucket_s))[0]

    async def timings_and_outliers(
        self, project_id: str, monitor_id: str, from_ms: int, to_ms: int, bucket_s: int
    ) -> tuple[list[dict], list[dict]]:
        """Per time bucket (aligned to the epoch; only buckets holding check-ins), oldest first:
        ping count, duration stats in seconds over pings with a duration (the evaluator's
        measurement of the run a ping ended, else the one the job reported), fails (a success its
        keywords made a failure too), misses and
        outliers; and the outlier runs themselves (:func:`checkin_findings.outliers`)."""
        if bucket_s <= 0 or (to_ms - from_ms) / (bucket_s * 1000) > MAX_TIMING_BUCKETS:
            raise ValueError(f"bucket_s: must be positive and give at most {MAX_TIMING_BUCKETS} buckets")
        rows = await self._ch.query(
            """
            SELECT intDiv(toUnixTimestamp64Milli(received_at), {bucket_ms:Int64}) * {bucket_ms:Int64} AS bucket_ms,
                   countIf(kind IN ('success', 'fail')), avg(d), quantiles(0.5, 0.95)(d), max(d),
                   countIf(kind = 'fail' OR counted_failed), countIf(kind = 'missed')
            FROM (
                SELECT c.received_at AS received_at, c.kind AS kind,
                       if(c.kind IN ('success', 'fail'), coalesce(r.measured, c.duration), NULL) AS d,
                       v.counted_failed AS counted_failed
                FROM (
                    SELECT id, received_at, kind, duration FROM checkins FINAL
                    WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
                      AND received_at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
                      AND received_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
                ) AS c
                LEFT JOIN (
                    SELECT ping_id, toNullable(duration_s) AS measured FROM runs FINAL
                    WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
                      AND ended_at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
                      AND ended_at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
                ) AS r ON r.ping_id = c.id
                LEFT JOIN (  -- a success its keywords made a failure (exit 0, but it said ERROR)
                    SELECT ping_id, true AS counted_failed FROM checkin_verdicts FINAL
                    WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
                      AND at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
                      AND at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
                      AND hasAny(verdicts, ['keyword_failure', 'unmatched_failed'])
                ) AS v ON v.ping_id = c.id
            )
            GROUP BY bucket_ms ORDER BY bucket_ms
            """,
            {"project_id": project_id, "monitor_id": monitor_id, "from_ms": from_ms, "to_ms": to_ms,
             "bucket_ms": bucket_s * 1000},
        )  # fmt: skip
        runs, outliers = await checkin_findings.outliers(
            self._ch, project_id, monitor_id, from_ms, to_ms, bucket_s * 1000
        )
        points = [
            {
                "bucket": iso_ms(bucket_ms),
                "bucket_ms": bucket_ms,
                "count": count,
                "avg_duration_s": _finite(avg),
                "p50_duration_s": _finite(quantiles[0]),
                "p95_duration_s": _finite(quantiles[1]),
                "max_duration_s": _finite(max_duration),
                "fails": fails,
                "misses": misses,
                "outliers": outliers.get(bucket_ms, 0),
            }
            for bucket_ms, count, avg, quantiles, max_duration, fails, misses in rows
        ]
        return points, runs

    async def uptime_spans(
        self, project_id: str, monitor_id: str, spans: Sequence[tuple[int, int]]
    ) -> list[UptimeSpan]:
        """Observed time, down time, outages and uptime of each ``[from_ms, to_ms)`` span, in
        one query (the rules: :mod:`services.query.uptime`). Callers clip spans to the
        monitor's life (creation to now); an empty or inverted span has nothing observed."""
        if not spans:
            return []
        rows = await self._ch.query(
            SPANS_SQL,
            {"project_id": project_id, "monitor_id": monitor_id, "spans": [tuple(s) for s in spans]},
        )
        found = {(from_ms, to_ms): UptimeSpan(from_ms, to_ms, *rest) for from_ms, to_ms, *rest in rows}
        return [found.get((from_ms, to_ms), UptimeSpan(from_ms, to_ms)) for from_ms, to_ms in spans]
