"""The rules that catch subtler failures as heartbeat fields over real HTTP (fleet, run_time,
cadence, failure_rate, keywords): what a body sets in the heartbeat's config, what the answer
shows, null turning a rule off, each refusal one line naming its field, and the document
describing both the bodies and the answers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.query.api.openapi import build_document
from services.query.api.routes import ROUTES
from shared.rules import CadenceRule, FailureRateRule, FleetRule, KeywordRule, RunTimeRule
from tests.services.query.api.tenants import new_tenant
from tests.services.query.api.test_openapi import assert_declared
from tests.services.query.test_api_properties import PROFILE, answer, dump, duration_strings, utf8, values

pytestmark = pytest.mark.asyncio(loop_scope="session")

RULES = ("fleet", "run_time", "cadence", "failure_rate", "keywords")
LEARNED = ("instances_summary", "usual_run_time", "failure_rate_now")


async def heartbeat(tenant, **fields) -> dict:
    return await tenant.ok("POST", "/heartbeats", 201, json={"name": "job", "interval": 60, **fields})


async def refusal(tenant, **fields) -> tuple[str, str]:
    status, answer = await tenant.call("POST", "/heartbeats", json={"name": "job", "interval": 60, **fields})
    assert status == 400, (fields, answer)
    assert len(answer["error"].splitlines()) == 1
    return answer["field"], answer["error"]


# what a body sets ------------------------------------------------------------------------
async def test_a_new_heartbeat_has_every_rule_off_and_nothing_learned(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant)
    assert {k: hb[k] for k in RULES + LEARNED} == dict.fromkeys(RULES + LEARNED)
    config = api.ctx.monitors[hb["id"]]
    assert [getattr(config, rule) for rule in RULES] == [None] * 5


async def test_a_fleet_is_kept_with_its_declared_instances_once_each_and_its_expiry_in_seconds(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(
        tenant, fleet={"min_instances": 37, "min_percent": 90.0, "instances": ["web-1", "web-2", "web-1"],
                       "expiry": "2d"},
    )  # fmt: skip
    assert hb["fleet"] == {"min_instances": 37, "min_percent": 90, "instances": ["web-1", "web-2"],
                           "expiry": 172800}  # fmt: skip
    assert api.ctx.monitors[hb["id"]].fleet == FleetRule(
        min_instances=37, min_percent=90, declared=("web-1", "web-2"), expiry_s=172800
    )


async def test_every_rule_maps_to_its_config_in_seconds_and_answers_the_same(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(
        tenant,
        run_time={"min": "2.5s", "max": "1h", "limits": "mark", "baseline": "alert"},
        cadence={"early_tolerance": "10m", "max_runs_per_interval": 2},
        failure_rate={"percent": 30, "runs": 3, "window": "1d", "recover_percent": 10},
        keywords={"success": ["done"], "failure": ["ERROR", "ERROR", "Traceback"], "unmatched": "fail"},
    )
    config = api.ctx.monitors[hb["id"]]
    assert config.run_time == RunTimeRule(min_s=2.5, max_s=3600.0, limits="mark", baseline="alert")
    assert config.cadence == CadenceRule(early_s=600, max_runs=2)
    assert config.failure_rate == FailureRateRule(percent=30, runs=3, window_s=86400, recover_percent=10)
    assert config.keywords == KeywordRule(success=("done",), failure=("ERROR", "Traceback"), unmatched="fail")
    assert hb["run_time"] == {"min": 2.5, "max": 3600.0, "limits": "mark", "baseline": "alert"}
    assert hb["cadence"] == {"early_tolerance": 600, "max_runs_per_interval": 2}
    assert hb["failure_rate"] == {"percent": 30, "runs": 3, "window": 86400, "recover_percent": 10}
    assert hb["keywords"] == {"success": ["done"], "failure": ["ERROR", "Traceback"], "start": [],
                              "unmatched": "fail"}  # fmt: skip
    assert (await tenant.ok("GET", f"/heartbeats/{hb['id']}"))["keywords"] == hb["keywords"]


async def test_defaults_fill_what_a_rule_leaves_out(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(
        tenant, run_time={"max": 60}, failure_rate={"percent": 50}, keywords={"start": ["go"]}
    )
    assert hb["run_time"] == {"min": None, "max": 60.0, "limits": "alert", "baseline": "off"}
    assert hb["failure_rate"] == {"percent": 50, "runs": 10, "window": None, "recover_percent": None}
    assert hb["keywords"]["unmatched"] == "keep"


async def test_a_change_replaces_a_rule_whole_null_turns_it_off_and_other_changes_keep_it(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant, fleet={"min_instances": 3, "instances": ["a"]}, failure_rate={"percent": 30})
    path = f"/heartbeats/{hb['id']}"
    changed = await tenant.ok("PATCH", path, json={"fleet": {"min_percent": 50}})
    assert changed["fleet"] == {"min_instances": None, "min_percent": 50, "instances": [], "expiry": None}
    assert (await tenant.ok("PATCH", path, json={"name": "renamed"}))["failure_rate"]["percent"] == 30
    off = await tenant.ok("PATCH", path, json={"fleet": None, "failure_rate": None})
    assert (off["fleet"], off["failure_rate"]) == (None, None)
    config = api.ctx.monitors[hb["id"]]
    assert (config.fleet, config.failure_rate) == (None, None)


# refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("fleet", {}, "give min_instances or min_percent"),
        ("fleet", {"min_instances": 0}, "min_instances: must be a whole number from 1 to 10000"),
        ("fleet", {"min_instances": 10001}, "min_instances"),
        ("fleet", {"min_percent": 101}, "min_percent: must be a whole number from 1 to 100"),
        ("fleet", {"min_percent": 50.5}, "min_percent"),
        ("fleet", {"min_instances": "3"}, "min_instances"),
        ("fleet", {"min_instances": 2, "instances": ["a\tb"]}, "printable"),
        ("fleet", {"min_instances": 2, "instances": ["x" * 65]}, "instances"),
        ("fleet", {"min_instances": 2, "instances": ["   "]}, "printable"),
        ("fleet", {"min_instances": 2, "instances": ["web-1 "]}, "no space at either end"),
        ("fleet", {"min_instances": 2, "instances": [f"h{n}" for n in range(1001)]}, "at most 1000"),
        ("fleet", {"min_instances": 2, "expiry": 59}, "expiry"),
        ("fleet", {"min_instances": 2, "expiry": "366d"}, "expiry"),
        ("fleet", {"min_instances": 2, "hosts": 3}, "hosts: unknown field"),
        ("fleet", 3, "must be an object"),
        ("fleet", [], "must be an object"),
        ("run_time", {}, "give min, max, or a baseline"),
        ("run_time", {"min": 60, "max": 60}, "min must be less than max"),
        ("run_time", {"min": 0}, "min:"),
        ("run_time", {"max": -1}, "max:"),
        ("run_time", {"max": "soon"}, "max:"),
        ("run_time", {"max": True}, "max"),
        ("run_time", {"max": 60, "limits": "page"}, 'limits: must be "alert" or "mark"'),
        ("run_time", {"baseline": "on"}, 'baseline: must be "off", "mark" or "alert"'),
        ("cadence", {}, "give early_tolerance or max_runs_per_interval"),
        ("cadence", {"early_tolerance": 0}, "early_tolerance"),
        ("cadence", {"early_tolerance": 1.5}, "early_tolerance"),
        ("cadence", {"max_runs_per_interval": 101}, "max_runs_per_interval"),
        ("failure_rate", {}, "percent: required"),
        ("failure_rate", {"percent": 0}, "percent"),
        ("failure_rate", {"percent": 30, "runs": 1}, "runs: must be a whole number from 2 to 100"),
        ("failure_rate", {"percent": 30, "runs": 101}, "runs"),
        ("failure_rate", {"percent": 30, "window": "30s"}, "window"),
        ("failure_rate", {"percent": 30, "recover_percent": 30}, "recover_percent must be less than percent"),
        ("failure_rate", {"percent": 30, "recover_percent": -1}, "recover_percent"),
        ("keywords", {}, "give at least one keyword"),
        ("keywords", {"failure": []}, "give at least one keyword"),
        ("keywords", {"failure": [""]}, "failure"),
        ("keywords", {"failure": ["x" * 101]}, "failure"),
        ("keywords", {"failure": [f"k{n}" for n in range(21)]}, "at most 20"),
        ("keywords", {"failure": ["  "]}, "only spaces"),
        ("keywords", {"failure": ["a\u202eb"]}, "bidi"),
        ("keywords", {"failure": ["x"], "unmatched": "drop"}, 'unmatched: must be "keep", "ignore" or "fail"'),
    ],
)  # fmt: skip
async def test_a_bad_rule_is_refused_in_one_line_naming_the_rule_and_what_is_wrong(api, field, value, says):
    tenant = await new_tenant(api)
    named, error = await refusal(tenant, **{field: value})
    assert named == field and says in error, error


async def test_a_bad_change_to_a_rule_changes_nothing(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(tenant, failure_rate={"percent": 40})
    status, _ = await tenant.call("PATCH", f"/heartbeats/{hb['id']}", json={"failure_rate": {"percent": 400}})
    assert status == 400
    assert api.ctx.monitors[hb["id"]].failure_rate == FailureRateRule(percent=40)


@pytest.mark.parametrize(
    "raw",
    ['{"a":' * 10_000 + "1" + "}" * 10_000, "[" * 10_000 + "]" * 10_000, "NaN", "1e400", '"\\ud800"',
     json.dumps(list(range(5000)))],
)  # fmt: skip
@pytest.mark.parametrize("field", RULES)
async def test_hostile_values_of_a_rule_are_a_400_never_a_server_error(api, field, raw):
    tenant = await new_tenant(api)
    inner = ", ".join(f'"{name}": {raw}' for name in ("min_instances", "percent", "failure"))
    body = f'{{"name": "job", "interval": 60, "{field}": {{{inner}}}}}'
    status, answer = await tenant.call(
        "POST", "/heartbeats", data=body, headers={"Content-Type": "application/json"}
    )
    assert status in (400, 413), answer
    assert len(answer["error"].splitlines()) == 1


# the document ----------------------------------------------------------------------------
async def test_the_answer_with_every_rule_is_one_the_document_declares(api):
    tenant = await new_tenant(api)
    hb = await heartbeat(
        tenant, fleet={"min_percent": 75, "instances": ["a"], "expiry": 3600}, run_time={"min": 1, "max": 2.5},
        failure_rate={"percent": 30}, keywords={"failure": ["ERROR"]},
    )  # fmt: skip
    assert_declared("POST", "/heartbeats", 201, hb)
    assert_declared("GET", "/heartbeats/{id}", 200, await tenant.ok("GET", f"/heartbeats/{hb['id']}"))


async def test_the_document_describes_each_rule_of_the_bodies_with_its_bounds():
    schemas = build_document(ROUTES)["components"]["schemas"]
    for rule in ("Fleet", "RunTime", "Cadence", "FailureRate", "Keywords"):
        assert schemas[rule]["additionalProperties"] is False
        assert all("description" in p or "anyOf" in p for p in schemas[rule]["properties"].values()), rule
    fleet = schemas["Fleet"]["properties"]
    assert fleet["instances"]["maxItems"] == 1000 and fleet["instances"]["items"]["maxLength"] == 64
    assert schemas["FailureRate"]["required"] == ["percent"]
    for body in ("HeartbeatCreate", "HeartbeatUpdate"):
        assert set(RULES) <= set(schemas[body]["properties"])


# whatever a client sends -----------------------------------------------------------------
rule_parts = {
    "fleet": {"min_instances": st.integers(-2, 10_002) | values, "min_percent": st.integers(-1, 101) | values,
              "instances": st.lists(st.text(max_size=70), max_size=5) | values, "expiry": duration_strings | values},
    "run_time": {"min": duration_strings | st.floats() | values, "max": duration_strings | st.floats() | values,
                 "limits": st.sampled_from(["alert", "mark", "x"]) | values,
                 "baseline": st.sampled_from(["off", "mark", "alert", ""]) | values},
    "cadence": {"early_tolerance": duration_strings | values, "max_runs_per_interval": st.integers(-1, 101) | values},
    "failure_rate": {"percent": st.integers(-1, 101) | values, "runs": st.integers(0, 102) | values,
                     "window": duration_strings | values, "recover_percent": st.integers(-1, 101) | values},
    "keywords": {name: st.lists(st.text(max_size=110), max_size=22) | values for name in ("success", "failure", "start")}
                | {"unmatched": st.sampled_from(["keep", "ignore", "fail", "KEEP"]) | values},
}  # fmt: skip
rule_bodies = st.fixed_dictionaries(
    {"name": st.just("fuzzed"), "interval": st.just(60)},
    optional={rule: st.fixed_dictionaries({}, optional=parts) | values for rule, parts in rule_parts.items()},
)


@PROFILE
@given(body=rule_bodies)
async def test_any_rule_body_is_created_or_refused_in_one_line(api, body):
    status, raw = await answer(api, "POST", api.url + "/heartbeats", data=utf8(dump(body)),
                               headers={"Content-Type": "application/json"})  # fmt: skip
    assert status in (201, 400, 413), raw
    if status == 201:
        made = json.loads(raw)
        assert_declared("POST", "/heartbeats", 201, made)
        for rule in RULES:
            assert (made[rule] is None) == (body.get(rule) is None)


async def test_a_fleet_with_a_cadence_is_refused_whichever_comes_first(api):
    tenant = await new_tenant(api)
    named, error = await refusal(tenant, fleet={"min_instances": 3}, cadence={"early_tolerance": 60})
    assert named == "cadence" and "fleet" in error

    hb = await heartbeat(tenant, fleet={"min_instances": 3})
    status, answer = await tenant.call(
        "PATCH", f"/heartbeats/{hb['id']}", json={"cadence": {"max_runs_per_interval": 2}}
    )
    assert (status, answer["field"]) == (400, "cadence")
    assert api.ctx.monitors[hb["id"]].cadence is None
