"""What the evaluator's core decides, as values: the events it publishes, and an outage it saw.

Every verb returns a list of these; the adapter (``services.evaluator.consumer``) carries
each where it goes and decides nothing itself.
"""

from __future__ import annotations

import msgspec

from shared.events import (
    Alert,
    CheckinJudged,
    IngestReported,
    Missed,
    RunMeasured,
    StatusChanged,
    StatusRelayed,
)


class Outage(msgspec.Struct, frozen=True, gc=False):
    """Pingura itself was not running: two ticks of a partition came further apart than
    ``outage_gap_ms``. Not an event on the bus: the adapter logs it. The check-in windows it
    overlapped are skipped (docs/semantics.md), neither missed nor alerted."""

    partition: int
    clock_stopped_ms: int
    """The last tick before the gap."""
    clock_resumed_ms: int
    """The first tick after it (the one that showed the gap)."""
    windows_skipped: int
    """Windows skipped at that tick (the ones already due); windows still open are skipped
    when they come due."""


Output = (
    StatusChanged | Missed | RunMeasured | CheckinJudged | Alert | StatusRelayed | IngestReported | Outage
)
"""One decision of the core. ``StatusChanged``, ``Missed``, ``RunMeasured`` and ``CheckinJudged`` go to the
``status`` topic, ``Alert`` to ``alerts``, ``StatusRelayed`` to every partition of ``pings``
(dependencies), ``IngestReported`` to partition 0 of ``pings`` (the operators' ingest alerts),
``Outage`` to the log."""
