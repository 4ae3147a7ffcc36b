"""``pingura apply -f pingura.yaml [--dry-run] [--prune]`` and ``pingura export [-o FILE]``: a
project's heartbeats, channels and maintenance windows kept in a file, through the HTTP API of a
running Pingura (``--url``, ``--api-key``; ``PINGURA_URL``, ``PINGURA_API_KEY``).

Exit codes: 0 done (or nothing to do), 1 the server refused or could not be reached (or the file
and the server cannot agree), 2 a bad file or bad arguments (one line naming the place in the file;
nothing applied).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.config_file import state
from services.config_file.apply import execute
from services.config_file.client import ApiError, Client
from services.config_file.loader import ENV_REFERENCE, FileError, load
from services.config_file.plan import PlanError, ServerState, dump, make_plan, render
from services.config_file.schema import schema_text

DEFAULT_URL = "http://127.0.0.1:8080"


def parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"pingura {command}")
    if command == "apply":
        p.description = (
            "Make a project match a pingura.yaml: heartbeats by slug, channels and windows by name."
        )
        p.add_argument("-f", "--file", help="the file (- for standard input)")
        p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        p.add_argument("--prune", action="store_true", help="delete heartbeats, channels and windows the file does "
                       "not name (heartbeats without a slug are never deleted)")  # fmt: skip
        p.add_argument("--force-secrets", action="store_true", help="replace every channel with a secret setting "
                       "(the server shows secrets masked, so a changed secret is seen only if its last 4 characters "
                       "changed)")  # fmt: skip
    else:
        p.description = (
            "Write a project's heartbeats, channels and windows as a pingura.yaml (secrets left out)."
        )
        p.add_argument("-o", "--output", help="write here (default: standard output)")
    p.add_argument("--url", help=f"the Pingura (default: PINGURA_URL, or {DEFAULT_URL})")
    p.add_argument("--api-key", help="an API key (default: PINGURA_API_KEY); read-write to apply")
    p.add_argument("--schema", action="store_true", help="print the file's JSON Schema and stop")
    return p


def main(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    command, rest = argv[0], argv[1:]
    env = os.environ if environ is None else environ
    args = parser(command).parse_args(rest)
    if args.schema:
        sys.stdout.write(schema_text())
        return 0
    key = args.api_key or env.get("PINGURA_API_KEY", "")
    if not key:
        return _fail(command, "needs an API key: --api-key or PINGURA_API_KEY", 2)
    client = Client(args.url or env.get("PINGURA_URL") or DEFAULT_URL, key)
    try:
        if command == "export":
            return _export(client, args.output)
        return _apply(client, args, env)
    except FileError as exc:
        return _fail(command, str(exc), 2)
    except (ApiError, PlanError) as exc:
        return _fail(command, _explained(exc), 1)


def _fail(command: str, message: str, code: int) -> int:
    print(f"pingura {command}: {message}", file=sys.stderr)
    return code


def _explained(exc: Exception) -> str:
    if isinstance(exc, ApiError) and exc.status == 401:
        return f"the API key was refused ({exc})"
    if isinstance(exc, ApiError) and exc.status == 403:
        return f"this API key may not do that ({exc}); applying needs a read-write key"
    return str(exc)


def _apply(client: Client, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if not args.file:
        return _fail("apply", "-f FILE is required (the pingura.yaml to apply; - for standard input)", 2)
    try:
        text = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        return _fail("apply", f"cannot read {args.file}: {exc.strerror}", 2)
    desired = load(text, env)  # a bad file is refused before the server is asked anything
    session = client.session()
    if session["read_only"] and not args.dry_run:
        return _fail("apply", "this API key is read-only: applying needs a read-write key "
                     "(`pingura keys create`); --dry-run only reads", 1)  # fmt: skip
    server = client.read_state()
    plan = make_plan(desired, server, prune=args.prune, force_secrets=args.force_secrets)
    sys.stdout.write(render(plan))
    if args.dry_run or plan.empty:
        return 0
    done: list[str] = []

    def say(line: str) -> None:
        done.append(line)
        print(line, flush=True)

    try:
        execute(plan, desired, server, client, say)
    except ApiError as exc:
        print(f"stopped after {len(done)} step(s); apply again to finish", file=sys.stderr)
        raise exc from None
    print(f"Applied: {plan.count('create')} created, {plan.count('change')} changed, "
          f"{plan.count('delete')} deleted.")  # fmt: skip
    return 0


def _escaped(value: Any) -> Any:
    """Text that would read as a reference (``${X}``) written as ``$${X}``, so apply keeps it as is."""
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, str):
        return ENV_REFERENCE.sub(lambda m: "$" + m[0], value)
    return value


def export_text(server: ServerState, url: str) -> str:
    names = state.Names(server.channels, server.heartbeats)
    channels, variables = [], []
    for answer in server.channels:
        shown, named = state.channel_export(_escaped(answer))
        channels.append(shown)
        variables += named
    heartbeats = sorted((h for h in server.heartbeats if h.get("slug")), key=lambda h: h["slug"])
    windows = [state.current_window(w, names) for w in server.windows]
    document: dict[str, Any] = {
        "version": 1,
        "channels": channels,
        "heartbeats": [
            _escaped(state.heartbeat_file_form(state.current_heartbeat(h, names))) for h in heartbeats
        ],
        "maintenance": [
            _escaped(state.window_file_form(w)) for w in windows if not state.unmanaged_window(w)
        ],
    }
    lines = [f"# Written by `pingura export` from {url}; apply with `pingura apply -f FILE`."]
    if variables:
        lines.append(
            "# Secrets are not exported: each is an ${ENV_VAR} reference; set these before applying:"
        )
        lines += [f"#   {name}" for name in variables]
    unmanaged = [f"heartbeat {state.UNMANAGED}{h['id']}" for h in server.heartbeats if not h.get("slug")]
    unmanaged += [f"window {w['name']!r}" for w in windows if state.unmanaged_window(w)]
    if unmanaged:
        lines.append(
            "# Left out, not managed by files (no slug, or covering only such): " + ", ".join(unmanaged)
        )
    return "\n".join(lines) + "\n" + dump(document)


def _export(client: Client, output: str | None) -> int:
    text = export_text(client.read_state(), client.base.removesuffix("/api/v1"))
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    return 0
