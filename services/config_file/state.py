"""Objects in one form for both sides: the file's and the server's, each made *canonical* (every
managed field, defaults filled in, periods in seconds, channels by name, heartbeats by slug), so
comparing is ``==`` per field; and the *file form* of a canonical object (defaults left out,
periods as durations), which export writes and the plan's diffs show.

A reference the file cannot spell (a dependency on, or a window covering, a heartbeat without a
slug) is kept as ``id:<id>`` on the server's side and carried over to the file's: objects without
a slug are not managed, and what points at them is left as it is.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec import UNSET

from services.config_file.model import PERIOD_FIELDS, HeartbeatSpec, heartbeat_defaults
from services.notifier.channels import CHANNELS
from services.notifier.channels.base import mask_config
from services.query.api.schemas.heartbeats import Heartbeat, HeartbeatCreate
from services.query.api.schemas.holding import muted_until_ms, muted_until_text
from services.query.api.schemas.maintenance import MaintenanceCreate
from services.query.validation import parse_time_ms
from shared.clock import iso_ms

UNMANAGED = "id:"
"""Prefix of a reference to a heartbeat without a slug (``id:hb_...``)."""
HEARTBEAT_FIELDS = tuple(f for f in HeartbeatSpec.__struct_fields__ if f in Heartbeat.__struct_fields__)
"""What a file sets of a heartbeat, and the server answers: compared field by field."""
WINDOW_FIELDS = ("name", "starts_at", "ends_at", "schedule", "duration", "timezone", "covering")
WINDOW_DEFAULTS: dict[str, Any] = {"ends_at": None, "schedule": None, "duration": None, "timezone": "UTC"}
EMPTY: tuple[Any, ...] = (None, {}, [], "")
Canonical = dict[str, Any]


class Names:
    """The server's ids by name and back: channels by name, heartbeats by slug."""

    def __init__(self, channels: list[dict[str, Any]], heartbeats: list[dict[str, Any]]):
        self.channel_name = {c["id"]: c["name"] for c in channels}
        self.slug = {h["id"]: h["slug"] for h in heartbeats if h.get("slug")}

    def channel(self, channel_id: str) -> str:
        return self.channel_name.get(channel_id, UNMANAGED + channel_id)

    def heartbeat(self, heartbeat_id: str) -> str:
        return self.slug.get(heartbeat_id, UNMANAGED + heartbeat_id)


def unmanaged(refs: list[str]) -> list[str]:
    return [r for r in refs if r.startswith(UNMANAGED)]


# heartbeats ----------------------------------------------------------------------------------
def current_heartbeat(answer: dict[str, Any], names: Names) -> Canonical:
    out = {f: answer.get(f) for f in HEARTBEAT_FIELDS}
    out["channels"] = [names.channel(c) for c in answer.get("channels", [])]
    out["depends_on"] = sorted(names.heartbeat(h) for h in answer.get("depends_on", []))
    if out.get("schedule") is not None:
        out["interval"] = None
    return out


def desired_heartbeat(spec: Any, body: HeartbeatCreate, current: Canonical | None) -> Canonical:
    """The file's heartbeat, canonical; dependencies on unmanaged heartbeats kept from ``current``."""
    defaults = heartbeat_defaults()
    out: Canonical = {}
    for f in HEARTBEAT_FIELDS:
        value = getattr(spec, f) if f in ("channels", "depends_on", "slug") else getattr(body, f, UNSET)
        out[f] = defaults.get(f) if value is UNSET else msgspec.to_builtins(value)
    if out["schedule"] is not None:
        out["interval"] = None
    if out.get("muted_until") is not None:
        out["muted_until"] = muted_until_text(muted_until_ms(out["muted_until"]))
    elif spec.muted_until is UNSET and current is not None:
        out["muted_until"] = current["muted_until"]  # a mute is an operator's, unless the file says
    if current is not None:
        out["depends_on"] = out["depends_on"] + unmanaged(current["depends_on"])
    out["depends_on"] = sorted(set(out["depends_on"]))  # a set: the order is not the file's to keep
    return out


