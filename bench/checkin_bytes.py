"""Bytes per check-in row in ClickHouse (chDB, the engine `pingura serve` embeds; the same
MergeTree storage as a server): ``python -m bench.checkin_bytes [ROWS]``.

The history writer's own code makes the table (``migrate``) and writes the rows
(``insert_events``); the check-ins: heartbeats checking in once per 30 s, each from its own address with
one of a few clients, ids as ingest makes them, no body. After
``OPTIMIZE ... FINAL`` (one merged part, as the table ends up), ``system.parts`` gives the
bytes on disk (compressed) and before compression, per row.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import msgspec

from bench.common import Table
from bench.evaluator import ping
from services.query.history_tables import insert_events, migrate
from shared.clickhouse import open_client
from shared.clock import now_ms
from shared.events import Ping
from shared.ids import new_ping_id
from shared.settings import Settings

HEARTBEATS = 10_000
CYCLE_MS = 30_000
BATCH = 20_000


USER_AGENTS = ("curl/8.5.0", "Wget/1.21.4", "python-requests/2.32.3", "pingura-run/1.0")


def checkin(n: int, at_ms: int) -> Ping:
    """Heartbeat ``n % HEARTBEATS``'s check-in: an id as ingest makes them, the host's own
    address and one of a few clients (a fleet is not one host)."""
    i = n % HEARTBEATS
    return msgspec.structs.replace(
        ping(i, at_ms, n),
        id=new_ping_id(at_ms),
        source_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
        user_agent=USER_AGENTS[i % len(USER_AGENTS)],
    )


async def measure(workdir: Path, rows: int) -> dict[str, float]:
    ch = open_client(Settings(data_dir=workdir, clickhouse_url=None))
    try:
        await migrate(ch, retention_days=30)
        start = now_ms() - rows // HEARTBEATS * CYCLE_MS
        step = CYCLE_MS / HEARTBEATS
        for lo in range(0, rows, BATCH):
            events = [checkin(n, int(start + n * step)) for n in range(lo, min(rows, lo + BATCH))]
            await insert_events(ch, events, dedup_token=f"bench-{lo}")
        await ch.command("OPTIMIZE TABLE checkins FINAL")
        found = await ch.query(
            "SELECT sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.parts"
            " WHERE database = currentDatabase() AND table = 'checkins' AND active"
        )
        count, compressed, uncompressed = (int(v) for v in found[0])
        return {
            "rows": count,
            "compressed_per_row": compressed / count,
            "uncompressed_per_row": uncompressed / count,
        }
    finally:
        await ch.close()


def table(result: dict[str, float]) -> Table:
    out = Table(
        f"Check-in row in ClickHouse (chDB): {result['rows']:,} rows of {HEARTBEATS:,} heartbeats, merged",
        ["rows", "bytes per row on disk (compressed)", "bytes per row uncompressed"],
    )
    out.add(result["rows"], result["compressed_per_row"], result["uncompressed_per_row"])
    out.notes.append(
        "Pings without a body (no message, no output): a job's output, when sent, adds its own compressed size."
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    rows = int(args[0]) if args else 1_000_000
    with tempfile.TemporaryDirectory(prefix="pingura-bench-checkin-bytes-") as workdir:
        print(table(asyncio.run(measure(Path(workdir), rows))).render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
