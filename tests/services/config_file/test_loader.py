"""Reading a pingura.yaml: the API's own checks with the place in the file, ``${ENV_VAR}``
references, and YAML that could hang or crash a reader refused."""

from __future__ import annotations

import time

import pytest

from services.config_file.loader import MAX_DEPTH, FileError, expand, load, read_yaml
from services.config_file.model import HeartbeatSpec

GOOD = """\
version: 1
channels:
  - {name: hook, kind: webhook, config: {url: "http://127.0.0.1:9/h", headers: {Authorization: "${TOKEN}"}}}
heartbeats:
  - {name: Backup, slug: backup, interval: 1h30m, grace: 90, channels: [hook], description: "Call Ann"}
  - {name: Report, slug: report, schedule: "@daily", timezone: Europe/Berlin, depends_on: [backup]}
maintenance:
  - {name: Patch, starts_at: 2030-03-29T00:30:00Z, ends_at: 2030-03-29T02:30:00Z, covering: {heartbeats: [report]}}
"""


def test_a_good_file_reads_as_the_api_would_read_it():
    desired = load(GOOD, {"TOKEN": "Bearer abc"})
    assert desired.channels["hook"].config["headers"] == {"Authorization": "Bearer abc"}
    spec, body = desired.heartbeats["backup"]
    assert (body.interval, body.grace, spec.channels, body.description) == (5400, 90, ["hook"], "Call Ann")
    spec, body = desired.heartbeats["report"]
    assert (spec.depends_on, body.schedule) == (["backup"], "@daily")
    spec, window = desired.maintenance["Patch"]
    # YAML's unquoted time is kept as the text of a time, which the API reads.
    assert window.starts_at == "2030-03-29T00:30:00+00:00" and spec.covering.heartbeats == ["report"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("interval: 1h30m", "interval: 1h30x"), "heartbeats[0].interval: cannot read duration '1h30x'"),
        (("grace: 90", "grace: [90]"), "heartbeats[0].grace: must be a number of seconds or a duration"),
        (("slug: report", "slug: Report!"), "heartbeats[1].slug: required: 1-64 lower-case letters"),
        (("slug: report, ", ""), "heartbeats[1].slug: required"),
        (("interval: 1h30m, ", ""), "heartbeats[0].interval: required"),
        (
            ('schedule: "@daily"', 'schedule: "@daily", interval: 60'),
            "heartbeats[1].schedule: give a schedule or",
        ),
        (("timezone: Europe/Berlin", "timezone: Mars/Base"), "heartbeats[1].timezone:"),
        (
            ("grace: 90", "grace: 90, token: 0b9e1c2a-54c4-4b36-8ff5-2b6c1c7e6a10"),
            "heartbeats[0].token: unknown field",
        ),
        (
            ("grace: 90", "grace: 90, fleet: {min_instances: 0}"),
            "heartbeats[0].fleet: min_instances: must be",
        ),
        (
            ("kind: webhook", "kind: carrier-pigeon"),
            "channels[0].kind: unknown channel kind 'carrier-pigeon'",
        ),
        (('url: "http://127.0.0.1:9/h", ', ""), "channels[0].config.url: required"),
        (
            ("{name: Report, slug: report,", "{name: Report, slug: backup,"),
            "heartbeats[1].slug: 'backup' is already",
        ),
        (
            ("covering: {heartbeats: [report]}", "covering: {}"),
            "maintenance[0].covering: give heartbeats, tags",
        ),
        (("version: 1", "version: 2"), "version: must be 1"),
        (("maintenance:", "windows:"), "windows: unknown section"),
        (
            ("${TOKEN}", "${UNSET_ONE}"),
            "channels[0].config.headers.Authorization: environment variable UNSET_ONE",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_the_place(change, error):
    old, new = change
    assert old in GOOD
    with pytest.raises(FileError) as refused:
        load(GOOD.replace(old, new, 1), {"TOKEN": "t"})
    assert str(refused.value).startswith(error), str(refused.value)
    assert "\n" not in str(refused.value)


def test_references_expand_and_an_escaped_one_stays_text():
    assert expand({"a": ["x ${A}-${B}", "$${A}", 3]}, {"A": "1", "B": "2"}) == {"a": ["x 1-2", "${A}", 3]}


def test_a_reference_is_expanded_once_not_again():
    assert expand("${A}", {"A": "${B}", "B": "no"}) == "${B}"


def test_yaml_that_is_not_yaml_names_the_line():
    with pytest.raises(FileError, match=r"^line 3, column \d+: not valid YAML"):
        read_yaml("version: 1\nheartbeats: [\n")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000 + "]" * 10_000,
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
        "{a: " * 10_000 + "1" + "}" * 10_000,
    ],
)
def test_deep_nesting_is_refused_at_once(text):
    started = time.monotonic()
    with pytest.raises(FileError, match=f"nested deeper than {MAX_DEPTH} levels"):
        read_yaml(text)
    assert time.monotonic() - started < 5  # refused while reading, not after exhausting the stack


def test_an_alias_bomb_is_refused_before_it_is_expanded():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    with pytest.raises(FileError, match=r"^line 1: anchors and aliases"):
        read_yaml("\n".join(lines))


def test_a_file_too_large_is_refused_unread():
    with pytest.raises(FileError, match="larger than 4 MiB"):
        read_yaml("#" * (4 * 1024 * 1024 + 1))


def test_only_plain_data_comes_out_of_yaml():
    # safe_load: no Python objects; a tag asking for one is refused.
    with pytest.raises(FileError, match="not valid YAML"):
        read_yaml("version: !!python/object/apply:os.system [echo hi]")


def test_the_heartbeat_type_is_the_api_body_with_the_files_keys():
    fields = set(HeartbeatSpec.__struct_fields__)
    assert {
        "slug",
        "name",
        "interval",
        "schedule",
        "depends_on",
        "channels",
        "description",
        "fleet",
    } <= fields
    assert "token" not in fields
