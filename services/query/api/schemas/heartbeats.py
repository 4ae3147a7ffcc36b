"""Heartbeat bodies: the create and update a client sends, the heartbeat and the page the
API answers, and the list's query string.

Schedule mode or interval mode: a body gives a ``schedule`` (not null) or an ``interval``,
never both, and a create one of them (no silent default period, as the dashboard's form
has none); an update giving an ``interval`` leaves schedule mode.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from msgspec import UNSET, Meta, Struct, UnsetType

from services.evaluator.schedule import ALIASES, MAX_EXPRESSION_CHARS
from services.query.api.schemas.checks import (
    Cadence,
    CadenceField,
    FailureRate,
    FailureRateField,
    FailureRateNow,
    Fleet,
    FleetField,
    InstancesSummary,
    Keywords,
    KeywordsField,
    RunTime,
    RunTimeField,
    UsualRunTime,
    check_fields,
)
from services.query.api.schemas.fields import (
    ChannelIds,
    DurationText,
    Name,
    OneToTen,
    Slug,
    Tags,
    Timestamp,
    at_least,
    period,
    refusal,
)
from services.query.api.schemas.holding import (
    DependsOn,
    DependsOnTags,
    FlapChanges,
    FlapStable,
    FlapWindow,
    MutedUntil,
    check_holding,
    holding_fields,
)
from services.query.catalog import SORTS, Sort
from services.query.validation import (
    DEFAULT_GRACE_S,
    DEFAULT_INTERVAL_S,
    INTERVAL_REQUIRED,
    MIN_REMINDER_INTERVAL_S,
    UNSAFE_IN_NAMES_CLASS,
    InvalidField,
    name_field,
    safe_text,
    schedule_field,
    seconds,
    zone_field,
)
from shared.events import STATUSES, MonitorStatus
from shared.ids import UUID_PATTERN, UUID_TOKEN

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000

Interval = Annotated[
    Annotated[int, at_least(1)] | DurationText,
    period(1, "On create: required, unless a ``schedule`` is given (no default period).", INTERVAL_REQUIRED),
]
Grace = Annotated[Annotated[int, at_least(0)] | DurationText, period(0, f"Default {DEFAULT_GRACE_S}.")]
MaxRuntime = Annotated[
    Annotated[int, at_least(1)] | DurationText, period(1, "Null (the default): the grace period.")
]
ReminderInterval = Annotated[
    Annotated[int, at_least(MIN_REMINDER_INTERVAL_S)] | DurationText,
    period(MIN_REMINDER_INTERVAL_S, "Null (the default): no reminders."),
]
Schedule = Annotated[str, Meta(
    min_length=1, max_length=MAX_EXPRESSION_CHARS, examples=["0 2 * * *", "*/15 * * * 1-5", "@daily"],
    description="A cron expression (5 fields) or one of " + ", ".join(ALIASES) + ", read in ``timezone``: the "
                "check-in is expected at the schedule's next run after the last one. Not together with "
                "``interval``; an update giving ``interval`` leaves schedule mode. Null (the default): interval "
                "mode.",
    extra=refusal(f"must be a cron expression of 1-{MAX_EXPRESSION_CHARS} characters"),
)]  # fmt: skip
Timezone = Annotated[str, Meta(
    examples=["Europe/Berlin", "America/New_York"], description="IANA time zone name the ``schedule`` is read "
                                                                "in. Default UTC.",
    extra=refusal("must be an IANA time zone name such as \"Europe/Berlin\""),
)]  # fmt: skip
Misses = Annotated[OneToTen, Meta(description="Misses in a row before it is down. Default 1.")]
MAX_DESCRIPTION_CHARS = 10_000
UNSAFE_IN_DESCRIPTIONS_CLASS = UNSAFE_IN_NAMES_CLASS.replace(r"\u0000-\u001f", r"\u0000-\u0008\u000b-\u001f")
"""What a name may not hold, but for tab and newline (a description is text of many lines)."""
UNSAFE_IN_DESCRIPTIONS = re.compile(UNSAFE_IN_DESCRIPTIONS_CLASS)
Description = Annotated[str, Meta(
    max_length=MAX_DESCRIPTION_CHARS, extra_json_schema={"not": {"pattern": UNSAFE_IN_DESCRIPTIONS_CLASS}},
    description=f"What the job is and what to do when it fails, for people: plain text (shown as text, never as "
                f"HTML), at most {MAX_DESCRIPTION_CHARS} characters; newlines and tabs, but no other control "
                f"characters (nor those a name may not hold). Default empty.",
    extra=refusal(f"must be text of at most {MAX_DESCRIPTION_CHARS} characters"),
)]  # fmt: skip
Token = Annotated[str, Meta(
    pattern=UUID_PATTERN,  # no examples: a token is unique, so an example works once
    description="On create only: a ping token the client chooses, a UUID in lower case (as Healthchecks makes "
                "them, so a moved job keeps its URL ``/ping/{uuid}``). Refused (409) if a heartbeat already has "
                "it. Default: a new random token. Never changed later but by ``rotate-token``.",
    extra=refusal("must be a UUID in lower case, such as 5bf38cbe-6f6b-4c3e-9c0d-7c1a2b3c4d5e"),
)]  # fmt: skip
Recovery = Annotated[
    OneToTen, Meta(description="Successes in a row that end an incident (the ``up`` alert). Default 1.")
]


class HeartbeatUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A change to a heartbeat: only the fields given change."""

    name: Name | UnsetType = UNSET
    interval: Interval | UnsetType = UNSET
    grace: Grace | UnsetType = UNSET
    max_consecutive_misses: Misses | UnsetType = UNSET
    channels: ChannelIds | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    schedule: Schedule | UnsetType | None = UNSET
    timezone: Timezone | UnsetType = UNSET
    max_runtime: MaxRuntime | UnsetType | None = UNSET
    recovery_threshold: Recovery | UnsetType = UNSET
    reminder_interval: ReminderInterval | UnsetType | None = UNSET
    slug: Slug | UnsetType | None = UNSET
    muted_until: MutedUntil | UnsetType | None = UNSET
    depends_on: DependsOn | UnsetType = UNSET
    depends_on_tags: DependsOnTags | UnsetType = UNSET
    flap_changes: FlapChanges | UnsetType | None = UNSET
    flap_window: FlapWindow | UnsetType | None = UNSET
    flap_stable: FlapStable | UnsetType | None = UNSET
    fleet: FleetField | UnsetType | None = UNSET
    run_time: RunTimeField | UnsetType | None = UNSET
    cadence: CadenceField | UnsetType | None = UNSET
    failure_rate: FailureRateField | UnsetType | None = UNSET
    keywords: KeywordsField | UnsetType | None = UNSET
    description: Description | UnsetType = UNSET

    def __post_init__(self) -> None:
        """What the types cannot say: names trimmed, safe tags, periods in seconds, a valid
        time zone and schedule, and not both a schedule and an interval."""
        if isinstance(self.name, str):
            self.name = name_field("name", self.name)
        if isinstance(self.tags, list):
            self.tags = list(dict.fromkeys(safe_text("tags", tag) for tag in self.tags))
        if isinstance(self.channels, list):
            self.channels = list(dict.fromkeys(self.channels))
        if isinstance(self.description, str):
            unsafe = UNSAFE_IN_DESCRIPTIONS.search(self.description)
            if unsafe:
                raise InvalidField(
                    "description",
                    f"must not hold control characters other than newline and tab, bidi overrides or invisible "
                    f"characters (U+{ord(unsafe.group()):04X} at {unsafe.start() + 1})",
                )
        if isinstance(self.timezone, str):
            zone_field("timezone", self.timezone)
        if isinstance(self.schedule, str):
            if self.interval is not UNSET:
                raise InvalidField(
                    "schedule", "give a schedule or an interval, not both (no interval: schedule mode)"
                )
            self.schedule = schedule_field("schedule", self.schedule, self.timezone or "UTC")
        if isinstance(self.interval, str) and not self.interval.strip():
            raise InvalidField("interval", INTERVAL_REQUIRED)
        for field, minimum in (("interval", 1), ("grace", 0), ("max_runtime", 1),
                               ("reminder_interval", MIN_REMINDER_INTERVAL_S)):  # fmt: skip
            value = getattr(self, field)
            if value is not UNSET and value is not None:
                setattr(self, field, seconds(field, value, minimum))
        check_holding(self)

    def monitor_fields(self, *, creating: bool = False) -> dict[str, Any]:
        """The :class:`shared.events.MonitorConfig` fields this body sets (a create: all, with defaults)."""
        given = {f: v for f in self.__struct_fields__ if (v := getattr(self, f)) is not UNSET}
        out: dict[str, Any] = {}
        if "timezone" in given or creating:
            out["timezone"] = given.get("timezone", "UTC")
        if given.get("schedule") is not None:
            out["schedule"] = given["schedule"]
        elif "schedule" in given or "interval" in given or creating:
            out["schedule"] = None  # interval mode
        if "interval" in given:
            out["interval_s"] = given["interval"]
        elif creating:
            out["interval_s"] = (
                DEFAULT_INTERVAL_S  # unused in schedule mode; an update to interval mode sets one
            )
        renamed = {
            "grace": "grace_s",
            "max_runtime": "max_runtime_s",
            "reminder_interval": "reminder_interval_s",
        }
        defaults: dict[str, Any] = {
            "name": None,
            "grace": DEFAULT_GRACE_S,
            "max_consecutive_misses": 1,
            "channels": [],
            "tags": [],
            "max_runtime": None,
            "recovery_threshold": 1,
            "reminder_interval": None,
            "description": "",
        }
        for field, default in defaults.items():
            if field in given or creating:
                out[renamed.get(field, field)] = given.get(field, default)
        if "slug" in given:
            out["slug"] = given["slug"]
        out.update(holding_fields(given, creating))
        out.update(check_fields(given, creating))
        return out


