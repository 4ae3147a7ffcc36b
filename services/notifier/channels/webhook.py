"""Generic webhook: each alert sent to a URL of the user's choice, as Pingura's JSON (see
docs/events.md) or as the user's own body template, optionally signed.

Signing covers the timestamp and the exact bytes sent (as Stripe's scheme does), so a
captured request cannot be replayed later under a fresh timestamp:
``X-Pingura-Timestamp: <Unix seconds>`` and
``X-Pingura-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``.
Verification is described in docs/channels.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from urllib.parse import quote_plus

import aiohttp

from services.notifier.channels import http as channel_http
from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField
from services.notifier.channels.http import validate_url
from services.notifier.logic import webhook_payload
from services.notifier.messages import OPERATOR_KINDS, alert_url, heartbeat_url, render
from services.notifier.wording import held_text
from shared.clock import iso_ms
from shared.events import Alert
from shared.settings import Settings

METHODS = ("POST", "PUT", "PATCH", "GET")
MAX_BODY_TEMPLATE_CHARS = 16 * 1024
DEFAULT_TEMPLATE_CONTENT_TYPE = "application/json"
SIGNATURE_HEADER = "X-Pingura-Signature"
TIMESTAMP_HEADER = "X-Pingura-Timestamp"
# Headers Pingura owns: overriding them would break the request, the receiver's dedup or the signature.
_RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "idempotency-key",
    SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower(),
})  # fmt: skip
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]*)\s*\}\}")
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;[ -~]*)?$")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 5.1: a token
# RFC 9110 5.5: no control character but HTAB in a field value (C1 ones too: not text).
_HEADER_VALUE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")

PLACEHOLDERS: dict[str, Callable[[Alert, Settings], str]] = {
    "heartbeat.id": lambda a, s: a.monitor_id,
    "heartbeat.name": lambda a, s: a.monitor_name,
    "heartbeat.tags": lambda a, s: ", ".join(a.tags),
    "heartbeat.url": lambda a, s: (
        alert_url(a, s.ping_base_url)
        if a.kind in OPERATOR_KINDS
        else heartbeat_url(s.ping_base_url, a.monitor_id)
    ),
    "status": lambda a, s: a.kind,
    "reason": lambda a, s: a.reason,
    "at": lambda a, s: iso_ms(a.at_ms),
    "at_ms": lambda a, s: str(a.at_ms),
    "alert.id": lambda a, s: a.id,
    "incident": lambda a, s: str(a.incident),
    "title": lambda a, s: render(a, s.ping_base_url).title,
    "text": lambda a, s: render(a, s.ping_base_url).text,
    "last_checkin.at": lambda a, s: iso_ms(a.last_ping_ms) if a.last_ping_ms is not None else "",
    "last_checkin.kind": lambda a, s: a.last_ping_kind or "",
    "last_checkin.exit_code": lambda a, s: (
        str(a.last_ping_exit_code) if a.last_ping_exit_code is not None else ""
    ),
    "last_checkin.message": lambda a, s: a.last_ping_message or "",
    "dashboard_url": lambda a, s: s.ping_base_url,
    "down_since": lambda a, s: iso_ms(a.down_since_ms) if a.down_since_ms is not None else "",
    "missed_runs": lambda a, s: str(a.missed_runs),
    "held": lambda a, s: held_text(a.held) if a.held else "",
    "dependents_held": lambda a, s: ", ".join(a.dependents_held),
    "missing_instances": lambda a, s: ", ".join(a.missing_instances),
}
"""What a body template may say, ``{{name}}`` -> its text for an alert. ``reason`` is the
evaluator's text as is; ``text`` is the readable sentence the chat channels send; ``held``
says why a released alert was held ("held during maintenance window 'x' until ..."), empty
for one sent when it happened. ``heartbeat.url`` of an operator alert is the dashboard."""


class WebhookChannel(Channel):
    kind = "webhook"
    label = "Webhook"
    digest_one_by_one = True  # a public one-alert format; each alert keeps its own Idempotency-Key
    config_fields = (
        ConfigField(
            "url", "url", required=True,
            help="Where each alert is sent (http or https). It is shown back in full: "
                 "put a token in a header rather than in the URL.",
        ),
        ConfigField(
            "headers", "map", secret=True,
            help="Extra HTTP headers, name -> value (e.g. Authorization). Values are masked once saved.",
        ),
        ConfigField("method", "string", choices=METHODS, help="HTTP method; POST unless set. GET sends no body."),
        ConfigField(
            "body", "text",
            help="Body template replacing Pingura's JSON, with placeholders such as {{heartbeat.name}}, "
                 "{{status}}, {{reason}}, {{at}}, {{heartbeat.url}} (see the docs for all).",
        ),
        ConfigField(
            "content_type", "string",
            help="Content-Type of a body template; application/json unless set. JSON types "
                 "JSON-escape each placeholder, form-encoded types URL-encode it.",
        ),
        ConfigField(
            "secret", "string", secret=True,
            help="When set, each request is signed: X-Pingura-Signature: sha256=<HMAC-SHA256 of the "
                 "X-Pingura-Timestamp value, a dot, and the body>.",
        ),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        headers = _validate_headers(config.get("headers", {}))
        normalized: dict = {"url": validate_url(config.get("url"), settings), "headers": headers}
        method = config.get("method", "POST")
        if method != "POST":
            normalized["method"] = method
        content_type = config.get("content_type")
        header_type = next((name for name in headers if name.lower() == "content-type"), None)
        if header_type is not None:
            if content_type is not None:
                raise ChannelConfigError(
                    f"config.headers.{header_type}: set it with config.content_type only"
                )
            content_type = headers.pop(header_type)
        if content_type is not None:
            normalized["content_type"] = _validate_content_type(content_type)
        body = config.get("body")
        if body is not None:
            if method == "GET":
                raise ChannelConfigError("config.body: a GET request has no body; choose POST, PUT or PATCH")
            normalized["body"] = _validate_template(body, normalized.get("content_type"))
        if (secret := config.get("secret")) is not None:
            if not secret:
                raise ChannelConfigError("config.secret: must not be empty (leave it out to not sign)")
            normalized["secret"] = secret
        return normalized

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        method = config.get("method", "POST")
        content_type = config.get("content_type")
        if method == "GET":
            body = b""
        elif config.get("body") is not None:
            content_type = content_type or DEFAULT_TEMPLATE_CONTENT_TYPE
            body = render_body(config["body"], content_type, alert, settings).encode()
        else:
            body = channel_http.encode_json(webhook_payload(alert, alert_url(alert, settings.ping_base_url)))
            content_type = content_type or "application/json"
        headers = {**config.get("headers", {}), "Idempotency-Key": alert.id}
        if content_type and method != "GET":
            headers["Content-Type"] = content_type
        if secret := config.get("secret"):
            headers.update(signature_headers(secret, body, int(time.time())))
        await channel_http.send(
            http,
            settings,
            config["url"],
            method=method,
            data=body if method != "GET" else None,
            headers=headers,
        )


def signature_headers(secret: str, body: bytes, timestamp_s: int) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER: f"sha256={digest}", TIMESTAMP_HEADER: str(timestamp_s)}


def render_body(template: str, content_type: str, alert: Alert, settings: Settings) -> str:
    """The template with each placeholder replaced, escaped for ``content_type``."""
    escape = _escaper(content_type)
    values: dict[str, str] = {}

    def substitute(match: re.Match) -> str:
        name = match[1]
        if name not in values:
            values[name] = escape(PLACEHOLDERS[name](alert, settings))
        return values[name]

    return _PLACEHOLDER.sub(substitute, template)


def _escaper(content_type: str) -> Callable[[str], str]:
    if _is_json(content_type):
        return lambda value: json.dumps(value, ensure_ascii=False)[1:-1]
    if _media_type(content_type) == "application/x-www-form-urlencoded":
        return quote_plus
    return lambda value: value


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _is_json(content_type: str) -> bool:
    media_type = _media_type(content_type)
    return media_type == "application/json" or media_type.endswith("+json")


def _validate_template(body: str, content_type: str | None) -> str:
    if len(body) > MAX_BODY_TEMPLATE_CHARS:
        raise ChannelConfigError(f"config.body: longer than {MAX_BODY_TEMPLATE_CHARS} characters")
    unknown = sorted({m[1] for m in _PLACEHOLDER.finditer(body)} - PLACEHOLDERS.keys())
    if unknown:
        known = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
        raise ChannelConfigError(f"config.body: unknown placeholder {{{{{unknown[0]}}}}} (known: {known})")
    if _is_json(content_type or DEFAULT_TEMPLATE_CONTENT_TYPE):
        # "0" reads as JSON inside a string and outside one (e.g. "incident": {{incident}}).
        sample = _PLACEHOLDER.sub("0", body)
        try:
            json.loads(sample)
        except ValueError as exc:
            raise ChannelConfigError(f"config.body: not valid JSON once filled in ({exc})") from None
    return body


def _validate_content_type(raw: str) -> str:
    value = raw.strip()
    if not _CONTENT_TYPE.match(value):
        raise ChannelConfigError("config.content_type: must be a media type such as application/json")
    return value


def _validate_headers(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ChannelConfigError("config.headers: must be an object of header name -> string value")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ChannelConfigError(
                f"config.headers: {name!r} is not a valid header name "
                "(letters, digits and !#$%&'*+-.^_`|~ only, as HTTP requires)"
            )
        if name.lower() in _RESERVED_HEADERS:
            raise ChannelConfigError(f"config.headers.{name}: set by Pingura, cannot be overridden")
        if not isinstance(value, str):
            raise ChannelConfigError(f"config.headers.{name}: must be a string")
        if (control := _HEADER_VALUE_CONTROL.search(value)) is not None:
            raise ChannelConfigError(
                f"config.headers.{name}: must not contain control characters (U+{ord(control[0]):04X}); "
                "tabs are the only one allowed"
            )
        headers[name] = value.strip(" \t")
    return headers
