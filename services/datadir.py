"""One process at a time owns an embedded data dir.

The embedded bus is a SQLite file whose offsets its owner assigns in memory: a second
writer would hand out the same offsets twice. ``pingura serve`` holds this lock for as
long as it runs; ``pingura keys`` holds it for a moment when no server answers.

The dir holds every secret Pingura has (ping tokens, keys, webhook secrets, job output), so
whoever owns it makes it private first: 0700, group and other permissions taken off what is
already there, and umask 077 while it is held (:mod:`shared.private_files` says why).

Every file Pingura keeps there is named below, once; the modules that write them import
the name from here. Two are named by the shared layer, which cannot import services: the
embedded log (:data:`BUS_FILE`, :mod:`shared.bus.open`) and chDB's ``clickhouse/``
directory (:func:`shared.clickhouse.open_client`).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.bus.open import BUS_FILE
from shared.errors import PinguraError
from shared.private_files import make_private, private_umask

LOCK_FILE = "owner.lock"
"""Held (flock) by the owner, see :func:`owning`."""
ADMIN_KEY_FILE = "admin-api-key"
"""The admin key made on the first start, for the operator (0600; only its hash is stored)."""
TOKEN_SNAPSHOT_FILE = "ingest-tokens.snapshot"
"""The ingest token index as of a log offset: a restart reads it instead of the whole topic."""
SESSION_SECRET_FILE = "session-secret"
"""The key that signs the dashboard's session cookies."""
CONTROL_SOCKET = "control.sock"
"""Where the serving process answers ``pingura keys``."""
LINK_SOCKET = "bus.sock"
"""The bus owner's link, for the ingest processes (``PINGURA_INGEST_PROCESS=N``)."""
HTTP_SOCKET = "http.sock"
"""The serving process's HTTP, for what the ingest process passes on."""
INGEST_SOCKET = "ingest-{index}.sock"
"""Ingest process ``index``'s own metrics and readiness, for the others
(``PINGURA_INGEST_PROCESS`` above 1: one scrape or ``/healthz`` shows them all)."""
INGEST_TOKEN_SNAPSHOT_FILE = "ingest-tokens-{index}.snapshot"
"""Ingest process ``index``'s copy of its token index (the first one's is
:data:`TOKEN_SNAPSHOT_FILE`): each saves its own, started from the first one's when that is newer."""

__all__ = [
    "ADMIN_KEY_FILE", "BUS_FILE", "CONTROL_SOCKET", "HTTP_SOCKET", "INGEST_SOCKET", "INGEST_TOKEN_SNAPSHOT_FILE",
    "LINK_SOCKET", "LOCK_FILE", "SESSION_SECRET_FILE", "TOKEN_SNAPSHOT_FILE", "DataDirBusy", "owning",
]  # fmt: skip


class DataDirBusy(PinguraError):
    """Another process owns the data dir."""


@contextmanager
def owning(data_dir: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold ``data_dir`` for the block, private (see above); waits up to ``wait_s`` for the
    owner to let go."""
    make_private(data_dir)
    with private_umask():
        yield from _locked(data_dir, wait_s)


def _locked(data_dir: Path, wait_s: float) -> Iterator[None]:
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DataDirBusy(f"{data_dir} is in use by another pingura process") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing lets go of the lock
