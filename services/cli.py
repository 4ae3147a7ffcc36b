"""``pingura``: run the whole system (``serve``) or one service (for the Kafka deployment)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from shared.errors import ConfigError
from shared.logging import configure_logging
from shared.settings import Settings

COMMANDS = {
    "serve": ("all four services in one process (embedded bus and chDB unless configured otherwise)",
              ("ingest", "evaluator", "notifier", "query")),
    "ingest": ("the ping endpoint", ("ingest",)),
    "evaluator": ("miss and failure detection", ("evaluator",)),
    "notifier": ("alert delivery to channels", ("notifier",)),
    "query": ("the API, history writer and queries", ("query",)),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pingura", description="Heartbeat monitoring for cron jobs and workers.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--host", help="address to listen on (default 127.0.0.1; PINGURA_HOST)")
        cmd.add_argument("--port", type=int, help="HTTP port (default 8080; PINGURA_PORT)")
        cmd.add_argument("--data-dir", type=Path, help="where data lives (default ./pingura-data; PINGURA_DATA_DIR)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env(host=args.host, port=args.port, data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"pingura: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    _, services = COMMANDS[args.command]
    if args.command != "serve" and settings.embedded:
        print(f"pingura {args.command}: set PINGURA_KAFKA_BOOTSTRAP (single services run on Kafka; "
              "use `pingura serve` for one process)", file=sys.stderr)
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


async def _run(settings: Settings, services: tuple[str, ...]) -> None:
    from services.runtime import run

    await run(settings, services)


if __name__ == "__main__":
    sys.exit(main())
