"""The history-latency and query benchmarks still run (tiny size) and produce numbers. No timing is asserted."""

import math

import pytest

from bench import history_latency, queries

pytestmark = pytest.mark.slow


def _number(value) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


async def test_the_history_latency_benchmark_measures_sampled_pings(tmp_path):
    [table] = await history_latency.run("tiny", tmp_path)
    assert len(table.rows) == 1
    row = dict(zip(table.columns, table.rows[0], strict=True))
    assert row["pings/s achieved"] > 0 and row["samples"] > 0, row
    for column in ("answer p50 ms", "answer p99 ms", "delay p50 s", "delay p99 s", "delay max s"):
        assert _number(row[column]), (column, row)
    assert row["delay p50 s"] <= row["delay p99 s"] <= row["delay max s"]
    assert row["non-200"] == 0 and row["errors"] == 0, row
    assert row[""] in ("met", "missed", "missed (rate)")
    assert "### 6. Ping to history" in table.render()


async def test_the_query_benchmark_loads_and_measures_every_query(tmp_path):
    latency, export = await queries.run("tiny", tmp_path)
    size = queries.SIZES["tiny"]
    assert len(latency.rows) == 7
    for stage, query, calls, p50, p95, _target, verdict in latency.rows:
        assert calls > 0 and _number(p50) and _number(p95) and p50 <= p95, (stage, query)
        assert verdict in ("met", "missed"), (stage, query)
    assert "Empty answers (should be 0): pages 0/0, uptime 0/0, HTTP pages 0." in latency.notes
    assert len(export.rows) == 5
    for stage, path, rows, rows_per_s, seconds, rss_before, rss_half, rss_growth in export.rows:
        assert rows == size["big_rows"], (stage, path, rows)  # every row of the largest monitor, once
        assert (
            rows_per_s > 0
            and _number(seconds)
            and rss_before > 0
            and _number(rss_half)
            and _number(rss_growth)
        ), (stage, path)
    assert "### 7a. History queries" in latency.render() and "### 7b. CSV export" in export.render()
