"""The heartbeat fields that hold alerts back (docs/semantics.md, "Holds"): muting,
dependencies and flapping. Declared here, used by the heartbeat bodies and answer
(:mod:`.heartbeats`), each with its constraints and its refusal (see :mod:`.fields`)."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta

from services.query.api.schemas.fields import DurationText, Tag, refusal
from services.query.validation import MAX_TAGS, InvalidField, parse_time_ms, safe_text, seconds
from shared.clock import iso_ms
from shared.events import FLAP_DEFAULTS, MUTED_FOREVER_MS

FOREVER = "forever"
MAX_DEPENDENCIES = 50
MAX_HEARTBEAT_ID_CHARS = 64
FLAP_MIN_S, FLAP_MAX_S = 10, 7 * 86400
"""From 10 s: a heartbeat checking in every few seconds flaps within a minute (the interval may be 1 s)."""
_CHANGES, _WINDOW_S, _STABLE_S = FLAP_DEFAULTS

MUTED_UNTIL_PATTERN = (
    r"^(?:forever|[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}(?::?[0-9]{2}){0,2}(?:[.,][0-9]+)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?)$"
)
""""forever", or a date with an optional time and offset as ``datetime.fromisoformat`` reads them."""
MutedUntil = Annotated[str, Meta(
    pattern=MUTED_UNTIL_PATTERN, examples=["2030-01-31T06:00:00Z", FOREVER],
    description='Muted until then: an ISO-8601 time (UTC unless it says otherwise), or "forever" (until '
                "unmuted). A muted heartbeat is evaluated and recorded as always, but sends no alert; when the "
                "mute ends, one still down alerts once. Null (the default): not muted (unmutes).",
    extra=refusal('must be an ISO-8601 time such as "2030-01-31T06:00:00Z", or "forever" (null: unmuted)'),
)]  # fmt: skip
DependsOn = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=MAX_HEARTBEAT_ID_CHARS)]],
    Meta(
        max_length=MAX_DEPENDENCIES,
        description=f"Ids of heartbeats of this project (at most {MAX_DEPENDENCIES}, not itself) it depends on: "
        "while one of them is down, its down alert is held; when they are back, it alerts once if still down "
        "one window later. No cycles (through ``depends_on_tags`` either). Default none.",
        extra=refusal(f"a list of at most {MAX_DEPENDENCIES} heartbeat ids"),
    ),
]
DependsOnTags = Annotated[
    list[Tag],
    Meta(
        max_length=MAX_TAGS,
        description=f"Tags it depends on (at most {MAX_TAGS}, the rule of ``tags``): while any other heartbeat "
        "of the project carrying one is down, its down alert is held. No cycles. Default none.",
        extra=refusal(f"a list of at most {MAX_TAGS} tags of 1-50 characters"),
    ),
]
FlapChanges = Annotated[
    int,
    Meta(
        ge=0,
        le=100,
        description=f"More changes between down and up than this within ``flap_window`` is flapping: one "
        f"``flapping`` alert, then none until stable for ``flap_stable``. 0: never. Null: the default, {_CHANGES}.",
        extra=refusal(f"must be a whole number from 0 to 100 (null: the default, {_CHANGES})"),
    ),
]
_FLAP_PERIOD_REFUSAL = 'must be a number of seconds or a duration such as "30m", from 10 seconds to 7 days'


def _flap_period(default_s: int, what: str) -> Any:
    return Annotated[
        Annotated[int, Meta(extra_json_schema={"minimum": FLAP_MIN_S, "maximum": FLAP_MAX_S})] | DurationText,
        Meta(
            description=f'Seconds, or a duration such as ``"30m"``; {FLAP_MIN_S} s to 7 days. {what} Null: the '
            f"default, {default_s} s.",
            extra=refusal(_FLAP_PERIOD_REFUSAL),
        ),
    ]


FlapWindow = _flap_period(_WINDOW_S, "The window ``flap_changes`` counts changes in.")
FlapStable = _flap_period(_STABLE_S, "How long it must stay down or up for flapping to end.")


def check_holding(body: Any) -> None:
    """The holding fields of a heartbeat body as stored: a readable ``muted_until``, each
    dependency and tag once (tags with the characters of a name), flapping periods in seconds."""
    if isinstance(body.muted_until, str):
        muted_until_ms(body.muted_until)
    if isinstance(body.depends_on, list):
        body.depends_on = list(dict.fromkeys(body.depends_on))
    if isinstance(body.depends_on_tags, list):
        body.depends_on_tags = list(
            dict.fromkeys(safe_text("depends_on_tags", t) for t in body.depends_on_tags)
        )
    for field in ("flap_window", "flap_stable"):
        value = getattr(body, field)
        if value is not UNSET and value is not None:
            try:
                setattr(body, field, seconds(field, value, FLAP_MIN_S, FLAP_MAX_S))
            except InvalidField as exc:
                if "between" not in str(exc):
                    raise
                raise InvalidField(field, _FLAP_PERIOD_REFUSAL) from None


def muted_until_ms(text: str) -> int:
    """``muted_until`` as ``MonitorConfig.muted_until_ms``."""
    if text == FOREVER:
        return MUTED_FOREVER_MS
    return parse_time_ms("muted_until", text, MUTED_FOREVER_MS)


def muted_until_text(ms: int | None) -> str | None:
    """``MonitorConfig.muted_until_ms`` as the API answers it."""
    if ms is None:
        return None
    return FOREVER if ms >= MUTED_FOREVER_MS else iso_ms(ms)


HOLDING_FIELDS: dict[str, tuple[str, Any]] = {
    "muted_until": ("muted_until_ms", None),
    "depends_on": ("depends_on", []),
    "depends_on_tags": ("depends_on_tags", []),
    "flap_changes": ("flap_changes", None),
    "flap_window": ("flap_window_s", None),
    "flap_stable": ("flap_stable_s", None),
}
"""Body field -> (its ``MonitorConfig`` field, its value on a create that does not give it)."""


def holding_fields(given: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The ``MonitorConfig`` fields the holding fields of a body set (a create: all)."""
    out: dict[str, Any] = {}
    for field, (config_field, default) in HOLDING_FIELDS.items():
        if field in given or creating:
            value = given.get(field, default)
            if field == "muted_until" and value is not None:
                value = muted_until_ms(value)
            out[config_field] = list(value) if isinstance(value, list) else value
    return out
