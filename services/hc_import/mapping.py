"""Healthchecks' API v3 answers -> Pingura API bodies. Pure: no I/O, no clock but the one a
schedule check reads; never raises on odd input (an item that cannot be carried over is
skipped with its reason, a field that cannot be is dropped with a warning line).

Healthchecks' API gives of an integration only its id, name and kind, never its settings
(addresses, URLs, keys): an integration of a kind Pingura has is created only when its
settings are given (``--channel NAME=JSON``) or a channel of that kind and name exists
already; otherwise the plan lists it as needing its settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from services.query.api.schemas.heartbeats import (
    MAX_DESCRIPTION_CHARS,
    UNSAFE_IN_DESCRIPTIONS,
    HeartbeatCreate,
)
from services.query.validation import (
    MAX_NAME_CHARS,
    MAX_PERIOD_S,
    MAX_TAG_CHARS,
    MAX_TAGS,
    UNSAFE_IN_NAMES,
    InvalidField,
)
from shared.errors import PinguraError
from shared.ids import UUID_TOKEN
from shared.slugs import SLUG

KINDS: dict[str, tuple[str, str | None]] = {
    # Healthchecks' kind: (its label, Pingura's kind or None: none like it)
    "email": ("Email", "email"),
    "webhook": ("Webhook", "webhook"),
    "slack": ("Slack", "slack"),
    "discord": ("Discord", "discord"),
    "telegram": ("Telegram", "telegram"),
    "pd": ("PagerDuty", "pagerduty"),
    "opsgenie": ("Opsgenie", "opsgenie"),
    "po": ("Pushover", "pushover"),
    "ntfy": ("ntfy", "ntfy"),
    "mattermost": ("Mattermost", "mattermost"),
    "rocketchat": ("Rocket.Chat", "rocketchat"),
    "msteamsw": ("Microsoft Teams", "teams"),
    "googlechat": ("Google Chat", "googlechat"),
}


class HcFormatError(PinguraError, ValueError):
    """An answer that is not what Healthchecks' API v3 answers (the whole answer, not an item)."""


@dataclass
class ChannelPlan:
    hc_id: str
    label: str  # as the plan names it: its Healthchecks name, or its kind's label
    kind: str | None  # Pingura's kind; None: Pingura has none like it
    body: dict[str, Any] | None = None  # the channel to create; None: none (see reason)
    existing: str | None = None  # the Pingura channel id it matched
    reason: str = ""  # why it is not created


@dataclass
class CheckPlan:
    label: str
    uuid: str | None
    slug: str | None
    body: dict[str, Any] | None  # the heartbeat to create; None: skipped (see reason)
    hc_channels: list[str] = field(default_factory=list)
    paused: bool = False
    warnings: list[str] = field(default_factory=list)
    reason: str = ""
    existing: str | None = None  # the Pingura heartbeat it matched (re-import)


def items(doc: Any, key: str) -> list[Any]:
    """The list under ``key`` of an answer (``{"checks": [...]}``), or :class:`HcFormatError`."""
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise HcFormatError(f'the answer has no "{key}" list')
    return doc[key]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _clean_name(raw: Any, fallback: str, warnings: list[str]) -> str:
    name = UNSAFE_IN_NAMES.sub("", _text(raw)).strip()
    if name != _text(raw).strip():
        warnings.append("control or invisible characters dropped from its name")
    if len(name) > MAX_NAME_CHARS:
        warnings.append(f"name cut to {MAX_NAME_CHARS} characters")
        name = name[:MAX_NAME_CHARS].strip()
    if not name:
        warnings.append(f"no name in Healthchecks: named {fallback!r}")
        name = fallback
    return name


def _tags(raw: Any, warnings: list[str]) -> list[str]:
    tags: list[str] = []
    for tag in _text(raw).split():
        if UNSAFE_IN_NAMES.search(tag) or len(tag) > MAX_TAG_CHARS:
            warnings.append(
                f"tag {tag[:60]!r} dropped (over {MAX_TAG_CHARS} characters, or unsafe characters)"
            )
        elif tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        warnings.append(f"only the first {MAX_TAGS} tags kept")
    return tags[:MAX_TAGS]


