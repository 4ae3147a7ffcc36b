"""From a request to its declared type: a JSON body or a query string decoded into a Struct,
every refusal an :class:`InvalidField` naming the field, in one line.

msgspec checks what the type declares (types, lengths, ranges, patterns, unknown or
missing fields); the Struct's ``__post_init__`` checks the rest and raises
:class:`InvalidField` itself, which is passed on as it is.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from services.query.validation import InvalidField

T = TypeVar("T", bound=msgspec.Struct)

_AT = re.compile(r"^(?P<reason>.*) - at `\$\.(?P<field>[^`\[.]+)(?:\.(?P<part>[^`\[.]+))?[^`]*`$", re.DOTALL)
_OBJECT_FIELD = re.compile(r"^Object (?:contains unknown|missing required) field `(?P<field>.*)`$", re.DOTALL)
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")
"""A query parameter an ``int`` field takes: ASCII digits only (``int()`` would also read
"٣", "+5", "1_0" and " 5")."""


def decode_body(body: Mapping[str, Any], kind: type[T]) -> T:
    """``body`` (a JSON object, see :func:`services.query.api.errors.json_body`) as ``kind``."""
    return _convert(whole_floats(body), kind)


def decode_query(query: Mapping[str, str], kind: type[T]) -> T:
    """A query string as ``kind``: an empty value is absent where the type says so
    (``empty_is_absent``), whole numbers are ASCII digits, the rest stays text."""
    empty_is_absent: frozenset[str] = getattr(kind, "empty_is_absent", frozenset())
    ints = _int_fields(kind)
    values: dict[str, Any] = {}
    for name in kind.__struct_encode_fields__:  # as the query string spells them ("from", not from_)
        if name not in query:
            continue
        value = query[name]
        if value == "" and name in empty_is_absent:
            continue
        values[name] = int(value) if name in ints and _WHOLE_NUMBER.fullmatch(value) else value
    return _convert(values, kind)


def whole_floats(body: Mapping[str, Any]) -> dict[str, Any]:
    """A body's ``3.0`` made ``3``, at the top level and in the objects it holds (a heartbeat's
    rules): JSON has one number type, and JSON Schema calls 3.0 an integer (``3.5`` and ``true``
    stay what they are, and are refused where an integer is wanted)."""
    return {key: _whole(value) if not isinstance(value, Mapping) else
            {k: _whole(v) for k, v in value.items()}  # one level more: the objects of a heartbeat's rules
            for key, value in body.items()}  # fmt: skip


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _convert(values: Mapping[str, Any], kind: type[T]) -> T:
    try:
        return msgspec.convert(values, kind)
    except msgspec.ValidationError as exc:
        if isinstance(exc.__cause__, InvalidField):
            raise exc.__cause__ from None
        raise refused(str(exc), kind) from None


def refused(message: str, kind: type[msgspec.Struct]) -> InvalidField:
    """msgspec's refusal as the API says it: the field, and its type's refusal if it declares one."""
    at = _AT.match(message)
    if at is not None:
        field, reason = at["field"], at["reason"]
        inner = _inner(kind, field, at["part"], reason)
        if inner is not None:
            return InvalidField(field, inner)
    else:
        named = _OBJECT_FIELD.match(message)
        if named is None:
            return InvalidField("body", message)
        field = named["field"]
        if message.startswith("Object contains unknown"):
            return InvalidField(field, "unknown field")
        reason = "required"
    return InvalidField(field, _refusals(kind).get(field, reason))


def _inner(kind: type[msgspec.Struct], field: str, part: str | None, reason: str) -> str | None:
    """The refusal of a part of an object field (``fleet.min_instances``), naming the part, when
    that object's type declares it; None: the field's own refusal says it."""
    structs = _structs(typing.get_type_hints(kind, include_extras=True).get(field))
    if not structs:
        return None
    inner = structs[0]
    if part is None:
        named = _OBJECT_FIELD.match(reason)
        if named is None:
            return None
        return f"{named['field']}: " + (
            "unknown field" if reason.startswith("Object contains unknown") else "required"
        )
    refusal = _refusals(inner).get(part)
    return None if refusal is None else f"{part}: {refusal}"


def _structs(hint: Any) -> list[type[msgspec.Struct]]:
    """The Struct types ``hint`` is, or is a union or annotation of."""
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return [hint]
    return [s for arg in typing.get_args(hint) for s in _structs(arg)]


@functools.cache
def _refusals(kind: type[msgspec.Struct]) -> dict[str, str]:
    """Each field's declared refusal (``Meta(extra={"refusal": ...})``, see :mod:`.fields`)."""
    out = {}
    for name, hint in typing.get_type_hints(kind, include_extras=True).items():
        for meta in _metas(hint):
            if meta.extra and "refusal" in meta.extra:
                out[name] = meta.extra["refusal"]
    return out


def _metas(hint: Any) -> list[msgspec.Meta]:
    """The Meta of ``hint`` and of the members of a union it is (``X | None``, ``X | UnsetType``)."""
    if typing.get_origin(hint) is typing.Annotated:
        return [m for m in hint.__metadata__ if isinstance(m, msgspec.Meta)]
    return [m for arg in typing.get_args(hint) for m in _metas(arg)]


@functools.cache
def _int_fields(kind: type[msgspec.Struct]) -> frozenset[str]:
    """The fields of a query type that take a whole number."""
    hints = typing.get_type_hints(kind)
    wire = dict(zip(kind.__struct_fields__, kind.__struct_encode_fields__, strict=True))
    return frozenset(wire[name] for name in kind.__struct_fields__
                     if hints[name] is int or int in typing.get_args(hints[name]))  # fmt: skip