class HeartbeatCreate(HeartbeatUpdate, kw_only=True, forbid_unknown_fields=True):
    """A new heartbeat: a ``name``, and an ``interval`` or a ``schedule``; a ``token`` of its own
    choosing if it moves in from elsewhere."""

    name: Name
    token: Token | UnsetType = UNSET
    json_schema_extra: ClassVar[dict[str, Any]] = {
        # As the server: an interval, or a schedule that is not null (never both: see schedule).
        "anyOf": [
            {"required": ["interval"]},
            {"required": ["schedule"], "properties": {"schedule": {"type": "string"}}},
        ],
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.token, str) and not UUID_TOKEN.fullmatch(
            self.token
        ):  # the pattern's $ takes a "\n"
            raise InvalidField(
                "token", "must be a UUID in lower case, such as 5bf38cbe-6f6b-4c3e-9c0d-7c1a2b3c4d5e"
            )
        if self.interval is UNSET and self.schedule in (None, UNSET):
            raise InvalidField("interval", INTERVAL_REQUIRED)


def check_channels(channels: list[str], known: set[str]) -> None:
    """Every channel a heartbeat names is one of its project's."""
    missing = [c for c in channels if c not in known]
    if missing:
        raise InvalidField("channels", f"unknown channel id {missing[0]!r}")


