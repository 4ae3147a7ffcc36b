"""``pingura apply`` / ``export`` before any server answers: arguments, keys, the schema, a server
that is not there."""

from __future__ import annotations

import json

from services import cli as pingura
from services.config_file.cli import main
from services.config_file.schema import schema_text
from tests.e2e.conftest import free_port

GOOD = "version: 1\nheartbeats:\n  - {name: A, slug: a, interval: 60}\n"


def test_the_schema_is_printed_by_both_commands(capsys):
    for command in ("apply", "export"):
        assert pingura.main([command, "--schema"]) == 0
        out = capsys.readouterr().out
        assert out == schema_text() and json.loads(out)["title"] == "pingura.yaml"


def test_a_key_is_needed(capsys):
    assert main(["export"], environ={}) == 2
    assert capsys.readouterr().err == "pingura export: needs an API key: --api-key or PINGURA_API_KEY\n"


def test_a_file_is_needed_and_must_be_readable(capsys, tmp_path):
    env = {"PINGURA_API_KEY": "pk_x"}
    assert main(["apply"], environ=env) == 2
    assert "-f FILE is required" in capsys.readouterr().err
    assert main(["apply", "-f", str(tmp_path / "nowhere.yaml")], environ=env) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_bad_file_is_refused_before_the_server_is_asked(capsys, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("interval: 60", "interval: soon"))
    env = {"PINGURA_API_KEY": "pk_x", "PINGURA_URL": f"http://127.0.0.1:{free_port()}"}
    assert main(["apply", "-f", str(path)], environ=env) == 2
    assert capsys.readouterr().err.startswith(
        "pingura apply: heartbeats[0].interval: cannot read duration 'soon'"
    )


def test_a_server_that_is_not_there_is_one_line(capsys, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["apply", "-f", str(path), "--url", url, "--api-key", "pk_x"], environ={}) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pingura apply: cannot reach {url}/api/v1: ") and err.count("\n") == 1
