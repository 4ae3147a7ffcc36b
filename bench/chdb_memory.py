"""What chDB holds in a process while the history writer feeds it: ``python -m bench.chdb_memory
[ROWS] [--batch N]``.

The million soak's RSS grows by about 500 MiB through its 12 minutes; this separates chDB's part.
A fresh process opens chDB (the engine ``pingura serve`` embeds), makes the tables with the
history writer's own code and inserts check-ins as the writer does, a batch per second's worth
of the soak's pings (3,300) over a million heartbeats, with a message and a duration like the
soak's. RSS (``VmRSS``) is
read before opening, once open, and after every tenth of the rows. chDB allows one engine per
process, so this runs in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import msgspec

from bench.checkin_bytes import checkin
from bench.common import Table
from services.query.history_tables import insert_events, migrate
from shared.clickhouse import open_client
from shared.clock import now_ms
from shared.settings import Settings

SOAK_ROWS = 2_400_000
"""The million soak's check-ins in its 719 s of load."""
SOAK_BATCH = 3_300
HEARTBEATS = 1_000_000
"""The soak's heartbeats: each row is one of them (7919 is prime: consecutive rows spread)."""


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def measure(workdir: Path, rows: int, batch: int) -> dict:
    """RSS before opening, once open, and ``(rows inserted, RSS)`` after each tenth."""
    before = rss_bytes()
    ch = open_client(Settings(data_dir=workdir, clickhouse_url=None))
    try:
        await migrate(ch, retention_days=30)
        opened, steps = rss_bytes(), []
        start, every = now_ms(), max(batch, rows // 10)
        for lo in range(0, rows, batch):
            events = [
                msgspec.structs.replace(
                    checkin(n, start + n // 3),
                    monitor_id=f"hb_{n * 7919 % HEARTBEATS:016x}",
                    status="ok",
                    message=f"backup {n} done",
                    duration_s=41.2,
                )
                for n in range(lo, min(rows, lo + batch))
            ]
            await insert_events(ch, events, dedup_token=f"bench-{lo}")
            done = min(rows, lo + batch)
            if done % every < batch or done == rows:
                steps.append((done, rss_bytes()))
        return {"before": before, "opened": opened, "steps": steps, "batch": batch}
    finally:
        await ch.close()


def table(result: dict) -> Table:
    mib = 2**20
    out = Table(
        f"chDB's RSS while the history writer inserts check-ins ({result['batch']:,} a batch)",
        ["after", "RSS (MiB)", "since opened (MiB)"],
    )
    out.add("before opening", result["before"] / mib, "")
    out.add("opened, tables made", result["opened"] / mib, 0)
    for done, rss in result["steps"]:
        out.add(f"{done:,} rows", rss / mib, (rss - result["opened"]) / mib)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chdb_memory")
    parser.add_argument("rows", nargs="?", type=int, default=SOAK_ROWS)
    parser.add_argument("--batch", type=int, default=SOAK_BATCH)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        result = asyncio.run(measure(Path(workdir), args.rows, args.batch))
    print(table(result).render())


if __name__ == "__main__":
    main()
