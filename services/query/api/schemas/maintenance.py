"""Maintenance window bodies: the create and the change a client sends, the window the API answers.

A window is one-off (``starts_at`` to ``ends_at``) or recurring (a ``schedule``, a ``duration``
and a ``timezone``, from ``starts_at`` on and, if given, until ``ends_at``); it covers
heartbeats by id, by tag, or the whole project (``covering``). What one field can say is
checked here; what takes several (one-off or recurring, ends after starts) is checked on the
whole window, the stored one with the change on top (:func:`services.query.api.maintenance.checked`).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from msgspec import UNSET, Meta, Struct, UnsetType

from services.evaluator.schedule import ALIASES, MAX_EXPRESSION_CHARS
from services.query.api.schemas.fields import DurationText, Flag, Name, Tags, Timestamp, refusal
from services.query.validation import (
    InvalidField,
    name_field,
    parse_time_ms,
    safe_text,
    schedule_field,
    seconds,
    zone_field,
)

MIN_DURATION_S = 60
MAX_DURATION_S = 31 * 86400
MAX_WINDOWS = 200
"""Per project: every alert of a covered heartbeat looks at each of its project's windows."""
MAX_COVERED = 1000
MAX_HEARTBEAT_ID_CHARS = 64
DURATION_REFUSAL = 'must be a number of seconds or a duration such as "2h", from 1 minute to 31 days'

Instant = Annotated[str, Meta(
    min_length=1, description="An ISO-8601 time (UTC unless it gives an offset), from 1970 to 9999.",
    extra=refusal("must be an ISO-8601 time such as \"2026-03-29T00:30:00Z\""),
)]  # fmt: skip
Duration = Annotated[
    Annotated[int, Meta(extra_json_schema={"minimum": MIN_DURATION_S, "maximum": MAX_DURATION_S})]
    | DurationText,
    Meta(
        description='Seconds, or a duration such as ``"2h"``, ``"1h30m"``; 1 minute to 31 days. How long each '
        "occurrence of a recurring window lasts (required with a ``schedule``, not given without one).",
        extra=refusal(DURATION_REFUSAL),
    ),
]
Schedule = Annotated[str, Meta(
    min_length=1, max_length=MAX_EXPRESSION_CHARS, examples=["0 2 * * 0", "30 1 * * *", "@daily"],
    description="Recurring: a cron expression (5 fields) or one of " + ", ".join(ALIASES) + ", read in "
                "``timezone``; each run starts an occurrence lasting ``duration`` (on DST changes as a cron job: "
                "a run in the skipped hour starts when the clock jumps, one in the repeated hour once). Null: one-off.",
    extra=refusal(f"must be a cron expression of 1-{MAX_EXPRESSION_CHARS} characters"),
)]  # fmt: skip
Timezone = Annotated[str, Meta(
    examples=["Europe/Berlin", "America/New_York"],
    description="IANA time zone name the ``schedule`` is read in. Default UTC.",
    extra=refusal("must be an IANA time zone name such as \"Europe/Berlin\""),
)]  # fmt: skip
HeartbeatIds = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=MAX_HEARTBEAT_ID_CHARS)]],
    Meta(
        max_length=MAX_COVERED,
        description="Ids of this project's heartbeats.",
        extra=refusal(
            f"a list of at most {MAX_COVERED} heartbeat ids of 1-{MAX_HEARTBEAT_ID_CHARS} characters"
        ),
    ),
]


class Covering(Struct, kw_only=True, forbid_unknown_fields=True):
    """What a window covers: at least one heartbeat, one tag, or the whole project."""

    heartbeats: HeartbeatIds = []
    tags: Annotated[Tags, Meta(description="Heartbeats carrying any of these tags.")] = []
    whole_project: Annotated[Flag, Meta(description="Every heartbeat of the project, now and to come.")] = (
        False
    )
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {"required": ["heartbeats"], "properties": {"heartbeats": {"minItems": 1}}},
            {"required": ["tags"], "properties": {"tags": {"minItems": 1}}},
            {"required": ["whole_project"], "properties": {"whole_project": {"const": True}}},
        ],
    }

    def __post_init__(self) -> None:
        self.heartbeats = list(dict.fromkeys(self.heartbeats))
        self.tags = list(dict.fromkeys(safe_text("covering", tag) for tag in self.tags))
        if not (self.heartbeats or self.tags or self.whole_project):
            raise InvalidField("covering", "give heartbeats, tags or whole_project: true (it covers nothing)")


