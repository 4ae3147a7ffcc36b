"""``pingura apply`` and ``pingura export`` against a real ``pingura serve`` (one server for the
module; each test its own project, made with the admin key): a file with channels, heartbeats in
interval and schedule mode, a dependency and a maintenance window; its dry run; applied twice;
one field edited; pruning; export applied back; a read-only key refused."""

from __future__ import annotations

import json
import urllib.request

import pytest

from services import cli as pingura
from tests.e2e.conftest import API_KEY, Server

SECRETS = {"HOOK_TOKEN": "s3cret-header-value-0001", "SLACK_PATH": "T0001/B0001/abcdefghijklmnop1234"}
FILE = """\
version: 1
channels:
  - name: ops-hook
    kind: webhook
    config:
      url: http://127.0.0.1:9/hook
      headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
  - name: team-chat
    kind: slack
    config: {url: "http://127.0.0.1:9/services/${SLACK_PATH}"}
heartbeats:
  - name: Database backup
    slug: db-backup
    interval: 1h
    grace: 10m
    channels: [ops-hook]
    tags: [db]
  - name: Nightly report
    slug: nightly-report
    schedule: "0 2 * * *"
    timezone: Europe/Berlin
    channels: [ops-hook, team-chat]
    depends_on: [db-backup]
maintenance:
  - name: Sunday patching
    schedule: "0 3 * * 0"
    duration: 2h
    covering: {heartbeats: [nightly-report]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("config_file")
    srv = Server(base / "data", base / "serve.log")
    srv.start()
    yield srv
    srv.stop()


def call(server: Server, key: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}", method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


@pytest.fixture
def project(server, request):
    """A fresh project's read-write key."""
    return call(server, API_KEY, "POST", "/projects", {"name": request.node.name[:60]})["api_key"]


@pytest.fixture
def run(server, project, monkeypatch, capsys, tmp_path):
    """``pingura <argv>`` in this process: (exit code, stdout, stderr)."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PINGURA_URL", server.url)
    monkeypatch.setenv("PINGURA_API_KEY", project)

    def go(*argv: str, text: str | None = None) -> tuple[int, str, str]:
        if text is not None:
            (tmp_path / "pingura.yaml").write_text(text)
        code = pingura.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    go.file = str(tmp_path / "pingura.yaml")
    return go


def heartbeats(server: Server, key: str) -> dict[str, dict]:
    return {h["slug"]: h for h in call(server, key, "GET", "/heartbeats")["heartbeats"]}


def test_apply_makes_the_project_match_and_a_second_apply_changes_nothing(server, project, run):
    code, out, err = run("apply", "-f", run.file, "--dry-run", text=FILE)
    assert code == 0, err
    assert "+ channel 'ops-hook'" in out and "+ heartbeat 'nightly-report'" in out
    assert "+ maintenance window 'Sunday patching'" in out
    assert "Plan: 5 to create, 0 to change, 0 to delete." in out
    assert SECRETS["HOOK_TOKEN"] not in out and SECRETS["SLACK_PATH"] not in out  # masked in the plan
    assert call(server, project, "GET", "/channels")["channels"] == []  # a dry run changes nothing

    code, out, err = run("apply", "-f", run.file)
    assert code == 0, err
    assert "Applied: 5 created, 0 changed, 0 deleted." in out
    made = heartbeats(server, project)
    channels = {c["name"]: c["id"] for c in call(server, project, "GET", "/channels")["channels"]}
    assert made["db-backup"]["interval"] == 3600 and made["db-backup"]["grace"] == 600
    assert made["db-backup"]["channels"] == [channels["ops-hook"]]
    assert made["nightly-report"]["schedule"] == "0 2 * * *"
    assert made["nightly-report"]["timezone"] == "Europe/Berlin"
    assert made["nightly-report"]["channels"] == [channels["ops-hook"], channels["team-chat"]]
    assert made["nightly-report"]["depends_on"] == [made["db-backup"]["id"]]
    (window,) = call(server, project, "GET", "/maintenance")["windows"]
    assert window["duration"] == 7200 and window["covering"]["heartbeats"] == [made["nightly-report"]["id"]]

    code, out, err = run("apply", "-f", run.file)
    assert (code, out) == (0, "No changes: the server matches the file.\n"), err


def test_one_edited_field_is_one_change_and_prune_deletes(server, project, run):
    assert run("apply", "-f", run.file, text=FILE)[0] == 0
    edited = FILE.replace("grace: 10m", "grace: 15m").replace(
        "  - name: Nightly report",
        "  - name: Extra\n    slug: extra\n    interval: 5m\n  - name: Nightly report",
    )
    code, out, err = run("apply", "-f", run.file, "--dry-run", text=edited)
    assert code == 0, err
    assert "~ heartbeat 'db-backup' (grace)" in out
    assert "    -grace: 10m\n    +grace: 15m" in out
    assert "Plan: 1 to create, 1 to change, 0 to delete." in out
    assert run("apply", "-f", run.file)[0] == 0
    assert heartbeats(server, project)["db-backup"]["grace"] == 900

    # Without the heartbeat, the hook and the window: kept, and said so; --prune deletes them.
    smaller = """\
