"""History of one heartbeat: check-ins, status changes and alert deliveries (paged, newest
first), uptime, timings, and the export of a range.

Every query parameter is checked before ClickHouse is asked anything: times within
1970..9999 and ``from`` not after ``to``, so a bad one is a 400, never a wrong answer.
"""

from __future__ import annotations

import csv
import io
import math

import msgspec
from aiohttp import web

from services.query.api.context import API
from services.query.api.deliveries import attempt_json
from services.query.api.errors import not_found
from services.query.api.heartbeats import monitor_or_404
from services.query.api.schemas.history import (
    EXPORT_COLUMNS,
    EXPORT_FILES,
    MAX_TIMING_POINTS,
    CheckinQuery,
    ExportQuery,
    PageQuery,
    RangeQuery,
    TimingsQuery,
)
from services.query.store import UPTIME_WINDOWS_MS
from services.query.validation import InvalidField
from shared.clock import iso_ms, now_ms

DEFAULT_TIMINGS_SPAN_MS = 7 * 86400_000
TARGET_TIMING_POINTS = 500
"""When the server picks the bucket: the roundest one giving a range at most this many."""
ROUND_BUCKETS_S = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
DAY_S = 86400


# pages -----------------------------------------------------------------------------------
async def list_checkins(request: web.Request, query: CheckinQuery) -> web.Response:
    """Newest first; ``kind``, ``from``/``to`` (only when given: no clock skew hides a ping),
    ``instance`` and ``verdict`` narrow the page. Pass the same filters with ``before`` for the
    next page."""
    monitor = monitor_or_404(request)
    from_ms, to_ms = query.given_ms()
    rows, cursor = await request.app[API].store.history(
        monitor.project_id, monitor.id, limit=query.limit, before=query.before, kinds=query.kinds(), from_ms=from_ms,
        to_ms=to_ms, instance=query.instance, verdicts=query.verdicts(),
    )  # fmt: skip
    return web.json_response({"checkins": rows, "next": cursor})


async def get_checkin(request: web.Request) -> web.Response:
    monitor = monitor_or_404(request)
    row = await request.app[API].store.checkin(
        monitor.project_id, monitor.id, request.match_info["checkin_id"]
    )
    if row is None:
        raise not_found("check-in")
    return web.json_response(row)


async def list_status_changes(request: web.Request, query: PageQuery) -> web.Response:
    monitor = monitor_or_404(request)
    rows, cursor = await request.app[API].store.status_changes(
        monitor.project_id, monitor.id, limit=query.limit, before=query.before
    )
    changes = [{k: row[k] for k in ("id", "at", "status", "previous", "reason")} for row in rows]
    return web.json_response({"changes": changes, "next": cursor})


async def list_deliveries(request: web.Request, query: PageQuery) -> web.Response:
    """Every try to send the heartbeat's alerts to its channels (one row per try), newest first."""
    monitor = monitor_or_404(request)
    rows, cursor = await request.app[API].store.deliveries(
        monitor.project_id, monitor.id, limit=query.limit, before=query.before
    )
    return web.json_response({"deliveries": [attempt_json(row) for row in rows], "next": cursor})


# uptime and timings ----------------------------------------------------------------------
async def get_uptime(request: web.Request, query: RangeQuery) -> web.Response:
    """The fixed windows, and ``range`` when ``from`` or ``to`` is given (``from`` defaults
    to the monitor's creation, ``to`` to now), in one query. Observed time is clipped to
    the monitor's life, creation to now (see :mod:`services.query.uptime`)."""
    monitor = monitor_or_404(request)
    now = now_ms()
    spans = [
        (min(max(now - window_ms, monitor.created_ms), now), now) for window_ms in UPTIME_WINDOWS_MS.values()
    ]
    asked = query.from_ is not None or query.to is not None
    if asked:
        from_ms, to_ms = query.span_ms(now, default_span_ms=None)
        end_ms = min(to_ms, now)
        spans.append((min(max(from_ms, monitor.created_ms), end_ms), end_ms))
    answered = await request.app[API].store.uptime_spans(monitor.project_id, monitor.id, spans)
    windows = answered[: len(UPTIME_WINDOWS_MS)]
    body: dict = {
        "heartbeat_id": monitor.id,
        "uptime": {name: span.percent for name, span in zip(UPTIME_WINDOWS_MS, windows, strict=True)},
    }
    if asked:
        span = answered[-1]
        body["range"] = {
            "from": iso_ms(from_ms), "to": iso_ms(to_ms), "uptime": span.percent, "outages": span.outages,
            "downtime_s": span.down_ms / 1000, "observed_s": span.observed_ms / 1000,
        }  # fmt: skip
    return web.json_response(body)


