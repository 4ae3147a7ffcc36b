"""The API's request and response types, one module per resource: each body, answer and
query string declared once (msgspec Structs with their constraints and field docs). The
routes table (:mod:`services.query.api.routes`) names them; decoding (:mod:`.decode`) and
the OpenAPI document (:mod:`services.query.api.openapi`) are made from them."""

from services.query.api.schemas import (
    accounts,
    channels,
    deliveries,
    heartbeats,
    history,
    ingest,
    instances,
    maintenance,
    status_pages,
)

__all__ = [
    "accounts",
    "channels",
    "deliveries",
    "heartbeats",
    "history",
    "ingest",
    "instances",
    "maintenance",
    "status_pages",
]
