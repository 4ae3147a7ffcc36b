"""The types of a ``pingura.yaml``, derived from the API's own bodies (one declaration per shape).

Each object of the file is the API's create body with what the file needs instead of ids:
a heartbeat is :class:`~services.query.api.schemas.heartbeats.HeartbeatCreate` keyed by its
(required) ``slug``, naming its channels by name and its dependencies by slug, without its
``token`` (a secret, never in a file); a channel is ``ChannelCreate`` with a required ``name``;
a maintenance window is ``MaintenanceCreate`` covering heartbeats by slug. The types are built
from the bodies' type hints when this module is imported, so a field the API gains (a
heartbeat's ``description``) is in the file, its checks and its JSON Schema at once.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from services.query.api.schemas.channels import ChannelCreate
from services.query.api.schemas.fields import DurationText, Name, Slug
from services.query.api.schemas.heartbeats import HeartbeatCreate
from services.query.api.schemas.maintenance import Covering, MaintenanceCreate

VERSION = 1
NEVER_IN_FILES = frozenset({"token"})
"""Body fields a file never holds: secrets the server makes."""

ChannelNames = typing.Annotated[
    list[Name],
    Meta(
        description="Names of channels (of this file or already on the server), alerted when it goes down or up.",
        extra={"refusal": "a list of channel names"},
    ),
]
Slugs = typing.Annotated[
    list[Slug],
    Meta(
        description="Slugs of heartbeats (of this file or already on the server).",
        extra={"refusal": "a list of heartbeat slugs"},
    ),
]
FileSlug = typing.Annotated[
    Slug,
    Meta(
        description="What the file knows the heartbeat by (its slug URL name): required. A heartbeat without a "
        "slug on the server is not managed by files.",
        extra={"refusal": "required: 1-64 lower-case letters, digits, - and _"},
    ),
]
ChannelName = typing.Annotated[
    Name,
    Meta(description="What the file knows the channel by: required, unique.", extra={"refusal": "required"}),
]


def _fields(kind: type[Struct]) -> dict[str, Any]:
    hints = typing.get_type_hints(kind, include_extras=True)
    return {name: hints[name] for name in kind.__struct_fields__}


def _derive(
    name: str,
    body: type[Struct],
    replace: dict[str, tuple[Any, Any]],
    doc: str,
    drop: frozenset[str] = frozenset(),
) -> type[Struct]:
    """``body``'s fields (every one optional, as in the body) with some replaced: name -> (type, default)."""
    fields: list[tuple[Any, ...]] = []
    defaults = {info.name: info for info in msgspec.structs.fields(body)}
    for field, hint in _fields(body).items():
        if field in drop:
            continue
        if field in replace:
            kind, default = replace[field]
            fields.append((field, kind, default) if default is not msgspec.NODEFAULT else (field, kind))
        else:
            info = defaults[field]
            default = (
                info.default_factory() if info.default_factory is not msgspec.NODEFAULT else info.default
            )
            fields.append((field, hint) if info.required else (field, hint, default))
    required = [f for f in fields if len(f) == 2]
    kind = msgspec.defstruct(
        name,
        required + [f for f in fields if len(f) == 3],
        kw_only=True,
        forbid_unknown_fields=True,
        omit_defaults=True,
        module=__name__,
        namespace={"__doc__": doc, "json_schema_extra": getattr(body, "json_schema_extra", None)},
    )
    return kind


def _optional(hint: Any) -> Any:
    return hint | UnsetType


HeartbeatSpec = _derive(
    "HeartbeatSpec",
    HeartbeatCreate,
    {
        "name": (Name, msgspec.NODEFAULT),
        "slug": (FileSlug, msgspec.NODEFAULT),
        "channels": (_optional(ChannelNames), UNSET),
        "depends_on": (_optional(Slugs), UNSET),
    },
    "A heartbeat, known by its slug: the API's create body (``POST /heartbeats``), channels by name, "
    "dependencies by slug.",
    drop=NEVER_IN_FILES,
)
CoveringSpec = _derive(
    "CoveringSpec",
    Covering,
    {"heartbeats": (Slugs, [])},
    "What a window covers: heartbeats by slug, tags, or the whole project.",
)
MaintenanceSpec = _derive(
    "MaintenanceSpec",
    MaintenanceCreate,
    {"name": (ChannelName, msgspec.NODEFAULT), "covering": (CoveringSpec, msgspec.NODEFAULT)},
    "A maintenance window, known by its name: the API's create body (``POST /maintenance``), covering "
    "heartbeats by slug.",
)
ChannelSpec = _derive(
    "ChannelSpec",
    ChannelCreate,
    {"name": (ChannelName, msgspec.NODEFAULT)},
    "A channel, known by its name: the API's create body (``POST /channels``). Secret settings are best "
    "written as ``${ENV_VAR}`` references.",
)


class PinguraFile(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A ``pingura.yaml``: what a project should hold. Strings may hold ``${ENV_VAR}`` references,
    expanded from the environment by ``pingura apply``."""

    version: typing.Annotated[
        Literal[1], Meta(description="The file format: 1.", extra={"refusal": "must be 1"})
    ]
    channels: list[ChannelSpec] = []  # type: ignore[valid-type]
    heartbeats: list[HeartbeatSpec] = []  # type: ignore[valid-type]
    maintenance: list[MaintenanceSpec] = []  # type: ignore[valid-type]


SPECS: dict[str, type[Struct]] = {
    "channels": ChannelSpec,
    "heartbeats": HeartbeatSpec,
    "maintenance": MaintenanceSpec,
}
"""Section of the file -> the type of its items."""


def _has_duration(hint: Any) -> bool:
    return hint == DurationText or any(_has_duration(arg) for arg in typing.get_args(hint))


PERIOD_FIELDS = frozenset(field for field, hint in _fields(HeartbeatCreate).items() if _has_duration(hint))
"""Heartbeat fields that take a duration: export writes them as ``"1h30m"``."""


def heartbeat_defaults() -> dict[str, Any]:
    """What the API answers for each field a create leaves out (its ``monitor_fields``, in the
    answer's terms: periods without the ``_s``, a mute without ``_ms``; rules off)."""
    stored = HeartbeatCreate(name="x", interval=60).monitor_fields(creating=True)
    out: dict[str, Any] = {}
    for field in HeartbeatSpec.__struct_fields__:
        for key in (field, f"{field}_s", f"{field}_ms"):
            if key in stored:
                value = stored[key]
                out[field] = msgspec.to_builtins(value) if value is not None else None
                break
    out.pop("name", None)
    out["interval"] = None  # interval or schedule: the file gives one
    return out
