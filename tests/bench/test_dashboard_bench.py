"""The dashboard benchmark still runs (tiny size) and produces numbers. No timing is asserted."""

import math

import pytest

from bench import dashboard

pytestmark = pytest.mark.slow


def _number(value) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


async def test_the_dashboard_benchmark_times_every_call_of_both_pages_and_the_pings(tmp_path):
    [table] = await dashboard.run("tiny", tmp_path)
    rows = {(row[0], row[1]): dict(zip(table.columns, row, strict=True)) for row in table.rows}
    pages = [page for page, _ in rows]
    assert pages.count("list") == 9 and pages.count("detail") == 8 and pages.count("ping") == 4, pages
    for (page, call), row in rows.items():
        assert row["calls"] > 0 and row["non-200"] == 0, (page, call, row)
        assert _number(row["p50 ms"]) and row["p50 ms"] <= row["p95 ms"] <= row["p99 ms"] <= row["max ms"], (
            call,
            row,
        )
        assert row[""] in ("met", "missed", ""), (call, row)
    assert "### 8. Dashboard at scale" in table.render()
