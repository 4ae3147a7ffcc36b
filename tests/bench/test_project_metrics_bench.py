"""The per-project scrape benchmark still runs (tiny size) and produces numbers. No timing is asserted."""

import pytest

from bench import project_metrics
from shared.events import STATUSES

pytestmark = pytest.mark.slow


async def test_the_scrape_benchmark_reports_time_bytes_and_series_per_scrape(tmp_path):
    [table] = await project_metrics.run("tiny", tmp_path)
    [row] = [dict(zip(table.columns, values, strict=True)) for values in table.rows]
    assert (row["heartbeats"], row["scrapes"]) == (200, 2)
    # the bench's heartbeats: every 7th is new (no snapshot), every 50th never pinged
    pinged = sum(1 for i in range(200) if STATUSES[i % len(STATUSES)] != "new" and i % 50)
    # a status each, a silence for each pinged one, the counts
    assert row["series"] == 200 + pinged + len(STATUSES), row
    assert row["bytes"] > 200 * 100 and row["median ms"] > 0 and row["longest loop pause ms"] >= 0
    assert "100,000" not in table.title and "200 heartbeats" in table.title
