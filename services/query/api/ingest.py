"""Ingest incidents: is ingestion itself collapsed (Pingura is up, but pings stop reaching it)?

The evaluators judge it per ``pings`` partition and keep the open incidents in each
partition's snapshot on ``evaluator-state``; the status view follows them. A project sees
Pingura's own (scope ``""``) and its own project's, never another project's.
"""

from __future__ import annotations

from aiohttp import web

from services.query.api.context import API, PROJECT
from services.query.api.errors import answer
from services.query.api.schemas.ingest import IngestIncident, IngestIncidentList
from shared.clock import iso_ms
from shared.snapshots import IngestIncident as OpenIncident


def incident_answer(partition: int, incident: OpenIncident) -> IngestIncident:
    return IngestIncident(
        scope=incident.scope, since=iso_ms(incident.since_ms), partition=partition, arrived=incident.arrived,
        overdue=incident.overdue, usual=incident.usual, held=incident.held,
    )  # fmt: skip


async def list_ingest_incidents(request: web.Request) -> web.Response:
    """``GET /api/v1/ingest-incidents``: the open ones the caller's project may see."""
    project_id = request[PROJECT].id
    incidents = request.app[API].statuses.ingest_incidents()
    return answer(
        IngestIncidentList(
            incidents=[
                incident_answer(p, incident)
                for p, incident in incidents
                if incident.scope in ("", project_id)
            ]
        )
    )
