"""What the evaluator found about check-ins, read back beside them: the runs it measured
(``runs``) and what its rules found (``checkin_verdicts``: a run too fast or too slow, too early,
a keyword ...), both written by :mod:`services.query.history_tables`.

Looked up once per page (or export chunk), by the page's ping ids within the page's own time
span (a finding is dated at its check-in), so the cost follows the page, never the heartbeat's
history. The timing graph's outliers are read per range, at most :data:`MAX_OUTLIER_RUNS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.clickhouse import ClickHouse
from shared.clock import iso_ms
from shared.rules import Verdict

RUN_TIME_VERDICTS: tuple[Verdict, ...] = ("too_fast", "too_slow", "under_min", "over_max")
"""The verdicts about a run's duration: a run with one is an outlier of the timing graph."""
MAX_OUTLIER_RUNS = 1000
"""Outlier runs a timings answer lists (the newest of its range); every one is counted in its point."""

_SPAN = """
WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
  AND TIME_COLUMN >= fromUnixTimestamp64Milli({first_ms:Int64}, 'UTC')
  AND TIME_COLUMN <= fromUnixTimestamp64Milli({last_ms:Int64}, 'UTC')
  AND ping_id IN {ids:Array(String)}
"""
_MEASURED_SELECT = "SELECT ping_id, duration_s FROM runs FINAL" + _SPAN.replace("TIME_COLUMN", "ended_at")
_VERDICTS_SELECT = (
    "SELECT ping_id, verdicts, reason, alerted, keyword FROM checkin_verdicts FINAL"
    + _SPAN.replace("TIME_COLUMN", "at")
)
_RANGE = """
FROM checkin_verdicts FINAL
WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
  AND at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
  AND at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')
  AND hasAny(verdicts, {run_time:Array(String)})
"""
_OUTLIERS_SELECT = (
    "SELECT ping_id, toUnixTimestamp64Milli(at) AS at_ms, verdicts, alerted, reason, duration_s, usual_low_s,"
    " usual_high_s, instance" + _RANGE + "ORDER BY at DESC, ping_id DESC LIMIT {limit:UInt32}"
)
_OUTLIERS_PER_BUCKET = (
    "SELECT intDiv(toUnixTimestamp64Milli(at), {bucket_ms:Int64}) * {bucket_ms:Int64} AS bucket_ms, count()"
    + _RANGE
    + "GROUP BY bucket_ms"
)


async def annotate(ch: ClickHouse, project_id: str, monitor_id: str, rows: list[dict]) -> list[dict]:
    """Each row with ``measured_duration`` (seconds from its run's start to this ping that ended
    it, as the evaluator measured it, else None) and what the rules found: ``verdicts`` (empty:
    nothing), ``verdict_reason``, ``alerted`` and ``keyword``. Two lookups per page at most."""
    ends = [row for row in rows if row["kind"] in ("success", "fail")]
    measured: dict[str, float] = (
        dict(await ch.query(_MEASURED_SELECT, _span(project_id, monitor_id, ends))) if ends else {}
    )
    pings = [row for row in rows if row["kind"] != "missed"]
    found = {
        ping_id: (list(verdicts), reason or None, bool(alerted), keyword)
        for ping_id, verdicts, reason, alerted, keyword in (
            await ch.query(_VERDICTS_SELECT, _span(project_id, monitor_id, pings)) if pings else ()
        )
    }
    for row in rows:
        row["measured_duration"] = measured.get(row["id"])
        row["verdicts"], row["verdict_reason"], row["alerted"], row["keyword"] = found.get(
            row["id"], ([], None, False, None)
        )
    return rows


def judged_filter(
    params: dict[str, Any],
    verdicts: Sequence[str],
    from_ms: int | None,
    to_ms: int | None,
    before: str | None,
) -> str:
    """The condition keeping, of a page of check-ins, those a rule found one of ``verdicts`` in:
    their ids from ``checkin_verdicts`` within the page's bounds (and the cursor's: the pager binds
    ``after_ms``), so the lookup follows what is left to read. No FINAL: a replayed row repeats an
    id, which IN ignores."""
    params["verdicts"] = list(verdicts)
    sql = (
        " AND id IN (SELECT ping_id FROM checkin_verdicts WHERE project_id = {project_id:String}"
        " AND monitor_id = {monitor_id:String} AND hasAny(verdicts, {verdicts:Array(String)})"
    )
    if from_ms is not None:
        sql += " AND at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')"
    if to_ms is not None:
        sql += " AND at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"
    if before is not None:
        sql += " AND at <= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')"
    return sql + ")"


def _span(project_id: str, monitor_id: str, rows: list[dict]) -> dict[str, Any]:
    return {"project_id": project_id, "monitor_id": monitor_id, "ids": [row["id"] for row in rows],
            "first_ms": min(row["received_at_ms"] for row in rows),
            "last_ms": max(row["received_at_ms"] for row in rows)}  # fmt: skip


async def outliers(
    ch: ClickHouse, project_id: str, monitor_id: str, from_ms: int, to_ms: int, bucket_ms: int
) -> tuple[list[dict], dict[int, int]]:
    """The runs in ``[from_ms, to_ms)`` whose duration a rule judged (:data:`RUN_TIME_VERDICTS`),
    oldest first (the newest :data:`MAX_OUTLIER_RUNS` of them), and how many there are in each
    bucket of ``bucket_ms`` (by bucket start in ms)."""
    params = {"project_id": project_id, "monitor_id": monitor_id, "from_ms": from_ms, "to_ms": to_ms,
              "run_time": list(RUN_TIME_VERDICTS), "limit": MAX_OUTLIER_RUNS + 1, "bucket_ms": bucket_ms}  # fmt: skip
    runs = [
        {"ping_id": ping_id, "at": iso_ms(at_ms), "at_ms": at_ms, "outlier": True, "verdicts": list(verdicts),
         "alerted": bool(alerted), "reason": reason, "duration_s": duration_s, "usual_low_s": low,
         "usual_high_s": high, "instance": instance}
        for ping_id, at_ms, verdicts, alerted, reason, duration_s, low, high, instance
        in await ch.query(_OUTLIERS_SELECT, params)
    ]  # fmt: skip
    if len(runs) <= MAX_OUTLIER_RUNS:
        per_bucket: dict[int, int] = {}
        for run in runs:
            start = run["at_ms"] // bucket_ms * bucket_ms
            per_bucket[start] = per_bucket.get(start, 0) + 1
    else:  # more than are listed: each bucket still counts all of its own
        runs = runs[:MAX_OUTLIER_RUNS]
        per_bucket = dict(await ch.query(_OUTLIERS_PER_BUCKET, params))
    return runs[::-1], per_bucket
