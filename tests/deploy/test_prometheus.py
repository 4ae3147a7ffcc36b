"""deploy/prometheus/ as Prometheus itself reads it: ``promtool`` (Prometheus 3.16, built from
the Go module proxy by tests/install_promtool.sh) checks the rules, the scrape config and a live
scrape of ``pingura serve``, and runs the rules' unit tests (deploy/prometheus/rules_test.yml)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import Server
from tests.real_services import missing_tool

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL_VERSION = "v0.316.0"  # tests/install_promtool.sh builds this one


@pytest.fixture(scope="module")
def promtool() -> str:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = cache / "pingura" / "tools" / f"promtool-{PROMTOOL_VERSION}"
    found = str(built) if built.is_file() else shutil.which("promtool")
    if found is None:
        missing_tool(f"promtool is not installed (looked for {built} and on PATH)")
    return found


def run(promtool: str, *args: str, stdin: str | None = None, cwd: Path = PROMETHEUS) -> str:
    done = subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_the_alerting_rules_load_in_prometheus(promtool):
    assert "SUCCESS: 9 rules found" in run(promtool, "check", "rules", "rules.yml")


def test_the_alerting_rules_fire_when_pingura_is_unhealthy_and_not_before(promtool):
    """Made-up series per case: each alert fires at its threshold and time, none while healthy."""
    assert "SUCCESS" in run(promtool, "test", "rules", "rules_test.yml")


def test_the_scrape_config_loads_in_prometheus(promtool, tmp_path):
    for name in ("prometheus.yml", "rules.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    (tmp_path / "pingura-metrics-token").write_text("a-token\n")  # the file the config names
    out = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS" in out and "9 rules found" in out


def test_a_broken_rule_is_refused(promtool, tmp_path):
    """The checks above can fail: promtool refuses a rule whose expression does not parse."""
    broken = (PROMETHEUS / "rules.yml").read_text().replace("> 30", "> > 30", 1)
    (tmp_path / "rules.yml").write_text(broken)
    done = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True)
    assert done.returncode != 0


async def test_a_live_scrape_passes_prometheus_own_lint(promtool, tmp_path):
    srv = Server(tmp_path / "data", tmp_path / "serve.log")
    srv.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{srv.url}/metrics") as r:
            assert r.status == 200
            exposition = await r.text()
    finally:
        srv.stop()
    assert "pingura_pings_accepted_total" in exposition
    # `check metrics` parses the exposition and lints names, units, help and label use.
    out = run(promtool, "check", "metrics", stdin=exposition)
    assert "error" not in out.lower(), out
