"""Status pages: the configuration a read-write key sets (``/projects/me/status-page``) and
the public answer (``/status-page/{key}``), which holds only what the project chose to show."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from services.query.api.schemas.fields import SAFE_CHARS, refusal
from services.query.validation import InvalidField, safe_text

MAX_GROUPS = 20
MAX_ITEMS = 100
"""Heartbeats on one page, all groups together."""
MAX_TITLE_CHARS = 100
MAX_LABEL_CHARS = 100
MAX_INTRO_CHARS = 1000
MAX_HEARTBEAT_ID_CHARS = 64
DAYS = 90
MAX_CHANGES = 20

Title = Annotated[str, Meta(
    min_length=1, max_length=MAX_TITLE_CHARS,
    description=f"1-{MAX_TITLE_CHARS} characters (trimmed); {SAFE_CHARS}.",
    extra=refusal(f"required, 1-{MAX_TITLE_CHARS} characters"),
)]  # fmt: skip
Label = Annotated[str, Meta(
    extra_json_schema={"minLength": 1, "maxLength": MAX_LABEL_CHARS},
    description=f"1-{MAX_LABEL_CHARS} characters (trimmed); {SAFE_CHARS}.",
)]  # fmt: skip
"""Inside a group: checked by the Struct, whose refusal names the part (``label``, ``name``)."""
Intro = Annotated[str, Meta(
    max_length=MAX_INTRO_CHARS,
    description=f"At most {MAX_INTRO_CHARS} characters of plain text (shown as text, never as HTML; line breaks "
                "kept); empty: none.",
    extra=refusal(f"at most {MAX_INTRO_CHARS} characters"),
)]  # fmt: skip
HeartbeatId = Annotated[str, Meta(
    extra_json_schema={"minLength": 1, "maxLength": MAX_HEARTBEAT_ID_CHARS},
    description="The id of one of this project's heartbeats.",
)]  # fmt: skip


def _trimmed(field: str, text: str, maximum: int, empty_ok: bool = False) -> str:
    text = text.strip()
    if not text and not empty_ok:
        raise InvalidField(field, "must not be empty or only spaces")
    if len(text) > maximum:
        raise InvalidField(field, f"at most {maximum} characters")
    for line in text.split("\n") if empty_ok else [text]:  # the intro's line breaks are kept
        safe_text(field, line)
    return text


class StatusPageItemIn(Struct, kw_only=True, forbid_unknown_fields=True):
    heartbeat_id: HeartbeatId
    label: Annotated[
        Label,
        Meta(
            description="What the page calls it: stored as given, so a later rename of the "
            "heartbeat does not reach the page."
        ),
    ]

    def __post_init__(self) -> None:
        if not 1 <= len(self.heartbeat_id) <= MAX_HEARTBEAT_ID_CHARS:
            raise InvalidField("heartbeat_id", f"a heartbeat id of 1-{MAX_HEARTBEAT_ID_CHARS} characters")
        self.label = _trimmed("label", self.label, MAX_LABEL_CHARS)


class StatusPageGroupIn(Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[Label, Meta(description="The group's heading.")]
    items: Annotated[list[StatusPageItemIn], Meta(
        extra_json_schema={"maxItems": MAX_ITEMS}, description="Its heartbeats, in the order shown.",
    )] = []  # fmt: skip

    def __post_init__(self) -> None:
        self.name = _trimmed("name", self.name, MAX_LABEL_CHARS)
        if len(self.items) > MAX_ITEMS:
            raise InvalidField("items", f"at most {MAX_ITEMS} heartbeats on a page")


class StatusPageWrite(Struct, kw_only=True, forbid_unknown_fields=True):
    """``PUT /projects/me/status-page``: the whole page (the key stays; the first PUT makes one)."""

    title: Title
    intro: Intro = ""
    groups: Annotated[list[StatusPageGroupIn], Meta(
        max_length=MAX_GROUPS, description=f"At most {MAX_GROUPS} groups and {MAX_ITEMS} heartbeats in all, each "
                                           "heartbeat once.",
        extra=refusal(f"a list of at most {MAX_GROUPS} groups, each a name and items (heartbeat_id, label)"),
    )] = []  # fmt: skip

    def __post_init__(self) -> None:
        self.title = _trimmed("title", self.title, MAX_TITLE_CHARS)
        self.intro = _trimmed("intro", self.intro.replace("\r\n", "\n"), MAX_INTRO_CHARS, empty_ok=True)
        ids = [item.heartbeat_id for group in self.groups for item in group.items]
        if len(ids) > MAX_ITEMS:
            raise InvalidField("groups", f"at most {MAX_ITEMS} heartbeats on a page")
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise InvalidField("groups", f"heartbeat {twice!r} is on the page twice")


class StatusPageItemOut(Struct, kw_only=True):
    heartbeat_id: str
    label: str


class StatusPageGroupOut(Struct, kw_only=True):
    name: str
    items: list[StatusPageItemOut]


class StatusPageConfig(Struct, kw_only=True):
    """``GET /projects/me/status-page``: the page as configured, and its public URLs."""

    key: str
    url: Annotated[str, Meta(description="The public page's path (``/status/{key}``).")]
    data_url: Annotated[str, Meta(description="Its JSON's path (``/api/v1/status-page/{key}``).")]
    title: str
    intro: str
    groups: list[StatusPageGroupOut]


# the public answer -----------------------------------------------------------------------------
PublicState = Literal["up", "late", "down", "paused", "new", "running", "unknown", "maintenance"]
OverallState = Literal["up", "degraded", "down", "maintenance"]


class PublicItem(Struct, kw_only=True):
    label: str
    state: Annotated[
        PublicState,
        Meta(description="Now: its status, or ``maintenance`` while a maintenance window covers it."),
    ]
    since: str | None
    uptime: Annotated[
        float | None, Meta(description=f"Percent over the {DAYS} days (null: nothing observed).")
    ]
    days: Annotated[
        list[float | None],
        Meta(
            description=f"Uptime percent of each of the {DAYS} UTC days in "
            "``days`` (null: not watched that day)."
        ),
    ]


class PublicGroup(Struct, kw_only=True):
    name: str
    items: list[PublicItem]


class PublicChange(Struct, kw_only=True):
    label: str
    at: str
    state: str


class PublicStatusPage(Struct, kw_only=True):
    """``GET /status-page/{key}``: labels, states and figures only (no ids, names, tokens or messages)."""

    title: str
    intro: str
    state: Annotated[
        OverallState,
        Meta(
            description="``down`` if any is down; ``degraded`` if any is late or "
            "unknown; ``maintenance`` if any is in maintenance; else ``up``."
        ),
    ]
    updated_at: str
    days: Annotated[list[str], Meta(description=f"The {DAYS} UTC dates the bars stand for, oldest first.")]
    groups: list[PublicGroup]
    changes: Annotated[
        list[PublicChange],
        Meta(
            description=f"The last {MAX_CHANGES} status changes of the shown "
            f"heartbeats in the {DAYS} days, newest first."
        ),
    ]