async def get_timings(request: web.Request, query: TimingsQuery) -> web.Response:
    """Durations per bucket, and the runs a run-time rule judged (``outliers``: for the graph to
    mark; the usual band itself is the heartbeat's)."""
    monitor = monitor_or_404(request)
    from_ms, to_ms = query.span_ms(now_ms(), default_span_ms=DEFAULT_TIMINGS_SPAN_MS)
    bucket_s = query.bucket_s()
    if bucket_s is not None:
        if (to_ms - from_ms) / 1000 / bucket_s > MAX_TIMING_POINTS:
            raise InvalidField("bucket", f"too small for this range (at most {MAX_TIMING_POINTS} buckets)")
    else:
        bucket_s = pick_bucket_s(to_ms - from_ms)
    points, outliers = await request.app[API].store.timings_and_outliers(
        monitor.project_id, monitor.id, from_ms, to_ms, bucket_s
    )
    return web.json_response(
        {"heartbeat_id": monitor.id, "bucket_s": bucket_s, "points": points, "outliers": outliers}
    )


def pick_bucket_s(span_ms: int) -> int:
    """The roundest bucket (1m, 5m, 15m, 1h, 6h, 1d, 7d, 30d) that cuts ``span_ms`` into at
    most :data:`TARGET_TIMING_POINTS` buckets; beyond 30d ones, whole days that do. Buckets
    are aligned to the epoch, so a range may touch one more than that."""
    for bucket_s in ROUND_BUCKETS_S:
        if span_ms <= bucket_s * 1000 * TARGET_TIMING_POINTS:
            return bucket_s
    return math.ceil(span_ms / (DAY_S * 1000 * TARGET_TIMING_POINTS)) * DAY_S


# export ----------------------------------------------------------------------------------
EXPORT_CHUNK_ROWS = 1000


async def export_checkins(request: web.Request, query: ExportQuery) -> web.StreamResponse:
    """Oldest first, streamed chunk by chunk: csv (a header line, then one line per check-in;
    see :func:`_cell`), json (one array) or jsonl (one JSON object per line)."""
    monitor = monitor_or_404(request)
    fmt = query.format
    from_ms, to_ms = query.span_ms(now_ms(), default_span_ms=None)
    file = EXPORT_FILES[fmt]
    response = web.StreamResponse(
        headers={
            "Content-Type": file.content_type,
            "Content-Disposition": f'attachment; filename="{monitor.id}-checkins.{file.extension}"',
            # streamed, so the API's middleware cannot add it: job output is nobody else's to keep
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    first = True
    if fmt == "csv":
        await response.write(_csv_line(EXPORT_COLUMNS))
    elif fmt == "json":
        await response.write(b"[")
    # Small chunks: each is formatted on the event loop that also answers pings, so one
    # chunk's work must stay in the low milliseconds (10,000 rows took ~70 ms).
    chunks = request.app[API].store.export(
        monitor.project_id, monitor.id, from_ms, to_ms, chunk_rows=EXPORT_CHUNK_ROWS
    )
    async for chunk in chunks:
        if fmt == "csv":
            await response.write(_csv_lines([_cell(row.get(c)) for c in EXPORT_COLUMNS] for row in chunk))
        elif fmt == "jsonl":
            await response.write(b"".join(msgspec.json.encode({c: row.get(c) for c in EXPORT_COLUMNS}) + b"\n"
                                          for row in chunk))  # fmt: skip
        else:
            parts = []
            for row in chunk:
                parts.append(b"\n" if first else b",\n")
                parts.append(msgspec.json.encode({c: row.get(c) for c in EXPORT_COLUMNS}))
                first = False
            await response.write(b"".join(parts))
    if fmt == "json":
        await response.write(b"\n]\n")
    await response.write_eof()
    return response


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP's list for CSV injection)."""


def _cell(value) -> str:
    """A CSV cell: null empty, booleans as JSON spells them, numbers as they are, a list (the
    verdicts) as its items separated by commas. Text comes
    from the jobs and their HTTP clients, so a text cell that would start a formula gets a
    leading ``'`` (spreadsheets then show it as text); the JSON exports carry it exactly."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    return str(value)


def _csv_line(values: list[str]) -> bytes:
    return _csv_lines([values])


def _csv_lines(rows) -> bytes:
    # RFC 4180's CRLF: the writer then quotes every field holding a CR as well as a LF (with
    # "\n" alone a lone CR went unquoted, and a spreadsheet began a new row, and a cell, there).
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()
