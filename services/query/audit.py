"""The audit log: who changed what in a project, when, from where, and how it was before and after.

Each write handler calls :func:`record_change` once its change is saved. The entry (an
:class:`~shared.events.AuditEntry`) goes to the ``audit`` topic (key: the project id), which
the history writer puts into ClickHouse (``audit_log``) for the API, the dashboard and exports.

Order: the change first, then its record. Recording first would leave an entry for a change
that then failed (a refused write, a bus that went away between the two); recording after
leaves, at worst, a change whose record could not be written. That request then answers 503
(the change and its record go together: the caller is told something is wrong), and the whole
entry, secrets masked, is logged as ``query.audit.unrecorded`` so the operator still has it.

Secrets never enter an entry. Passwords, password and key hashes, sealed TOTP secrets and
recovery codes are left out entirely; a secret someone must be able to recognise (a ping
token, the project's ping, badge and status page keys, a channel's secret settings as its kind
declares them) is shown as ``****`` + its last 4 characters, as the API shows channels.
"""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any

import msgspec
import structlog
from aiohttp import web

from services.ingest.logic import client_ip
from services.notifier.channels import shown_config
from services.notifier.channels.base import mask_value
from shared.bus import BusUnavailable
from shared.clock import now_ms
from shared.events import AuditEntry, Event, encode

log = structlog.get_logger()

DROPPED = frozenset(
    {
        "password",
        "password_hash",
        "key_hash",
        "api_key_hashes",
        "totp_sealed",
        "totp_secret",
        "recovery_codes",
        "recovery_code_hashes",
        "token_hash",
        "secret",
        "key_secret",
    }
)
"""Settings never recorded, not even masked: nobody needs to recognise them."""
MASKED = frozenset({"token", "ping_key", "badge_key", "ping_url", "status_key"})
"""Secrets recorded as ``****`` + their last 4 characters, wherever they appear."""


_SEQUENCE = itertools.count()
"""Orders the entries this process makes within one millisecond (a project and its first key)."""


def new_entry_id(at_ms: int) -> str:
    """Unique and time-ordered: the milliseconds in hex (12 digits last until the year 10889),
    then this process's sequence (16 bits: entries made in one millisecond keep their order),
    then 32 random bits (two processes never collide). Sorting the ids sorts the entries."""
    return f"au_{at_ms:012x}{next(_SEQUENCE) % 65536:04x}{secrets.token_hex(4)}"


def _builtins(obj: Any) -> Any:
    """A struct as plain JSON-able data: every field, those at their defaults too (a heartbeat's
    record leaves them out, and a diff must show ``paused: false`` becoming ``true``), and
    without its event tag (``"type": "monitor"``) or schema version (``v``)."""
    if isinstance(obj, msgspec.Struct):
        names = [n for n in obj.__struct_fields__ if not (n == "v" and isinstance(obj, Event))]
        return {name: msgspec.to_builtins(getattr(obj, name)) for name in names}
    return msgspec.to_builtins(obj)


def _mask(value: Any, parent: str | None) -> Any:
    if isinstance(value, dict):
        # A channel: its settings as the API shows them, each secret one (as its kind declares)
        # masked, and the rest as they are (a webhook's "secret" setting is shown masked, not dropped).
        channel = isinstance(value.get("kind"), str) and isinstance(value.get("config"), dict)
        shown: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                name = str(name)
            if channel and name == "config":
                shown[name] = shown_config(value["kind"], item)
            elif name in DROPPED:
                continue
            elif name in MASKED or (name == "key" and parent == "status_page"):
                shown[name] = None if item is None else mask_value(item)
            else:
                shown[name] = _mask(item, name)
        return shown
    if isinstance(value, list):
        return [_mask(item, parent) for item in value]
    return value


def masked(target_kind: str, obj: Any) -> dict | None:
    """``obj`` (a struct, a dict, or None) as an entry records it: JSON-able, secrets masked
    or left out. ``target_kind`` tells what a bare ``key`` is (a status page's key is a secret)."""
    if obj is None:
        return None
    data = _builtins(obj)
    if not isinstance(data, dict):
        data = {"value": data}
    return _mask(data, target_kind)


def build_entry(
    request: web.Request,
    action: str,
    target_kind: str,
    target_id: str,
    before: Any,
    after: Any,
    *,
    project_id: str | None = None,
    actor: tuple[str, str, str] | None = None,
) -> AuditEntry:
    from services.query.api.context import API, CALLER  # here: the API's modules import this one

    ctx = request.app[API]
    caller = request.get(CALLER)
    if actor is None:
        actor = caller.actor if caller is not None else ("system", "", "")
    if project_id is None:
        if caller is None:
            raise ValueError("record_change outside an authenticated request needs project_id")
        project_id = caller.project.id
    at = now_ms()
    kind, actor_id, actor_name = actor
    return AuditEntry(
        id=new_entry_id(at),
        project_id=project_id,
        at_ms=at,
        actor_kind=kind,  # type: ignore[arg-type]  # "user", "key" or "system"
        actor_id=actor_id,
        actor_name=actor_name,
        address=client_ip(
            request.remote, request.headers.get("X-Forwarded-For"), ctx.settings.trusted_proxies
        )
        or None,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        before=masked(target_kind, before),
        after=masked(target_kind, after),
    )


async def record_change(
    request: web.Request,
    action: str,
    target_kind: str,
    target_id: str,
    before: Any,
    after: Any,
    *,
    project_id: str | None = None,
    actor: tuple[str, str, str] | None = None,
) -> AuditEntry:
    """Record one change made by this request, after it was saved.

    ``action`` is dotted, ``{target}.{verb}`` (``heartbeat.update``); ``before``/``after`` are
    the object (a struct or a dict) before and after (None on create/delete), masked here. The
    project and the actor are the caller's; a route without a caller (a sign-up, an accepted
    invitation) names them with ``project_id`` and ``actor`` (``(kind, id, name)``).

    Raises ``503`` (JSON, one line) when the entry cannot be published; the entry is logged."""
    entry = build_entry(
        request, action, target_kind, target_id, before, after, project_id=project_id, actor=actor
    )
    from services.query.api.context import API

    ctx = request.app[API]
    try:
        await ctx.bus.publish(ctx.topics.audit, entry.project_id, encode(entry))
    except BusUnavailable as exc:  # the change stands; its record is in the log line instead
        log.error(
            "query.audit.unrecorded",
            reason=type(exc).__name__,
            entry=msgspec.json.encode(entry).decode(),
        )
        reason = "the change was saved but its audit record could not be written (event bus unavailable)"
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": reason}), content_type="application/json", headers={"Retry-After": "5"}
        ) from None
    return entry
