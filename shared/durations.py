"""Durations as people write them: ``12.5s``, ``350ms``, ``1m30s``, ``2h``, ``1d``, or bare seconds."""

from __future__ import annotations

import math
import re

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)")
_MAX_S = 400 * 86400.0


def parse_duration_s(text: str) -> float:
    """Seconds in ``text``; raises ValueError with a one-line reason."""
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise ValueError("empty duration")
    try:
        seconds = float(raw)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS_S[match.group(2)]
            pos = match.end()
        if pos != len(raw) or pos == 0:
            raise ValueError(f"cannot read duration {text[:40]!r} (use e.g. 12.5s, 350ms, 1m30s, 2h)") from None
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"duration {text[:40]!r} is not a non-negative number")
    if seconds > _MAX_S:
        raise ValueError(f"duration {text[:40]!r} is longer than 400 days")
    return seconds


def format_duration_s(seconds: float) -> str:
    """Short human form, for alert reasons: ``90`` -> ``1m30s``."""
    seconds = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)
