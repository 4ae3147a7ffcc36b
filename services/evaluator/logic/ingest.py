"""The ingest watch: did ingestion itself collapse (Pingura is up, but pings stop reaching it)?

The rule (docs/semantics.md, "Ingest incidents"), per scope: the partition as a whole (``""``)
and each project in it. Over a sliding window of event time (``window_ms``) it counts the pings
that arrived and the check-ins that came due and did not: a late heartbeat counts once half its
grace has passed without its check-in (:func:`overdue_at`), and a late one missing again. Less
late is still on its way (a cron fleet at the top of the hour pings over its first minutes, each
job when it is done); heartbeats already down are not counted (a project full of abandoned jobs
is not an incident).

- **Opens** when at least ``min_overdue`` check-ins were overdue in the window and the pings
  that arrived are fewer than ``open_share`` of arrived + overdue: most of what was expected
  did not come. The heartbeats' own schedules are the baseline: a cron fleet that pings at the
  top of the hour is expected then, and quiet in between, so neither a quiet minute nor a
  burst looks like a collapse, and a cut is seen as the first check-ins run half their grace
  late, before any of them is missed (when the grace is at least about a window).
- **Closes** when a window brings back ``close_share`` of the pings per window learned before
  it opened (an average of the windows without an incident).

Counting is two tumbling windows per scope, the sliding count interpolated between them (a
rate limiter's estimate): a few ints per project, not a ring of buckets. A ping costs one dict
count (folded into the windows at the next tick); a heartbeat counted overdue that checks in
after all, within its grace, takes its overdue back.

The open incidents, their numbering and the learned volume of the scopes big enough to matter
are in the partition's snapshot (the volume rewritten only when it moves by more than
:data:`LEARNED_DRIFT`); the counts are not. Operators hear of incidents across partitions
(``ingest_alerts``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import msgspec

from shared.snapshots import IngestIncident, LearnedVolume, MonitorState, PartitionState, Reason

LEARNING_WEIGHT = 0.1
"""How much each window without an incident moves the learned volume (an exponential average;
the first ten windows are averaged plainly)."""
LEARNED_DRIFT = 0.1
"""A scope's learned volume is written into the partition's snapshot again once it moved by more
than this share of what was written (not at every window)."""


def overdue_at(state: MonitorState) -> int | None:
    """When the check-in a ``late`` heartbeat owes counts as overdue: half its grace after it
    was expected (None: it is not late within grace)."""
    if state.status != "late" or state.deadline_ms is None or state.status_reason != Reason.IN_GRACE:
        return None
    return state.deadline_ms - state.grace_ms // 2


@dataclass(frozen=True)
class WatchRule:
    window_ms: int = 60_000
    min_overdue: int = 20
    """0: the watch is off."""
    open_share: float = 0.25
    close_share: float = 0.3


class _Scope(msgspec.Struct, gc=False):
    """Counts of one scope: the current tumbling window and the one before."""

    start_ms: int
    arrived: int = 0
    overdue: int = 0
    prev_arrived: int = 0
    prev_overdue: int = 0
    usual: float = 0.0
    learned: int = 0
    """Windows learned from."""


class IngestWatch:
    def __init__(self, rule: WatchRule):
        self.rule = rule
        self._scopes: dict[str, _Scope] = {}
        self.open: dict[str, IngestIncident] = {}
        self.count = 0
        """Incidents opened so far (numbers the next)."""
        self.changed = False
        self.watching_since: int | None = None
        """The event time counting began (a restart loses the counts: no incident opens until
        a whole window was counted)."""
        self._touched: set[str] = set()
        self._suspects: set[str] = set()
        """Scopes with at least ``min_overdue`` overdue in their two windows: judged at every
        tick (their pings may have stopped, so nothing touches them), until that passes."""
        self._unreported: list[IngestIncident] = []
        """Opened while judging a hold (between ticks): the next :meth:`judge` reports them."""
        self.pending: dict[str, int] = {}
        """Pings accepted since the last judgement, per project."""
        self.kept: dict[str, LearnedVolume] = {}
        """The learned volume as the snapshot has it (or will: ``changed``), of the scopes that
        bring at least half ``min_overdue`` pings per window (the others never open one)."""

    # counting ---------------------------------------------------------------------------
    def _scope(self, scope: str, at: int) -> _Scope:
        counts = self._scopes.get(scope)
        if counts is None:
            window = self.rule.window_ms
            counts = self._scopes[sys.intern(scope)] = _Scope(start_ms=at - at % window)
            kept = self.kept.get(scope)
            if kept is not None:  # learned before a restart
                counts.usual, counts.learned = kept.usual, kept.windows
        elif at >= counts.start_ms + self.rule.window_ms:
            self._roll(scope, counts, at)
        return counts

    def _roll(self, scope: str, counts: _Scope, at: int) -> None:
        window = self.rule.window_ms
        passed = (at - counts.start_ms) // window
        if not self._in_incident(scope):
            for arrived in [counts.arrived] + [0] * min(int(passed) - 1, 10):
                counts.learned += 1
                weight = max(LEARNING_WEIGHT, 1 / counts.learned)
                counts.usual += weight * (arrived - counts.usual)
            self._keep(scope, counts)
        if passed == 1:
            counts.prev_arrived, counts.prev_overdue = counts.arrived, counts.overdue
        else:
            counts.prev_arrived = counts.prev_overdue = 0
        counts.arrived = counts.overdue = 0
        counts.start_ms += passed * window

    def _keep(self, scope: str, counts: _Scope) -> None:
        kept = self.kept.get(scope)
        if counts.usual * 2 < max(1, self.rule.min_overdue):
            if kept is not None:
                del self.kept[scope]
                self.changed = True
        elif (
            kept is None or abs(counts.usual - kept.usual) > LEARNED_DRIFT * kept.usual
            or kept.windows < 10 <= counts.learned  # (once: from then on it is an exponential average)
        ):  # fmt: skip
            self.kept[scope] = LearnedVolume(scope, round(counts.usual, 1), min(counts.learned, 10))
            self.changed = True

    def _in_incident(self, scope: str) -> bool:
        return scope in self.open or "" in self.open

    def arrived(self, project_id: str, at: int) -> None:
        """One ping accepted for a heartbeat of this project (on every ping: a dict count, folded
        into the windows at the next judgement, a tick at most 250 ms later)."""
        pending = self.pending
        pending[project_id] = pending.get(project_id, 0) + 1

    def _fold(self, at: int) -> None:
        pending = self.pending
        if not pending or not self.rule.min_overdue:
            pending.clear()
            return
        if self.watching_since is None:
            self.watching_since = at
        total = 0
        for project_id, n in pending.items():
            self._scope(project_id, at).arrived += n
            self._touched.add(project_id)
            total += n
        self._scope("", at).arrived += total
        self._touched.add("")
        pending.clear()

    def overdue(self, project_id: str, at: int, n: int = 1) -> None:
        """A check-in came due and did not arrive (``n`` -1: a late one arrived after all)."""
        if not self.rule.min_overdue:
            return
        if self.watching_since is None:
            self.watching_since = at
        for scope in ("", project_id):
            counts = self._scope(scope, at)
            counts.overdue = max(0, counts.overdue + n)
            self._touched.add(scope)
            if counts.overdue + counts.prev_overdue >= self.rule.min_overdue:
                self._suspects.add(scope)

    def late(self, state: MonitorState, after: int, until: int) -> None:
        """Count a late heartbeat's check-in as overdue if half its grace ran out in ``(after, until]``."""
        at = overdue_at(state)
        if at is not None and after < at <= until:
            self.overdue(state.project_id, at)

    def counts(self, scope: str, at: int) -> tuple[int, int]:
        """``(arrived, overdue)`` over the sliding window ending at ``at``."""
        counts = self._scopes.get(scope)
        if counts is None:
            return 0, 0
        if at >= counts.start_ms + self.rule.window_ms:
            self._roll(scope, counts, at)
        left = 1 - (at - counts.start_ms) / self.rule.window_ms
        return (
            counts.arrived + round(counts.prev_arrived * left),
            counts.overdue + round(counts.prev_overdue * left),
        )

    # judging ----------------------------------------------------------------------------
    def incident(self, project_id: str, at: int) -> IngestIncident | None:
        """The open incident that covers this project (the partition's first), judging both
        scopes now: the first misses of a collapse are held even between two ticks."""
        if not self.rule.min_overdue:
            return None
        self._fold(at)
        for scope in ("", project_id):
            if scope not in self.open and self._judge(scope, at) is not None:
                self._unreported.append(self.open[scope])
            found = self.open.get(scope)
            if found is not None:
                return found
        return None

    def judge(self, at: int) -> tuple[list[IngestIncident], list[IngestIncident]]:
        """Judge the scopes counted since the last call: ``(opened, closed)``."""
        self._fold(at)
        opened, self._unreported = self._unreported, []
        closed: list[IngestIncident] = []
        touched, self._touched = self._touched | self._suspects | set(self.open), set()
        for scope in sorted(touched):  # the total first: a project's incident inside it is moot
            change = self._judge(scope, at)
            if change is not None:
                (opened if scope in self.open else closed).append(change)
            counts = self._scopes.get(scope)
            if counts is None or counts.overdue + counts.prev_overdue < self.rule.min_overdue:
                self._suspects.discard(scope)
        return opened, closed

    def _judge(self, scope: str, at: int) -> IngestIncident | None:
        rule = self.rule
        arrived, overdue = self.counts(scope, at)
        incident = self.open.get(scope)
        if incident is None:
            warm = self.watching_since is not None and at - self.watching_since >= rule.window_ms
            if not warm or overdue < rule.min_overdue or arrived >= rule.open_share * (arrived + overdue):
                return None
            if scope and "" in self.open:
                return None  # the whole partition's incident covers it already
            self.count += 1
            usual = self._scopes[scope].usual
            incident = IngestIncident(scope, self.count, at, round(usual, 1), arrived, overdue)
            self.open[incident.scope] = incident
            self.changed = True
            return incident
        if arrived >= max(1, rule.close_share * incident.usual) and arrived >= rule.open_share * (
            arrived + overdue
        ):
            del self.open[scope]
            self.changed = True
            return msgspec.structs.replace(incident, arrived=arrived, overdue=overdue)
        return None

    def held(self, incident: IngestIncident) -> None:
        """One more heartbeat held as ``unknown`` by this incident."""
        current = self.open.get(incident.scope)
        if current is not None and current.number == incident.number:
            self.open[incident.scope] = msgspec.structs.replace(current, held=current.held + 1)
            self.changed = True

    # snapshots --------------------------------------------------------------------------
    def snapshot(self, state: PartitionState) -> PartitionState:
        """``state`` with the watch's part in it."""
        return msgspec.structs.replace(
            state, ingest=tuple(self.open.values()), ingest_count=self.count,
            ingest_learned=tuple(self.kept[scope] for scope in sorted(self.kept)),
        )  # fmt: skip

    def saved(self, state: PartitionState) -> None:
        """``state`` is durable: the watch is clean if it has what the watch has now."""
        if self.snapshot(state) == state:
            self.changed = False

    def restore(self, state: PartitionState) -> None:
        self.open = {i.scope: i for i in state.ingest}
        self.count = state.ingest_count
        self.kept = {learned.scope: learned for learned in state.ingest_learned}
        self.changed = False
        self.watching_since = None
