"""The JSON Schema of a ``pingura.yaml`` (for editors: ``# yaml-language-server: $schema=...``),
generated from the file's types (:mod:`.model`, themselves derived from the API's bodies) as the
OpenAPI document is: msgspec's schema, each Struct's ``json_schema_extra`` merged in, and a
channel's ``config`` stated per kind from the kinds' declarations. Committed as
``docs/pingura.schema.json`` (a test keeps it equal to this)."""

from __future__ import annotations

import inspect
import json
from typing import Any

import msgspec

from services.config_file.model import ChannelSpec, CoveringSpec, HeartbeatSpec, MaintenanceSpec, PinguraFile
from services.query.api.schemas.channels import kind_bodies
from services.query.api.schemas.checks import CHECKS

DEFS = "#/$defs/"
SCHEMA_PATH = "docs/pingura.schema.json"


def build_schema() -> dict[str, Any]:
    (root,), components = msgspec.json.schema_components([PinguraFile], ref_template=DEFS + "{name}")
    kinds: tuple[type, ...] = (
        PinguraFile,
        HeartbeatSpec,
        ChannelSpec,
        MaintenanceSpec,
        CoveringSpec,
        *CHECKS.values(),
    )
    for kind in kinds:
        extra = getattr(kind, "json_schema_extra", None)
        if extra and kind.__name__ in components:
            components[kind.__name__].update(extra)
    per_kind = kind_bodies(components["ChannelSpec"])
    channel = per_kind.pop("ChannelCreate")
    channel["description"] = ChannelSpec.__doc__
    for body in channel["oneOf"]:  # the file knows a channel by its name: required there
        body["required"] = ["name", *body["required"]]
    components.update(per_kind, ChannelSpec=channel)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pingura.yaml",
        "description": inspect.cleandoc(PinguraFile.__doc__ or ""),
        **root,
        "$defs": dict(sorted(components.items())),
    }
    return json.loads(json.dumps(document).replace("#/components/schemas/", DEFS))


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"
