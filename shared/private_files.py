"""Keeping a folder of secrets to its owner: 0700 folders, 0600 files, whatever the umask.

The data dir holds every ping token, the ping keys, webhook signing secrets and chat URLs
(the bus file), the admin key and job output (chDB's folder). Modes given at creation are
not enough: SQLite and chDB (C++) create their files themselves, with 0644 or 0666 less
the umask, and a dir left by an older version is already 0755. So a start tightens what
is there (:func:`make_private`) and the process creates everything after that under
umask 077 (:func:`private_umask`), which covers files made later too (WAL, chDB parts).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

log = structlog.get_logger()

PRIVATE_UMASK = 0o077
SHOWN_CHANGES = 5
"""Paths named in the log line (with their old modes); the rest are counted."""


def make_private(root: Path) -> None:
    """Create ``root`` (mode 0700) or take group and other permissions off it and everything
    under it. One ``datadir.tightened`` line says what changed; nothing when nothing did.
    Symbolic links are left alone (chmod would change what they point at)."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed: list[tuple[str, int]] = []
    refused: list[str] = []
    top = str(root)
    for path in _tree(top):
        try:
            st = os.lstat(path)
        except FileNotFoundError:  # removed meanwhile (a socket of a process that ended)
            continue
        mode = stat.S_IMODE(st.st_mode)
        if not mode & PRIVATE_UMASK or stat.S_ISLNK(st.st_mode):
            continue
        name = os.path.relpath(path, top)
        try:
            os.chmod(path, mode & ~PRIVATE_UMASK)
        except FileNotFoundError:
            continue
        except OSError:  # not ours (made by root?): say so, the rest still gets tightened
            refused.append(name)
            continue
        changed.append((name, mode))
    if changed:
        log.info(
            "datadir.tightened",
            path=top,
            count=len(changed),
            changed=[
                f"{name} {mode:04o}->{mode & ~PRIVATE_UMASK:04o}" for name, mode in changed[:SHOWN_CHANGES]
            ],
        )
    if refused:
        log.warning("datadir.not_private", path=top, count=len(refused), paths=refused[:SHOWN_CHANGES])


def _tree(root: str) -> Iterator[str]:
    yield root
    for folder, dirs, files in os.walk(root):  # does not follow links to folders
        for name in dirs + files:
            yield os.path.join(folder, name)


@contextmanager
def private_umask() -> Iterator[None]:
    """Umask 077 for the block (the process's: every thread's files), the old one after."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)
