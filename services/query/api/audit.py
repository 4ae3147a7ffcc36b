"""The audit log: every change to a project, who made it, from where, before and after (issue 20).

A page of entries newest first, narrowed by actor, action, target and time; and the same
as a download (CSV or JSON lines, streamed). Admins only: an entry names every member and
the address each worked from, and shows every setting as it was; a ``member`` (or a
read-only key, a ``viewer``) changes heartbeats without reading over colleagues' shoulders.
The entries are recorded by :func:`services.query.audit.record_change`."""

from __future__ import annotations

import msgspec
from aiohttp import web

from services.query import audit_history
from services.query.api.context import API, PROJECT
from services.query.api.history import _cell, _csv_lines
from services.query.api.route_types import Answer, Route, ok
from services.query.api.schemas import audit as schemas
from services.query.audit_history import AuditFilter

EXPORT_CHUNK_ROWS = 1000
EXPORT_FILES = {"csv": ("text/csv; charset=utf-8", "csv"), "jsonl": ("application/x-ndjson", "jsonl")}


def _filter(query: schemas.AuditFilterQuery) -> AuditFilter:
    from_ms, to_ms = query.given_ms()
    return AuditFilter(query.actor, query.action, query.target_kind, query.target_id, from_ms, to_ms)


def _shown(row: dict) -> dict:
    return {name: row[name] for name in schemas.ENTRY_FIELDS}


async def list_audit(request: web.Request, query: schemas.AuditQuery) -> web.Response:
    ctx = request.app[API]
    rows, cursor = await audit_history.page(
        ctx.store.clickhouse, request[PROJECT].id, _filter(query), limit=query.limit, before=query.before
    )
    body = {"entries": [_shown(row) for row in rows], "next": cursor}
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


def _csv_cell(value) -> str:
    if isinstance(value, dict):
        return _cell(msgspec.json.encode(value).decode())
    return _cell(value)


async def export_audit(request: web.Request, query: schemas.AuditExportQuery) -> web.StreamResponse:
    """Oldest first, streamed chunk by chunk: csv (a header line, then one line per entry,
    before and after as JSON text) or jsonl (one entry a line)."""
    project_id = request[PROJECT].id
    content_type, extension = EXPORT_FILES[query.format]
    response = web.StreamResponse(
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{project_id}-audit.{extension}"',
            "Cache-Control": "no-store",  # streamed: the API's middleware cannot add it
        }
    )
    filters = _filter(query)  # checked before the answer begins: a bad one is still a 400
    chunks = audit_history.export(
        request.app[API].store.clickhouse, project_id, filters, chunk_rows=EXPORT_CHUNK_ROWS
    )
    await response.prepare(request)
    if query.format == "csv":
        await response.write(_csv_lines([list(schemas.ENTRY_FIELDS)]))
    async for chunk in chunks:
        if query.format == "csv":
            await response.write(
                _csv_lines([_csv_cell(row[c]) for c in schemas.ENTRY_FIELDS] for row in chunk)
            )
        else:
            await response.write(b"".join(msgspec.json.encode(_shown(row)) + b"\n" for row in chunk))
    await response.write_eof()
    return response


ROUTES: tuple[Route, ...] = (
    Route("GET", "/audit", list_audit, "The project's audit log, newest first, a page at a time (admins)",
          "projects", "listAudit", ok("A page.", schemas.AuditPage), query=schemas.AuditQuery, errors=(400,),
          role="admin"),
    Route("GET", "/audit/export", export_audit, "The project's audit log as a download, oldest first (admins)",
          "projects", "exportAudit",
          {200: Answer("A streamed file (``Content-Disposition: attachment``).", media=schemas.EXPORT_MEDIA)},
          query=schemas.AuditExportQuery, errors=(400,), role="admin"),
)  # fmt: skip
