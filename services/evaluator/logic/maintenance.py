"""Maintenance windows: which heartbeats a project's windows cover, and until when.

A window is one-off (``starts_ms`` to ``ends_ms``) or recurring (from each run of a cron
``schedule`` in its ``timezone``, for ``duration_s``; DST as the schedule reads it: a window at
02:30 local starts at 03:00 on the day 02:30 does not exist, and once, at the first, on the
day 02:30 comes twice, as a cron job would). It covers
heartbeats by id, by tag, or the whole project. Decided by event time, like everything else.
"""

from __future__ import annotations

from services.evaluator.schedule import next_run_ms
from shared.events import MaintenanceWindow
from shared.snapshots import MonitorState


def occurrence(window: MaintenanceWindow, at_ms: int) -> tuple[int, int] | None:
    """``(start, end)`` of the window's occurrence that covers ``at_ms``; None: none does."""
    if window.deleted or at_ms < window.starts_ms:
        return None
    if window.schedule is None:
        start, end = window.starts_ms, window.ends_ms
        if end is None:
            return None
    else:
        duration_ms = (window.duration_s or 0) * 1000
        run = next_run_ms(window.schedule, window.timezone, max(window.starts_ms - 1, at_ms - duration_ms))
        if run is None or run > at_ms or (window.ends_ms is not None and run > window.ends_ms):
            return None
        start, end = run, run + duration_ms
    if window.ended_ms is not None and start <= window.ended_ms < end:
        end = window.ended_ms  # ended early (a recurring one: this occurrence only)
    return (start, end) if start <= at_ms < end else None


def covers(window: MaintenanceWindow, state: MonitorState) -> bool:
    return (
        window.whole_project
        or state.monitor_id in window.monitor_ids
        or any(tag in window.tags for tag in state.tags)
    )


class Windows:
    """The maintenance windows of every project, as the ``maintenance`` topic says."""

    __slots__ = ("_by_id", "_by_project", "_gone")

    def __init__(self) -> None:
        self._by_id: dict[str, MaintenanceWindow] = {}
        self._by_project: dict[str, dict[str, MaintenanceWindow]] = {}
        self._gone: dict[str, int] = {}
        """The revision of each deleted window: an older copy read after its tombstone stays out."""

    def apply(self, window: MaintenanceWindow) -> bool:
        """Take a window's newest record; False for a stale or repeated one."""
        known = self._by_id.get(window.id)
        if known is not None and window.revision <= known.revision:
            return False
        if window.revision <= self._gone.get(window.id, 0):
            return False
        if known is not None and known.project_id != window.project_id:
            return False  # a window never moves between projects: a forged record
        project = self._by_project.setdefault(window.project_id, {})
        if window.deleted:
            self._gone[window.id] = window.revision
            self._by_id.pop(window.id, None)
            project.pop(window.id, None)
            if not project:
                del self._by_project[window.project_id]
        else:
            self._by_id[window.id] = project[window.id] = window
        return True

    def covering(self, state: MonitorState, at_ms: int) -> tuple[MaintenanceWindow, int] | None:
        """The window covering this heartbeat at ``at_ms`` that lasts longest, and its end."""
        windows = self._by_project.get(state.project_id)
        if not windows:
            return None
        best: tuple[MaintenanceWindow, int] | None = None
        for window in windows.values():
            span = occurrence(window, at_ms) if covers(window, state) else None
            if span is not None and (best is None or span[1] > best[1]):
                best = (window, span[1])
        return best

    def __len__(self) -> int:
        return len(self._by_id)