def duration_text(value: Any) -> Any:
    """``5400`` -> ``"1h30m"``; other values as they are."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return value
    parts, rest = [], value
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def heartbeat_file_form(canonical: Canonical) -> dict[str, Any]:
    """As a file holds it: name and slug, then what differs from the defaults."""
    defaults = heartbeat_defaults()
    out: dict[str, Any] = {"name": canonical["name"], "slug": canonical["slug"]}
    for f in HEARTBEAT_FIELDS:
        value = canonical[f]
        if f in ("channels", "depends_on"):
            value = [v for v in value if not v.startswith(UNMANAGED)]
        if f in out or value == defaults.get(f):
            continue
        out[f] = duration_text(value) if f in PERIOD_FIELDS else value
    return out


# channels ------------------------------------------------------------------------------------
def secret_fields(kind: str) -> tuple[str, ...]:
    channel = CHANNELS.get(kind)
    return tuple(f.name for f in channel.config_fields if f.secret) if channel is not None else ()


def _shown(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sorted(config.items()) if v not in EMPTY}


def current_channel(answer: dict[str, Any]) -> Canonical:
    """As the server shows it: secret settings masked (``****abcd``)."""
    return {"name": answer["name"], "kind": answer["kind"], "config": _shown(answer["config"])}


def desired_channel(spec: Any) -> Canonical:
    """As the server would show it: secrets masked the same way, so a secret whose last four
    characters changed is seen as changed (an equal mask is taken as unchanged)."""
    channel = CHANNELS[spec.kind]
    return {
        "name": spec.name,
        "kind": spec.kind,
        "config": _shown(mask_config(channel.config_fields, spec.config)),
    }


def env_name(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Z0-9]+", "_", p.upper()).strip("_") for p in ("PINGURA_CHANNEL", *parts))


def channel_export(answer: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The file form of a server's channel, each secret setting an ``${ENV_VAR}`` reference;
    and the variables named."""
    config, variables = dict(_shown(answer["config"])), []
    for field in secret_fields(answer["kind"]):
        value = config.get(field)
        if isinstance(value, dict):
            config[field] = {k: "${" + env_name(answer["name"], field, k) + "}" for k in value}
            variables += [env_name(answer["name"], field, k) for k in value]
        elif value is not None:
            config[field] = "${" + env_name(answer["name"], field) + "}"
            variables.append(env_name(answer["name"], field))
    return {"name": answer["name"], "kind": answer["kind"], "config": config}, variables


# maintenance windows -------------------------------------------------------------------------
def _covering(covering: dict[str, Any], heartbeats: list[str]) -> dict[str, Any]:
    return {"heartbeats": sorted(set(heartbeats)), "tags": covering.get("tags", []),
            "whole_project": covering.get("whole_project", False)}  # fmt: skip


def current_window(answer: dict[str, Any], names: Names) -> Canonical:
    out = {f: answer.get(f) for f in WINDOW_FIELDS}
    covering = answer["covering"]
    out["covering"] = _covering(covering, [names.heartbeat(h) for h in covering.get("heartbeats", [])])
    return out


def desired_window(spec: Any, body: MaintenanceCreate, current: Canonical | None) -> Canonical:
    """The file's window, canonical. A recurring window's ``starts_at`` left out is the server's
    (its creation time), not a change."""
    out: Canonical = {}
    for f in WINDOW_FIELDS:
        value = getattr(body, f)
        out[f] = WINDOW_DEFAULTS.get(f) if value is UNSET else value
    for f in ("starts_at", "ends_at"):
        if isinstance(out[f], str):
            out[f] = iso_ms(parse_time_ms(f, out[f], 0))
    if body.starts_at is UNSET:
        out["starts_at"] = current["starts_at"] if current is not None else None
    covered = list(spec.covering.heartbeats)
    if current is not None:
        covered += unmanaged(current["covering"]["heartbeats"])
    out["covering"] = _covering(msgspec.to_builtins(spec.covering), covered)
    return out


def unmanaged_window(canonical: Canonical) -> bool:
    """Covering only heartbeats without a slug: a file could not say what it covers."""
    covering = canonical["covering"]
    return (
        bool(covering["heartbeats"])
        and all(h.startswith(UNMANAGED) for h in covering["heartbeats"])
        and not covering["tags"]
        and not covering["whole_project"]
    )


def window_file_form(canonical: Canonical) -> dict[str, Any]:
    out: dict[str, Any] = {"name": canonical["name"]}
    covering = canonical["covering"]
    shown = {"heartbeats": [h for h in covering["heartbeats"] if not h.startswith(UNMANAGED)],
             "tags": covering["tags"], "whole_project": covering["whole_project"]}  # fmt: skip
    out["covering"] = {k: v for k, v in shown.items() if v not in ([], False)}
    for f in ("starts_at", "ends_at", "schedule", "duration", "timezone"):
        value = canonical[f]
        if value is not None and value != WINDOW_DEFAULTS.get(f):
            out[f] = duration_text(value) if f == "duration" else value
    return out
