"""The rules benchmark still runs (tiny size) and measures what it says. No timing is asserted."""

import math

import pytest

from bench import rules

pytestmark = [pytest.mark.slow]


async def test_the_rules_benchmark_measures_every_rule_and_the_big_fleet(tmp_path):
    memory, fleet = await rules.run("tiny", tmp_path)

    assert [row[0] for row in memory.rows] == list(rules.VARIANTS)
    for name, heartbeats, per_heartbeat, _, us_per_checkin, snapshot in memory.rows:
        assert heartbeats == (rules.SIZES["tiny"] // 2 if name.startswith("fleet") else rules.SIZES["tiny"])
        assert math.isfinite(per_heartbeat) and us_per_checkin > 0 and snapshot > 0, name
    [(_, per_instance, _, _, alerts, named)] = fleet.rows
    assert per_instance > 0
    assert alerts == 1 and named == rules.BIG_FLEET["tiny"] // 20  # the 5% that stopped, each named
