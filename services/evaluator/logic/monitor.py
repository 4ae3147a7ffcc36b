"""Steps every verb takes on one monitor's state: change its status, replace its extras,
read its rules, and share equal values between monitors."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from services.evaluator.logic.outputs import Output
from shared.events import MonitorStatus, StatusChanged
from shared.snapshots import Extra, MonitorState, Rules

NEVER = sys.maxsize
"""A time that never comes (not due, no deadline)."""
NO_RULES = Rules()
_EMPTY = Extra()


class Shared(dict):
    """One object for equal values (periods, channel tuples, rules, idle extras) across the
    monitors of one partition: ``shared(value)`` is the first value equal to it seen."""

    __slots__ = ()

    def __call__(self, value: Any) -> Any:
        return self.setdefault(value, value)


def set_status(state: MonitorState, status: MonitorStatus, at: int, reason: str) -> list[Output]:
    previous, state.status = state.status, status
    # The reason is one of a few literals (shared objects) except when going down.
    state.status_since_ms, state.status_reason = at, reason
    return [
        StatusChanged(
            id=f"{state.monitor_id}:{at}:{status}",
            monitor_id=state.monitor_id,
            project_id=state.project_id,
            status=status,
            previous=previous,
            at_ms=at,
            reason=reason,
        )
    ]


def set_extra(state: MonitorState, shared: Shared, **changes: Any) -> None:
    """Replace the monitor's :class:`Extra`; an idle one is shared, an empty one dropped."""
    extra: Extra | None = msgspec.structs.replace(state.extra or _EMPTY, **changes)
    if (
        extra is not None and not extra.runs and not extra.streak and not extra.reminders
        and extra.held is None and not extra.flips and extra.flapping_since is None and not extra.missed
    ):  # fmt: skip
        extra = shared(extra) if extra.rules is not None else None
    state.extra = extra


def rules_of(state: MonitorState) -> Rules:
    extra = state.extra
    return extra.rules if extra is not None and extra.rules is not None else NO_RULES
