"""The evaluator's snapshot of one monitor: the ``state`` inside a ``MonitorSnapshot``; and of
one partition as a whole: the ``state`` inside a ``PartitionSnapshot`` (:class:`PartitionState`,
at the end).

A sibling of ``shared.events`` (which declares the envelope, :class:`~shared.events.MonitorSnapshot`,
on the compacted ``evaluator-state`` topic): this module declares what its ``state`` holds,
for the evaluator that writes it and restores from it, and for every other reader (the query
service's status view). docs/events.md describes it for people.

Versions: the layout has one of its own, :data:`STATE_VERSION`, carried by the envelope's
``state_v`` (absent in snapshots written before it existed: those are version 1, which is
still the layout). The layout is a JSON array, field after field in declaration order (msgspec
``array_like``: a million of these are written and kept, and names would double their size).
So the compatible change is to *append* an optional field at the end: older snapshots, shorter
arrays, still decode (their missing fields take the default), and older readers ignore what
they do not know. Anything else (reordering, removing, re-typing a field, a new status)
bumps :data:`STATE_VERSION`, and :func:`decode_state` then reads each version it knows.

The evaluator keeps these very structs in memory, one per monitor, mutated in place: the
declaration is also its memory layout, so fields are chosen for size (no GC header, ``extra``
None for most monitors, shared tuples and rules). Measure ``bench --only evaluator`` before
adding one.
"""

from __future__ import annotations

import struct
from typing import Literal, TypeVar

import msgspec

from shared.errors import PinguraError
from shared.events import DownSnapshot, IngestFigures, MonitorSnapshot, MonitorStatus, PartitionSnapshot
from shared.rules import CadenceRule, FailureRateRule, FleetRule, KeywordRule, RunTimeRule

STATE_VERSION = 2
"""The layout of :class:`MonitorState` as this code writes it (``MonitorSnapshot.state_v``).
2: the status ``unknown`` exists (and the optional fields of :class:`Rules` and :class:`Extra`
that holds added); a version-1 reader cannot read it, so it refuses it by its version."""

Run = tuple[str, int, bool]
"""An open run: ``(rid, started_ms, overran)``; rid ``""`` for a start without one."""


