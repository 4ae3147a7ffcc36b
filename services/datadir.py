"""One process at a time owns an embedded data dir.

The embedded bus is a SQLite file whose offsets its owner assigns in memory: a second
writer would hand out the same offsets twice. ``pingura serve`` holds this lock for as
long as it runs; ``pingura keys`` holds it for a moment when no server answers.

The dir holds every secret Pingura has (ping tokens, keys, webhook secrets, job output), so
whoever owns it makes it private first: 0700, group and other permissions taken off what is
already there, and umask 077 while it is held (:mod:`shared.private_files` says why).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import PinguraError
from shared.private_files import make_private, private_umask

LOCK_FILE = "owner.lock"


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
