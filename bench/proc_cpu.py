"""CPU use from /proc: per process (threads included), the broker JVM's, the whole machine's."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (its threads included), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def broker_pid(marker: str) -> int | None:
    """The broker JVM's pid: the java process whose command line names its directory."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"java" in cmdline and marker.encode() in cmdline:
            return int(entry.name)
    return None


@dataclass
class CpuWindow:
    """Cores used (CPU seconds / wall seconds) per named pid over a window."""

    pids: dict[str, int]

    def __post_init__(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine = machine_busy()
        self._wall = time.monotonic()

    def end(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall
        used = {name: (cpu_seconds(pid) - self._start[name]) / wall for name, pid in self.pids.items()}
        busy, total = machine_busy()
        used["machine"] = (busy - self._machine[0]) / max(1, total - self._machine[1]) * (os.cpu_count() or 1)
        return used
