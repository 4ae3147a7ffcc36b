"""Reading a ``pingura.yaml``: bounded YAML, ``${ENV_VAR}`` references, then the API's own checks.

Every refusal is one :class:`FileError` naming the place in the file (``heartbeats[3].interval:
...``), raised before anything is sent. The YAML is read with ``yaml.safe_load`` after a pass
over its events that refuses anchors and aliases (an alias bomb) and nesting deeper than
:data:`MAX_DEPTH` (which would exhaust the composer's recursion), and a size cap.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import yaml

from services.config_file.model import SPECS, VERSION
from services.notifier.channels import CHANNELS, ChannelConfigError
from services.notifier.channels.base import check_declared
from services.query.api.schemas.decode import decode_body
from services.query.api.schemas.heartbeats import HeartbeatCreate
from services.query.api.schemas.maintenance import MaintenanceCreate
from services.query.validation import InvalidField
from shared.errors import PinguraError

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32
ENV_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${NAME}``: the variable's value; ``$${NAME}``: the text ``${NAME}`` itself."""


class FileError(PinguraError, ValueError):
    """A file refused: one line, the place in the file first."""


@dataclass
class Desired:
    """A file, checked: each object by its key, as written (the spec, environment expanded) and
    as the API reads it (its create body, normalized: periods in seconds, schedules checked)."""

    channels: dict[str, Any] = field(default_factory=dict)
    heartbeats: dict[str, tuple[Any, HeartbeatCreate]] = field(default_factory=dict)
    maintenance: dict[str, tuple[Any, MaintenanceCreate]] = field(default_factory=dict)


def read_yaml(text: str | bytes) -> Any:
    """The document, bounded: no anchors or aliases, at most :data:`MAX_DEPTH` deep."""
    if len(text) > MAX_FILE_BYTES:
        raise FileError(f"file: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise FileError(f"line {_line(event)}: anchors and aliases (& and *) are not supported")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise FileError(f"line {_line(event)}: nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return _plain(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or str(exc)
        raise FileError(f"{where}: not valid YAML ({problem})") from None


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0


def _plain(value: Any) -> Any:
    """YAML's own types as JSON's: an unquoted time is the text it was (the API reads ISO-8601)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def expand(value: Any, environ: Mapping[str, str], path: str = "") -> Any:
    """Every ``${NAME}`` in the strings of ``value`` replaced by the variable's value; an unset one
    is refused naming it."""
    if isinstance(value, dict):
        return {k: expand(v, environ, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def one(match: re.Match[str]) -> str:
        if match[1]:
            return "${" + match[2] + "}"
        if match[2] not in environ:
            raise FileError(f"{path}: environment variable {match[2]} is not set")
        return environ[match[2]]

    return ENV_REFERENCE.sub(one, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def load(text: str | bytes, environ: Mapping[str, str]) -> Desired:
    """A file's text, checked whole (see :class:`Desired`); :class:`FileError` on the first problem."""
    data = read_yaml(text)
    if not isinstance(data, dict):
        raise FileError("file: must be a mapping with version: 1 and channels, heartbeats, maintenance lists")
    unknown = [str(k) for k in data if k not in ("version", *SPECS)]
    if unknown:
        raise FileError(f"{unknown[0]}: unknown section (known: version, {', '.join(SPECS)})")
    if data.get("version") != VERSION:
        raise FileError(f"version: must be {VERSION} (this file format), got {data.get('version')!r}")
    data = expand(data, environ)
    desired = Desired()
    for section, spec_type in SPECS.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            raise FileError(f"{section}: must be a list")
        for i, item in enumerate(items):
            path = f"{section}[{i}]"
            if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
                raise FileError(f"{path}: must be a mapping of field names to values")
            spec = _checked(path, item, spec_type)
            _add(desired, section, path, item, spec)
    return desired


def _checked(path: str, body: dict[str, Any], kind: Any) -> Any:
    try:
        return decode_body(body, kind)
    except InvalidField as exc:
        raise FileError(f"{path}.{exc}") from None


def _add(desired: Desired, section: str, path: str, item: dict[str, Any], spec: Any) -> None:
    if section == "channels":
        key, known = spec.name, desired.channels
        channel = CHANNELS.get(spec.kind)
        if channel is None:
            raise FileError(
                f"{path}.kind: unknown channel kind {spec.kind!r} (known: {', '.join(sorted(CHANNELS))})"
            )
        try:
            check_declared(channel.config_fields, spec.config)
        except ChannelConfigError as exc:
            raise FileError(f"{path}.{exc}") from None
        value: Any = spec
    elif section == "heartbeats":
        key, known = spec.slug, desired.heartbeats
        body = {k: v for k, v in item.items() if k not in ("channels", "depends_on")}
        value = (spec, _checked(path, body, HeartbeatCreate))
    else:
        key, known = spec.name, desired.maintenance
        # Slugs stand in for the ids the API's covering holds: the same checks, the ids come later.
        value = (
            spec,
            _checked(path, {**item, "covering": msgspec.to_builtins(spec.covering)}, MaintenanceCreate),
        )
    if key in known:
        what = "slug" if section == "heartbeats" else "name"
        raise FileError(f"{path}.{what}: {key!r} is already used by another of the {section} in this file")
    known[key] = value
