"""Current status of every monitor, read from the evaluator's own snapshots.

The evaluator writes a :class:`~shared.events.MonitorSnapshot` of each monitor it changed
to the compacted ``evaluator-state`` topic about once a second. Following that topic gives
the query service each monitor's status, when and why it last changed, its last check-in
and its next deadline, without grouping status changes in ClickHouse per request.

The snapshot's ``state`` is read through its public declaration
(``shared.snapshots.MonitorState``, with a layout version of its own, docs/events.md), not
through the evaluator's code: a snapshot of a layout this reader does not know (a newer
evaluator's) is logged and skipped, and the last one read stays.

The evaluator's own record of each ``pings`` partition (``PartitionSnapshot``) gives the
ingest incidents open in it (docs/semantics.md, "Ingest incidents"): the API, ``/healthz`` and
the dashboard's banner read them here.

A heartbeat using the rules of ``shared.rules`` also gets what the API shows of them
(:class:`RuleFigures`: its fleet's instances, its usual run time, its last runs' outcomes), kept
in a dict of their own keyed by monitor id, for those heartbeats only: the plain heartbeat's
cost stays its :class:`CurrentStatus`.

Lag: a status shows here once the evaluator's next checkpoint is durable (about a second,
``checkpoint_interval_ms``; longer while it drains a backlog).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable
from typing import NamedTuple

import msgspec
import structlog

from services.evaluator.schedule import next_run_ms
from shared.bus import Bus, Record
from shared.bus.view import TopicFollower, decode_as
from shared.events import (
    DOWN_KEY_PREFIX,
    STATUSES,
    MonitorConfig,
    MonitorSnapshot,
    MonitorStatus,
    PartitionSnapshot,
)
from shared.rules import usual_band
from shared.snapshots import (
    SHARED_REASONS,
    Fleet,
    IngestIncident,
    MonitorState,
    UnreadableSnapshot,
    decode_partition_state,
    decode_state,
    durations_ms,
)
from shared.topics import Topics

log = structlog.get_logger()


class CurrentStatus(msgspec.Struct, frozen=True, gc=False):
    """What the API shows of one monitor's evaluator state (~96 bytes, no GC header)."""

    status: MonitorStatus
    since_ms: int | None
    """When it entered ``status`` (event time); None in snapshots of older evaluators."""
    reason: str | None
    last_ping_ms: int | None
    next_expected_ms: int | None
    """When the next check-in is due: the deadline minus grace. None if it never misses."""
    flapping_since: int | None = None
    """Flapping since then (its alerts held until it is stable); None: not flapping."""
    held: str | None = None
    """Why an alert of it is held back now (docs/semantics.md, "Holds"); None: none is."""


class FleetFigures(msgspec.Struct, frozen=True, gc=False):
    """A fleet's instances as the evaluator last saved them (``shared.snapshots.Fleet``), laid out for
    paging by name: a heartbeat may have 10,000 of them."""

    names: tuple[str, ...]
    """Every instance it knows, sorted."""
    last_ms: array
    """``last_ms[i]``: when ``names[i]`` last checked in (0: declared, never yet)."""
    judged_ms: int
    """The deadline of the last window judged (0: none yet); the figures below are as of then."""
    members: int
    required: int
    reported: int
    missing: frozenset[str]
    """The members missing as of the snapshot (``Fleet.missing``)."""
    missing_first: tuple[str, ...]
    """The first of ``missing`` by name (at most :data:`MISSING_FIRST`), for the heartbeat's answer."""


MISSING_FIRST = 20
_NONE_MISSING: frozenset[str] = frozenset()


class RuleFigures(msgspec.Struct, frozen=True, gc=False):
    """What the evaluator learned of a heartbeat through its rules, for the API: only heartbeats with
    some have one (:meth:`StatusView.rules`)."""

    fleet: FleetFigures | None = None
    usual: tuple[float, float, float, int] | None = None
    """``(median, low, high)`` of the usual run time in ms (``shared.rules.usual_band``), and the runs
    it was learned from; None before enough runs were measured."""
    outcomes: array | None = None
    """The last runs counted by a failure-rate rule, oldest first: when each ended (ms), negated for a
    failure (``Extra.outcomes``, 8 bytes each)."""


def fleet_figures(fleet: Fleet) -> FleetFigures:
    names, missing = tuple(sorted(fleet.seen)), fleet.missing
    return FleetFigures(
        names=names, last_ms=array("q", [fleet.seen[name] for name in names]), judged_ms=fleet.judged_ms,
        members=fleet.members, required=fleet.required, reported=fleet.reported,
        missing=frozenset(missing) if missing else _NONE_MISSING, missing_first=missing[:MISSING_FIRST],
    )  # fmt: skip