# answers -----------------------------------------------------------------------------------
Seconds = Annotated[int, Meta(description="Seconds.")]
Status = Annotated[
    str,
    Meta(
        extra_json_schema={"enum": list(STATUSES)},
        description="``running``: a run began (``/start``) and has not ended yet.",
    ),
]


class Heartbeat(Struct, kw_only=True):
    """A heartbeat: its config and its state (``token`` and ``ping_url`` are absent for a read-only key)."""

    id: str
    name: str
    status: Status
    status_since: Timestamp | None
    status_reason: str | None
    last_checkin_at: Timestamp | None
    next_expected_at: Timestamp | None
    interval: Annotated[int | None, Meta(description="Seconds; null in schedule mode.")]
    grace: Seconds
    max_consecutive_misses: int
    schedule: Annotated[str | None, Meta(description="Cron expression; null in interval mode.")]
    timezone: str
    max_runtime: Annotated[int | None, Meta(description="Seconds; null: the grace period.")]
    recovery_threshold: int
    reminder_interval: Annotated[int | None, Meta(description="Seconds; null: no reminders.")]
    channels: list[str]
    tags: list[str]
    slug: str | None
    paused: bool
    created_at: Timestamp
    updated_at: Timestamp
    token: Annotated[str, Meta(description="Absent for a read-only key.")] | UnsetType = UNSET
    ping_url: Annotated[str, Meta(description="Absent for a read-only key.")] | UnsetType = UNSET
    maintenance_until: Annotated[
        Timestamp | None, Meta(description="A maintenance window covers it now, until then (alerts held).")
    ] = None
    muted_until: Annotated[
        str | None, Meta(description='Muted until then (ISO-8601, UTC), or "forever"; null: not muted.')
    ] = None
    depends_on: Annotated[list[str], Meta(description="Ids of the heartbeats it depends on.")] = []
    depends_on_tags: Annotated[list[str], Meta(description="The tags it depends on.")] = []
    flap_changes: Annotated[int | None, Meta(description="Null: the default.")] = None
    flap_window: Annotated[int | None, Meta(description="Seconds; null: the default.")] = None
    flap_stable: Annotated[int | None, Meta(description="Seconds; null: the default.")] = None
    flapping_since: Annotated[
        Timestamp | None, Meta(description="Flapping since then: its alerts are held until it is stable.")
    ] = None
    held: Annotated[
        str | None,
        Meta(description="Why an alert of it is held back now (a mute, a window, a dependency down, ...)."),
    ] = None
    fleet: Fleet | None = None
    run_time: RunTime | None = None
    cadence: Cadence | None = None
    failure_rate: FailureRate | None = None
    keywords: Keywords | None = None
    description: Annotated[str, Meta(description="For people, plain text; empty: none.")] = ""
    instances_summary: Annotated[
        InstancesSummary | None,
        Meta(
            description="A fleet's figures as of the last window judged; null: no fleet, or none judged yet."
        ),
    ] = None
    usual_run_time: Annotated[
        UsualRunTime | None,
        Meta(description="The usual run time learned so far; null until enough runs were measured."),
    ] = None
    failure_rate_now: Annotated[
        FailureRateNow | None,
        Meta(
            description="With a failure-rate rule: the runs counted now and how many failed; null: none yet."
        ),
    ] = None


