"""What a public status page reads from ClickHouse: daily uptime of many heartbeats over many
days in one grouped query, and their last status changes in another.

The uptime query is :data:`services.query.uptime.SPANS_SQL` (whose rules it keeps, word for
word: observed time, down time, outages) with every window partitioned by monitor, the
heartbeats given as a list and the change before the first span taken per monitor
(``LIMIT 1 BY``). ``tests/services/query/api/test_status_page_history.py`` checks it gives
what the one-monitor query gives for each heartbeat.

Every value reaches SQL as a bound ``{name:Type}`` parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.query.uptime import UptimeSpan
from shared.clickhouse import ClickHouse
from shared.clock import iso_ms

MANY_SPANS_SQL = """
WITH {spans:Array(Tuple(Int64, Int64))} AS spans,
     arrayMin(arrayMap(s -> s.1, spans)) AS first_ms,
     arrayMax(arrayMap(s -> s.2, spans)) AS last_ms
SELECT monitor_id, span.1 AS from_ms, span.2 AS to_ms,
       sumIf(greatest(0, least(run_end, span.2) - greatest(run_start, span.1)), cls != 'unobserved') AS observed_ms,
       sumIf(greatest(0, least(run_end, span.2) - greatest(run_start, span.1)), cls = 'down') AS down_ms,
       countIf(cls = 'down' AND least(run_end, span.2) > greatest(run_start, span.1)) AS outages
FROM (
    SELECT monitor_id, cls, min(seg_start) AS run_start, max(seg_end) AS run_end
    FROM (
        SELECT monitor_id, seg_start, seg_end, cls,
               sum(cls != prev_cls) OVER (PARTITION BY monitor_id ORDER BY seg_start, id
                                          ROWS UNBOUNDED PRECEDING) AS run
        FROM (
            SELECT monitor_id, seg_start, seg_end, cls, id,
                   lagInFrame(cls, 1, '')
                       OVER (PARTITION BY monitor_id ORDER BY seg_start, id
                             ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev_cls
            FROM (
                SELECT monitor_id, at_ms AS seg_start, id,
                       leadInFrame(at_ms, 1, last_ms)
                           OVER (PARTITION BY monitor_id ORDER BY at_ms, id
                                 ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS seg_end,
                       multiIf(status = 'down', 'down', status IN ('new', 'paused', 'unknown'), 'unobserved', 'up') AS cls
                FROM (
                    SELECT monitor_id, toUnixTimestamp64Milli(at) AS at_ms, id, status FROM status_changes FINAL
                    WHERE project_id = {project_id:String} AND monitor_id IN {monitor_ids:Array(String)}
                      AND at >= fromUnixTimestamp64Milli(first_ms, 'UTC')
                      AND at < fromUnixTimestamp64Milli(last_ms, 'UTC')
                    UNION ALL
                    SELECT * FROM (
                        SELECT monitor_id, toUnixTimestamp64Milli(at) AS at_ms, id, status FROM status_changes
                        WHERE project_id = {project_id:String} AND monitor_id IN {monitor_ids:Array(String)}
                          AND at < fromUnixTimestamp64Milli(first_ms, 'UTC')
                        ORDER BY at DESC, id DESC LIMIT 1 BY monitor_id
                    )
                )
            )
            WHERE seg_end > seg_start
        )
    )
    GROUP BY monitor_id, run, cls
)
ARRAY JOIN spans AS span
GROUP BY monitor_id, from_ms, to_ms
"""

CHANGES_SQL = """
SELECT monitor_id, toUnixTimestamp64Milli(at) AS at_ms, status FROM status_changes FINAL
WHERE project_id = {project_id:String} AND monitor_id IN {monitor_ids:Array(String)}
  AND at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')
ORDER BY at DESC, id DESC
LIMIT {limit:UInt32}
"""


async def uptime_by_monitor(
    ch: ClickHouse, project_id: str, monitor_ids: Sequence[str], spans: Sequence[tuple[int, int]]
) -> dict[str, list[UptimeSpan]]:
    """For each of ``monitor_ids``, its :class:`UptimeSpan` of each ``[from_ms, to_ms)`` span,
    in the order given (nothing observed where it has no history), from one query."""
    if not monitor_ids or not spans:
        return {monitor_id: [UptimeSpan(a, b) for a, b in spans] for monitor_id in monitor_ids}
    rows = await ch.query(
        MANY_SPANS_SQL,
        {"project_id": project_id, "monitor_ids": list(monitor_ids), "spans": [tuple(s) for s in spans]},
    )
    found = {(m, a, b): UptimeSpan(a, b, *rest) for m, a, b, *rest in rows}
    return {m: [found.get((m, a, b), UptimeSpan(a, b)) for a, b in spans] for m in monitor_ids}


async def last_changes(
    ch: ClickHouse, project_id: str, monitor_ids: Sequence[str], from_ms: int, limit: int
) -> list[tuple[str, str, str]]:
    """The last ``limit`` status changes of ``monitor_ids`` since ``from_ms``, newest first:
    (monitor id, ISO time, new status). Nothing else of them (no reason, no message)."""
    if not monitor_ids:
        return []
    rows = await ch.query(
        CHANGES_SQL,
        {"project_id": project_id, "monitor_ids": list(monitor_ids), "from_ms": from_ms, "limit": limit},
    )
    return [(monitor_id, iso_ms(at_ms), status) for monitor_id, at_ms, status in rows]
