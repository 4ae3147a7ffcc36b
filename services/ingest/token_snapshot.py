"""A copy of ingest's token index on disk, so that a restart reads one file instead of the
whole ``monitors`` topic before it can answer pings (embedded mode, in the data dir).

It holds, per monitor ever seen, what :meth:`TokenIndex.put` left: the id, the revision,
and for a live one its token key, project and slug; and the offset per partition of the
``monitors`` topic up to which records had been applied when the copy began. The rows are
copied a chunk at a time while ingest goes on, so a row may be newer than those offsets,
never older; reading the topic on from the offsets then ends in the same index, because
applying a record again, or an older revision after a newer one, changes nothing.

It is valid only for the log it was taken from (``log_id``) and only if no offset is past
that log's end (the log was not replaced by an older copy). Otherwise, or if it cannot be
read, the index is built from the topic as without it. The file holds ping tokens (as
keys): it is written with mode 0600, like the log beside it holds them.

Format: frames, each a 4-byte big-endian length and a msgpack value: one :class:`Head`,
then :class:`Chunk` frames holding ``Head.monitors`` rows together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgspec

from shared.errors import PinguraError

VERSION = 1
CHUNK_ROWS = 2_000
"""Rows copied between two yields to the event loop while a snapshot is taken (~2 ms)."""


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    """Where the index keeps its copy, and the identity of the log it reflects."""

    path: Path
    log_id: str


class Head(msgspec.Struct, array_like=True):
    version: int
    log_id: str
    topic: str
    offsets: dict[int, int]
    """Partition -> the offset up to which records had been applied."""
    monitors: int
    """Rows in the chunks that follow, all together."""


class Chunk(msgspec.Struct, array_like=True):
    """Rows as columns (columns load into dicts with ``zip``, faster than row by row)."""

    ids: list[str]
    revisions: list[int]
    keys: list[bytes | None]
    """None: deleted, or a token ingest does not take."""
    project_ids: list[str | None]
    """None: deleted."""
    slugs: list[str | None]


class SnapshotUnreadable(PinguraError):
    """The snapshot file is missing a part, cut short, of another version or inconsistent."""


_encoder = msgspec.msgpack.Encoder()
_head = msgspec.msgpack.Decoder(Head)
_chunk = msgspec.msgpack.Decoder(Chunk)


def frame(value: Head | Chunk) -> bytes:
    data = _encoder.encode(value)
    return len(data).to_bytes(4, "big") + data


def write(path: Path, frames: list[bytes]) -> None:
    """All of it or nothing: written beside, fsynced, then renamed over the old copy."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        for data in frames:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def read(path: Path) -> tuple[Head, list[Chunk]] | None:
    """The head and the chunks; None when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotUnreadable(str(exc)) from None
    view = memoryview(data)
    head: Head | None = None
    chunks: list[Chunk] = []
    at = 0
    try:
        while at < len(view):
            size = int.from_bytes(view[at : at + 4], "big")
            if at + 4 + size > len(view):
                raise SnapshotUnreadable("the file ends inside a frame")
            frame = view[at + 4 : at + 4 + size]
            if head is None:
                head = _head.decode(frame)
            else:
                chunks.append(_chunk.decode(frame))
            at += 4 + size
    except msgspec.DecodeError as exc:
        raise SnapshotUnreadable(str(exc)) from None
    if head is None:
        raise SnapshotUnreadable("the file is empty")
    if head.version != VERSION:
        raise SnapshotUnreadable(f"version {head.version}, not {VERSION}")
    if sum(len(c.ids) for c in chunks) != head.monitors or any(
        not len(c.ids) == len(c.revisions) == len(c.keys) == len(c.project_ids) == len(c.slugs)
        for c in chunks
    ):
        raise SnapshotUnreadable("the rows do not add up to what the head says")
    return head, chunks
