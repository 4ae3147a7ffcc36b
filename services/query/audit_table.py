"""The audit log's table in ClickHouse (``audit_log``): how it is made and how an
:class:`~shared.events.AuditEntry` becomes a row. Its reads are in
:mod:`services.query.audit_history`; :mod:`services.query.history_tables` migrates it and
writes it with the other history tables.

Like them it is a ReplacingMergeTree keyed by the entry's id (unique, made once when the
change was recorded) and read with ``FINAL``, so a replayed entry never shows twice; its
rows live as long as the rest of the history (``PINGURA_HISTORY_RETENTION_DAYS``).
``before`` and ``after`` are the entry's JSON text (secrets already masked)."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.events import AuditEntry

AUDIT_TABLE = """
CREATE TABLE IF NOT EXISTS audit_log (
    id String,
    project_id String,
    at DateTime64(3, 'UTC'),
    actor_kind LowCardinality(String),
    actor_id String,
    actor_name String,
    address Nullable(String),
    action LowCardinality(String),
    target_kind LowCardinality(String),
    target_id String,
    before Nullable(String) CODEC(ZSTD(3)),
    after Nullable(String) CODEC(ZSTD(3))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (project_id, at, id)
TTL {ttl}
SETTINGS non_replicated_deduplication_window = 10000
"""
AUDIT_COLUMNS = (
    "id", "project_id", "at", "actor_kind", "actor_id", "actor_name", "address", "action", "target_kind",
    "target_id", "before", "after",
)  # fmt: skip


def _json(value: dict | None) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def audit_row(entry: AuditEntry) -> list[Any]:
    return [
        entry.id, entry.project_id, entry.at_ms / 1000, entry.actor_kind, entry.actor_id, entry.actor_name,
        entry.address, entry.action, entry.target_kind, entry.target_id, _json(entry.before), _json(entry.after),
    ]  # fmt: skip
