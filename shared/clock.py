"""The wall clock in milliseconds, and the one way instants are spelled for people and APIs.

Every timestamp Pingura stores or sends is an ``int`` of milliseconds since the Unix epoch;
:func:`iso_ms` is how the API, alerts and messages print one. Code that tests drive with a
fake clock takes a ``clock: Callable[[], int]`` and defaults it to :func:`now_ms`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MIN_ISO_MS = -62_135_596_800_000
"""0001-01-01T00:00:00.000Z, the first instant :func:`iso_ms` can spell."""
MAX_ISO_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last instant :func:`iso_ms` can spell (four-digit years)."""


def now_ms() -> int:
    """Milliseconds since the epoch, by the wall clock (integer maths: no float rounding)."""
    return time.time_ns() // 1_000_000


def iso_ms(ms: int) -> str:
    """``1700000000123`` -> ``"2023-11-14T22:13:20.123Z"``: UTC, always three fractional digits.

    Exact for every millisecond (a float division would print some a millisecond early), and
    years before 1000 keep four digits. Raises ValueError outside ``MIN_ISO_MS..MAX_ISO_MS``.
    """
    if not MIN_ISO_MS <= ms <= MAX_ISO_MS:
        raise ValueError(f"{ms} ms is outside the years 1 to 9999")
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
