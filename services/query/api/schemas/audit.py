"""Audit log bodies: an entry as the API answers it, a page of them, and the query strings
of the list and the export (every filter checked before ClickHouse is asked anything)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from msgspec import Meta, Struct

from services.query.api.schemas.fields import Timestamp, refusal
from services.query.api.schemas.history import Cursor, Limit, RangeQuery, check_cursor

DEFAULT_PAGE_ROWS = 50
AuditExportFormat = Literal["csv", "jsonl"]
AUDIT_EXPORT_FORMATS: tuple[AuditExportFormat, ...] = get_args(AuditExportFormat)
ACTION_PATTERN = r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]*)*$"
KIND_PATTERN = r"^[a-z][a-z0-9_]*$"

Actor = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=320,
        examples=["ops@example.com", "key_3f2a9c0d1e4b5a67"],
        description="Only the changes this actor made: a user's or key's id, a user's email or a key's name (exactly).",
        extra=refusal("must be 1-320 characters"),
    ),
]
Action = Annotated[
    str,
    Meta(
        max_length=100,
        pattern=ACTION_PATTERN,
        examples=["heartbeat", "heartbeat.update"],
        description="Only actions starting with this: ``heartbeat`` (every change to heartbeats) or "
        "``heartbeat.update``.",
        extra=refusal("must be a dotted action or its start, lower-case (heartbeat, heartbeat.update)"),
    ),
]
TargetKind = Annotated[
    str,
    Meta(
        max_length=40,
        pattern=KIND_PATTERN,
        examples=["heartbeat", "channel", "key", "project", "member"],
        description="Only changes to this kind of thing.",
        extra=refusal("must be a kind, lower-case (heartbeat, channel, key...)"),
    ),
]
TargetId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        examples=["hb_3f2a9c0d1e4b5a67"],
        description="Only changes to the thing with this id.",
        extra=refusal("must be 1-200 characters"),
    ),
]
_FILTERS = frozenset({"from", "to"})
"""Empty is absent for the range only (as elsewhere); an empty actor, action or target is a 400."""


class AuditFilterQuery(RangeQuery, kw_only=True, rename={"from_": "from"}):
    """What narrows the entries (all given ones at once); ``from``/``to`` bound their time."""

    actor: Actor | None = None
    action: Action | None = None
    target_kind: TargetKind | None = None
    target_id: TargetId | None = None
    empty_is_absent: ClassVar[frozenset[str]] = _FILTERS


class AuditQuery(AuditFilterQuery, kw_only=True, rename={"from_": "from"}):
    """A page of entries, newest first; pass the same filters with ``before`` for the next."""

    limit: Limit = DEFAULT_PAGE_ROWS
    before: Cursor | None = None
    empty_is_absent: ClassVar[frozenset[str]] = _FILTERS | {"before"}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_cursor(self.before)


class AuditExportQuery(AuditFilterQuery, kw_only=True, rename={"from_": "from"}):
    format: Annotated[
        AuditExportFormat,
        Meta(
            description="csv (RFC 4180, CRLF; before and after as JSON text; a text cell starting with "
            "= + - @ tab or CR gets a leading ' so that no spreadsheet runs it as a formula) or "
            "jsonl (one entry a line, exact).",
            extra=refusal(f"must be {', '.join(AUDIT_EXPORT_FORMATS)}"),
        ),
    ] = "csv"


class AuditEntry(Struct, kw_only=True):
    """One change: who (``actor_*``; ``system`` for Pingura itself), from where (``address``:
    the client's, trusted proxies applied), what (``action``, dotted ``{target}.{verb}``), to
    which thing, and the thing before (null on create) and after (null on delete). Secrets are
    shown as ``****`` and their last 4 characters, or left out (passwords, hashes)."""

    id: str
    at: Timestamp
    actor_kind: Literal["user", "key", "system"]
    actor_id: str
    actor_name: str
    address: str | None
    action: str
    target_kind: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(Struct):
    entries: list[AuditEntry]
    next: str | None


ENTRY_FIELDS: tuple[str, ...] = AuditEntry.__struct_fields__
"""The columns of the CSV export, in order (the JSON lines carry the same names)."""
EXPORT_MEDIA: dict[str, Any] = {"text/csv": str, "application/x-ndjson": str}
