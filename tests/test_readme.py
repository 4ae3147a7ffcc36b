"""README.md's commands work as written in a fresh clone.

A newcomer copies lines from the README into a shell in the clone after ``make run``: the
``pingura`` command is then ``.venv/bin/pingura`` (the virtual environment ``make`` made is
not on their PATH), and the key commands must do what their comments say.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.e2e.conftest import API_KEY, Server

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
VENV = Path(sys.executable).parent.parent


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, flags=re.S)


def commands() -> list[str]:
    """Every command line of the shell blocks, and every inline `pingura ... --option` (a bare
    `pingura serve` in prose names the program, it is not a line to type)."""
    lines = [line.split("#")[0].strip() for block in shell_blocks() for line in block.splitlines()]
    inline = re.findall(r"`((?:\.venv/bin/)?pingura [^`]* --[^`]*)`", README)
    return [line for line in lines if line] + inline


def invoked_programs(line: str) -> list[str]:
    """The first word of each command in ``line`` (also inside ``$(...)`` and after ``;``)."""
    parts = re.split(r"\$\(|;|&&|\|\|?", line)
    words = [part.split()[0] for part in parts if part.split()]
    return [word for word in words if "=" not in word or word.startswith(".")]


def test_every_pingura_command_in_the_readme_names_the_clones_virtualenv():
    bare = [line for line in commands() if "pingura" in invoked_programs(line)]
    assert bare == [], (
        f"`pingura` is not on a new user's PATH after `make run`; write .venv/bin/pingura: {bare}"
    )
    assert any(".venv/bin/pingura" in invoked_programs(line) for line in commands())


def keys_block() -> str:
    (block,) = [block for block in shell_blocks() if "keys create" in block]
    return block


def test_the_readmes_key_commands_run_as_written_beside_a_running_server(tmp_path):
    """The key block, verbatim but for the revoke line's placeholder id, in a folder laid out
    like a clone after ``make run``: its ``.venv`` and a ``pingura-data`` a server runs on."""
    (tmp_path / ".venv").symlink_to(VENV)
    server = Server(tmp_path / "pingura-data", tmp_path / "serve.log")
    server.start()
    try:
        block = keys_block()
        runnable = "\n".join(line for line in block.splitlines() if "key_..." not in line)
        script = f'set -euo pipefail\n{runnable}\necho "KEY=$KEY"\necho "OPS_KEY=$OPS_KEY"\n'
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGURA_")}
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        printed = dict(
            line.split("=", 1) for line in done.stdout.splitlines() if line.startswith(("KEY=", "OPS_KEY="))
        )
        assert printed["KEY"].startswith("pk_") and printed["OPS_KEY"].startswith("pk_")
        assert "deploy" in done.stdout  # `keys list --project ops` lists the key just made

        def me(key: str) -> dict:
            request = urllib.request.Request(
                f"{server.url}/api/v1/projects/me", headers={"Authorization": f"Bearer {key}"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        assert me(printed["KEY"])["name"] == me(API_KEY)["name"] == "default"
        assert me(printed["OPS_KEY"])["name"] == "ops"
    finally:
        server.stop()
