"""The operators' ingest alerts: one ``ingest_down`` and one ``ingest_up`` per incident, however
many ``pings`` partitions it spans (docs/semantics.md, "Ingest incidents").

Each partition judges its own share of the volume (``ingest``): a collapse opens an incident in
each partition with enough heartbeats. They tell partition 0, the tally: every partition but 0
writes an :class:`~shared.events.IngestReported` into partition 0 of ``pings`` when one of its
incidents opens or closes (and when an evaluator takes it over); partition 0 tallies its own as
it judges them. Per scope, the tally opens an incident across partitions when the first
partition opens it (``ingest_down``, the figures of those open so far) and closes it when the
last one closes it (``ingest_up``, the figures summed over all that had it open).

Decided in partition 0's log order, so a replay of that log gives the same alerts; the tally is
in partition 0's snapshot, with the offset of the last report in it (one read again after a
restart is skipped). Each report says everything open in its partition, so the newest wins: a
partition that lost an incident to a crash (reported, not yet in its snapshot) says so when it
is taken over, and the tally closes its share.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from services.evaluator.logic.ingest import WatchRule
from shared.events import Alert, IngestFigures, IngestReported
from shared.snapshots import IngestAcross, IngestIncident, PartitionState

TALLY = 0
"""The partition that tallies the reports and sends the operators' alerts."""


