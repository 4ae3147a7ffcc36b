"""The evaluator and detection benchmarks still run (tiny size) and produce numbers.

No timing is asserted: only that every measurement ran, gave a finite positive figure and
counted what it should. The evaluator bench runs its Kafka part on the session's broker
(``kafka_bootstrap``, passed through ``PINGURA_KAFKA_BOOTSTRAP`` as ``bench.broker`` reads it).
"""

import math

import pytest

from bench import detection, evaluator

pytestmark = [pytest.mark.slow]


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.kafka
async def test_the_evaluator_benchmark_runs_and_reports_every_row(tmp_path, kafka_bootstrap, monkeypatch):
    monkeypatch.setenv("PINGURA_KAFKA_BOOTSTRAP", kafka_bootstrap)
    throughput, scale, memory = await evaluator.run("tiny", tmp_path)

    buses = [row[0] for row in throughput.rows]
    assert buses[:3] == ["memory"] * 3
    assert buses[3].startswith("embedded") and buses[7].startswith("kafka") and len(buses) == 11, buses
    size = evaluator.SIZES["tiny"]
    for row in throughput.rows:
        bus, _, events, seconds, rate = row[:5]
        assert _positive(seconds) and _positive(rate), row
        expected = size["events"] if bus == "memory" or bus.startswith("embedded") else size["kafka_events"]
        assert events == expected, row
    targeted = [row for row in throughput.rows if str(row[6]).startswith(">=")]
    assert len(targeted) == 2, targeted
    assert all(
        row[7] in ("met", "missed (rate)", "missed (ratio)", "missed (rate, ratio)") for row in targeted
    )
    assert any("status events and alerts written" in note for note in throughput.notes)

    values = {row[0]: row[1] for row in scale.rows}
    assert all(_positive(v) for v in values.values()), values
    assert values["timer-wheel entries per monitor after one ping"] == 1.0
    assert {row[4] for row in scale.rows if row[3]} <= {"met", "missed"}
    parts = {row[0]: row[1] for row in memory.rows}
    assert _positive(parts["sum of the parts"]) and _positive(parts["RSS delta per monitor"])
    assert "### Evaluator throughput" in throughput.render()


async def test_the_detection_benchmark_measures_every_alert(tmp_path):
    (table,) = await detection.run("tiny", tmp_path)
    size = detection.SIZES["tiny"]
    to_bus, to_receiver = table.rows
    assert to_bus[1:3] == [size["monitors"], size["monitors"]], to_bus
    assert to_receiver[1:3] == [size["sample"], size["sample"]], to_receiver
    for row in table.rows:
        p50, p99, worst = row[3:6]
        # A miss is never declared before it is due: every delay is >= 0.
        assert 0 <= p50 <= p99 <= worst and math.isfinite(worst), row
        assert row[7] in ("met", "missed"), row
    assert "WARNING" not in table.notes[0]
