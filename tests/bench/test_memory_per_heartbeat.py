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


def test_with_a_period_it_weighs_what_every_heartbeat_checking_in_once_adds(capsys):
    memory_per_heartbeat.main(["--heartbeats", "2000", "--no-rss", "--period"])
    rows = [line.rsplit(None, 2) for line in capsys.readouterr().out.splitlines()]
    assert [name for name, _, _ in rows] == [*STRUCTURES, "+ a period of check-ins", "total"]


def test_a_period_of_check_ins_reaches_every_heartbeat_and_the_status_view():
    ids = memory_per_heartbeat.heartbeat_ids(100)
    partition = memory_per_heartbeat.PartitionEvaluator(0)
    for cfg in memory_per_heartbeat.configs(ids):
        partition.apply_config(cfg)
    statuses = memory_per_heartbeat.StatusView(None, memory_per_heartbeat.Topics())
    memory_per_heartbeat.check_in_once(partition, statuses, ids)
    assert {partition.monitors[i].last_ping_ms for i in ids} == {memory_per_heartbeat.NOW_MS}
    assert all(statuses.get(i).status == "up" for i in ids) and partition.changed() == []
