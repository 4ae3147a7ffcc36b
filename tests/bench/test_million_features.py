"""The million benchmark's roles: every heartbeat has one, each feature a fixed share."""

from bench import million_features as features


def test_every_heartbeat_has_one_role_and_each_feature_one_in_a_hundred():
    for n in (1, 2, 99, 100, 101, 2_000, 20_345):
        counts = {name: 0 for name in (*features.ROLES.values(), "healthy", "probe")}
        for i in range(n):
            counts[features.role(i)] += 1
        assert counts == {name: features.count(n, name) for name in counts}, n
    assert {features.count(1_000_000, name) for name in features.FEATURE_ROLES} == {10_000}


def test_the_held_are_pinged_with_the_silent_heartbeat_they_depend_on():
    for k, group in features.once_pinged(2_000):
        assert [features.role(i) for i in group] == ["silent", "held_dependency", "held_window"], (k, group)
        assert features.depends_on(group[1]) == group[0]
    assert features.depends_on(4) == 1 and features.role(1) == "silent"
    assert features.depends_on(3) is None


def test_a_fleet_pings_once_per_instance_and_a_baseline_sends_a_usual_duration():
    fleet = features.ping_queries(3, 7)
    assert [q.rsplit("&instance=", 1)[1] for q in fleet] == list(features.FLEET_INSTANCES)
    for seq in range(50):
        [query] = features.ping_queries(8, seq)
        duration = float(query.split("&duration=")[1])
        assert 38 <= duration <= 42, (seq, query)
    assert features.ping_queries(2, 0)[0].startswith("/fail?status=error")
