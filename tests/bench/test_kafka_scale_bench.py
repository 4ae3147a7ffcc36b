"""The pieces of bench/kafka_scale.py that need no broker: the check-in row size in chDB, the
backlog it writes, and CPU read from /proc. No timing is asserted."""

import json
import subprocess
import sys
from collections import Counter

from bench import checkin_bytes, kafka_fill
from bench.common import ROOT
from bench.proc_cpu import CpuWindow
from shared.bus.base import partition_for
from shared.events import Alert, Ping, Tick, decode

MEASURE = "import asyncio, json, pathlib, sys; from bench import checkin_bytes; " + (
    "print(json.dumps(asyncio.run(checkin_bytes.measure(pathlib.Path(sys.argv[1]), 20_000))))"
)


def test_the_row_size_is_read_from_the_merged_table(tmp_path):
    # A process of its own, as the benchmark runs it: chDB allows one engine per process, and
    # this test's worker may have bound it to another directory already.
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])

    assert result["rows"] == 20_000
    assert 0 < result["compressed_per_row"] < result["uncompressed_per_row"]
    assert "20,000 rows" in checkin_bytes.table(result).render()


def test_the_backlog_has_the_records_asked_for_each_in_its_partition():
    records = list(kafka_fill.checkins(monitors=1_000, events=2_000, partitions=4))

    assert len(records) == 2_000
    kinds: Counter[str] = Counter()
    ticks_per_partition: Counter[int] = Counter()
    for key, partition, value in records:
        event = decode(value)
        kinds[type(event).__name__] += 1
        if isinstance(event, Ping):
            assert key == event.monitor_id and partition == partition_for(key, 4)
        else:
            assert isinstance(event, Tick) and key == ""
            ticks_per_partition[partition] += 1
    assert kinds["Ping"] > kinds["Tick"] > 0
    assert len(set(ticks_per_partition.values())) <= 2 and set(ticks_per_partition) == {0, 1, 2, 3}


def test_alerts_have_ids_of_their_own_from_any_starting_number():
    first = [decode(v) for _, _, v in kafka_fill.alerts(10, 0, 30, 4)]
    later = [decode(v) for _, _, v in kafka_fill.alerts(10, 30, 30, 4)]

    ids = [a.id for a in first + later if isinstance(a, Alert)]
    assert len(ids) == len(set(ids)) == 60


def test_cpu_is_counted_for_a_process_that_works():
    import os

    window = CpuWindow({"me": os.getpid()})
    total = 0
    for n in range(3_000_000):
        total += n * n
    used = window.end()

    assert total > 0 and used["me"] > 0 and used["machine"] > 0
