"""Steps every verb takes on one monitor's state: change its status, replace its extras,
read its rules, and share equal values between monitors."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from services.evaluator.logic.outputs import Output
from shared.events import FLAP_DEFAULTS, MonitorConfig, MonitorStatus, StatusChanged
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
        and extra.fleet is None and not extra.durations and not extra.recent and not extra.outcomes
        and not extra.rate_down
    ):  # fmt: skip
        extra = shared(extra) if extra.rules is not None else None
    state.extra = extra


def rules_of(state: MonitorState) -> Rules:
    extra = state.extra
    return extra.rules if extra is not None and extra.rules is not None else NO_RULES


def rules_from(cfg: MonitorConfig, shared: Shared) -> Rules | None:
    """The config's rules as one shared object; None when all are defaults."""
    flap = (cfg.flap_changes, cfg.flap_window_s, cfg.flap_stable_s)
    if (
        cfg.schedule is None and cfg.max_runtime_s is None and cfg.recovery_threshold <= 1
        and cfg.reminder_interval_s is None and cfg.muted_until_ms is None and not cfg.depends_on
        and not cfg.depends_on_tags and flap == (None, None, None) and cfg.fleet is None
        and cfg.run_time is None and cfg.cadence is None and cfg.failure_rate is None and cfg.keywords is None
    ):  # fmt: skip
        return None
    return shared(Rules(
        schedule=sys.intern(cfg.schedule) if cfg.schedule is not None else None,
        timezone=sys.intern(cfg.timezone) if cfg.schedule is not None else "UTC",
        max_runtime_ms=cfg.max_runtime_s * 1000 if cfg.max_runtime_s is not None else None,
        recovery_threshold=max(1, cfg.recovery_threshold),
        reminder_interval_ms=cfg.reminder_interval_s * 1000 if cfg.reminder_interval_s else None,
        muted_until_ms=cfg.muted_until_ms,
        depends_on=shared(tuple(sys.intern(m) for m in cfg.depends_on)),
        depends_on_tags=shared(tuple(cfg.depends_on_tags)),
        flap=None if flap == (None, None, None) else shared(tuple(
            1000 * (given if given is not None else default) if n else (given if given is not None else default)
            for n, (given, default) in enumerate(zip(flap, FLAP_DEFAULTS, strict=True))
        )),
        fleet=shared(cfg.fleet), run_time=shared(cfg.run_time), cadence=shared(cfg.cadence),
        failure_rate=shared(cfg.failure_rate), keywords=shared(cfg.keywords),
    ))  # fmt: skip