class HeartbeatList(Struct):
    heartbeats: list[Heartbeat]
    next: Annotated[str | None, Meta(description="Cursor of the next page (``before``); null at the end.")]
    counts: Annotated[
        dict[str, Annotated[int, Meta(ge=0)]],
        Meta(
            extra_json_schema={"propertyNames": {"enum": list(STATUSES)}},
            description="How many of the project's heartbeats are in each status (filters aside).",
        ),
    ]


class HeartbeatListQuery(Struct, kw_only=True):
    """The query string of the heartbeat list."""

    limit: Annotated[
        int,
        Meta(
            ge=1,
            le=MAX_LIMIT,
            description=f"Rows per page, 1-{MAX_LIMIT} (ASCII digits).",
            extra=refusal(f"must be a whole number from 1 to {MAX_LIMIT}"),
        ),
    ] = DEFAULT_LIMIT
    before: Annotated[str, Meta(description="The ``next`` of the previous page (same ``sort``).")] | None = (
        None
    )
    sort: Annotated[
        Sort,
        Meta(
            description="By name (case-insensitive); by creation, oldest first; or ``status``: down, then late, then the "
            "rest, each by name.",
            extra=refusal(f"must be one of {', '.join(SORTS)}"),
        ),
    ] = "name"
    status: (
        Annotated[
            MonitorStatus,
            Meta(
                description="Only heartbeats in this status.",
                extra=refusal(f"must be one of {', '.join(STATUSES)}"),
            ),
        ]
        | None
    ) = None
    tag: Annotated[str, Meta(description="Only heartbeats carrying this tag.")] | None = None
    q: Annotated[str, Meta(description="Only heartbeats whose name contains this (any case).")] | None = None
    empty_is_absent: ClassVar[frozenset[str]] = frozenset({"before", "status", "tag", "q"})
