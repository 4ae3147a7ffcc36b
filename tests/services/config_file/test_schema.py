"""The JSON Schema for editors: generated from the file's types, committed, and it agrees with
the loader on good and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest

from services.config_file.loader import read_yaml
from services.config_file.schema import SCHEMA_PATH, build_schema, schema_text
from tests.services.config_file.test_loader import GOOD

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_schema_is_the_generated_one():
    committed = (ROOT / SCHEMA_PATH).read_text()
    assert committed == schema_text(), "regenerate: pingura export --schema > docs/pingura.schema.json"


@pytest.fixture(scope="module")
def validator():
    return jsonschema_rs.validator_for(build_schema())


def test_a_good_file_is_valid(validator):
    validator.validate(read_yaml(GOOD))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("slug: backup, ", ""),  # a heartbeat without its key
        ("interval: 1h30m, ", ""),  # neither an interval nor a schedule
        ("grace: 90", "grace: 90, token: abc"),  # never in a file
        ("grace: 90", "grace: -1"),
        ("kind: webhook", "kind: carrier-pigeon"),
        ("{name: hook, ", "{"),  # a channel without its name
        ('url: "http://127.0.0.1:9/h", ', ""),  # a webhook's required url
        ("version: 1", "version: 2"),
        ("covering: {heartbeats: [report]}", "covering: {}"),
    ],
)
def test_what_apply_refuses_an_editor_flags(validator, old, new):
    assert old in GOOD
    assert not validator.is_valid(read_yaml(GOOD.replace(old, new, 1)))


def test_the_schema_states_each_fields_rules():
    defs = build_schema()["$defs"]
    heartbeat = defs["HeartbeatSpec"]
    assert set(heartbeat["required"]) == {"name", "slug"}
    assert "token" not in heartbeat["properties"] and "description" in heartbeat["properties"]
    assert json.dumps(heartbeat["properties"]["depends_on"]).count("pattern") == 1  # slugs, not ids
