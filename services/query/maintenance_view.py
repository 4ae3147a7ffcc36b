"""The maintenance windows of every project, followed from the compacted ``maintenance`` topic.

The API lists and changes them from here, and each heartbeat answer says from here whether a
window covers it now (``maintenance_until``). Which heartbeats a window covers, and when its
occurrences fall, are the evaluator's own rules (:mod:`services.evaluator.logic.maintenance`),
used as they are: the dashboard says "in maintenance" exactly when the evaluator holds alerts.
"""

from __future__ import annotations

from services.evaluator.logic.maintenance import Windows, occurrence
from services.evaluator.schedule import next_run_ms
from shared.bus import Bus
from shared.bus.view import ConfigView
from shared.events import MaintenanceWindow, MonitorConfig
from shared.snapshots import MonitorState


class MaintenanceView(ConfigView[MaintenanceWindow]):
    """id -> newest window (deleted ones absent), and the windows by project."""

    def __init__(self, bus: Bus, topic: str, poll_timeout_ms: int = 1000):
        super().__init__(bus, topic, MaintenanceWindow, lambda w: w.revision, poll_timeout_ms)
        self.windows = Windows()
        """The same records, as the evaluator keeps them (what covers a heartbeat, and until when)."""

    def put(self, event: MaintenanceWindow) -> bool:
        changed = super().put(event)
        if changed:  # (a stale copy changes neither: the view refused it first)
            self.windows.apply(event)
        return changed

    def of_project(self, project_id: str) -> list[MaintenanceWindow]:
        """The project's windows, oldest first."""
        found = [w for w in self.values() if w.project_id == project_id]
        return sorted(found, key=lambda w: (w.created_ms, w.id))

    def maintenance_until(self, monitor: MonitorConfig, now_ms: int) -> int | None:
        """When the window covering ``monitor`` at ``now_ms`` ends (the longest, if several); None: none does."""
        if not len(self.windows):
            return None  # most installations: no windows at all
        probe = MonitorState(
            monitor_id=monitor.id, project_id=monitor.project_id, name=monitor.name, interval_ms=0, grace_ms=0,
            max_problems=1, channels=(), tags=tuple(monitor.tags), revision=monitor.revision,
        )  # fmt: skip
        covering = self.windows.covering(probe, now_ms)
        return covering[1] if covering is not None else None


def active_until(window: MaintenanceWindow, now_ms: int) -> int | None:
    """When the occurrence of ``window`` that is on at ``now_ms`` ends; None: none is on."""
    span = occurrence(window, now_ms)
    return span[1] if span is not None else None


def next_start(window: MaintenanceWindow, now_ms: int) -> int | None:
    """When the next occurrence of ``window`` after ``now_ms`` begins; None: none is to come."""
    if window.deleted:
        return None
    if window.schedule is None:
        return window.starts_ms if window.starts_ms > now_ms else None
    run = next_run_ms(window.schedule, window.timezone, max(now_ms, window.starts_ms - 1))
    if run is None or (window.ends_ms is not None and run > window.ends_ms):
        return None
    return run
