"""Turning one HTTP ping into a :class:`Ping` event: pure parsing and validation.

Accepted exactly as the product describes it, plus what peers accept:
``/api/heartbeat/{token}`` (success), ``/fail``, ``/{exit_code}`` (0 success, 1-255 failure);
metadata ``status``, ``message``, ``duration`` from the query string, a JSON body or a
form body (the body wins over the query string); a plain-text body becomes the message.
How each body is read is spelled out in docs/semantics.md ("What a ping reply means").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import msgspec

from shared.durations import parse_duration_s

if TYPE_CHECKING:
    from multidict import MultiMapping

MAX_STATUS_CHARS = 100
MAX_MESSAGE_CHARS = 10_000
MAX_DURATION_CHARS = 64
MAX_USER_AGENT_CHARS = 200
METADATA = ("status", "message", "duration")
FORM = "application/x-www-form-urlencoded"
# What curl, wget and bare HTTP libraries send without being told: the body may be
# anything, so it is read as metadata only when it plainly is metadata.
UNDECLARED = ("", "application/octet-stream", FORM)
_EXIT_CODE = re.compile(r"[0-9]+")  # not str.isdigit(): it also takes "²" and "٣", which int() refuses or misreads


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
    if _EXIT_CODE.fullmatch(suffix):
        digits = suffix.lstrip("0") or "0"
        if len(digits) > 3 or int(digits) > 255:  # length first: int() refuses 4300+ digits
            raise PingRejected(400, f"exit code {suffix[:10]} is out of range (0-255)")
        code = int(digits)
        return ("success" if code == 0 else "fail"), code
    raise PingRejected(400, "invalid URL: expected /fail or an exit code 0-255 after the token")


def refuse_undecodable(headers: MultiMapping[str]) -> None:
    """Refuse a body ingest could not read exactly as it was sent.

    aiohttp treats ``Transfer-Encoding: gzip, chunked`` as plain chunked and hands over
    the gzip bytes. It inflates ``Content-Encoding: gzip`` itself, but never checks that
    the stream ended, so a cut-off one would be stored as a silently shortened message;
    pings are at most 16 KiB, so compression is refused rather than half-trusted.
    """
    codings = headers.getall("Transfer-Encoding", ())
    if codings and (len(codings) > 1 or codings[0].strip().lower() != "chunked"):
        raise PingRejected(400, "Transfer-Encoding other than chunked is not supported")
    for value in headers.getall("Content-Encoding", ()):
        if any(c.strip().lower() not in ("", "identity") for c in value.split(",")):
            raise PingRejected(415, "Content-Encoding is not supported: send the body uncompressed")


def parse_metadata(query: Mapping[str, str], body: bytes, content_type: str) -> dict:
    """Merge metadata from the query string and the body into validated fields.

    ``content_type`` is the declared media type without parameters, ``""`` if none was.
    """
    fields: dict = {k: query[k] for k in METADATA if k in query}
    if body:
        if content_type == "application/json" or content_type.endswith("+json"):
            fields.update(_json_fields(body))
        elif content_type in UNDECLARED:
            found = (_form_fields(body) if content_type == FORM else None) or _metadata_json(body)
            if found:
                fields.update(found)
            else:
                fields.setdefault("message", _text(body))
        elif content_type.startswith("text/"):
            fields.setdefault("message", _text(body))
        # Any other type (an image, multipart) is not ours to read: the ping counts, its body does not.
    return _validate(fields)


def _text(body: bytes) -> str:
    # A job's output piped to curl may be in any encoding; the ping still counts, with
    # what is not UTF-8 shown as U+FFFD rather than refused.
    return body.decode("utf-8", errors="replace")


def _json_fields(body: bytes) -> dict:
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError):  # ValueError: bad UTF-8; RecursionError: deep nesting
        raise PingRejected(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise PingRejected(400, "JSON body must be an object")
    return {k: data[k] for k in METADATA if k in data and data[k] is not None}


def _form_fields(body: bytes) -> dict | None:
    """The metadata in a form body; None when it carries none (``curl -d 'backup done'``
    sends text as a form too, and it is the message)."""
    try:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: form[k] for k in METADATA if k in form} or None


def _metadata_json(body: bytes) -> dict | None:
    """An undeclared body is metadata only if it is a JSON object with valid metadata
    fields; anything else, ``{`` or not, is a message someone wrote."""
    if body.lstrip()[:1] != b"{":
        return None
    try:
        fields = _json_fields(body)
        _validate(fields)
    except PingRejected:
        return None
    return fields or None


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
        if isinstance(raw, int) and raw.bit_length() > 64:  # before str(), which refuses 4300+ digits
            raise PingRejected(400, "duration is longer than 400 days")
        raw = str(raw)
        if len(raw) > MAX_DURATION_CHARS:
            raise PingRejected(400, f"duration is longer than {MAX_DURATION_CHARS} characters")
        try:
            out["duration_s"] = parse_duration_s(raw)
        except ValueError as exc:
            raise PingRejected(400, str(exc)) from None
        out["duration_raw"] = raw
    return out


def header_text(value: str, limit: int) -> str:
    """A header value fit for an event: aiohttp hands undecodable header bytes over as
    lone surrogates, which UTF-8 (and so the event) cannot carry; they become U+FFFD."""
    if not value.isascii():
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value[:limit]


def client_ip(remote: str | None, forwarded_for: str | None, trusted_proxies: tuple) -> str:
    """The caller's address. ``X-Forwarded-For`` counts only when the direct peer is a
    trusted proxy; then the rightmost address that is not itself a trusted proxy wins."""
    remote = remote or ""
    if not trusted_proxies or not forwarded_for or not _is_trusted(remote, trusted_proxies):
        return remote
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted_proxies):
            return header_text(hop, 64)
    return remote


def _is_trusted(address: str, trusted_proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted_proxies)
