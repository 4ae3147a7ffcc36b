"""The audit log read back from ClickHouse (``audit_log``, see :mod:`services.query.audit_table`):
a project's entries newest first, a page at a time, or all of a range oldest first for an
export; each narrowed by actor, action (a prefix: ``heartbeat`` or ``heartbeat.update``),
target and time. Read with ``FINAL``: a replayed entry never shows twice. Every value the
caller gives reaches SQL as a bound parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec

from services.query.store import MAX_PAGE_ROWS, decode_cursor, encode_cursor
from shared.clickhouse import ClickHouse
from shared.clock import iso_ms


@dataclass(frozen=True)
class AuditFilter:
    """What narrows the entries; None: not narrowed by it."""

    actor: str | None = None
    """The actor's id (a user's or a key's) or name (the user's email, the key's name), exactly."""
    action: str | None = None
    """A prefix of the action: ``heartbeat`` matches ``heartbeat.create`` and ``heartbeat.delete``."""
    target_kind: str | None = None
    target_id: str | None = None
    from_ms: int | None = None
    """Inclusive."""
    to_ms: int | None = None
    """Exclusive."""


_SELECT = """
SELECT id, toUnixTimestamp64Milli(at) AS at_ms, actor_kind, actor_id, actor_name, address, action, target_kind,
       target_id, before, after
FROM audit_log FINAL
WHERE project_id = {project_id:String}"""
FIELDS = (
    "id", "at_ms", "actor_kind", "actor_id", "actor_name", "address", "action", "target_kind", "target_id",
    "before", "after",
)  # fmt: skip
_json = msgspec.json.Decoder(dict)


_CLAUSES = (
    ("actor", "(actor_id = {actor:String} OR actor_name = {actor:String})"),
    ("action", "startsWith(action, {action:String})"),
    ("target_kind", "target_kind = {target_kind:String}"),
    ("target_id", "target_id = {target_id:String}"),
    ("from_ms", "at >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')"),
    ("to_ms", "at < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"),
)
"""Each filter of :class:`AuditFilter` by name, and the condition it adds when set."""


def _where(filters: AuditFilter, params: dict[str, Any]) -> str:
    sql = ""
    for name, clause in _CLAUSES:
        value = getattr(filters, name)
        if value is not None:
            params[name] = value
            sql += " AND " + clause
    return sql


def _entry(values: tuple) -> dict[str, Any]:
    row = dict(zip(FIELDS, values, strict=True))
    row["at"] = iso_ms(row["at_ms"])
    for side in ("before", "after"):
        row[side] = None if row[side] is None else _json.decode(row[side])
    return row


async def page(
    ch: ClickHouse, project_id: str, filters: AuditFilter, limit: int = 50, before: str | None = None
) -> tuple[list[dict], str | None]:
    """Entries newest first, and the cursor of the next (older) page or None. A cursor
    carries no filter: pass the same ones with it."""
    if not 1 <= limit <= MAX_PAGE_ROWS:
        raise ValueError(f"limit: must be between 1 and {MAX_PAGE_ROWS}")
    params: dict[str, Any] = {"project_id": project_id, "limit": limit + 1}
    sql = _SELECT + _where(filters, params)
    if before is not None:
        params["after_ms"], params["after_id"] = decode_cursor(before)
        sql += """ AND at <= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')
            AND (at < fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR id < {after_id:String})"""
    sql += " ORDER BY at DESC, id DESC LIMIT {limit:UInt32}"
    rows = [_entry(r) for r in await ch.query(sql, params)]
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["at_ms"], rows[-1]["id"])


async def export(
    ch: ClickHouse, project_id: str, filters: AuditFilter, chunk_rows: int = 1000
) -> AsyncIterator[list[dict]]:
    """Every matching entry, oldest first, ``chunk_rows`` at a time (flat memory)."""
    params: dict[str, Any] = {"project_id": project_id, "limit": chunk_rows, "after_ms": 0, "after_id": ""}
    sql = (
        _SELECT
        + _where(filters, params)
        + """ AND at >= fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC')
            AND (at > fromUnixTimestamp64Milli({after_ms:Int64}, 'UTC') OR id > {after_id:String})
            ORDER BY at, id LIMIT {limit:UInt32}"""
    )
    while True:
        rows = [_entry(r) for r in await ch.query(sql, params)]
        if rows:
            yield rows
        if len(rows) < chunk_rows:
            return
        params["after_ms"], params["after_id"] = rows[-1]["at_ms"], rows[-1]["id"]
