"""A fleet's instances (docs/semantics.md, "Fleets"): the page the API answers, and its query string."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from msgspec import Meta, Struct

from services.query.api.schemas.fields import Timestamp, refusal

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000

InstanceStatus = Literal["reporting", "missing", "never_reported"]
INSTANCE_STATUSES: tuple[str, ...] = get_args(InstanceStatus)


class Instance(Struct, kw_only=True):
    """One instance of a fleet, as of the last window judged."""

    name: str
    last_ping: Annotated[Timestamp | None, Meta(description="Its last check-in; null: never.")]
    status: Annotated[InstanceStatus, Meta(
        description="``never_reported``: declared (or learned) and never checked in; ``missing``: a member that "
                    "had not reported when the last window was judged (and has not since); ``reporting``: the rest.",
    )]  # fmt: skip
    declared: Annotated[bool, Meta(description="Named in the heartbeat's ``fleet.instances``.")]


class InstancePage(Struct, kw_only=True):
    """A page of a heartbeat's instances by name, and its fleet's figures as of the last window judged."""

    items: list[Instance]
    reported: Annotated[int, Meta(description="Members that reported in the last window judged.")]
    members: Annotated[int, Meta(description="Instances in the fleet then.")]
    required: Annotated[int, Meta(description="How many had to report then.")]
    judged_at: Annotated[
        Timestamp | None, Meta(description="The deadline of that window; null: none judged yet.")
    ]
    next_cursor: Annotated[str | None, Meta(description="``cursor`` of the next page; null at the end.")]


class InstanceListQuery(Struct, kw_only=True):
    """The query string of the instance list."""

    limit: Annotated[int, Meta(
        ge=1, le=MAX_LIMIT, description=f"Instances per page, 1-{MAX_LIMIT} (ASCII digits).",
        extra=refusal(f"must be a whole number from 1 to {MAX_LIMIT}"),
    )] = DEFAULT_LIMIT  # fmt: skip
    cursor: (
        Annotated[str, Meta(description="The ``next_cursor`` of the previous page (same ``status``).")] | None
    ) = None
    status: (
        Annotated[InstanceStatus, Meta(
            description="Only instances in this status.", extra=refusal(f"must be one of {', '.join(INSTANCE_STATUSES)}"),
        )]
        | None
    ) = None  # fmt: skip
    empty_is_absent: ClassVar[frozenset[str]] = frozenset({"cursor", "status"})
