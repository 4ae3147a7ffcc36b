"""Uptime as a time-weighted share of the status history. Pure: no I/O, no clock.

Only time in which Pingura was actually watching counts: a monitor that is ``new``
(never pinged yet) or ``paused`` is not observed, so a week-long pause neither helps
nor hurts. Of the observed time, every moment not spent ``down`` is up time (``late``
is still within grace, so it is not an outage).
"""

from __future__ import annotations

from collections.abc import Iterable

UNOBSERVED_STATUSES = frozenset({"new", "paused"})
DOWN_STATUS = "down"


def uptime_percent(
    transitions: Iterable[tuple[int, str]],
    initial_status: str,
    window_start_ms: int,
    now_ms: int,
) -> float | None:
    """Percentage (0-100, 3 decimals) of observed time in ``[window_start_ms, now_ms)`` not spent down.

    ``transitions`` are ``(at_ms, new_status)`` in time order; ``initial_status`` is the
    status in force before the first of them. Transitions before the window only set the
    status the window starts in, and ones at or after ``now_ms`` are ignored, so one list
    fetched for the widest window serves every narrower one. ``None`` when nothing in the
    window was observed.
    """
    status = initial_status
    observed_ms = down_ms = 0
    span_start_ms = window_start_ms

    def tally(status: str, length_ms: int) -> None:
        nonlocal observed_ms, down_ms
        if status in UNOBSERVED_STATUSES:
            return
        observed_ms += length_ms
        if status == DOWN_STATUS:
            down_ms += length_ms

    for at_ms, next_status in transitions:
        if at_ms >= now_ms:
            break
        if at_ms > span_start_ms:
            tally(status, at_ms - span_start_ms)
            span_start_ms = at_ms
        status = next_status
    if now_ms > span_start_ms:
        tally(status, now_ms - span_start_ms)
    if observed_ms == 0:
        return None
    return round(100 * (observed_ms - down_ms) / observed_ms, 3)
