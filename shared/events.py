"""Every event schema Pingura puts on the bus, in one place.

Each record on the bus is one JSON object (msgspec-encoded) with two fixed fields:
``type`` (the tag that selects the schema) and ``v`` (the schema version). Readers
must ignore unknown fields, so adding an optional field is a compatible change;
removing or re-typing one bumps ``v``.

Topics, keys and ordering (``shared.topics`` holds the names):

========================  =========================  ==========================================
topic                     key (partition key)        events
========================  =========================  ==========================================
``pings``                 monitor id                 :class:`Ping`; :class:`Tick` (key ``""``,
                                                     written into every partition)
``monitors`` (compacted)  monitor id                 :class:`MonitorConfig` (tombstone:
                                                     ``deleted=True``)
``channels`` (compacted)  channel id                 :class:`ChannelConfig`
``projects`` (compacted)  project id                 :class:`ProjectConfig`
``keys`` (compacted)      key id                     :class:`ApiKey`
``status``                monitor id                 :class:`StatusChanged`, :class:`Missed`
``alerts``                monitor id                 :class:`Alert` (public interface)
``evaluator-state``       monitor id                 :class:`MonitorSnapshot` (compacted)
(compacted)
``deliveries``            monitor id                 :class:`Delivery`
``dead-letters``          original key               :class:`DeadLetter`
========================  =========================  ==========================================

``pings``, ``monitors``, ``status``, ``alerts``, ``evaluator-state`` and
``deliveries`` share one partition count and one key, so a monitor's events meet
in the same partition number everywhere (co-partitioning).

All times are UTC epoch milliseconds in fields named ``*_ms``; durations in
seconds are named ``*_s``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

SCHEMA_VERSION = 1


class Event(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=False):
    v: int = SCHEMA_VERSION


class Ping(Event, tag="ping", kw_only=True):
    """One check-in, as ingest received it. Key: ``monitor_id``.

    ``id`` is unique per ping (UUIDv7-like, time-ordered hex) and is the
    idempotency key of the history row built from it.
    """

    id: str
    monitor_id: str
    project_id: str
    received_ms: int
    """Ingest's clock when the request arrived: the ping's event time."""
    kind: Literal["success", "fail"]
    exit_code: int | None = None
    """0-255 when the URL carried one; ``/fail`` without a code leaves it empty."""
    status: str | None = None
    message: str | None = None
    duration_s: float | None = None
    duration_raw: str | None = None
    """The duration exactly as sent, e.g. ``"1m30s"``."""
    source_ip: str = ""
    user_agent: str = ""
    method: str = "POST"


class Tick(Event, tag="tick", kw_only=True):
    """The event-time clock. Written into every partition of ``pings`` once a second.

    The evaluator decides misses from these (never from its own wall clock), so
    a consumer that lags sees time slow down with it and raises no false misses.
    """

    at_ms: int


class MonitorConfig(Event, tag="monitor", kw_only=True):
    """A monitor ("heartbeat") as configured. Key: ``id``. Compacted topic.

    ``revision`` grows by one with each change, so a reader can ignore stale copies.
    """

    id: str
    project_id: str
    name: str
    token: str
    interval_s: int
    grace_s: int
    max_consecutive_misses: int = 1
    channels: list[str] = []
    tags: list[str] = []
    paused: bool = False
    deleted: bool = False
    created_ms: int
    updated_ms: int
    revision: int = 1


class ChannelConfig(Event, tag="channel", kw_only=True):
    """A notification channel. Key: ``id``. Compacted topic."""

    id: str
    project_id: str
    kind: str
    name: str
    config: dict = {}
    deleted: bool = False
    created_ms: int
    updated_ms: int


class ProjectConfig(Event, tag="project", kw_only=True):
    """A project. Key: ``id``."""

    id: str
    name: str
    api_key_hashes: list[str] = []
    """Legacy: SHA-256 hashes of read-write keys made before the ``keys`` topic existed.
    Still honoured; new keys are :class:`ApiKey` records."""
    admin: bool = False
    created_ms: int


class ApiKey(Event, tag="api_key", kw_only=True):
    """One API key of a project. Key: ``id``. Compacted topic ``keys``.

    A record of its own, not a list on :class:`ProjectConfig`: creating or revoking a key
    writes only that key, so two writers never race on a project's record.
    """

    id: str
    project_id: str
    name: str
    key_hash: str
    """SHA-256 (hex) of the key; the key itself is shown once, when it is created."""
    read_only: bool = False
    """Read-only keys may only read, and never see ping tokens or ping URLs."""
    created_ms: int
    revoked: bool = False
    """A revoked key is refused from the moment a reader sees this (the record stays)."""
    revoked_ms: int | None = None
    revision: int = 1


MonitorStatus = Literal["new", "up", "late", "down", "paused"]


class StatusChanged(Event, tag="status", kw_only=True):
    """A monitor moved from one state to another. Key: ``monitor_id``."""

    id: str
    """Deterministic: ``{monitor_id}:{at_ms}:{status}``."""
    monitor_id: str
    project_id: str
    status: MonitorStatus
    previous: MonitorStatus
    at_ms: int
    reason: str = ""


class Missed(Event, tag="missed", kw_only=True):
    """A window passed without a check-in. Key: ``monitor_id``.

    Dated at the deadline that passed (not when it was noticed), so history is
    the same however late the evaluator ran. ``id`` is ``{monitor_id}:miss:{deadline_ms}``.
    """

    id: str
    monitor_id: str
    project_id: str
    deadline_ms: int
    expected_ms: int
    """When the check-in was due (deadline minus grace)."""
    consecutive: int


class Alert(Event, tag="alert", kw_only=True):
    """An alert for people. Key: ``monitor_id``; per-monitor order is kept.

    Public interface (see docs/events.md). ``id`` is deterministic:
    ``{monitor_id}:{incident}:{kind}``, so a replay never pages twice.
    """

    id: str
    kind: Literal["down", "up"]
    monitor_id: str
    project_id: str
    monitor_name: str
    incident: int
    reason: str
    at_ms: int
    """Event time at which the state changed."""
    channels: list[str] = []
    tags: list[str] = []
    consecutive_problems: int = 0
    last_ping_ms: int | None = None


class MonitorSnapshot(Event, tag="snapshot", kw_only=True):
    """The evaluator's state of one monitor, and the ``pings`` offset it reflects.

    Key: ``monitor_id``. Compacted. Restored on start or partition assignment; events at
    or below ``offset`` in partition ``partition`` are already folded in.
    """

    monitor_id: str
    partition: int
    offset: int
    clock_ms: int = 0
    """The partition's event-time clock when the snapshot was taken."""
    state: msgspec.Raw
    """The evaluator's own encoding of the monitor's state (internal; may change between versions)."""


class Delivery(Event, tag="delivery", kw_only=True):
    """The notifier delivered (or finally gave up on) one alert to one channel. Key: ``monitor_id``."""

    alert_id: str
    channel_id: str
    monitor_id: str
    ok: bool
    attempts: int
    at_ms: int
    error: str = ""
    project_id: str = ""
    """The alert's project; ``""`` in deliveries recorded before this field existed."""


class DeadLetter(Event, tag="dead_letter", kw_only=True):
    """A record a consumer could not read, set aside so its partition moves on.

    Key: the original key. ``value_b64`` holds the original bytes (base64).
    """

    service: str
    topic: str
    partition: int
    offset: int
    error: str
    value_b64: str
    at_ms: int


AnyEvent = Ping | Tick | MonitorConfig | ChannelConfig | ProjectConfig | ApiKey | StatusChanged | Missed | Alert | MonitorSnapshot | Delivery | DeadLetter

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> AnyEvent:
    """Decode one record value; raises :class:`msgspec.DecodeError` for a poison record."""
    return _decoder.decode(data)
