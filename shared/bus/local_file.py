"""The embedded log's SQLite file: its tables, opening it, and the SQL each housekeeping step
runs on the writer's connection (recovering partition ends at start, a window of compaction
or retention). :class:`~shared.bus.local.LocalBus` decides when each runs; this says what.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path

from shared.bus.base import TopicPartition
from shared.bus.local_writer import RAISE_END, in_transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key TEXT NOT NULL, value BLOB NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, compacted INTEGER NOT NULL,
    retention_ms INTEGER
);
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    offset INTEGER NOT NULL, PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partition_ends (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, end_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    # Checkpoints run beside the writer (see LocalBus._checkpoints); this is only a backstop,
    # so no commit on the ping path pays for copying the WAL into the database.
    conn.execute("PRAGMA wal_autocheckpoint=20000")
    return conn


def log_id(conn: sqlite3.Connection) -> str:
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('log_id', ?)", (secrets.token_hex(16),))
    return conn.execute("SELECT value FROM meta WHERE name = 'log_id'").fetchone()[0]


def timed(fn, *args):
    """``fn(*args)`` and how long it held the writer, appended to its result."""
    started = time.perf_counter()
    result = fn(*args)
    took_s = time.perf_counter() - started
    return (*result, took_s) if isinstance(result, tuple) else (result, took_s)


def start_newest_map(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS compaction_newest"
        " (key TEXT PRIMARY KEY, offset INTEGER NOT NULL) WITHOUT ROWID"
    )
    conn.execute("DELETE FROM temp.compaction_newest")


def shrink_newest_map(conn: sqlite3.Connection, limit: int) -> bool:
    """Remove ``limit`` keys from the map, or drop it once fewer are left; True while any are."""
    removed = conn.execute(
        "DELETE FROM temp.compaction_newest WHERE key <="
        " (SELECT key FROM temp.compaction_newest ORDER BY key LIMIT 1 OFFSET ?)",
        (limit - 1,),
    ).rowcount
    if removed > 0:
        return True
    conn.execute("DROP TABLE IF EXISTS temp.compaction_newest")
    return False


def compact_window(
    conn: sqlite3.Connection, topic: str, partition: int, upper: int, limit: int
) -> tuple[int, int | None]:
    """One step of compaction: the ``limit`` stored records below ``upper``. Their keys join
    the map (unless a later record of the key is there already), then every record of the
    window older than its key's newest in the map goes. Returns how many went and where
    the next window ends (None: this one reached the partition's start).

    The newest record of a key is never removed: its offset is the one in the map. A record
    is removed only for a later one that is durable (already in the file)."""
    row = conn.execute(
        "SELECT offset FROM records WHERE topic=? AND partition=? AND offset<? ORDER BY offset DESC LIMIT 1 OFFSET ?",
        (topic, partition, upper, limit - 1),
    ).fetchone()
    lower = 0 if row is None else row[0]
    window = (topic, partition, lower, upper)

    def step() -> int:
        conn.execute(
            "INSERT INTO temp.compaction_newest (key, offset)"
            " SELECT key, MAX(offset) FROM records WHERE topic=? AND partition=? AND offset>=? AND offset<?"
            " GROUP BY key ON CONFLICT (key) DO NOTHING",
            window,
        )
        return conn.execute(
            "DELETE FROM records WHERE topic=? AND partition=? AND offset>=? AND offset<?"
            " AND offset < (SELECT n.offset FROM temp.compaction_newest n WHERE n.key = records.key)",
            window,
        ).rowcount

    return in_transaction(conn, step), (None if row is None else lower)


def expire_window(
    conn: sqlite3.Connection, topic: str, partition: int, end: int, cutoff_ms: int, limit: int
) -> int:
    """One step of retention: of the ``limit`` oldest records below ``end``, those older
    than ``cutoff_ms``. Returns how many went (``limit``: all of them, so go on)."""
    return in_transaction(
        conn,
        lambda: (
            conn.execute(
                "DELETE FROM records WHERE topic=? AND partition=? AND offset IN"
                " (SELECT offset FROM records WHERE topic=? AND partition=? AND offset<? ORDER BY offset LIMIT ?)"
                " AND ts<?",
                (topic, partition, topic, partition, end, limit, cutoff_ms),
            ).rowcount
        ),
    )


def recover_ends(conn: sqlite3.Connection) -> dict[TopicPartition, int]:
    """Each partition's end (the next offset to assign), written back to ``partition_ends``.

    ``partition_ends`` alone is right for a file written since it exists. A file from
    before may have lost its ends to retention already: there the stored records and the
    groups' committed offsets (each at most the end it was committed against) are the
    best lower bounds left, and a group is not made to skip what comes next."""
    ends: dict[TopicPartition, int] = {}

    def raise_to(tp: TopicPartition, end: int | None) -> None:
        if end is not None and end > ends.get(tp, 0):
            ends[tp] = end

    for topic, partition, end in conn.execute("SELECT topic, partition, end_offset FROM partition_ends"):
        raise_to((topic, partition), end)
    for topic, partitions in conn.execute("SELECT name, partitions FROM topics").fetchall():
        for partition in range(partitions):
            # One index lookup per partition, not a scan of the whole log.
            (last,) = conn.execute(
                "SELECT MAX(offset) FROM records WHERE topic=? AND partition=?", (topic, partition)
            ).fetchone()
            raise_to((topic, partition), None if last is None else last + 1)
    for topic, partition, committed in conn.execute(
        "SELECT topic, partition, MAX(offset) FROM group_offsets GROUP BY topic, partition"
    ):
        raise_to((topic, partition), committed)
    conn.executemany(RAISE_END, [(topic, partition, end) for (topic, partition), end in ends.items()])
    return ends
