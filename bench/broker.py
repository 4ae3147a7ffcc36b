"""A real Kafka broker for the benchmarks: ``PINGURA_KAFKA_BOOTSTRAP`` if set, else the
Apache Kafka jars of deploy/kafka-local, started in the bench's work directory."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from bench.common import ROOT

KAFKA_LOCAL = ROOT / "deploy" / "kafka-local" / "kafka"


@contextlib.contextmanager
def kafka_broker(workdir: Path):
    if os.environ.get("PINGURA_KAFKA_BOOTSTRAP"):
        yield os.environ["PINGURA_KAFKA_BOOTSTRAP"]
        return
    directory = workdir / "kafka"
    out = subprocess.run(
        [str(KAFKA_LOCAL), "start", "--dir", str(directory)], capture_output=True, text=True, timeout=300
    )
    if out.returncode != 0:
        raise RuntimeError(f"could not start a Kafka broker: {out.stderr[-1000:]}")
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(KAFKA_LOCAL), "stop", "--dir", str(directory)], capture_output=True, timeout=60)
