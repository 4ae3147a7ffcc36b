"""Turning one HTTP ping into a :class:`Ping` event: pure parsing and validation.

Accepted exactly as the product describes it, plus what peers accept:
``/api/heartbeat/{token}`` (success), ``/fail``, ``/{exit_code}`` (0 success, 1-255 failure);
metadata ``status``, ``message``, ``duration`` from the query string, a JSON body or a
form body (the body wins over the query string); a plain-text body becomes the message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import parse_qsl

import msgspec

from shared.durations import parse_duration_s

MAX_STATUS_CHARS = 100
MAX_MESSAGE_CHARS = 10_000
MAX_DURATION_CHARS = 64
MAX_USER_AGENT_CHARS = 200


class PingRejected(Exception):
    """The ping is malformed: ``status`` is the HTTP code, the message a one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_outcome(suffix: str) -> tuple[str, int | None]:
    """``""`` -> success, ``"fail"`` -> failure, ``"0".."255"`` -> by exit code."""
    if suffix == "":
        return "success", None
    if suffix == "fail":
        return "fail", None
    if suffix.isdigit():
        code = int(suffix)
        if code > 255:
            raise PingRejected(400, f"exit code {suffix[:10]} is out of range (0-255)")
        return ("success" if code == 0 else "fail"), code
    raise PingRejected(400, "invalid URL: expected /fail or an exit code 0-255 after the token")


def parse_metadata(query: Mapping[str, str], body: bytes, content_type: str) -> dict:
    """Merge metadata from the query string and the body into validated fields."""
    fields: dict = {k: query[k] for k in ("status", "message", "duration") if k in query}
    if body:
        loose = content_type in ("", "text/plain", "application/octet-stream")
        if content_type == "application/json" or (loose and body[:1] == b"{"):
            fields.update(_json_fields(body))
        elif content_type == "application/x-www-form-urlencoded":
            try:
                form = dict(parse_qsl(body.decode(), keep_blank_values=True))
            except UnicodeDecodeError:
                raise PingRejected(400, "form body is not valid UTF-8") from None
            fields.update({k: form[k] for k in ("status", "message", "duration") if k in form})
        elif content_type.startswith("text/") or loose:
            # A bare text body (e.g. a job's output piped to curl) is kept as the message.
            fields.setdefault("message", body.decode("utf-8", errors="replace"))
    return _validate(fields)


def _json_fields(body: bytes) -> dict:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise PingRejected(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise PingRejected(400, "JSON body must be an object")
    return {k: data[k] for k in ("status", "message", "duration") if k in data and data[k] is not None}


def _validate(fields: dict) -> dict:
    out: dict = {}
    for name, limit in (("status", MAX_STATUS_CHARS), ("message", MAX_MESSAGE_CHARS)):
        if name in fields:
            value = fields[name]
            if not isinstance(value, str):
                raise PingRejected(400, f"{name} must be a string")
            if len(value) > limit:
                raise PingRejected(400, f"{name} is longer than {limit} characters")
            out[name] = value
    if "duration" in fields:
        raw = fields["duration"]
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise PingRejected(400, "duration must be a string such as 12.5s or a number of seconds")
        raw = str(raw)
        if len(raw) > MAX_DURATION_CHARS:
            raise PingRejected(400, f"duration is longer than {MAX_DURATION_CHARS} characters")
        try:
            out["duration_s"] = parse_duration_s(raw)
        except ValueError as exc:
            raise PingRejected(400, str(exc)) from None
        out["duration_raw"] = raw
    return out


def client_ip(remote: str | None, forwarded_for: str | None, trusted_proxies: tuple) -> str:
    """The caller's address. ``X-Forwarded-For`` counts only when the direct peer is a
    trusted proxy; then the rightmost address that is not itself a trusted proxy wins."""
    remote = remote or ""
    if not trusted_proxies or not forwarded_for or not _is_trusted(remote, trusted_proxies):
        return remote
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted_proxies):
            return hop[:64]
    return remote


def _is_trusted(address: str, trusted_proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted_proxies)