CoveringField = Annotated[Covering, Meta(extra=refusal(
    "must be an object with heartbeats (ids), tags or whole_project: true"
))]  # fmt: skip


class MaintenanceUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A change to a window: only the fields given change (null: back to none)."""

    name: Name | UnsetType = UNSET
    starts_at: (
        Annotated[Instant, Meta(examples=["2026-03-29T00:30:00Z", "2026-03-29T02:30:00+02:00"],
                                description="One-off: when it begins (required). Recurring: the first moment "
                                            "an occurrence may begin; null: from its creation.")]
        | UnsetType | None
    ) = UNSET  # fmt: skip
    ends_at: (
        Annotated[Instant, Meta(examples=["2026-03-29T04:00:00+02:00", "2026-10-25T03:00:00Z"],
                                description="One-off: when it ends (required, 1 minute to 31 days after "
                                            "``starts_at``). Recurring: the last moment an occurrence may "
                                            "begin; null: forever.")]
        | UnsetType | None
    ) = UNSET  # fmt: skip
    schedule: Schedule | UnsetType | None = UNSET
    duration: Duration | UnsetType | None = UNSET
    timezone: Timezone | UnsetType = UNSET
    covering: CoveringField | UnsetType = UNSET

    def __post_init__(self) -> None:
        """Each field on its own: names trimmed, times read, a known zone, a schedule that runs."""
        if isinstance(self.name, str):
            self.name = name_field("name", self.name)
        if isinstance(self.timezone, str):
            zone_field("timezone", self.timezone)
        if isinstance(self.schedule, str):
            self.schedule = schedule_field("schedule", self.schedule, self.timezone or "UTC")
        if self.duration is not UNSET and self.duration is not None:
            if isinstance(self.duration, str) and not self.duration.strip():
                raise InvalidField("duration", DURATION_REFUSAL)
            self.duration = seconds("duration", self.duration, 1)
            if not MIN_DURATION_S <= self.duration <= MAX_DURATION_S:
                raise InvalidField("duration", "must be from 1 minute to 31 days")

    def times_ms(self) -> dict[str, int | None]:
        """``starts_ms`` and ``ends_ms`` as given (absent when not given; None when null)."""
        out: dict[str, int | None] = {}
        for field, name in (("starts_at", "starts_ms"), ("ends_at", "ends_ms")):
            value = getattr(self, field)
            if value is not UNSET:
                out[name] = None if value is None else parse_time_ms(field, value, 0)
        return out


class MaintenanceCreate(MaintenanceUpdate, kw_only=True, forbid_unknown_fields=True):
    """A new window: a ``name``, what it ``covering``s, and one-off times or a recurring ``schedule``."""

    name: Name
    covering: CoveringField
    json_schema_extra: ClassVar[dict[str, Any]] = {
        # As the server: a one-off has both times, a recurring one a schedule (not null) and a duration.
        "anyOf": [
            {"required": ["starts_at", "ends_at"], "properties": {
                "starts_at": {"type": "string"}, "ends_at": {"type": "string"}}},
            {"required": ["schedule", "duration"], "properties": {
                "schedule": {"type": "string"}, "duration": {"type": ["integer", "string"]}}},
        ],
    }  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("starts_at", "ends_at"):  # read now: a bad time is refused before anything else
            value = getattr(self, field)
            if isinstance(value, str):
                parse_time_ms(field, value, 0)


# answers -----------------------------------------------------------------------------------
class Maintenance(Struct, kw_only=True):
    """A maintenance window, and whether it is on now."""

    id: str
    name: str
    starts_at: Timestamp
    ends_at: Annotated[Timestamp | None, Meta(description="Recurring: null when it recurs forever.")]
    schedule: Annotated[str | None, Meta(description="Cron expression; null: one-off.")]
    duration: Annotated[int | None, Meta(description="Seconds each occurrence lasts; null: one-off.")]
    timezone: str
    covering: Covering
    ended_at: Annotated[
        Timestamp | None, Meta(description="Ended early then (a recurring one: that occurrence only).")
    ]
    active_until: Annotated[
        Timestamp | None, Meta(description="When the occurrence on now ends; null: none is on.")
    ]
    next_start: Annotated[
        Timestamp | None, Meta(description="When the next occurrence begins; null: none is to come.")
    ]
    created_at: Timestamp
    updated_at: Timestamp


class MaintenanceList(Struct):
    windows: Annotated[list[Maintenance], Meta(description="Oldest first.")]