def rule_figures(state: MonitorState) -> RuleFigures | None:
    """What the API shows of a heartbeat's rules; None for one that has none to show (most)."""
    extra = state.extra
    if extra is None or (extra.fleet is None and not extra.durations and not extra.outcomes):
        return None
    durations = durations_ms(extra)
    band = usual_band(durations)
    return RuleFigures(
        fleet=fleet_figures(extra.fleet) if extra.fleet is not None else None,
        usual=(*band, len(durations)) if band is not None else None,
        outcomes=array("q", extra.outcomes) if extra.outcomes else None,
    )


_PACKED = struct.Struct("<BBqqq")
"""A plain status in 26 bytes: status, reason, since, last check-in, next expected. As a bytes
object 59 B, against 168 B for a :class:`CurrentStatus` and its three ints."""
_NO_TIME = -(1 << 63)
"""A time that is None."""
_REASONS: tuple[str | None, ...] = (None, *SHARED_REASONS)
_REASON_CODES = {reason: code for code, reason in enumerate(_REASONS)}
_STATUS_CODES = {status: code for code, status in enumerate(STATUSES)}
_TIME_RANGE = range(_NO_TIME + 1, 1 << 63)


def pack(current: CurrentStatus) -> bytes | None:
    """``current`` in :data:`_PACKED`; None for one it cannot hold (a reason of its own, such as
    going down's, flapping, a hold, a time out of range): the view keeps those whole."""
    reason, status = _REASON_CODES.get(current.reason), _STATUS_CODES.get(current.status)
    if reason is None or status is None or current.flapping_since is not None or current.held is not None:
        return None
    times = (current.since_ms, current.last_ping_ms, current.next_expected_ms)
    if any(t is not None and t not in _TIME_RANGE for t in times):
        return None
    since, last, expected = (_NO_TIME if t is None else t for t in times)
    return _PACKED.pack(status, reason, since, last, expected)


def unpack(packed: bytes) -> CurrentStatus:
    status, reason, since, last, expected = _PACKED.unpack(packed)
    return CurrentStatus(
        STATUSES[status],
        None if since == _NO_TIME else since,
        _REASONS[reason],
        None if last == _NO_TIME else last,
        None if expected == _NO_TIME else expected,
    )


StatusListener = Callable[[str, "CurrentStatus | None", CurrentStatus], None]
"""``(monitor_id, previous, current)``, called after the view changed."""


def notify_all(listeners: list, *change) -> None:
    """Tell each listener; one that fails is logged and the rest still hear of it. An error
    must not escape into the view's follower task: the view would stop following for good."""
    for listener in listeners:
        try:
            listener(*change)
        except Exception:
            log.exception(
                "query.view.listener_failed", listener=getattr(listener, "__qualname__", repr(listener))
            )


def status_of(state: MonitorState) -> CurrentStatus:
    reason = state.status_reason
    return CurrentStatus(
        status=state.status,  # decoded as a Literal: one shared object already
        since_ms=state.status_since_ms,
        reason=SHARED_REASONS.get(reason, reason) if reason is not None else None,
        last_ping_ms=state.last_ping_ms,
        next_expected_ms=state.deadline_ms - state.grace_ms if state.deadline_ms is not None else None,
        **_holding(state),
    )


def _holding(state: MonitorState) -> dict:
    """Whether it flaps and why an alert of it is held (empty for most: none of either)."""
    extra = state.extra
    if extra is None or (extra.flapping_since is None and extra.held is None):
        return {}
    held = extra.held
    return {
        "flapping_since": extra.flapping_since,
        "held": held.why if held is not None and not held.ended else None,
    }


def next_expected_ms(
    monitor: MonitorConfig, current: CurrentStatus | None, shown: str, now_ms: int
) -> int | None:
    """When the next check-in is due, for the API: the evaluator's (its deadline minus grace,
    for interval and schedule mode alike; while ``running``, the run's next window). Paused
    heartbeats expect nothing; new ones on a schedule show the schedule's next run (nothing
    is missed until a first check-in), new ones on an interval nothing."""
    if shown == "paused":
        return None
    if shown == "new":
        return (
            next_run_ms(monitor.schedule, monitor.timezone, now_ms) if monitor.schedule is not None else None
        )
    return current.next_expected_ms if current is not None else None


class Shown(NamedTuple):
    status: str
    since_ms: int | None
    reason: str | None


def shown_status(monitor: MonitorConfig, current: CurrentStatus | None) -> Shown:
    """The status the API shows: the evaluator's, except that a pause or resume the
    evaluator has not applied yet (it lags by its checkpoint interval) already shows."""
    if monitor.paused:
        if current is not None and current.status == "paused":
            return Shown("paused", current.since_ms, current.reason)
        return Shown("paused", monitor.updated_ms, "paused")
    if current is None:
        return Shown("new", None, None)
    if current.status == "paused":  # resumed; this is what the evaluator will make of it
        return Shown("new" if current.last_ping_ms is None else "up", monitor.updated_ms, "resumed")
    return Shown(current.status, current.since_ms, current.reason)