def description(raw: Any, warnings: list[str]) -> str:
    """Healthchecks' ``desc`` as Pingura's description: line ends as ``\\n`` (its web form
    saves ``\\r\\n``), no control characters but newline and tab, at most 10,000 characters."""
    text = _text(raw).replace("\r\n", "\n").replace("\r", "\n")
    clean = UNSAFE_IN_DESCRIPTIONS.sub("", text)
    if clean != text:
        warnings.append("control or invisible characters dropped from its description")
    if len(clean) > MAX_DESCRIPTION_CHARS:
        warnings.append(f"description cut to {MAX_DESCRIPTION_CHARS} characters")
        clean = clean[:MAX_DESCRIPTION_CHARS]
    return clean


def _seconds(raw: Any) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw:
        return None
    return int(raw) if 0 <= raw <= MAX_PERIOD_S and raw == int(raw) else None


def _timing(hc: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The interval or schedule part of the body, or ``(None, why not)``."""
    if "timeout" in hc:
        period = _seconds(hc["timeout"])
        if not period:
            return None, f"its period {hc['timeout']!r} is not 1 second to 365 days"
        return {"interval": period}, ""
    schedule = hc.get("schedule")
    if isinstance(schedule, str) and schedule.strip():
        tz = _text(hc.get("tz")) or "UTC"
        return {"schedule": schedule.strip(), "timezone": tz}, ""
    return None, "it has neither a period (timeout) nor a schedule"


def _warn_unkept(hc: dict[str, Any], warnings: list[str]) -> None:
    if hc.get("manual_resume") is True:
        warnings.append(
            "manual_resume (stay paused after a ping) is not carried over: Pingura has no such setting"
        )
    if _text(hc.get("methods")):
        warnings.append(f"methods={hc['methods']!r} is not carried over: Pingura counts a ping by any method")
    if any(hc.get(f) is True for f in ("filter_subject", "filter_body", "filter_http_body")):
        warnings.append(
            "keyword filters (start/success/failure words) are not carried over: set the keywords rule in Pingura"
        )


def map_check(hc: Any, position: int) -> CheckPlan:
    """One Healthchecks check as a Pingura heartbeat body (``channels`` left to the caller:
    they are Healthchecks' ids in ``hc_channels``)."""
    if not isinstance(hc, dict):
        return CheckPlan(f"check #{position}", None, None, None, reason="not a JSON object")
    warnings: list[str] = []
    uuid = hc.get("uuid")
    fallback = f"unnamed {uuid[:8]}" if isinstance(uuid, str) and uuid else f"unnamed check #{position}"
    name = _clean_name(hc.get("name"), fallback, warnings)
    slug = _text(hc.get("slug")) or None
    plan = CheckPlan(name, None, None, None, warnings=warnings, paused=hc.get("status") == "paused")
    if not isinstance(uuid, str) or not UUID_TOKEN.fullmatch(uuid.lower()) or len(uuid) != 36:
        plan.reason = "no UUID in the answer (a read-only API key gives none)"
        return plan
    plan.uuid = uuid.lower()
    if slug is not None and not SLUG.fullmatch(slug):
        warnings.append(f"slug {slug[:120]!r} is not one Pingura takes (a-z, 0-9, - and _): dropped")
        slug = None
    plan.slug = slug
    timing, why = _timing(hc)
    if timing is None:
        plan.reason = why
        return plan
    grace = _seconds(hc.get("grace"))
    if grace is None:
        warnings.append(f"grace {hc.get('grace')!r} is not 0 seconds to 365 days: Pingura's default (1 hour)")
    _warn_unkept(hc, warnings)
    body: dict[str, Any] = {
        "name": name,
        "token": plan.uuid,
        **timing,
        "tags": _tags(hc.get("tags"), warnings),
        "description": description(hc.get("desc"), warnings),
    }
    if grace is not None:
        body["grace"] = grace
    if slug is not None:
        body["slug"] = slug
    try:  # the API's own rules, so that what is planned is what the server takes
        msgspec.convert(body, HeartbeatCreate)
    except (msgspec.ValidationError, InvalidField) as exc:
        plan.reason = f"Pingura would refuse it: {exc}"
        if "schedule" in body and "schedule" in str(exc):
            plan.reason += (
                " (Healthchecks' OnCalendar schedules and some cron extensions have no Pingura equivalent)"
            )
        return plan
    plan.hc_channels = [c for c in _text(hc.get("channels")).split(",") if c]
    plan.body = body
    return plan


def map_channel(hc: Any, position: int, settings: dict[str, Any] | None) -> ChannelPlan:
    """One Healthchecks integration as a Pingura channel body, with ``settings`` (its config,
    given on the command line) if any."""
    if not isinstance(hc, dict) or not isinstance(hc.get("id"), str):
        return ChannelPlan(
            f"integration #{position}",
            f"integration #{position}",
            None,
            reason="not a JSON object with an id",
        )
    hc_kind = _text(hc.get("kind"))
    label_of_kind, kind = KINDS.get(hc_kind, (hc_kind or "?", None))
    warnings: list[str] = []
    name = _clean_name(hc.get("name"), label_of_kind, warnings)
    plan = ChannelPlan(hc["id"], name, kind)
    if kind is None:
        plan.reason = f"Pingura has no channel of kind {hc_kind[:40]!r}"
    elif settings is None:
        plan.reason = (
            "needs its settings (Healthchecks' API does not give them): pass --channel " + shell_arg(name)
        )
    elif not isinstance(settings, dict):
        plan.reason = "its --channel settings are not a JSON object"
    else:
        plan.body = {"kind": kind, "name": name, "config": settings}
    return plan


def shell_arg(name: str) -> str:
    """``--channel``'s argument for a channel, quoted for a POSIX shell, its JSON left to fill."""
    return "'" + (name + '={"...": "..."}').replace("'", "'\\''") + "'"


def match_channel(plan: ChannelPlan, existing: list[dict[str, Any]]) -> None:
    """A Pingura channel of the same kind and name takes the integration's place (a re-import,
    or one made by hand): no second one is made."""
    if plan.kind is None:
        return
    for channel in existing:
        if channel.get("kind") == plan.kind and channel.get("name") == plan.label:
            plan.existing, plan.body, plan.reason = channel.get("id"), None, ""
            return


def match_check(plan: CheckPlan, by_token: dict[str, str], by_slug: dict[str, str]) -> None:
    """A heartbeat that already has the check's UUID as its token, or its slug, is the check
    imported before: it is left as it is."""
    if plan.uuid is not None and plan.uuid in by_token:
        plan.existing = by_token[plan.uuid]
        plan.reason = f"already imported (heartbeat {plan.existing})"
    elif plan.slug is not None and plan.slug in by_slug:
        plan.existing = by_slug[plan.slug]
        plan.reason = f"a heartbeat with slug {plan.slug!r} exists ({plan.existing})"
    if plan.existing is not None:
        plan.body = None


def resolve_channels(plan: CheckPlan, channels: dict[str, ChannelPlan], created: dict[str, str]) -> None:
    """Put the Pingura ids of the check's integrations in its body (``created``: Healthchecks
    id -> Pingura id, of those made or matched); the others become one warning line."""
    if plan.body is None:
        return
    kept, lost = [], []
    for hc_id in plan.hc_channels:
        if hc_id in created:
            kept.append(created[hc_id])
        else:
            channel = channels.get(hc_id)
            lost.append(repr(channel.label) if channel else f"{hc_id[:40]!r} (not in the integration list)")
    plan.body["channels"] = list(dict.fromkeys(kept))
    if lost:
        plan.warnings.append(f"{LOST}: {', '.join(lost)} (see the integrations above)")


LOST = "its integrations not carried over"
SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int = 300) -> str:
    """Text from elsewhere (an error body) as one printable line."""
    line = SPACES.sub(" ", UNSAFE_IN_NAMES.sub("", text)).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"
