"""The memory-per-heartbeat benchmark still runs (2,000 heartbeats) and weighs every structure.
No size or time is asserted: only that each structure was built and weighed."""

from bench import memory_per_heartbeat

STRUCTURES = [
    "ids (shared)",
    "monitors view",
    "token index",
    "evaluator",
    "status view",
    "catalog",
    "channel users",
]


def test_it_weighs_every_structure_and_times_lookups(capsys):
    memory_per_heartbeat.main(["--heartbeats", "2000", "--no-rss"])
    rows = [line.rsplit(None, 2) for line in capsys.readouterr().out.splitlines()]
    assert [name for name, _, _ in rows] == [*STRUCTURES, "total"]
    assert all(float(size) > 0 for _, size, _ in rows)
    assert memory_per_heartbeat.lookup_ns(2_000, lookups=2_000) > 0
