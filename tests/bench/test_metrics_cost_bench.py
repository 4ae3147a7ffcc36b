"""The /metrics cost benchmark still runs (tiny size: one short round) and produces numbers.
No timing is asserted."""

import pytest

from bench import metrics_cost

pytestmark = pytest.mark.slow


async def test_the_metrics_cost_benchmark_loads_each_setup_and_times_the_scrapes(tmp_path, monkeypatch):
    monkeypatch.delenv("PINGURA_BENCH_BASE", raising=False)
    [table] = await metrics_cost.run("tiny", tmp_path)
    rows = {values[0]: dict(zip(table.columns, values, strict=True)) for values in table.rows}
    assert set(rows) == {"metrics, no scrape", "metrics, scraped every 1 s"}
    for row in rows.values():
        assert row["pings/s (median)"] > 0 and row["non-200"] == 0, row
    scrapes = [note for note in table.notes if "scrapes under load" in note]
    assert scrapes and "bytes" in scrapes[0]
    assert any("PINGURA_BENCH_BASE" in note for note in table.notes)
