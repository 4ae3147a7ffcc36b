"""Badges: the query string, and the two JSON answers (Pingura's and Shields.io's endpoint format)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from services.query.validation import InvalidField

BadgeState = Literal["up", "late", "down"]
LABEL_MAX = 64


class BadgeQuery(Struct, kw_only=True):
    """Other parameters are ignored (a cache-busting one, say)."""

    states: Annotated[
        int,
        Meta(
            ge=2,
            le=3,
            description="2: up or down (late counts as up); 3: up, late or down.",
        ),
    ] = 2
    label: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=LABEL_MAX,
                description="The badge's left-hand text; default the slug or tag asked for, or "
                "``status`` (a heartbeat asked for by id, the whole project).",
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.label is not None and not self.label.isprintable():
            raise InvalidField("label", "must be printable text (no control or format characters)")


class BadgeStatus(Struct, kw_only=True):
    """``GET .../{what}.json``."""

    status: BadgeState
    label: str


class ShieldsBadge(Struct, kw_only=True, rename={"schema_version": "schemaVersion"}):
    """``GET .../{what}.shields``: the Shields.io endpoint format
    (``https://img.shields.io/endpoint?url=...``)."""

    schema_version: Literal[1] = 1
    label: str
    message: BadgeState
    color: Annotated[str, Meta(description="A Shields.io colour name.")]
