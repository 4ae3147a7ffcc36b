"""The field types the API's bodies and query strings share, each declared once with its
constraints (what msgspec enforces and the OpenAPI document states) and its refusal.

A type's ``Meta(extra={"refusal": ...})`` is the one-line reason the API gives when msgspec
refuses a value of it (see :mod:`.decode`); checks a schema cannot state (trimming, the
characters of a name, durations) run in the owning Struct's ``__post_init__``.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from services.query.validation import (
    MAX_CHANNEL_ID_CHARS,
    MAX_CHANNELS,
    MAX_NAME_CHARS,
    MAX_PERIOD_S,
    MAX_TAG_CHARS,
    MAX_TAGS,
    UNSAFE_IN_NAMES_CLASS,
)
from shared.slugs import MAX_SLUG_CHARS, SLUG_PATTERN

JsonSchema = dict[str, Any]


def refusal(text: str) -> dict[str, str]:
    """``Meta(extra=...)`` of a type: what the API answers when msgspec refuses a value of it."""
    return {"refusal": text}


def _not_blank_pattern() -> str:
    """A character ``str.strip()`` keeps: regex ``\\S`` differs between dialects (ECMA's keeps
    U+0085 and U+001C-U+001F, which Python strips), so the class is spelled out."""
    spaces = [c for c in range(0x3001) if chr(c).isspace()]
    runs: list[list[int]] = []
    for c in spaces:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return "[^" + "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in runs) + "]"


NOT_BLANK = _not_blank_pattern()
NO_UNSAFE_CHARS: JsonSchema = {"not": {"pattern": UNSAFE_IN_NAMES_CLASS}}
"""Stated in the document; checked by :func:`services.query.validation.safe_text` (its
refusal names the character, which a pattern's could not)."""
SAFE_CHARS = (
    "no control characters (C0, C1), bidi embeddings, overrides or isolates (U+202A-U+202E, "
    "U+2066-U+2069), U+200B, U+2060, U+FEFF, U+2028 or U+2029"
)
NAME_REFUSAL = f"required, 1-{MAX_NAME_CHARS} characters"

Name = Annotated[str, Meta(
    min_length=1, max_length=MAX_NAME_CHARS, pattern=NOT_BLANK, extra_json_schema=NO_UNSAFE_CHARS,
    description=f"1-{MAX_NAME_CHARS} characters, not only spaces (trimmed); {SAFE_CHARS}.",
    extra=refusal(NAME_REFUSAL),
)]  # fmt: skip
"""The one name rule (heartbeats, projects, keys, channels): trimmed by the owning Struct."""
OptionalName = Annotated[str, Meta(
    max_length=MAX_NAME_CHARS, extra_json_schema=NO_UNSAFE_CHARS,
    description=f"The name rule, but empty (or only spaces) is allowed: at most {MAX_NAME_CHARS} characters "
                f"(trimmed); {SAFE_CHARS}.",
    extra=refusal(f"at most {MAX_NAME_CHARS} characters"),
)]  # fmt: skip
"""A channel's name: empty means "named after its kind" (the dashboard's form sends it so)."""

Tag = Annotated[str, Meta(min_length=1, max_length=MAX_TAG_CHARS, extra_json_schema=NO_UNSAFE_CHARS)]
Tags = Annotated[list[Tag], Meta(
    max_length=MAX_TAGS, description=f"At most {MAX_TAGS}, each 1-{MAX_TAG_CHARS} characters (not trimmed; the "
                                     "characters of a name); duplicates dropped.",
    extra=refusal(f"a list of at most {MAX_TAGS} strings of 1-{MAX_TAG_CHARS} characters"),
)]  # fmt: skip
ChannelIds = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=MAX_CHANNEL_ID_CHARS)]],
    Meta(
        max_length=MAX_CHANNELS,
        description="Ids of this project's channels, alerted when the heartbeat goes down or up.",
        extra=refusal(f"a list of at most {MAX_CHANNELS} channel ids of 1-{MAX_CHANNEL_ID_CHARS} characters"),
    ),
]
Slug = Annotated[str, Meta(
    pattern=SLUG_PATTERN,
    description="Its name in the slug URL ``/ping/{ping_key}/{slug}``, unique in the project; null: none.",
    extra=refusal(f"must be 1-{MAX_SLUG_CHARS} characters: lower-case letters, digits, - and _ (or null for none)"),
)]  # fmt: skip
OneToTen = Annotated[int, Meta(ge=1, le=10, extra=refusal("must be a whole number from 1 to 10"))]
"""Counts of misses or successes in a row; ``3.0`` counts (see :func:`.decode.whole_floats`)."""
Flag = Annotated[bool, Meta(extra=refusal("must be true or false"))]

DURATION_PATTERN = r"^ *(?:[0-9]+(?:\.[0-9]+)?|(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d) *)+) *$"
"""What :func:`shared.durations.parse_duration_s` reads (it also takes exponents, upper case)."""


DurationText = Annotated[
    str, Meta(extra_json_schema={"pattern": DURATION_PATTERN, "examples": ["90", "90s", "5m", "1h30m", "1d"]})
]


def at_least(minimum_s: int) -> Meta:
    """The range of a period given in seconds, stated (the Struct's check enforces it; see :func:`period`)."""
    return Meta(extra_json_schema={"minimum": minimum_s, "maximum": MAX_PERIOD_S})


def period(minimum_s: int, description: str, refusal_text: str | None = None) -> Meta:
    """A period field: seconds (``minimum_s`` to 365 days) or a duration string. The Struct's
    ``__post_init__`` makes it seconds with :func:`services.query.validation.seconds`, whose
    refusals say what is wrong (a fraction, out of range, unreadable)."""
    return Meta(
        description=f'Seconds, or a duration such as ``"5m"``, ``"1h30m"``; {minimum_s} s to 365 '
        "days. " + description,
        extra=refusal(refusal_text or 'must be a number of seconds or a duration such as "5m"'),
    )


Timestamp = Annotated[
    str,
    Meta(
        extra_json_schema={"format": "date-time"},
        examples=["2025-01-31T23:59:59.999Z"],
        description="UTC, ISO-8601 with milliseconds.",
    ),
]
"""An instant as the API answers it (:func:`shared.clock.iso_ms`)."""