class Rules(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A monitor's settings beyond interval, grace and misses (its ``MonitorConfig`` in ms).
    One shared object per distinct set (hashable); monitors with none of them set have none."""

    schedule: str | None = None
    """Cron expression; None: interval mode."""
    timezone: str = "UTC"
    max_runtime_ms: int | None = None
    """None: the grace period."""
    recovery_threshold: int = 1
    reminder_interval_ms: int | None = None
    muted_until_ms: int | None = None
    depends_on: tuple[str, ...] = ()
    depends_on_tags: tuple[str, ...] = ()
    flap: tuple[int, int, int] | None = None
    """``(changes, window_ms, stable_ms)``; None: ``shared.events.FLAP_DEFAULTS``; changes 0: never."""
    fleet: FleetRule | None = None
    """The rules of ``shared.rules``, as configured (seconds); None: off."""
    run_time: RunTimeRule | None = None
    cadence: CadenceRule | None = None
    failure_rate: FailureRateRule | None = None
    keywords: KeywordRule | None = None

    @property
    def judges_runs(self) -> bool:
        """Whether a check-in is judged beyond its kind (run time, cadence)."""
        return self.run_time is not None or self.cadence is not None


class Held(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """An alert not sent because a hold was on (docs/semantics.md, "Holds"): people have not
    heard that the heartbeat is ``kind``. A ``down`` then an ``up`` held cancel out."""

    kind: Literal["down", "up"]
    since_ms: int
    why: str
    """What held it, for people: "maintenance window 'db upgrade'", "muted", ..."""
    recheck_ms: int | None = None
    """When to look again: the end of a hold bound in time (a window, a mute, flapping); or,
    once a hold that waits (ingest, dependency) has ended, the deadline by which the heartbeat
    must have checked in, else the held alert goes out. None: when the partition hears the
    hold ended."""
    ended: bool = False
    """The hold ended; the alert goes out at ``recheck_ms`` if it is still true then."""
    waits: bool = False
    """The hold is one that waits, when it ends, for one more window (ingest, dependency):
    the job could not check in while it was on."""
    down_since_ms: int | None = None
    """A held ``up``: when the incident it ends began (the ``up`` alert's ``down_since_ms``);
    ``since_ms`` is when it came up. The released alert says both."""
    missed: int = 0
    """A held ``up``: the check-ins missed while it was down (the ``up`` alert's ``missed_runs``)."""


class Fleet(msgspec.Struct, array_like=True, gc=False):
    """The instances of a heartbeat run by a fleet (docs/semantics.md, "Fleets"). The one mutable
    part of an :class:`Extra`: a ping of one of 10,000 instances updates its entry in place
    rather than copying the map.

    Which members are missing is not kept as a list: a member is missing now when its last
    check-in is at or before ``opened_ms`` (it did not report in the last window judged, nor
    since). A list would repeat every name of a silent fleet of 10,000 in each snapshot (1.5 MB
    with long names: past a Kafka record's limit); :attr:`missing` reads them from ``seen``."""

    seen: dict[str, int] = {}
    """Each instance that checked in (or was declared: then 0 until it does) and its last
    check-in (ms), at most ``shared.rules.MAX_INSTANCES`` learned ones."""
    judged_ms: int = 0
    """The deadline of the last window judged (0: none yet); ``members``, ``required`` and
    ``reported`` are as of then."""
    members: int = 0
    """Instances in the fleet then."""
    required: int = 0
    """Instances that had to report (``min_instances``, or ``min_percent`` of the members)."""
    opened_ms: int = 0
    """Where the last window judged opened (the deadline of the one before; 0 for the first)."""
    reported: int = 0
    """Members that reported in the last window judged."""
    away: int = 0
    """Members missing now (counted as they check in, leave and are declared: a look at one
    number, not at every member, on each check-in of a large fleet that is down)."""

    @property
    def missing(self) -> tuple[str, ...]:
        """The members missing now, sorted (a scan of every member: for alerts and the API)."""
        if not self.judged_ms:
            return ()
        opened = self.opened_ms
        return tuple(sorted(name for name, last in self.seen.items() if last <= opened))


class Extra(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What most monitors do not need, behind one field of :class:`MonitorState` (None when
    empty). Immutable: replaced on change, and an idle one (rules only) is shared."""

    rules: Rules | None = None
    runs: tuple[Run, ...] = ()
    """Open runs, oldest start first. An overran run stays (its end is still measured) but
    counts no more."""
    streak: int = 0
    """Successes in a row while down (towards ``recovery_threshold``)."""
    reminders: int = 0
    """Reminders sent in the current incident."""
    held: Held | None = None
    flips: tuple[int, ...] = ()
    """When its recent down/up changes happened (within its flapping window), oldest first."""
    flapping_since: int | None = None
    """Flapping since then: down/up alerts are held until it has been stable long enough."""
    missed: int = 0
    """Check-ins missed in the current run of problems (the ``up`` alert says how many)."""
    fleet: Fleet | None = None
    """The instances, for a heartbeat with a fleet rule."""
    durations: bytes = b""
    """The last ``shared.rules.BASELINE_RUNS`` measured run times, oldest first: the baseline of a
    run-time rule. Packed, ms as 4-byte little-endian unsigned ints (capped at about 49 days): 113 B
    for 20 runs, where a tuple of ints takes 840. Read with :func:`durations_ms`."""
    recent: tuple[int, ...] = ()
    """When its latest runs came (ms), oldest first, as many as the cadence rule's ``max_runs``
    needs (one more than it): runs too often."""
    outcomes: tuple[int, ...] = ()
    """The last runs of a failure-rate rule (at most its ``runs``), oldest first: when each ended
    (ms), negated for a failure."""
    rate_down: bool = False
    """Down because of its failure rate: it comes back only when the rate is under the lower mark."""


DURATION_FORMAT = "<I"
"""How one run time is packed in :attr:`Extra.durations`."""


def durations_ms(extra: Extra | None) -> tuple[int, ...]:
    """The run times (ms) of a monitor's baseline, oldest first (none without one)."""
    if extra is None or not extra.durations:
        return ()
    return tuple(i[0] for i in struct.iter_unpack(DURATION_FORMAT, extra.durations))


CheckinKind = Literal["success", "fail"]
"""A check-in: a run ended, well or badly (``start`` and ``log`` pings are not check-ins)."""


class Checkin(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What the last check-in was: ``success`` or ``fail``, and its exit code. One shared
    object per pair in the evaluator (at most 2 x 257 of them); its message is kept beside it."""

    kind: CheckinKind
    exit_code: int | None = None


class MonitorState(msgspec.Struct, array_like=True, gc=False):
    """What the evaluator knows of one monitor (version :data:`STATE_VERSION`).

    Kept small (a million of these per process is the target): no GC header, shared
    tuples for channels and tags, shared ints for configured periods.
    """

    monitor_id: str
    project_id: str
    name: str
    interval_ms: int
    grace_ms: int
    max_problems: int
    """``max_consecutive_misses``: problems in a row that take the monitor down."""
    channels: tuple[str, ...]
    tags: tuple[str, ...]
    revision: int
    """The ``MonitorConfig`` revision applied."""
    status: MonitorStatus = "new"
    last_ping_ms: int | None = None
    """The last check-in (``success`` or ``fail``); None before the first one."""
    deadline_ms: int | None = None
    """When the current window is missed (before lateness); None: never misses. The next
    check-in is expected ``grace_ms`` before it."""
    problems: int = 0
    """Problems (misses, failures, overrun runs) in a row."""
    incident: int = 0
    """Incidents so far; the current one's number while down."""
    last_problem: str = ""
    """The latest problem, for people (the going-down reason quotes it)."""
    applied_offset: int = -1
    """Offset of the last ``pings`` record already folded in (replay guard)."""
    queued_slot: int | None = None
    """The evaluator's own bookkeeping (the timer-wheel second this monitor is queued in);
    readers ignore it, and a restore starts without."""
    # Fields below were added later: trailing and optional, so the array-like snapshots
    # of older versions (shorter arrays) still decode. Add new ones after them, never between.
    status_since_ms: int | None = None
    """Event time of the last status change; None in snapshots older than this field."""
    status_reason: str | None = None
    """Why the status last changed (the ``reason`` of that ``StatusChanged``)."""
    extra: Extra | None = None
    """Schedule, runs, recovery and reminders; None for a monitor using none of them."""
    last_checkin: Checkin | None = None
    """What the check-in at ``last_ping_ms`` was (kind, exit code); None before the first
    one, and in snapshots older than this field (alerts then say nothing of it until the next
    one)."""
    last_message: str | None = None
    """That check-in's message as one line (at most ``CHECKIN_MESSAGE_MAX_CHARS``); None
    without one. (Two fields cost what one does: the struct's size class is the same.)"""


class Reason:
    """The fixed reasons of a status change (``StatusChanged.reason``, a snapshot's
    ``status_reason``): every one but going down's, which quotes the problems."""

    CREATED_PAUSED = "created paused"
    PAUSED = "paused"
    RESUMED = "resumed"
    PING_RECEIVED = "ping received"
    FIRST_CHECKIN_FAILED = "first check-in (a failure)"
    IN_GRACE = "no ping within the interval; in grace period"
    MISSED = "missed a check-in"
    RUN_STARTED = "run started"
    RUN_FAILED = "run ended (a failure)"
    RUN_OVERRAN = "a run overran its maximum run time"
    OUTAGE = "Pingura was not running when the check-in was due: that window is skipped"
    INGEST_HELD = "missed a check-in while ingestion had collapsed (an ingest incident): held, not down"


SHARED_REASONS = {reason: reason for name, reason in vars(Reason).items() if name.isupper()}
"""Each fixed reason mapped to itself: a reader swaps a decoded copy of ``status_reason`` for
this one object, so a million monitors don't hold a million copies (the evaluator writes these
very objects)."""


class UnreadableSnapshot(PinguraError, ValueError):
    """A snapshot's state this code cannot read (malformed, or a layout version it does not know)."""


OutageSpan = tuple[int, int]
"""An outage of Pingura: ``(last tick before, first tick after)`` the clock stopped."""


class DownElsewhere(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A heartbeat of any partition that is down, as a :class:`~shared.events.StatusRelayed`
    told this one: what dependencies on it (by id or by tag) need to know."""

    monitor_id: str
    project_id: str
    name: str
    tags: tuple[str, ...]
    at_ms: int
    held_by: tuple[str, ...] = ()
    incident: int = 0


class IngestIncident(msgspec.Struct, array_like=True, frozen=True):
    """An open ingest incident of one scope (``""``: the whole partition; else a project)."""

    scope: str
    number: int
    """Its number in this partition (alert ids)."""
    since_ms: int
    usual: float
    """Pings per window learned before it opened: it closes when a window brings back half."""
    arrived: int
    overdue: int
    held: int = 0


class IngestAcross(msgspec.Struct, frozen=True, omit_defaults=True):
    """An ingest incident of one scope across the partitions, as partition 0 tallies it from their
    reports (:class:`~shared.events.IngestReported`): open while any partition has it open."""

    scope: str
    number: int
    """Its number (operator alert ids ``ingest:{scope or *}:{number}:down|up``)."""
    since_ms: int
    """When the first partition opened it."""
    open: tuple[IngestFigures, ...] = ()
    """The partitions that have it open, as each last reported it."""
    closed: tuple[IngestFigures, ...] = ()
    """The partitions that had it open and closed it since, with the figures that closed it
    (``held``: summed over each partition's incidents within this one)."""


class LearnedVolume(msgspec.Struct, array_like=True, frozen=True):
    """The pings per window a scope usually brings (the ingest watch's learned volume)."""

    scope: str
    usual: float
    windows: int
    """Windows it was learned from (at most 10: then the average is exponential)."""


PARTITION_STATE_VERSION = 1
"""The layout of :class:`PartitionState` as this code writes it (``PartitionSnapshot.state_v``)."""


class PartitionState(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the evaluator knows of one ``pings`` partition beyond its monitors (version
    :data:`PARTITION_STATE_VERSION`). One per partition, so an object with names, not an array:
    a new optional field is a compatible change wherever it goes, and older readers ignore it.
    A partition without one knows nothing of it: no outages."""

    outages: tuple[OutageSpan, ...] = ()
    """The outages of Pingura seen in this partition, oldest first, the newest
    ``MAX_OUTAGES`` (16) at most: a window they overlapped is skipped, not missed, however
    many restarts come before its deadline."""
    downs: tuple[DownElsewhere, ...] = ()
    """The heartbeats down, of every partition, as relayed: what dependencies hold on. Only in
    snapshots written before ``downs_apart``; since, each is a ``DownSnapshot`` record of its own."""
    ingest: tuple[IngestIncident, ...] = ()
    """The ingest incidents open in this partition."""
    ingest_count: int = 0
    """Ingest incidents opened in this partition so far (numbers the next)."""
    ingest_learned: tuple[LearnedVolume, ...] = ()
    """The learned volume of the scopes that bring enough pings for it to matter (rewritten
    when one moves by more than a tenth): a restart does not learn it again."""
    ingest_across: tuple[IngestAcross, ...] = ()
    """Partition 0 only: the ingest incidents open in any partition, tallied from the reports."""
    ingest_across_count: int = 0
    """Partition 0 only: incidents across partitions opened so far (numbers the next)."""
    ingest_report_offset: int = -1
    """Partition 0 only: the ``pings`` offset of the last report tallied (those at or before it
    are in this state: read again after a restart, they are skipped)."""
    downs_apart: bool = False
    """The downs are kept as ``DownSnapshot`` records, not in ``downs`` (False: an older
    evaluator's snapshot, whose ``downs`` are the whole set)."""


_encoder = msgspec.json.Encoder()
T = TypeVar("T")
_decoders = {1: msgspec.json.Decoder(MonitorState), 2: msgspec.json.Decoder(MonitorState)}
"""Each layout version this code reads, and how (1 is 2 without ``unknown``: the same decoder)."""
_partition_decoders = {1: msgspec.json.Decoder(PartitionState)}
_down_decoders = {1: msgspec.json.Decoder(DownElsewhere | None)}


def encode_state(state: MonitorState) -> msgspec.Raw:
    """``state`` as a snapshot's ``state`` (layout :data:`STATE_VERSION`)."""
    return msgspec.Raw(_encoder.encode(state))


def decode_state(snapshot: MonitorSnapshot) -> MonitorState:
    """The monitor state a snapshot carries, whatever version wrote it; UnreadableSnapshot if
    none this code knows (a newer evaluator's: the reader keeps what it had)."""
    return _decode(_decoders, snapshot.state_v, snapshot.state, "state", STATE_VERSION)


def encode_partition_state(state: PartitionState) -> msgspec.Raw:
    """``state`` as a ``PartitionSnapshot``'s ``state`` (layout :data:`PARTITION_STATE_VERSION`)."""
    return msgspec.Raw(_encoder.encode(state))


def decode_partition_state(snapshot: PartitionSnapshot) -> PartitionState:
    """The partition state a snapshot carries; UnreadableSnapshot if this code knows no such
    layout (a newer evaluator's: the reader then knows no outages, as before they were kept)."""
    return _decode(
        _partition_decoders, snapshot.state_v, snapshot.state, "partition state", PARTITION_STATE_VERSION
    )


def encode_down(entry: DownElsewhere | None) -> msgspec.Raw:
    """A heartbeat down (None: no longer) as a ``DownSnapshot``'s ``state`` (layout
    :data:`PARTITION_STATE_VERSION`)."""
    return msgspec.Raw(_encoder.encode(entry))


def decode_down(snapshot: DownSnapshot) -> DownElsewhere | None:
    """The heartbeat down a ``DownSnapshot`` holds; None when it says the heartbeat is not down.
    UnreadableSnapshot for a layout this code does not know."""
    return _decode(_down_decoders, snapshot.state_v, snapshot.state, "down", PARTITION_STATE_VERSION)


def _decode(
    decoders: dict[int, msgspec.json.Decoder[T]], version: int, raw: msgspec.Raw, what: str, known: int
) -> T:
    decoder = decoders.get(version)
    if decoder is None:
        raise UnreadableSnapshot(f"{what} layout v{version} is newer than this reader (v{known})")
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise UnreadableSnapshot(str(exc)) from None


__all__ = [
    "DURATION_FORMAT", "PARTITION_STATE_VERSION", "SHARED_REASONS", "STATE_VERSION", "Checkin", "CheckinKind",
    "DownElsewhere", "Extra", "Fleet", "Held", "IngestAcross", "IngestIncident", "LearnedVolume", "MonitorState",
    "OutageSpan", "PartitionState", "Reason", "Rules", "Run", "UnreadableSnapshot",
    "decode_down", "decode_partition_state", "decode_state", "durations_ms", "encode_down", "encode_partition_state",
    "encode_state",
]  # fmt: skip
