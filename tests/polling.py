"""The tests' one polling helper: wait on a condition, never sleep and then count.

A test that needs something to happen asynchronously states the condition and awaits it::

    deliveries = await eventually(lambda: read_deliveries(bus, topics))   # async check: its truthy result
    await eventually(lambda: writer.events_written == 4)                  # sync check

``check`` is called with no arguments; it may be a plain function or return an awaitable. It has
passed when it returns a truthy value, which ``eventually`` returns. A falsy value (``None``, ``[]``,
``False``) or an ``AssertionError`` raised by ``check`` means "not yet"; any other exception fails at
once. On timeout ``eventually`` raises ``AssertionError`` with the last value or the last assertion's
message, so the failure reads like the assert that never held.

To prove that something did NOT happen (no second delivery), do not sleep and count: wait on a
positive condition that must come after it (a later marker event handled, the committed offset past
the record), then assert the count.

``eventually_sync`` is the same for code with no event loop (a subprocess starting up).
"""

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], timeout_s: float = 5.0, interval_s: float = 0.02) -> Any:
    """Call ``check`` until it returns a truthy value; return it. ``AssertionError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except AssertionError as failed:
            value = failed
        if value and not isinstance(value, AssertionError):
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout_s, value)
        await asyncio.sleep(interval_s)


def eventually_sync(check: Callable[[], Any], timeout_s: float = 5.0, interval_s: float = 0.05) -> Any:
    """``eventually`` for code without an event loop; ``check`` must be a plain function."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except AssertionError as failed:
            value = failed
        if inspect.isawaitable(value):
            raise TypeError("eventually_sync got an awaitable; use `await eventually(...)`")
        if value and not isinstance(value, AssertionError):
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout_s, value)
        time.sleep(interval_s)


def _timed_out(timeout_s: float, last: Any) -> AssertionError:
    if isinstance(last, AssertionError):
        error = AssertionError(f"not within {timeout_s} s: {last}")
        error.__cause__ = last
        return error
    return AssertionError(f"not within {timeout_s} s; last value: {last!r}")
