"""Real services for the tests: Docker (testcontainers) when a daemon answers, else local ones.

Finding a real Kafka broker for the tests, in this order:

1. ``PINGURA_KAFKA_BOOTSTRAP``: a broker someone already runs;
2. testcontainers' Kafka, when a Docker daemon answers;
3. the Apache Kafka jars from Maven Central (``deploy/kafka-local``), started here.

When none can be had the Kafka tests skip with the reason, except under
``PINGURA_REQUIRE_KAFKA=1`` (set by ``.ci/run``), where that is a failure: CI always runs
them on a real broker.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = ROOT / "deploy" / "kafka-local" / "kafka"


def missing_tool(reason: str) -> NoReturn:
    """A program a test drives is not here: a failure under CI (``make test`` installs it
    there: tests/install_tools.sh), a skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: `make test` installs it (tests/install_tools.sh)")
    pytest.skip(f"{reason} (`make test` installs it when it can: tests/install_tools.sh)")


def unavailable(reason: str):
    if os.environ.get("PINGURA_REQUIRE_KAFKA") == "1":
        pytest.fail(f"a real Kafka broker is required here (PINGURA_REQUIRE_KAFKA=1): {reason}")
    pytest.skip(f"no Kafka broker: {reason}")


def docker_answers() -> bool:
    """Whether a Docker daemon answers a ping (testcontainers needs one)."""
    try:
        import docker
        from requests import RequestException
    except ImportError:
        return False
    try:
        docker.from_env(timeout=2).ping()
    except (docker.errors.DockerException, RequestException):  # no daemon, no socket, or it did not answer
        return False
    return True


def container_failures() -> tuple[type[BaseException], ...]:
    """What starting a testcontainers container raises when Docker answers but cannot run it:
    the daemon refuses (``DockerException``), the connection drops (``RequestException``),
    the container exits or never gets ready (testcontainers' ``RuntimeError``s, ``TimeoutError``),
    or a port or file cannot be reached (``OSError``)."""
    import docker
    from requests import RequestException

    return docker.errors.DockerException, RequestException, RuntimeError, TimeoutError, OSError


class LocalBroker:
    """A broker from deploy/kafka-local in its own directory; can be stopped and started again."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.bootstrap = ""

    def start(self) -> str:
        out = subprocess.run(
            [str(KAFKA_LOCAL), "start", "--dir", str(self.directory)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode != 0:
            raise RuntimeError(f"kafka-local start failed: {out.stderr[-2000:]}")
        self.bootstrap = out.stdout.strip().splitlines()[-1]
        return self.bootstrap

    def stop(self) -> None:
        subprocess.run(
            [str(KAFKA_LOCAL), "stop", "--dir", str(self.directory)],
            capture_output=True,
            text=True,
            timeout=60,
        )


def start_local_broker(directory: Path) -> LocalBroker:
    broker = LocalBroker(directory)
    try:
        broker.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        unavailable(str(exc))
    return broker