version: 1
channels:
  - {name: team-chat, kind: slack, config: {url: "http://127.0.0.1:9/services/${SLACK_PATH}"}}
heartbeats:
  - {name: Extra, slug: extra, interval: 5m}
  - {name: Nightly report, slug: nightly-report, schedule: "0 2 * * *", timezone: Europe/Berlin,
     channels: [team-chat]}
"""
    code, out, err = run("apply", "-f", run.file, text=smaller)
    assert code == 0, err
    assert "not in the file, kept (--prune deletes them): maintenance window 'Sunday patching', heartbeat " \
           "'db-backup', channel 'ops-hook'" in out  # fmt: skip
    assert set(heartbeats(server, project)) == {"db-backup", "extra", "nightly-report"}
    code, out, err = run("apply", "-f", run.file, "--prune")
    assert code == 0, err
    assert "- heartbeat 'db-backup'" in out and "- channel 'ops-hook'" in out
    assert set(heartbeats(server, project)) == {"extra", "nightly-report"}
    assert call(server, project, "GET", "/maintenance")["windows"] == []
    assert [c["name"] for c in call(server, project, "GET", "/channels")["channels"]] == ["team-chat"]
    assert run("apply", "-f", run.file, "--prune")[1] == "No changes: the server matches the file.\n"


def test_export_applied_back_is_an_empty_plan(server, project, run, tmp_path):
    assert run("apply", "-f", run.file, text=FILE)[0] == 0
    call(server, project, "POST", "/heartbeats", {"name": "No slug", "interval": 60})  # not managed
    exported = tmp_path / "exported.yaml"
    code, out, err = run("export", "-o", str(exported))
    assert code == 0, err
    text = exported.read_text()
    assert SECRETS["HOOK_TOKEN"] not in text and SECRETS["SLACK_PATH"] not in text
    assert "Authorization: ${PINGURA_CHANNEL_OPS_HOOK_HEADERS_AUTHORIZATION}" in text
    assert "url: ${PINGURA_CHANNEL_TEAM_CHAT_URL}" in text
    assert (
        "#   PINGURA_CHANNEL_TEAM_CHAT_URL" in text
        and "Left out, not managed by files (no slug, or covering only such): heartbeat id:hb_" in text
    )
    assert "token" not in text and "ping_url" not in text
    # The variables hold the secrets the file had: the export, applied back, changes nothing.
    env = {"PINGURA_CHANNEL_OPS_HOOK_HEADERS_AUTHORIZATION": f"Bearer {SECRETS['HOOK_TOKEN']}",
           "PINGURA_CHANNEL_TEAM_CHAT_URL": f"http://127.0.0.1:9/services/{SECRETS['SLACK_PATH']}"}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        code, out, err = run("apply", "-f", str(exported), "--prune")
    assert (code, err) == (0, "")
    assert out.startswith("not managed (no slug; never changed or pruned): heartbeat 'No slug'")
    assert out.endswith("No changes: the server matches the file.\n")
    # Without the variables: refused, naming the first one, nothing applied.
    code, out, err = run("apply", "-f", str(exported))
    assert code == 2 and "channels[0].config.headers.Authorization: environment variable " \
                          "PINGURA_CHANNEL_OPS_HOOK_HEADERS_AUTHORIZATION is not set" in err  # fmt: skip


def test_a_read_only_key_may_plan_and_export_but_not_apply(server, project, run, monkeypatch):
    reader = call(server, project, "POST", "/keys", {"name": "reader", "read_only": True})["key"]
    monkeypatch.setenv("PINGURA_API_KEY", reader)
    code, out, err = run("apply", "-f", run.file, text=FILE)
    assert code == 1 and out == ""
    assert "this API key is read-only: applying needs a read-write key" in err
    assert run("apply", "-f", run.file, "--dry-run")[0] == 0
    assert run("export")[0] == 0
    assert call(server, project, "GET", "/channels")["channels"] == []
    monkeypatch.setenv("PINGURA_API_KEY", "pk_" + "x" * 43)
    code, out, err = run("export")
    assert code == 1 and err.startswith("pingura export: the API key was refused (GET /heartbeats")


def test_a_bad_file_is_refused_naming_the_place_and_nothing_is_applied(server, project, run):
    bad = FILE.replace("grace: 10m", "grace: [10]")
    code, out, err = run("apply", "-f", run.file, text=bad)
    assert code == 2 and out == ""
    assert err.startswith("pingura apply: heartbeats[0].grace: ") and err.count("\n") == 1
    assert call(server, project, "GET", "/channels")["channels"] == []


def test_a_changed_channel_is_replaced_and_a_dependency_can_turn_around(server, project, run):
    assert run("apply", "-f", run.file, text=FILE)[0] == 0
    old = {c["name"]: c["id"] for c in call(server, project, "GET", "/channels")["channels"]}
    loose = call(
        server,
        project,
        "POST",
        "/heartbeats",
        {"name": "Loose", "interval": 60, "channels": [old["ops-hook"]]},
    )
    turned = (
        FILE.replace("/hook", "/hook2")
        .replace("    depends_on: [db-backup]\n", "")
        .replace("    tags: [db]\n", "    tags: [db]\n    depends_on: [nightly-report]\n")
    )
    code, out, err = run("apply", "-f", run.file, text=turned)
    assert code == 0, err
    assert "~ channel 'ops-hook' (replaced" in out and "    -  url: http://127.0.0.1:9/hook\n" in out
    assert f"deleted channel 'ops-hook (replaced)' ({old['ops-hook']})" in out
    now = {c["name"]: c["id"] for c in call(server, project, "GET", "/channels")["channels"]}
    assert now["ops-hook"] != old["ops-hook"] and now["team-chat"] == old["team-chat"]
    made = heartbeats(server, project)
    assert made["db-backup"]["channels"] == [now["ops-hook"]]
    assert made["nightly-report"]["channels"] == [now["ops-hook"], now["team-chat"]]
    assert made["db-backup"]["depends_on"] == [made["nightly-report"]["id"]]
    assert made["nightly-report"]["depends_on"] == []
    # A heartbeat the file does not manage is moved to the new channel too.
    assert call(server, project, "GET", f"/heartbeats/{loose['id']}")["channels"] == [now["ops-hook"]]
    assert run("apply", "-f", run.file)[1].endswith("No changes: the server matches the file.\n")
    # --force-secrets re-sends the channels holding secrets, which the server shows masked.
    code, out, err = run("apply", "-f", run.file, "--force-secrets")
    assert code == 0 and "Plan: 0 to create, 2 to change, 0 to delete." in out, err
