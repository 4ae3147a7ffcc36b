"""The ingest benchmark still runs (tiny size) and produces numbers. No timing is asserted."""

import math

import pytest

from bench import ingest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_the_ingest_benchmark_runs_and_reports_every_row(tmp_path, kafka_bootstrap, monkeypatch):
    monkeypatch.setenv("PINGURA_KAFKA_BOOTSTRAP", kafka_bootstrap)
    embedded, kafka = await ingest.run("tiny", tmp_path)
    assert [row[0] for row in embedded.rows] == [
        "ceiling: bare aiohttp",
        "ceiling: bare aiohttp (Connection: close)",
        "pingura serve (keep-alive)",
        "pingura serve (Connection: close)",
    ]
    assert len(kafka.rows) == 3 and not kafka.notes[:-1]
    for row in embedded.rows + kafka.rows:
        pings_per_s, p50, p99, errors = row[1:5]
        assert pings_per_s > 0 and not math.isnan(p50) and p99 >= p50 and errors == 0, row
    assert "### 1. Ingest" in embedded.render()
