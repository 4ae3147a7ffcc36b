"""Turning one HTTP ping into a :class:`Ping` event: pure parsing and validation.

Accepted exactly as the product describes it, plus what peers' clients send:
``/api/heartbeat/{token}`` (success), ``/fail``, ``/{exit_code}`` (0 success, 1-255 failure),
``/start`` and ``/log`` (Healthchecks), ``/run`` and ``/complete`` or ``?state=`` (Cronitor);
a run id from ``?rid=`` (a UUID) or Cronitor's ``?series=``; metadata ``status``,
``message``, ``duration`` (or Cronitor's ``metric=duration:<s>``) from the query string, a
JSON body or a form body (the body wins over the query string); a text body is the job's
``output`` (and the message too when it fits one); the instance that sent it (a fleet's host or
pod) from ``?instance=``, Cronitor's ``?host=`` or the ``X-Pingura-Instance`` header
(:func:`parse_instance`). Uptime Kuma's push words are read by :func:`parse_kuma_query`. How each body is read is spelled out in docs/semantics.md
("What a ping reply means"); the formats in docs/events.md.
"""

from __future__ import annotations

import codecs
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import msgspec

from shared.durations import parse_duration_s
from shared.errors import PinguraError
from shared.events import PingKind
from shared.rules import MAX_INSTANCE_CHARS
from shared.slugs import SLUG as _SLUG

if TYPE_CHECKING:
    from multidict import MultiMapping

MAX_STATUS_CHARS = 100
MAX_MESSAGE_CHARS = 10_000
MAX_DURATION_CHARS = 64
MAX_USER_AGENT_CHARS = 200
MAX_SERIES_CHARS = 100
MIN_KEPT_BYTES = 64 * 1024
"""What of a body is kept for reading, whatever the output limit: enough for any metadata
body (a 10,000-character message, every character a six-byte JSON escape)."""
METADATA = ("status", "message", "duration")
FORM = "application/x-www-form-urlencoded"
# What curl, wget and bare HTTP libraries send without being told: the body may be
# anything, so it is read as metadata only when it plainly is metadata.
UNDECLARED = ("", "application/octet-stream", FORM)
_EXIT_CODE = re.compile(
    r"[0-9]+"
)  # not str.isdigit(): it also takes "²" and "٣", which int() refuses or misreads
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The number JavaScript's parseFloat reads at the start of a text (its exponent aside).
_KUMA_PING_MS = re.compile(r"\s*([+-]?)([0-9]*)(?:\.([0-9]*))?")
MAX_KUMA_PING_MS = 400 * 86400 * 1000
"""A duration's limit (400 days); Uptime Kuma also answers an out-of-range ping with a 404."""
SUFFIXES: dict[str, PingKind] = {
    "": "success",
    "fail": "fail",
    "start": "start",
    "log": "log",
    "run": "start",
    "complete": "success",
}
"""Words after the token: Pingura's and Healthchecks' (``start``, ``log``), Cronitor's (``run``, ``complete``)."""
CRONITOR_STATES: dict[str, PingKind] = {
    "run": "start",
    "complete": "success",
    "fail": "fail",
    "ok": "success",
}
URL_WORDS = "/start, /log, /fail, /run, /complete or an exit code 0-255"


