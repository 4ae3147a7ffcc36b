"""Project, key and session bodies: what a client sends to make a project or a key or to
change its project, and what the API answers about them."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from services.query.api.schemas.fields import Flag, Name, Timestamp, refusal
from services.query.auth.sessions import CSRF_HEADER
from services.query.validation import name_field


class ProjectCreate(Struct):
    """A new project (admin keys only). Other fields are ignored."""

    name: Name

    def __post_init__(self) -> None:
        self.name = name_field("name", self.name)


class ProjectCreated(Struct):
    id: str
    name: str
    api_key: Annotated[str, Meta(description="The new project's first key; shown only now.")]
    key_id: Annotated[str, Meta(description="That key's id (to revoke it).")]


PingKey = Annotated[str, Meta(
    pattern="^[A-Za-z0-9_-]{22}$",  # no examples: a ping key is unique among projects
    description="The project's ping key of your choosing, 22 characters of A-Z, a-z, 0-9, - and _ (as "
                "Healthchecks makes them, so that a project moved in keeps its slug URLs); refused (409) if "
                "another project has it. ``POST /projects/me/ping-key`` makes a random one.",
    extra=refusal("must be 22 characters of A-Z, a-z, 0-9, - and _"),
)]  # fmt: skip


class ProjectUpdate(Struct, forbid_unknown_fields=True):
    """A change to the caller's project: ``{"name": "billing"}`` renames it;
    ``{"auto_create": false}`` makes a ping to an unknown slug answer 404 instead of creating
    its heartbeat."""

    name: Name | UnsetType = UNSET
    auto_create: Flag | UnsetType = UNSET
    ping_key: PingKey | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.name is not UNSET:
            self.name = name_field("name", self.name)


class CurrentProject(Struct, kw_only=True):
    id: str
    name: str
    admin: Annotated[bool, Meta(description="An admin project's keys may create projects.")]
    read_only: Annotated[bool, Meta(description="Whether the key in use may only read.")]
    key_name: Annotated[str, Meta(description="The name of the key in use.")]
    auto_create: Annotated[
        bool, Meta(description="Whether a ping to an unknown slug with ``?create=1`` creates the heartbeat.")
    ]
    ping_key: (
        Annotated[
            str | None,
            Meta(
                description="Secret of the slug URLs ``/ping/{ping_key}/{slug}``; null until made "
                "(``POST /projects/me/ping-key``). Absent for a read-only key."
            ),
        ]
        | UnsetType
    ) = UNSET
    badge_key: Annotated[
        str | None,
        Meta(
            description="Secret of the public badge URLs ``/api/v1/badge/{badge_key}/...`` (statuses only, so "
            "read-only keys see it too); null until made (``POST /projects/me/badge-key``)."
        ),
    ] = None


class ApiKeyCreate(Struct, forbid_unknown_fields=True):
    """A new API key of the caller's project."""

    name: Name
    read_only: Annotated[Flag, Meta(description="May only read, and never sees ping tokens or URLs.")] = False

    def __post_init__(self) -> None:
        self.name = name_field("name", self.name)


class ApiKey(Struct):
    """An API key of the project; the key itself is never shown again."""

    id: str
    name: str
    read_only: bool
    created_at: Timestamp


class ApiKeyCreated(Struct):
    id: str
    name: str
    read_only: bool
    created_at: Timestamp
    key: Annotated[str, Meta(description="The key; shown only now.")]


class ApiKeyList(Struct):
    keys: list[ApiKey]


class SessionProject(Struct):
    id: str
    name: str


class Session(Struct):
    """Who is calling: project, key, and the CSRF token of a session."""

    project: SessionProject
    key_name: str
    read_only: bool
    csrf_token: Annotated[
        str | None,
        Meta(
            description=f"Send it back in ``{CSRF_HEADER}`` on every write made with the session cookie. Null when "
            "the caller used a key rather than the cookie."
        ),
    ]