def shown_status_name(paused: bool, current: CurrentStatus | None) -> str:
    """``shown_status(monitor, current).status`` from the one field of the config it reads
    (the catalog keeps that field, not the config)."""
    if paused:
        return "paused"
    if current is None:
        return "new"
    if current.status == "paused":
        return "new" if current.last_ping_ms is None else "up"
    return current.status


class StatusView:
    """monitor id -> :class:`CurrentStatus`, following ``evaluator-state`` from its start."""

    def __init__(self, bus: Bus, topics: Topics, poll_timeout_ms: int = 1000):
        self._packed: dict[str, bytes] = {}
        """monitor id -> its status, :func:`pack` ed (most)."""
        self._whole: dict[str, CurrentStatus] = {}
        """monitor id -> its status, for those :func:`pack` cannot hold. Each id is in one of the two."""
        self._listeners: list[StatusListener] = []
        self._rules: dict[str, RuleFigures] = {}
        """monitor id -> what its rules learned, for the heartbeats that have any."""
        self._ingest: dict[int, tuple[IngestIncident, ...]] = {}
        """partition -> the ingest incidents open in it (its own snapshot's ``ingest``)."""
        self._follower = TopicFollower(bus, topics.evaluator_state, self._apply, poll_timeout_ms)

    async def start(self) -> None:
        await self._follower.start()

    async def close(self) -> None:
        await self._follower.close()

    async def sync(self, timeout_s: float = 5.0) -> bool:
        """Wait until every snapshot published before this call is applied."""
        return await self._follower.sync(timeout_s)

    def listen(self, listener: StatusListener) -> None:
        self._listeners.append(listener)

    def get(self, monitor_id: str) -> CurrentStatus | None:
        packed = self._packed.get(monitor_id)
        return unpack(packed) if packed is not None else self._whole.get(monitor_id)

    def rules(self, monitor_id: str) -> RuleFigures | None:
        """What the evaluator learned of it through its rules (instances, run times, outcomes)."""
        return self._rules.get(monitor_id)

    def __len__(self) -> int:
        return len(self._packed) + len(self._whole)

    def forget(self, monitor_id: str) -> None:
        """Drop a deleted monitor: the evaluator writes no tombstone for it."""
        self._packed.pop(monitor_id, None)
        self._whole.pop(monitor_id, None)
        self._rules.pop(monitor_id, None)

    def ingest_incidents(self) -> list[tuple[int, IngestIncident]]:
        """``(partition, incident)`` of every open ingest incident, oldest first."""
        found = [(p, incident) for p, incidents in self._ingest.items() for incident in incidents]
        return sorted(found, key=lambda item: (item[1].since_ms, item[0], item[1].scope))

    def _apply_partition(self, snapshot: PartitionSnapshot) -> None:
        try:
            state = decode_partition_state(snapshot)
        except UnreadableSnapshot as exc:  # a newer evaluator's layout: keep what we had
            log.warning("query.status_view.unreadable", partition=snapshot.partition, error=str(exc))
            return
        if state.ingest:
            self._ingest[snapshot.partition] = state.ingest
        else:
            self._ingest.pop(snapshot.partition, None)

    def _apply(self, records: list[Record]) -> None:
        for record in records:
            if record.key.startswith(DOWN_KEY_PREFIX):
                continue  # the evaluator's record of a heartbeat down, for dependencies
            snapshot = decode_as(record, (MonitorSnapshot, PartitionSnapshot), "query.status_view.poison")
            if isinstance(snapshot, PartitionSnapshot):
                self._apply_partition(snapshot)  # the evaluator's own record of a partition
                continue
            if snapshot is None:
                continue  # unreadable
            try:
                state = decode_state(snapshot)
            except UnreadableSnapshot as exc:  # a snapshot we cannot read: keep the last one
                log.warning(
                    "query.status_view.unreadable",
                    monitor_id=snapshot.monitor_id,
                    partition=record.partition,
                    offset=record.offset,
                    error=str(exc),
                )
                continue
            figures = rule_figures(state)
            if figures is not None:
                self._rules[state.monitor_id] = figures
            else:
                self._rules.pop(state.monitor_id, None)
            self.put(state.monitor_id, status_of(state))

    def put(self, monitor_id: str, current: CurrentStatus) -> None:
        packed = pack(current)
        if packed is not None and packed == self._packed.get(monitor_id):
            return  # most snapshots only moved the applied offset
        previous = self.get(monitor_id)
        if previous == current:
            return
        if previous is None:  # interned: the monitors view and the catalog hold the same id
            monitor_id = sys.intern(monitor_id)
        if packed is not None:
            self._packed[monitor_id] = packed
            self._whole.pop(monitor_id, None)
        else:
            self._whole[monitor_id] = current
            self._packed.pop(monitor_id, None)
        notify_all(self._listeners, monitor_id, previous, current)
