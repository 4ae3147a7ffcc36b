"""Outages of Pingura itself: when the event-time clock jumps (ticks further apart than
``outage_gap_ms``), nothing was there to receive check-ins, so the windows that the gap
overlapped are skipped: neither a miss nor a check-in."""

from __future__ import annotations

from services.evaluator.logic.deadlines import next_deadline
from services.evaluator.logic.monitor import set_status
from services.evaluator.logic.outputs import Output
from shared.snapshots import MonitorState, OutageSpan, Reason

MAX_OUTAGES = 16
"""Outages of Pingura itself kept (the newest), in memory and in the partition's snapshot: a
bound on what a snapshot carries, and enough for any window still open unless Pingura stopped
more than 16 times within one window."""


def gap(last_tick_ms: int, tick_ms: int, outage_gap_ms: int) -> OutageSpan | None:
    """``(last tick before, first tick after)`` if the clock stopped between the two ticks
    (``outage_gap_ms`` 0: never; no tick before: nothing to compare with)."""
    if outage_gap_ms and last_tick_ms and tick_ms - last_tick_ms > outage_gap_ms:
        return last_tick_ms, tick_ms
    return None


def skip_windows(
    state: MonitorState, outages: list[OutageSpan], clock_ms: int, ready: int
) -> tuple[int, list[Output]]:
    """Pass over the due windows (deadline up to ``ready``) an outage overlapped: the job may
    have checked in while nothing was there to receive it. Each moves the deadline one window
    on, as a miss would, but counts no problem and alerts no one. A monitor shown late for such
    a window is up again. Returns the windows skipped and the status change, if any."""
    skipped = 0
    while state.deadline_ms is not None and state.deadline_ms <= ready:
        deadline = state.deadline_ms
        expected = deadline - state.grace_ms
        end = next((end for start, end in outages if deadline > start and expected < end), None)
        if end is None:
            break
        # Every later window that opens before the outage ended overlaps it too: go
        # straight to the first that opens after it (a month's outage is one step, not
        # 43,200 one-minute windows), keeping the phase of the windows.
        extra = state.extra
        if extra is None or extra.rules is None or extra.rules.schedule is None:
            windows = max(1, -(-(end - expected) // max(1, state.interval_ms)))
            state.deadline_ms = deadline + windows * state.interval_ms
        else:
            windows = 1
            state.deadline_ms = next_deadline(state, max(expected, end - 1))
        skipped += windows
    if skipped and state.status == "late" and state.problems == 0:
        return skipped, set_status(state, "up", clock_ms, Reason.OUTAGE)
    return skipped, []
