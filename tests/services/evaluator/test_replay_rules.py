"""Replay is exact with the rules of issue 18 on (``shared.rules``): fleets (instances learned,
declared, expired and removed), run times (limits and the learned baseline), runs too early or too
often, failure rates and keywords. The same machinery as ``test_replay``: a partition evaluator
fed a dense scenario, checkpointed anywhere, restored from the snapshots decoded through the
public layout, produces exactly what the uninterrupted one did, heartbeat by heartbeat."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.events import Alert, CheckinJudged, StatusChanged
from shared.rules import CadenceRule, FailureRateRule, FleetRule, KeywordRule, RunTimeRule
from tests.services.evaluator.test_replay import MONITORS, S, by_heartbeat, run

INSTANCES = ("web-1", "web-2", "web-3", "web-4")

rule_configs = st.fixed_dictionaries({
    "monitor": st.sampled_from(MONITORS),
    "interval_s": st.just(60),
    "grace_s": st.sampled_from([0, 10]),
    "max_consecutive_misses": st.sampled_from([1, 2]),
    "paused": st.sampled_from([False] * 9 + [True]),
    "deleted": st.just(False),
    "channels": st.just(["ch_1"]),
    "fleet": st.sampled_from([
        None, FleetRule(min_instances=3), FleetRule(min_percent=75, expiry_s=150),
        FleetRule(min_instances=2, declared=("web-1", "web-9")),
    ]),
    "run_time": st.sampled_from([
        None, RunTimeRule(min_s=2, max_s=30), RunTimeRule(baseline="alert"),
        RunTimeRule(min_s=1, limits="mark", baseline="mark"),
    ]),
    "cadence": st.sampled_from([None, CadenceRule(early_s=20), CadenceRule(max_runs=1), CadenceRule(early_s=5, max_runs=2)]),
    "failure_rate": st.sampled_from([None, FailureRateRule(percent=30, runs=3), FailureRateRule(percent=50, runs=4, window_s=200)]),
    "keywords": st.sampled_from([
        None, KeywordRule(failure=("error",)), KeywordRule(success=("done",), start=("begin",), unmatched="ignore"),
        KeywordRule(success=("done",), unmatched="fail"),
    ]),
    "recovery_threshold": st.sampled_from([1, 2]),
    "reminder_interval_s": st.sampled_from([None, 90]),
})  # fmt: skip
rule_pings = st.fixed_dictionaries({
    "monitor": st.sampled_from(MONITORS),
    "kind": st.sampled_from(["success", "success", "success", "fail", "start"]),
    "rid": st.none(),
    "exit_code": st.none(),
    "message": st.sampled_from([None, "done", "begin"]),
    "output": st.sampled_from([None, None, "all done", "ERROR: disk full", "nothing to see"]),
    "duration_s": st.sampled_from([None, 0.5, 3.0, 5.0, 40.0]),
    "instance": st.sampled_from([None, *INSTANCES]),
    "early_ms": st.sampled_from([0, 0, 0, 700]),
})  # fmt: skip
removals = st.fixed_dictionaries(
    {"monitor": st.sampled_from(MONITORS), "instance": st.sampled_from(INSTANCES)}
)
rule_steps = st.tuples(
    st.sampled_from([0, 2 * S, 10 * S, 30 * S, 70 * S]),
    st.one_of(
        st.tuples(st.just("ping"), rule_pings),
        st.tuples(st.just("ping"), rule_pings),
        st.tuples(st.just("ping"), rule_pings),
        st.just(("tick", None)),
        st.just(("tick", None)),
        st.tuples(st.just("config"), rule_configs),
        st.tuples(st.just("remove"), removals),
    ),
)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule_steps, min_size=5, max_size=90), st.sets(st.integers(0, 100), max_size=6))
def test_the_rules_replay_exactly_after_a_restore(scenario, checkpoints):
    replay = run(scenario, checkpoints)
    assert all(isinstance(o, StatusChanged) and o.monitor_id in replay.deleted for o in replay.at_restart)
    assert by_heartbeat(replay.replayed) == by_heartbeat(replay.expected)


def _config(**rules) -> tuple[int, tuple]:
    fields = {"monitor": "hb_a", "interval_s": 60, "grace_s": 0, "max_consecutive_misses": 1, "paused": False,
              "deleted": False, "channels": ["ch_1"], **rules}  # fmt: skip
    return (0, ("config", fields))


def _ping(advance_ms: int, **fields) -> tuple[int, tuple]:
    ping = {"monitor": "hb_a", "kind": "success", "rid": None, "exit_code": None, "message": None, "output": None,
            "duration_s": None, "instance": None, "early_ms": 0, **fields}  # fmt: skip
    return (advance_ms, ("ping", ping))


def test_the_rules_replay_covers_what_it_claims():
    # A fleet that comes up short and a baseline that flags a run, restored in the middle: the
    # property above is not vacuous (the rules fire, and fire the same after the restore).
    scenario = [_config(fleet=FleetRule(min_instances=3), run_time=RunTimeRule(min_s=10))]
    for _ in range(2):
        scenario += [_ping(20 * S, instance=name, duration_s=40.0) for name in INSTANCES[:3]]
    scenario += [
        _ping(60 * S, instance="web-1", duration_s=3.0),
        (5 * S, ("tick", None)),
        (70 * S, ("tick", None)),
    ]
    replay = run(scenario, {4})
    outputs = [o for batch in replay.replayed for o in batch]
    assert replay.replayed == replay.expected
    assert any(isinstance(o, CheckinJudged) and "under_min" in o.verdicts for o in outputs)
    assert any(isinstance(o, Alert) and o.kind == "down" for o in [*replay.before, *outputs])
