"""Durations as people write them: ``12.5s``, ``350ms``, ``1m30s``, ``2h``, ``1d``, or bare seconds;
and as people read them in alerts (:func:`human_duration`: ``1 h 5 min``).

Only ASCII digits count: ``float()`` and ``\\d`` would also take Arabic-Indic digits,
underscores, ``inf`` and ``nan``, none of which anyone means as a duration.
"""

from __future__ import annotations

import math
import re

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Bare seconds may carry an exponent: a JSON number such as 1e-05 arrives spelled that way.
_SECONDS = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|s|m|h|d)")
_MAX_S = 400 * 86400.0


def parse_duration_s(text: str) -> float:
    """Seconds in ``text``; raises ValueError with a one-line reason."""
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise ValueError("empty duration (write e.g. 30s, 5m, 1h, 1d, or seconds)")
    if not raw.isascii():
        raise ValueError(f"cannot read duration {text[:40]!r} (use e.g. 12.5s, 350ms, 1m30s, 2h)")
    if _SECONDS.fullmatch(raw):
        seconds = float(raw)  # a huge exponent gives inf, refused below
    else:
        pos, seconds = 0, 0.0
        for match in _PART.finditer(raw):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS_S[match.group(2)]
            pos = match.end()
        if pos != len(raw) or pos == 0:
            raise ValueError(f"cannot read duration {text[:40]!r} (use e.g. 12.5s, 350ms, 1m30s, 2h)")
    if math.isnan(seconds) or math.isinf(seconds) or seconds > _MAX_S:
        raise ValueError(f"duration {text[:40]!r} is longer than 400 days")
    return seconds


def human_duration(duration_ms: int) -> str:
    """``3_900_000`` -> ``"1 h 5 min"``: the two largest units, smaller ones dropped."""
    seconds = max(0, duration_ms) // 1000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "day" if days == 1 else "days"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    first = next((i for i, (n, _) in enumerate(parts) if n), None)
    if first is None:
        return "0 s"
    return " ".join(f"{n} {unit}" for n, unit in parts[first : first + 2] if n)
