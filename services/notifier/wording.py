"""Texts of alerts as people read them: times, the evaluator's reasons as sentences, why an
alert was held, which dependents a heartbeat holds. Pure functions of their arguments; the
messages (:mod:`services.notifier.messages`) are built from these.

The evaluator's ``reason`` is machine-made text, e.g.
``"2 consecutive problem(s) (limit 2); latest: no ping by 2023-11-14T22:13:20.123Z
(expected at 2023-11-14T22:08:20.123Z)"``; :func:`explain` turns the shapes it knows into
a sentence and passes anything else through cleaned (one line, bounded).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from shared.clock import iso_ms
from shared.durations import human_duration
from shared.events import MUTED_FOREVER_MS, Alert

REASON_MAX_CHARS = 300
"""A job's failure message is the user's text: bounded so it cannot swamp a message."""


def human_time(at_ms: int) -> str:
    """``1700000000123`` -> ``"2023-11-14 22:13:20 UTC"``."""
    return datetime.fromtimestamp(at_ms // 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# the reason -------------------------------------------------------------------------------
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z"
_GOING_DOWN = re.compile(r"(\d+) consecutive problem\(s\) \(limit (\d+)\); latest: (.*)", re.DOTALL)
_MISSED = re.compile(rf"no ping by ({_ISO}) \(expected at ({_ISO})\)")
_FAILED = re.compile(rf"job reported failure(?: \(exit code (\d+)\))? at ({_ISO})(?:: (.*))?", re.DOTALL)
_STILL_RUNNING = re.compile(rf"started at ({_ISO}), still running after (\S+)")
_RECOVERED = "ping received after being down"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _from_iso(text: str) -> int:
    moment = datetime.strptime(text.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000


def one_line(text: str, limit: int = REASON_MAX_CHARS) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def explain(reason: str) -> str:
    """The evaluator's reason as a sentence (capitalized, no final full stop, one line)."""
    why = reason.strip()
    streak = ""
    if (going_down := _GOING_DOWN.fullmatch(why)) is not None:
        problems, why = int(going_down[1]), going_down[3]
        if problems > 1:
            streak = f"; {problems} problems in a row"
    if (missed := _MISSED.fullmatch(why)) is not None:
        why = f"no check-in by {human_time(_from_iso(missed[1]))} (expected at {human_time(_from_iso(missed[2]))})"
    elif (failed := _FAILED.fullmatch(why)) is not None:
        code = f" with exit code {failed[1]}" if failed[1] is not None else ""
        said = f': "{one_line(failed[3], 200)}"' if failed[3] else ""
        why = f"the job reported failure{code} at {human_time(_from_iso(failed[2]))}{said}"
    elif (running := _STILL_RUNNING.fullmatch(why)) is not None:
        why = f"a run started at {human_time(_from_iso(running[1]))} is still running after {running[2]}"
    elif why == _RECOVERED:
        why = "a successful check-in arrived"
    else:  # the rules' reasons (a fleet short, a run too fast, ...) date themselves in ISO: read as times
        why = re.sub(_ISO, lambda found: human_time(_from_iso(found[0])), why)
    why = one_line(why + streak).rstrip(".")
    return why[:1].upper() + why[1:] if why else "No reason given"


_HELD_PHRASES = (
    ("maintenance", "held during"), ("ingest", "held during an"),
    ("muted", "held while"), ("flapping", "held while"),
)  # fmt: skip
"""How a hold's ``why`` (``services/evaluator/logic/holds.py``) reads after "held"."""


def held_text(held: str) -> str:
    """Why a released alert was held, for people: ``"maintenance window 'db' until
    2023-11-14T22:13:20.000Z"`` -> ``"held during maintenance window 'db' until 2023-11-14
    22:13:20 UTC"`` (see ``services/evaluator/logic/holds.py``, ``Hold.why``)."""
    why = one_line(held)
    if why.startswith(f"muted until {iso_ms(MUTED_FOREVER_MS)}"):
        return "held while muted"
    why = re.sub(_ISO, lambda m: human_time(_from_iso(m[0])), why)
    if why.startswith("dependency ") and why.endswith(" down"):
        names = why.removeprefix("dependency ").removesuffix(" down")
        several = "', '" in names or " more" in names
        which, were = ("dependencies", "were") if several else ("dependency", "was")
        return f"held while {which} {names} {were} down"
    for start, phrase in _HELD_PHRASES:
        if why.startswith(start):
            return f"{phrase} {why}"
    return f"held: {why}"


_FLAPPING = re.compile(
    r"flapping: (\d+) changes between down and up within (\d+) s; alerts held until stable for (\d+) s"
)


def flapping_why(reason: str) -> str:
    """``"5 changes between down and up within 1 h; ..."``: the evaluator's reason, readable."""
    found = _FLAPPING.fullmatch(reason.strip())
    if found is None:
        return explain(reason)
    within, stable = (human_duration(int(found[n]) * 1000) for n in (2, 3))
    return (
        f"{found[1]} changes between down and up within {within}; its alerts are held until it "
        f"has been stable for {stable}"
    )


def dependents(alert: Alert) -> tuple[int, str] | None:
    """``(3, "a, b, c")``: how many heartbeats this one's being down holds, and which (named
    up to what the alert lists, then "and N more")."""
    names = [name for name in (one_line(n, 100) for n in alert.dependents_held) if name]
    count = max(alert.dependents_held_count, len(names))
    if not count:
        return None
    more = count - len(names)
    return count, ", ".join(names) + (f" and {more} more" if names and more else "")


def instances_text(alert: Alert) -> str:
    """``"37 of 40 reported; missing: web-3, web-17, web-22"``: a fleet's alert, for people."""
    reported = alert.instances_reported if alert.instances_reported is not None else 0
    text = f"{reported} of {alert.instances_expected} reported"
    names = [name for name in (one_line(n, 64) for n in alert.missing_instances) if name]
    if not names:
        return text
    more = (alert.instances_expected or 0) - reported - len(names)
    return f"{text}; missing: " + ", ".join(names) + (f" and {more} more" if more > 0 else "")