class IngestAlerts:
    def __init__(
        self, partition: int, partitions: int, rule: WatchRule, channels: tuple[str, ...] = ()
    ):  # fmt: skip
        self.partition = partition
        self.partitions = partitions
        self.rule = rule
        self.channels = channels
        self.open: dict[str, IngestAcross] = {}
        """Partition 0: per scope, the incident open in some partition."""
        self.count = 0
        """Partition 0: incidents across partitions opened so far (numbers the next)."""
        self.offset = -1
        """Partition 0: the ``pings`` offset of the last report tallied."""
        self.changed = False

    # reports ----------------------------------------------------------------------------
    def report(
        self, at: int, open: Iterable[IngestIncident], closed: Iterable[IngestIncident] = ()
    ) -> IngestReported:
        """This partition's incidents open now (and those just closed), as a report."""
        return IngestReported(
            partition=self.partition, at_ms=at,
            open=[self._figures(i) for i in open], closed=[self._figures(i) for i in closed],
        )  # fmt: skip

    def judged(
        self, at: int, open: Iterable[IngestIncident], closed: Iterable[IngestIncident]
    ) -> list[Alert | IngestReported]:
        """This partition opened or closed incidents (``open``: all open now): partition 0 tallies
        them at once (the operators' alerts); the others write a report for it."""
        report = self.report(at, open, closed)
        return [*self.tally(report)] if self.partition == TALLY else [report]

    def _figures(self, incident: IngestIncident) -> IngestFigures:
        return IngestFigures(
            scope=incident.scope, window_s=self.rule.window_ms // 1000, arrived=incident.arrived,
            overdue=incident.overdue, usual=incident.usual, since_ms=incident.since_ms, held=incident.held,
            partition=self.partition, partitions=self.partitions,
        )  # fmt: skip

    # the tally (partition 0) ------------------------------------------------------------
    def tally(self, report: IngestReported, offset: int | None = None) -> list[Alert]:
        """One partition's report (read at ``offset`` of partition 0's log; None: partition 0's
        own): the operators' alerts it makes."""
        if self.partition != TALLY:
            return []  # (a report reached another partition: not ours to tally)
        if offset is not None:
            if offset <= self.offset:
                return []  # tallied before the snapshot this restart began from
            # Noted, but the snapshot is not written for it alone: until the tally changes again,
            # a report read again changes nothing either.
            self.offset = offset
        now_open = {f.scope: msgspec.structs.replace(f, partition=report.partition) for f in report.open}
        closed = {f.scope: f for f in report.closed}
        alerts: list[Alert] = []
        for scope in sorted(set(self.open) | set(now_open)):
            across, figures = self.open.get(scope), now_open.get(scope)
            if across is None:
                assert figures is not None
                self.count += 1
                across = self.open[scope] = IngestAcross(scope, self.count, figures.since_ms, open=(figures,))
                alerts.append(self._alert(across, True, report.at_ms))
            elif figures is not None:  # open there (still, or again): its latest figures
                others = tuple(f for f in across.open if f.partition != report.partition)
                self.open[scope] = msgspec.structs.replace(across, open=(*others, figures))
            elif any(f.partition == report.partition for f in across.open):  # closed there
                across = self._closed(across, report.partition, closed.get(scope))
                if across.open:
                    self.open[scope] = across
                else:
                    del self.open[scope]
                    alerts.append(self._alert(across, False, report.at_ms))
            else:
                continue
            self.changed = True
        return alerts

    def _closed(self, across: IngestAcross, partition: int, last: IngestFigures | None) -> IngestAcross:
        """``across`` without ``partition`` open; its figures at the close (``last``; None: a
        partition that lost its incident says nothing of it, so as last reported open)."""
        was = next(f for f in across.open if f.partition == partition)
        last = msgspec.structs.replace(last or was, partition=partition)
        before = [f for f in across.closed if f.partition == partition]
        if before:  # closed there before within this incident: its heartbeats held then count too
            last = msgspec.structs.replace(last, held=last.held + before[0].held)
        return msgspec.structs.replace(
            across,
            open=tuple(f for f in across.open if f.partition != partition),
            closed=(*(f for f in across.closed if f.partition != partition), last),
        )

    def _alert(self, across: IngestAcross, opened: bool, at: int) -> Alert:
        parts = sorted(across.open if opened else across.closed, key=lambda f: f.partition)
        arrived, overdue = sum(f.arrived for f in parts), sum(f.overdue for f in parts)
        usual, held = round(sum(f.usual for f in parts), 1), sum(f.held for f in parts)
        scope = across.scope
        where = f"project {scope}" if scope else "Pingura"
        window_s = self.rule.window_ms // 1000
        share = ""
        if opened:
            if self.partitions > 1:
                share = f" ({len(parts)} of {self.partitions} partitions so far)"
            reason = (
                f"ingestion collapsed for {where}{share}: {arrived} of {arrived + overdue} expected check-ins "
                f"arrived in the last {window_s} s (usually {usual:g} pings per {window_s} s); misses are "
                "held as unknown"
            )
        else:
            if self.partitions > 1:
                share = f" ({len(parts)} of {self.partitions} partitions had collapsed)"
            reason = (
                f"ingestion recovered for {where}{share}: {arrived} pings in the last {window_s} s "
                f"(usually {usual:g}); {held} heartbeat(s) were held"
            )
        kind: Literal["ingest_down", "ingest_up"] = "ingest_down" if opened else "ingest_up"
        return Alert(
            id=f"ingest:{scope or '*'}:{across.number}:{'down' if opened else 'up'}",
            kind=kind, monitor_id="", project_id=scope, monitor_name=f"Pingura ingest ({where})",
            incident=across.number, reason=reason, at_ms=at, channels=list(self.channels),
            down_since_ms=None if opened else across.since_ms,
            ingest=IngestFigures(
                scope=scope, window_s=window_s, arrived=arrived, overdue=overdue, usual=usual,
                since_ms=across.since_ms, held=held, partition=TALLY, partitions=self.partitions,
                in_partitions=[f.partition for f in parts],
            ),
        )  # fmt: skip

    # snapshots --------------------------------------------------------------------------
    def snapshot(self, state: PartitionState) -> PartitionState:
        """``state`` with the tally in it (partition 0; the others' have none)."""
        return msgspec.structs.replace(
            state, ingest_across=tuple(self.open[scope] for scope in sorted(self.open)),
            ingest_across_count=self.count, ingest_report_offset=self.offset,
        )  # fmt: skip

    def saved(self, state: PartitionState) -> None:
        if self.snapshot(state) == state:
            self.changed = False

    def restore(self, state: PartitionState) -> None:
        self.open = {across.scope: across for across in state.ingest_across}
        self.count = state.ingest_across_count
        self.offset = state.ingest_report_offset
        self.changed = False
