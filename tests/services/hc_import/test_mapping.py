"""Healthchecks' recorded answers (fixtures/README.txt) mapped to Pingura API bodies, and odd
answers mapped without a crash: what cannot be carried over is a reason or a warning line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.hc_import.mapping import (
    LOST,
    HcFormatError,
    items,
    map_channel,
    map_check,
    match_channel,
    match_check,
    resolve_channels,
)
from services.query.api.schemas.heartbeats import HeartbeatCreate

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def checks_by_name() -> dict[str, dict]:
    return {c["name"]: c for c in recorded("checks.json")["checks"]}


def test_a_cron_check_keeps_its_schedule_zone_tags_slug_and_description():
    plan = map_check(checks_by_name()["Nightly backup"], 1)
    assert plan.body == {
        "name": "Nightly backup",
        "token": "e5a7c435-1e9e-40d3-9a0d-ca5cfbedb85e",
        "schedule": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "tags": ["prod", "backup"],
        "description": "Dumps the database to S3.\nIf it fails: check the disk on db1.\n\tThen page the DBA.",
        "grace": 3600,
        "slug": "nightly-backup",
    }
    assert plan.hc_channels == [
        "57977520-0ce4-442c-a52a-cb986f74b947",
        "8c25748e-5906-4910-b2f7-82dc8a3426e8",
        "a807ac28-38b8-4bab-9294-06f9ad532345",
    ]
    assert plan.warnings == [] and not plan.paused


def test_a_simple_check_keeps_its_period_and_the_single_check_answer_maps_alike():
    listed = map_check(checks_by_name()["Queue worker"], 1)
    single = map_check(recorded("check_single.json"), 1)
    assert listed.body is not None and listed.body["interval"] == 300 and listed.body["grace"] == 60
    assert single.body == listed.body and single.hc_channels == listed.hc_channels


def test_what_pingura_has_no_setting_for_is_a_warning_and_an_oncalendar_schedule_a_reason():
    cert = map_check(checks_by_name()["Cert renewal"], 1)
    assert cert.body is not None and "slug" not in cert.body
    assert any("manual_resume" in w for w in cert.warnings) and any(
        "methods='POST'" in w for w in cert.warnings
    )
    monday = map_check(checks_by_name()["Monday cleanup"], 1)
    assert monday.body is None and "OnCalendar" in monday.reason


def test_a_read_only_keys_answer_has_no_uuid_so_nothing_is_created():
    for raw in recorded("checks_readonly.json")["checks"]:
        plan = map_check(raw, 1)
        assert plan.body is None and "read-only" in plan.reason


def test_integrations_map_by_kind_and_need_their_settings():
    channels = items(recorded("channels.json"), "channels")
    plans = {p.label: p for p in (map_channel(c, n, None) for n, c in enumerate(channels, 1))}
    assert {label: p.kind for label, p in plans.items()} == {
        "Ops mail": "email", "Deploy hook": "webhook", "Team Slack": "slack", "Discord": "discord",
        "Oncall chat": "telegram", "PagerDuty": "pagerduty", "Zulip stream": None,
    }  # fmt: skip
    assert all(p.body is None for p in plans.values())
    assert "--channel 'Team Slack=" in plans["Team Slack"].reason
    assert "no channel of kind 'zulip'" in plans["Zulip stream"].reason
    slack = map_channel(channels[2], 3, {"url": "https://hooks.slack.com/services/T/B/X"})
    assert slack.body == {
        "kind": "slack",
        "name": "Team Slack",
        "config": {"url": "https://hooks.slack.com/services/T/B/X"},
    }
    match_channel(slack, [{"id": "ch_1", "kind": "slack", "name": "Team Slack"}])
    assert slack.existing == "ch_1" and slack.body is None


def test_a_checks_integrations_resolve_to_pingura_ids_and_the_rest_is_one_warning():
    channels = {c["id"]: map_channel(c, 1, None) for c in recorded("channels.json")["channels"]}
    plan = map_check(checks_by_name()["Nightly backup"], 1)
    resolve_channels(plan, channels, {"57977520-0ce4-442c-a52a-cb986f74b947": "ch_mail"})
    assert plan.body is not None and plan.body["channels"] == ["ch_mail"]
    assert plan.warnings == [f"{LOST}: 'Team Slack', 'Oncall chat' (see the integrations above)"]


def test_a_check_imported_before_is_matched_by_its_token_or_its_slug():
    plan = map_check(checks_by_name()["Nightly backup"], 1)
    match_check(plan, {"e5a7c435-1e9e-40d3-9a0d-ca5cfbedb85e": "hb_1"}, {})
    assert plan.body is None and plan.existing == "hb_1"
    plan = map_check(checks_by_name()["Weekday report"], 1)
    match_check(plan, {}, {"weekday-report": "hb_2"})
    assert plan.body is None and "slug 'weekday-report'" in plan.reason


@pytest.mark.parametrize("doc", [None, [], {"checks": None}, {"checks": {}}, {"error": "x"}, "checks"])
def test_an_answer_without_its_list_is_a_format_error(doc):
    with pytest.raises(HcFormatError):
        items(doc, "checks")


def test_odd_fields_are_dropped_with_a_warning():
    raw = {**checks_by_name()["Queue worker"], "name": "  \u202eevil\x07  ", "slug": "Not A Slug",
           "tags": "ok " + "t" * 60 + " ok", "desc": "a\x00b\r" + "c" * 10_000, "grace": -5}  # fmt: skip
    plan = map_check(raw, 3)
    assert plan.body is not None
    assert plan.body["name"] == "evil" and "slug" not in plan.body and plan.body["tags"] == ["ok"]
    assert plan.body["description"].startswith("ab\nccc") and len(plan.body["description"]) == 10_000
    assert "grace" not in plan.body and len(plan.warnings) == 6, plan.warnings
    assert map_check({**raw, "name": ""}, 3).body["name"] == "unnamed e9116903"


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["name", "slug", "tags", "desc", "timeout", "grace", "schedule", "tz", "uuid", "channels", "status",
          "manual_resume", "methods", "filter_body"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(list(checks_by_name().values())),
    changes=st.dictionaries(st.sampled_from(FIELDS), JSONISH | st.text(max_size=200), max_size=6),
)
def test_any_odd_check_maps_to_a_body_the_api_takes_or_to_a_reason(base, changes):
    plan = map_check({**base, **changes}, 1)
    if plan.body is None:
        assert plan.reason
    else:
        msgspec.convert(plan.body, HeartbeatCreate)  # what is planned, the server takes
    assert all(isinstance(w, str) and "\n" not in w for w in plan.warnings)


@settings(max_examples=200, deadline=None)
@given(raw=JSONISH, config=st.none() | JSONISH)
def test_any_odd_integration_or_check_item_never_crashes(raw, config):
    assert map_channel(raw, 1, config).label
    assert map_check(raw, 1).label


def test_a_paused_check_is_planned_paused_and_one_without_a_period_is_skipped():
    base = checks_by_name()["Queue worker"]
    assert map_check({**base, "status": "paused"}, 1).paused and not map_check(base, 1).paused
    bare = {k: v for k, v in base.items() if k != "timeout"}
    assert map_check(bare, 1).body is None and "neither a period" in map_check(bare, 1).reason