class PingRejected(PinguraError):
    """The ping is malformed: ``status`` is the HTTP code, the message a one-line reason.

    ``healthchecks``: the ``(status, body)`` Healthchecks answers in this case on its
    ``/ping`` URLs, whose clients compare the text (``"invalid url format"``); None when it
    has no answer of its own and the reason is given instead. ``retry_after_s``: for 429.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        healthchecks: tuple[int, str] | None = None,
        retry_after_s: int | None = None,
    ):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.healthchecks = healthchecks
        self.retry_after_s = retry_after_s


HC_NOT_FOUND = (404, "not found")
HC_BAD_URL = (400, "invalid url format")


def parse_outcome(suffix: str, state: str | None = None) -> tuple[PingKind, int | None]:
    """``""`` -> success, ``"fail"`` -> failure, ``"0".."255"`` -> by exit code, the other
    :data:`SUFFIXES` -> their kind; ``state`` (Cronitor's ``?state=``) when there is no suffix."""
    if state is not None:
        if suffix:
            raise PingRejected(400, "send either ?state= or a word after the token, not both", HC_BAD_URL)
        if state not in CRONITOR_STATES:
            raise PingRejected(400, "state must be run, complete, fail or ok", HC_BAD_URL)
        return CRONITOR_STATES[state], None
    kind = SUFFIXES.get(suffix)
    if kind is not None:
        return kind, None
    if _EXIT_CODE.fullmatch(suffix):
        digits = suffix.lstrip("0") or "0"
        if len(digits) > 3 or int(digits) > 255:  # length first: int() refuses 4300+ digits
            raise PingRejected(400, f"exit code {suffix[:10]} is out of range (0-255)", HC_BAD_URL)
        code = int(digits)
        return ("success" if code == 0 else "fail"), code
    raise PingRejected(400, f"invalid URL: expected {URL_WORDS} after the token", HC_NOT_FOUND)


def parse_run_id(query: Mapping[str, str]) -> str | None:
    """``?rid=`` (a UUID, any case; kept lower-case) or else Cronitor's ``?series=`` (any
    text up to 100 characters): what ties a ``start`` to the end of its run."""
    rid = query.get("rid")
    if rid is not None:
        if not _UUID.fullmatch(rid):
            raise PingRejected(
                400,
                "rid must be a UUID such as 3f2a4b1c-0d5e-4f60-8a7b-9c0d1e2f3a4b",
                (400, "invalid uuid format"),
            )
        return rid.lower()
    series = query.get("series")
    if series:
        if len(series) > MAX_SERIES_CHARS:
            raise PingRejected(400, f"series is longer than {MAX_SERIES_CHARS} characters")
        return series
    return None


def query_fields(query: MultiMapping[str]) -> dict[str, str]:
    """The metadata in a query string (the first of a repeated parameter counts), the
    duration from Cronitor's ``metric=duration:<seconds>`` when none is given as such."""
    fields = {k: query[k] for k in METADATA if k in query}
    if "duration" not in fields:
        for metric in query.getall("metric", ()):
            name, colon, value = metric.partition(":")
            if colon and name == "duration":
                fields["duration"] = value
                break
    return fields


def parse_kuma_query(query: Mapping[str, str]) -> tuple[PingKind, dict[str, str]]:
    """Uptime Kuma's push words: ``status`` (``up``, or absent, is a success; anything else
    a failure, as Kuma reads it), ``msg`` the message, ``ping`` a duration in milliseconds
    (what JavaScript's ``parseFloat`` reads of it; unreadable: none)."""
    kind: PingKind = "success" if query.get("status", "up") in ("up", "") else "fail"
    fields: dict[str, str] = {}
    if query.get("msg"):
        fields["message"] = query["msg"]
    readable = _KUMA_PING_MS.match(query.get("ping", ""))
    assert readable is not None  # every part of the pattern may be empty: it matches any text
    sign, whole, fraction = readable.groups()
    if whole or fraction:  # else nothing readable: no duration, as Kuma has none
        number = (whole or "0") + ("." + fraction if fraction else "")
        if (
            len(number) > MAX_DURATION_CHARS - 2
            or float(number) > MAX_KUMA_PING_MS
            or (sign == "-" and float(number) > 0)
        ):
            raise PingRejected(404, f"ping must be between 0 and {MAX_KUMA_PING_MS} ms")
        fields["duration"] = number + "ms"
    return kind, fields


def check_slug(slug: str) -> None:
    """A slug in a URL: upper case is 400 (as Healthchecks answers), anything else a slug
    cannot hold 404 (no heartbeat has it)."""
    if _SLUG.fullmatch(slug):
        return
    if _SLUG.fullmatch(slug.lower()):
        raise PingRejected(400, "a slug is lower-case", HC_BAD_URL)
    raise PingRejected(404, "not found: no heartbeat has this slug", HC_NOT_FOUND)


def slug_monitor_id(project_id: str, slug: str, attempt: int = 0) -> str:
    """The id of a heartbeat created by a ping to its slug: the same on every ingest
    instance, so two that race write one key of the compacted ``monitors`` topic.
    ``attempt`` > 0 only when an earlier id is held by another heartbeat (its slug renamed)."""
    seed = f"{project_id}/{slug}" + (f"/{attempt}" if attempt else "")
    return "hb_" + hashlib.sha256(seed.encode()).hexdigest()[:16]


INSTANCE_HEADER = "X-Pingura-Instance"
QUERY_READ = frozenset((*METADATA, "rid", "series", "state", "metric", "msg", "ping", "instance"))
"""Query parameters ingest reads on every URL (Kuma's ``msg`` and ``ping`` among them)."""
CRONITOR_QUERY_READ = QUERY_READ | {"host"}
"""And on Cronitor's URL, its ``host``."""


def parse_instance(query: Mapping[str, str], header: str | None, *, cronitor: bool = False) -> str | None:
    """The instance (host, pod, worker) that sent the ping, for a fleet: ``?instance=``, else
    Cronitor's own ``?host=`` (on Cronitor's URLs only), else the ``X-Pingura-Instance`` header.
    The query wins over the header: it is what the job's URL says, while a header may be set for
    every request by a proxy or an HTTP client's defaults. Kept exactly as sent; anything but
    1-64 printable characters without space at either end is refused, naming where it came from."""
    name = query.get("instance")
    if name is not None:
        return _instance(name, "instance")
    if cronitor and (name := query.get("host")) is not None:
        return _instance(name, "host")
    if header is not None:
        return _instance(header, INSTANCE_HEADER)
    return None


def _instance(name: str, where: str) -> str:
    if not _is_utf8(name):  # a header's bytes that were not UTF-8 (the query's are refused before)
        raise PingRejected(400, f"{where} is not UTF-8")
    if not name:
        raise PingRejected(400, f"{where} is empty: name the instance, or leave it out")
    if len(name) > MAX_INSTANCE_CHARS:
        raise PingRejected(400, f"{where} is longer than {MAX_INSTANCE_CHARS} characters")
    if not name.isprintable():
        raise PingRejected(400, f"{where} holds a character that is not printable (a control or line break)")
    if name != name.strip():
        raise PingRejected(400, f"{where} starts or ends with a space")
    return name


_HIGH_ESCAPE = re.compile(r"%[89a-fA-F][0-9a-fA-F]")
"""An escape of a byte above 0x7F: the only way a query parameter can fail to be UTF-8."""


def refuse_undecodable_query(raw_query: str, read: frozenset[str] = QUERY_READ) -> None:
    """A 200 means stored as sent, but yarl reads a percent-escape that is not UTF-8 as
    U+FFFD: a parameter ingest reads (``read``) that is not UTF-8 is refused, naming it.
    Others are not looked at (no one reads them)."""
    if raw_query.isascii() and not _HIGH_ESCAPE.search(raw_query):
        # ASCII, and every escape is of an ASCII byte (a space, a colon): every value is
        # ASCII. Parsing the query to look cost ~14 µs per ping with a message (5% of the
        # serving interpreter at a million heartbeats, docs/PERFORMANCE.md section 19).
        return
    if "%" not in raw_query:  # nothing escaped: the request line was ASCII, so is the query
        return
    for name, value in parse_qsl(raw_query, keep_blank_values=True, errors="surrogateescape"):
        if name in read and not _is_utf8(value):
            raise PingRejected(400, f"{name} in the query string is not UTF-8")


def _is_utf8(value: str) -> bool:
    """False for text read with ``surrogateescape`` from bytes that were not UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def refuse_undecodable(headers: MultiMapping[str]) -> None:
    """Refuse a body ingest could not read exactly as it was sent.

    aiohttp treats ``Transfer-Encoding: gzip, chunked`` as plain chunked and hands over
    the gzip bytes. It inflates ``Content-Encoding: gzip`` itself, but never checks that
    the stream ended, so a cut-off one would be stored as a silently shortened output;
    so compression is refused rather than half-trusted.
    """
    codings = headers.getall("Transfer-Encoding", ())
    if codings and (len(codings) > 1 or codings[0].strip().lower() != "chunked"):
        raise PingRejected(400, "Transfer-Encoding other than chunked is not supported")
    for value in headers.getall("Content-Encoding", ()):
        if any(c.strip().lower() not in ("", "identity") for c in value.split(",")):
            raise PingRejected(415, "Content-Encoding is not supported: send the body uncompressed")


def parse_metadata(
    query: Mapping[str, str],
    body: bytes,
    content_type: str,
    *,
    size: int | None = None,
    max_output_bytes: int = 100 * 1024,
    body_metadata: bool = True,
) -> dict:
    """Merge metadata from the query string and the body into validated fields, and the
    body's text as ``output``.

    ``content_type`` is the declared media type without parameters, ``""`` if none was.
    ``body`` is what was kept of a body of ``size`` bytes (default: all of it); a body not
    kept whole is never metadata. ``body_metadata`` False: the body is output or nothing
    (Uptime Kuma's push, whose fields are all in the URL).
    """
    fields: dict = {k: query[k] for k in METADATA if k in query}
    size = len(body) if size is None else size
    whole = size == len(body)
    text: bytes | None = None
    if body:
        if content_type == "application/json" or content_type.endswith("+json"):
            if body_metadata:
                if not whole:
                    raise PingRejected(413, f"a JSON body is larger than {len(body)} bytes")
                fields.update(_json_fields(body))
        elif content_type in UNDECLARED:
            found = None
            if body_metadata and whole:
                found = (_form_fields(body) if content_type == FORM else None) or _metadata_json(body)
            if found:
                fields.update(found)
            else:
                text = body
        elif content_type.startswith("text/"):
            text = body
        # Any other type (an image, multipart) is not ours to read: the ping counts, its body does not.
    out = _validate(fields)
    if text is not None:
        if whole and "message" not in out and len(message := _text(text)) <= MAX_MESSAGE_CHARS:
            out["message"] = message  # as the product always did; longer text is output only
        if max_output_bytes > 0:
            out["output"], truncated = _output(text, size, max_output_bytes)
            if truncated:
                out["output_truncated"] = True
    return out


def _text(body: bytes) -> str:
    # A job's output piped to curl may be in any encoding; the ping still counts, with
    # what is not UTF-8 shown as U+FFFD rather than refused.
    return body.decode("utf-8", errors="replace")


def _output(kept: bytes, size: int, limit: int) -> tuple[str, bool]:
    """The first ``limit`` bytes of a body of ``size`` bytes as text, and whether that cut it.

    Cut on a character boundary: an incremental decoder holds back a sequence the cut left
    incomplete, which would otherwise show as U+FFFD, a character the job never wrote."""
    if size <= limit and len(kept) == size:
        return _text(kept), False
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(kept[:limit], final=False), True


def _json_fields(body: bytes) -> dict:
    try:
        data = msgspec.json.decode(body)
    except (
        msgspec.DecodeError,
        ValueError,
        RecursionError,
    ):  # ValueError: bad UTF-8; RecursionError: deep nesting
        raise PingRejected(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise PingRejected(400, "JSON body must be an object")
    return {k: data[k] for k in METADATA if k in data and data[k] is not None}


def _form_fields(body: bytes) -> dict | None:
    """The metadata in a form body; None when it carries none (``curl -d 'backup done'``
    sends text as a form too, and it is the message). A field that is not UTF-8, raw or
    percent-escaped, is refused naming it: read leniently it would be stored with U+FFFD."""
    # Latin-1 maps each byte to one character: the form is split and unescaped byte for
    # byte, then each field it gives is read as UTF-8, strictly.
    try:
        form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1"))
    except ValueError:
        return None
    fields = {}
    for name in METADATA:
        if name in form:
            try:
                fields[name] = form[name].encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                raise PingRejected(400, f"{name} in the form body is not UTF-8") from None
    return fields or None


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
