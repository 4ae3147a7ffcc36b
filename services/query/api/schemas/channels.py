"""Channel bodies: the create and the change a client sends, the channel and the kinds the API answers.

A create's ``config`` is checked by its kind (:func:`services.notifier.channels.validate_channel`,
whose refusals name the setting: ``config.url``); the document states each kind's settings
from the kind's own declaration (:func:`kind_bodies`)."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType

from services.notifier.channels import CHANNELS
from services.notifier.channels.base import ConfigField, FieldType
from services.query.api.schemas.fields import JsonSchema, Name, OptionalName, Timestamp, refusal
from services.query.validation import name_field


class ChannelCreate(Struct, forbid_unknown_fields=True):
    """A new channel; ``config`` holds the settings its kind declares (see ``GET /channel-kinds``)."""

    kind: Annotated[str, Meta(extra=refusal("required"))]
    name: Annotated[OptionalName, Meta(description="Defaults to the kind.")] = ""
    config: Annotated[dict[str, Any], Meta(extra=refusal("must be a JSON object"))] = {}

    def __post_init__(self) -> None:
        self.name = name_field("name", self.name, required=False) or self.kind


class ChannelUpdate(Struct, forbid_unknown_fields=True):
    """A change to a channel: only the fields given change, checked as on create.

    ``config`` holds the settings to change: one left out keeps its value, ``null`` removes
    it (an optional one). A secret setting sent back as the API shows it (``****abcd``, each
    value of a secret map too) keeps its saved value. ``kind`` cannot change (400): make a
    new channel; sent, it must be the channel's."""

    kind: str | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    config: Annotated[dict[str, Any], Meta(extra=refusal("must be a JSON object"))] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.name is not UNSET:
            self.name = name_field("name", self.name)


class ChannelHeartbeat(Struct):
    id: str
    name: str


class Channel(Struct):
    id: str
    kind: str
    name: str
    config: Annotated[
        dict[str, Any], Meta(description="As saved, with secret settings masked (``****abcd``).")
    ]
    created_at: Timestamp
    updated_at: Timestamp
    heartbeats: Annotated[
        list[ChannelHeartbeat], Meta(description="The heartbeats that alert to it, by name.")
    ]


class ChannelList(Struct):
    channels: list[Channel]


class Setting(Struct, omit_defaults=True):
    name: str
    type: FieldType
    required: bool
    secret: bool
    help: str
    choices: list[str] | None = None


class ChannelKind(Struct, omit_defaults=True):
    kind: str
    label: str
    settings: list[Setting]
    available: Annotated[bool, Meta(description="Whether this server can make channels of it.")]
    unavailable_reason: (
        Annotated[str, Meta(description="Why not, when not (e.g. no SMTP server).")] | None
    ) = None


class ChannelKindList(Struct):
    kinds: list[ChannelKind]


# the document: one body per kind ------------------------------------------------------------
_SETTING_TYPES: dict[str, JsonSchema] = {
    "string": {"type": "string"},
    "url": {"type": "string", "format": "uri"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "map": {"type": "object", "additionalProperties": {"type": "string"}},
    "list": {"type": "array", "items": {"type": "string"}},
    "text": {"type": "string"},
}


def _setting_schema(field: ConfigField) -> JsonSchema:
    schema = {**_SETTING_TYPES[field.type], "description": field.help}
    if field.choices is not None:
        schema["enum"] = list(field.choices)
    return schema


def config_schema_name(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.replace("-", "_").split("_")) + "Config"


def kind_bodies(generated: JsonSchema) -> dict[str, JsonSchema]:
    """``ChannelCreate`` as one body per kind (its ``kind`` a constant, its ``config`` the
    kind's settings), from the generated ``ChannelCreate`` and each kind's declaration."""
    out: dict[str, JsonSchema] = {}
    bodies = []
    for kind, channel in sorted(CHANNELS.items()):
        out[config_schema_name(kind)] = {
            "type": "object", "additionalProperties": False,
            "description": f"Settings of a ``{kind}`` channel (see ``GET /channel-kinds``).",
            "properties": {f.name: _setting_schema(f) for f in channel.config_fields},
            "required": [f.name for f in channel.config_fields if f.required],
        }  # fmt: skip
        properties = {
            **generated["properties"],
            "kind": {"type": "string", "const": kind},
            "config": {"$ref": f"#/components/schemas/{config_schema_name(kind)}"},
        }
        # Without settings the config is {}: required only when some setting is.
        required = ["kind", "config"] if any(f.required for f in channel.config_fields) else ["kind"]
        bodies.append({**generated, "properties": properties, "required": required})
    out["ChannelCreate"] = {
        "oneOf": bodies,
        "description": f"One of the kinds: {', '.join(sorted(CHANNELS))}.",
    }
    return out
