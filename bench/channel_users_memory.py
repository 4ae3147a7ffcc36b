"""Memory of the "used by" index of channels (services/query/api/channel_users.py) at 200,000
heartbeats, one channel each: ``python -m bench.channel_users_memory`` (tracemalloc, bytes per
heartbeat once built, and the peak while building)."""

import asyncio
import gc
import tempfile
import tracemalloc
from pathlib import Path

from services.query.api.channel_users import ChannelUsers
from services.query.catalog import WatchedConfigView
from shared.bus.local import LocalBus
from shared.events import MonitorConfig
from shared.topics import Topics

N = 200_000


def main() -> None:
    bus = LocalBus(Path(tempfile.mkdtemp()) / "b.sqlite3")
    view: WatchedConfigView[MonitorConfig] = WatchedConfigView(
        bus, Topics().monitors, MonitorConfig, lambda m: m.revision
    )
    for i in range(N):
        view.put(
            MonitorConfig(
                id=f"hb_{i:016x}",
                project_id=f"prj_{i % 50:016x}",
                name=f"nightly job {i}",
                token=f"t{i:031d}",
                interval_s=3600,
                grace_s=300,
                channels=[f"ch_{i % 20:016x}"],
                created_ms=0,
                updated_ms=0,
            )
        )
    gc.collect()
    tracemalloc.start()
    cu = ChannelUsers()
    index = asyncio.run(cu._build(view))
    cu._index = index
    gc.collect()
    cur, peak = tracemalloc.get_traced_memory()
    print(f"{N} heartbeats, one channel each: index {cur / N:.1f} B per heartbeat (peak {peak / N:.1f})")


if __name__ == "__main__":
    main()
