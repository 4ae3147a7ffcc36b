"""``pingura``: run the whole system (``serve``) or one service (for the Kafka deployment);
manage API keys (``keys``); wrap a job (``run``, the standalone ``pingura_run`` package)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shared.errors import ConfigError
from shared.logging import configure_logging
from shared.private_files import PRIVATE_UMASK
from shared.settings import Settings

COMMANDS = {
    "serve": (
        "all four services in one process (embedded bus and chDB unless configured otherwise)",
        ("ingest", "evaluator", "notifier", "query"),
    ),
    "ingest": ("the ping endpoint", ("ingest",)),
    "evaluator": ("miss and failure detection", ("evaluator",)),
    "notifier": ("alert delivery to channels", ("notifier",)),
    "query": ("the API, history writer and queries", ("query",)),
}
TOOLS = {
    "apply": (
        "make a project match a pingura.yaml (heartbeats, channels, windows); --dry-run shows the plan",
        "services.config_file.cli",
    ),
    "export": (
        "write a project's heartbeats, channels and windows as a pingura.yaml (no secrets)",
        "services.config_file.cli",
    ),
    "import": ("move checks and integrations in from Healthchecks (its API v3)", "services.hc_import.cli"),
}
"""Client commands that talk to a running Pingura's API: ``main`` of each module gets argv."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pingura", description="Heartbeat monitoring for cron jobs and workers.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--host", help="address to listen on (default 127.0.0.1; PINGURA_HOST)")
        cmd.add_argument("--port", type=int, help="HTTP port (default 8080; PINGURA_PORT)")
        cmd.add_argument(
            "--data-dir", type=Path, help="where data lives (default ./pingura-data; PINGURA_DATA_DIR)"
        )
    # Listed for --help; main() hands `pingura run ...` to pingura_run before parsing.
    sub.add_parser(
        "run", help="wrap a job: ping /start, run it, ping its exit code and output", add_help=False
    )
    # Listed for --help; main() hands these to their own modules, which parse their arguments.
    for name, (help_text, _) in TOOLS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    _keys_parser(
        sub.add_parser("keys", help="create, list and revoke API keys (while `pingura serve` runs, or not)")
    )
    return p


def _keys_parser(keys: argparse.ArgumentParser) -> None:
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key and print it (alone) on stdout")
    create.add_argument(
        "--project", help='an existing project\'s name (default: the admin project, "default")'
    )
    create.add_argument("--create-project", action="store_true", help="make the --project if there is none")
    create.add_argument("--read-only", action="store_true", help="may only read; never sees ping URLs")
    create.add_argument("--name", default="cli", help="what the key is for (default: cli)")
    listing = actions.add_parser("list", help="the live keys, one a line: id, project, access, created, name")
    listing.add_argument("--project", help="only this project's keys")
    revoke = actions.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("key_id")
    for action in (create, listing, revoke):
        action.add_argument(
            "--data-dir", type=Path, help="the server's data dir (default ./pingura-data; PINGURA_DATA_DIR)"
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:  # the job's own arguments (and umask) are not pingura's
        from pingura_run import main as run_job

        return run_job(argv[1:], prog="pingura run")
    if argv[:1] and argv[0] in TOOLS:
        import importlib

        return int(importlib.import_module(TOOLS[argv[0]][1]).main(argv))
    # Whatever pingura writes is its own: the data dir holds every token and secret, and
    # chDB and SQLite create their files themselves, at any time, with the process's umask.
    os.umask(PRIVATE_UMASK)
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            host=getattr(args, "host", None), port=getattr(args, "port", None), data_dir=args.data_dir
        )
    except ConfigError as exc:
        print(f"pingura: {exc}", file=sys.stderr)
        return 2
    if args.command == "keys":
        # A command's output is its answer; the bus's info lines would only bury it.
        configure_logging("debug" if settings.log_level == "debug" else "warning", settings.log_format)
        return asyncio.run(_keys(settings, args))
    configure_logging(settings.log_level, settings.log_format)
    _, services = COMMANDS[args.command]
    if args.command != "serve" and settings.embedded:
        print(
            f"pingura {args.command}: set PINGURA_KAFKA_BOOTSTRAP (single services run on Kafka; "
            "use `pingura serve` for one process)",
            file=sys.stderr,
        )
        return 2
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(_run(settings, services))
    except ConfigError as exc:
        print(f"pingura: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from services.query.control import ControlError, perform

    if args.action == "create" and args.create_project and args.project is None:
        print("pingura keys create: --create-project needs --project NAME", file=sys.stderr)
        return 2
    try:
        if args.action == "create":
            made = await perform(
                settings,
                "create",
                project=args.project,
                name=args.name,
                read_only=args.read_only,
                create_project=args.create_project,
            )
            print(made["key"])  # alone on stdout: KEY=$(pingura keys create ...)
            print(
                f"{made['id']} ({_access(made)}) in project {_shown(made['project'])} ({made['project_id']})",
                file=sys.stderr,
            )
        elif args.action == "list":
            for key in (await perform(settings, "list", project=args.project))["keys"]:
                print(
                    "\t".join(
                        (
                            key["id"],
                            _shown(key["project"] or key["project_id"]),
                            _access(key),
                            key["created_at"],
                            _shown(key["name"]),
                        )
                    )
                )
        else:
            await perform(settings, "revoke", id=args.key_id)
            print(f"revoked {args.key_id}", file=sys.stderr)
    except (ControlError, ConfigError) as exc:
        print(f"pingura keys {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _shown(name: str) -> str:
    """A name as printed: one saved before names were checked may hold characters that would
    drive the terminal (ESC, BEL, bidi overrides); they are printed as escapes instead."""
    from services.query.validation import UNSAFE_IN_NAMES

    return UNSAFE_IN_NAMES.sub(lambda m: m.group().encode("unicode_escape").decode(), name)


def _access(key: dict) -> str:
    return "read-only" if key["read_only"] else "read-write"


async def _run(settings: Settings, services: tuple[str, ...]) -> None:
    from services.runtime import run

    await run(settings, services)


if __name__ == "__main__":
    sys.exit(main())
