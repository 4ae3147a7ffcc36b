"""Uptime of a monitor over any time spans, computed in ClickHouse from its status changes.

What counts (the same for the fixed 24h/7d/30d/90d windows and for any range asked for):

- Only time in which Pingura was actually watching is **observed**: a monitor that is
  ``new`` (created, never pinged yet) or ``paused`` is not, so a week-long pause neither
  helps nor hurts, and neither does the time before the monitor existed (callers start
  spans at its creation at the earliest) or the future (they end them at now at the latest).
- Of the observed time, every moment not spent ``down`` is up time (``late`` is still
  within grace, so it is not an outage). ``unknown`` (held during an ingest incident, when
  Pingura could not see the pings) is not observed time, as ``new`` and ``paused`` are not. Uptime is ``(observed - down) / observed``;
  ``None`` when nothing was observed.
- ``new`` covers both the time before the first ping and the time after a resume until
  the next ping: neither is observed.
- An **outage** is one stretch in ``down``, counted in every span it overlaps (one that
  began before the span counts too), however many status changes it spans (``down`` ->
  ``down`` with a new reason is still one).
- Changes at the same millisecond take no time: they apply in ``(at, id)`` order (the
  order in which a status change's ``argMax(status, (at, id))`` picks the latest) and only the last one holds.

One query answers every span at once: it reads the changes from the earliest span start
to the latest span end, plus the one change before them (the status the first span
starts in), so its cost follows the spans, not the length of the history.
``tests/services/query/test_uptime.py`` holds these rules as plain Python too, and checks
the query against them on random histories.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UptimeSpan:
    from_ms: int
    to_ms: int
    observed_ms: int = 0
    down_ms: int = 0
    outages: int = 0

    @property
    def percent(self) -> float | None:
        """Up share of the observed time, 0-100 with 3 decimals; None when nothing was observed."""
        if self.observed_ms <= 0:
            return None
        return round(100 * (self.observed_ms - self.down_ms) / self.observed_ms, 3)


# Innermost first: the changes (FINAL: a replayed one counts once) from the first span start
# on, and the last one before it; each becomes a segment lasting until the next change (the
# last until the end of the latest span), of class down / up (up, late) / unobserved; segments
# of no length go; neighbours of one class merge into runs (a running count of class
# changes numbers them). Each run is then clipped to each span.
SPANS_SQL = """
WITH {spans:Array(Tuple(Int64, Int64))} AS spans,
     arrayMin(arrayMap(s -> s.1, spans)) AS first_ms,
     arrayMax(arrayMap(s -> s.2, spans)) AS last_ms
SELECT span.1 AS from_ms, span.2 AS to_ms,
       sumIf(greatest(0, least(run_end, span.2) - greatest(run_start, span.1)), cls != 'unobserved') AS observed_ms,
       sumIf(greatest(0, least(run_end, span.2) - greatest(run_start, span.1)), cls = 'down') AS down_ms,
       countIf(cls = 'down' AND least(run_end, span.2) > greatest(run_start, span.1)) AS outages
FROM (
    SELECT cls, min(seg_start) AS run_start, max(seg_end) AS run_end
    FROM (
        SELECT seg_start, seg_end, cls,
               sum(cls != prev_cls) OVER (ORDER BY seg_start, id ROWS UNBOUNDED PRECEDING) AS run
        FROM (
            SELECT seg_start, seg_end, cls, id,
                   lagInFrame(cls, 1, '')
                       OVER (ORDER BY seg_start, id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev_cls
            FROM (
                SELECT at_ms AS seg_start, id,
                       leadInFrame(at_ms, 1, last_ms)
                           OVER (ORDER BY at_ms, id ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS seg_end,
                       multiIf(status = 'down', 'down', status IN ('new', 'paused', 'unknown'), 'unobserved', 'up') AS cls
                FROM (
                    SELECT toUnixTimestamp64Milli(at) AS at_ms, id, status FROM status_changes FINAL
                    WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
                      AND at >= fromUnixTimestamp64Milli(first_ms, 'UTC')
                      AND at < fromUnixTimestamp64Milli(last_ms, 'UTC')
                    UNION ALL
                    SELECT * FROM (
                        SELECT toUnixTimestamp64Milli(at) AS at_ms, id, status FROM status_changes
                        WHERE project_id = {project_id:String} AND monitor_id = {monitor_id:String}
                          AND at < fromUnixTimestamp64Milli(first_ms, 'UTC')
                        ORDER BY at DESC, id DESC LIMIT 1
                    )
                )
            )
            WHERE seg_end > seg_start
        )
    )
    GROUP BY run, cls
)
ARRAY JOIN spans AS span
GROUP BY from_ms, to_ms
"""
