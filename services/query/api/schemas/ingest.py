"""Ingest incidents as the API answers them (docs/semantics.md, "Ingest incidents")."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from services.query.api.schemas.fields import Timestamp


class IngestIncident(Struct, kw_only=True):
    """An open ingest incident: the pings of most heartbeats of a scope stopped reaching Pingura.
    Their misses are held as ``unknown`` until it closes."""

    scope: Annotated[
        str, Meta(description='"": all of Pingura (one partition\'s share of it); else the project.')
    ]
    since: Annotated[Timestamp, Meta(description="When it opened (event time).")]
    partition: Annotated[
        int, Meta(description="The pings partition that judged it (each judges its own share).")
    ]
    arrived: Annotated[int, Meta(description="Pings that arrived in the window when it opened.")]
    overdue: Annotated[int, Meta(description="Check-ins overdue in that window.")]
    usual: Annotated[float, Meta(description="Pings per window learned before it opened.")]
    held: Annotated[int, Meta(description="Heartbeats held as unknown by it so far.")]


class IngestIncidentList(Struct):
    incidents: Annotated[
        list[IngestIncident],
        Meta(description="Open ones, oldest first: Pingura's own, and the caller's project's."),
    ]
