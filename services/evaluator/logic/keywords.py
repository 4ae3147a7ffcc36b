"""Keywords in a success ping's output or message (docs/semantics.md, "Keywords").

A heartbeat's :class:`~shared.rules.KeywordRule` says what a success really was, by the words
its job printed: only ``success`` pings are looked at (a failure stays a failure, a start a start,
whatever they say). Each keyword is looked for as a substring of the ping's output (the body, as
much as ingest kept of it: ``PINGURA_MAX_OUTPUT_BYTES``) and of its message, without regard to case:
both sides are case-folded (``str.casefold``), so ``error`` matches ``ERROR`` and ``Error``, and
``straße`` matches ``STRASSE``; nothing else is normalised (accents, spaces and punctuation count).

Failure keywords are looked for first, then success, then start keywords: a body that says both
"done" and "error" failed. Within a list, the first keyword (in the order configured) that
matches is the one recorded. A failure keyword makes the ping a failure (``fail``: one problem,
and a failed run for a failure rate), a start keyword a run's start; a success keyword keeps it
a success, and records the match. A success that matches none is kept as it is, ignored (history
only, as Healthchecks does), or counted a failure, as ``unmatched`` says.
"""

from __future__ import annotations

from functools import lru_cache

import msgspec

from services.evaluator.logic.findings import Finding
from shared.events import Ping, PingKind
from shared.rules import KeywordRule, Verdict

COUNTED_AS_FAILURE: tuple[Verdict, ...] = ("keyword_failure", "unmatched_failed")
"""The findings that made a success a failure: the failure's reason is theirs."""

Folded = tuple[tuple[str, str], ...]
"""Keywords as configured, each beside its case-folded form (empty ones left out)."""


def classify(rule: KeywordRule, ping: Ping) -> tuple[Ping | None, list[Finding]]:
    """What the ping is, by its words: the ping as it counts (its ``kind`` changed by a match; None:
    ignored, history only) and what was found (a finding per match, none when nothing changed)."""
    # Folded once per ping (the output can be 100 KiB; the keywords are a few dozen at most).
    texts = [
        (where, text.casefold())
        for where, text in (("output", ping.output), ("message", ping.message))
        if text
    ]
    failure, success, start = _folded(rule)
    if texts:
        found = _first(failure, texts)
        if found is not None:
            keyword, where = found
            why = f"job's {where} contains the failure keyword '{keyword}'"
            return _as(ping, "fail"), [Finding("keyword_failure", True, why, keyword=keyword)]
        found = _first(success, texts)
        if found is not None:
            keyword, where = found
            why = f"job's {where} contains the success keyword '{keyword}'"
            return ping, [Finding("keyword_success", False, why, keyword=keyword)]
        found = _first(start, texts)
        if found is not None:
            keyword, where = found
            why = f"job's {where} contains the start keyword '{keyword}': counted as a run's start"
            return _as(ping, "start"), [Finding("keyword_start", False, why, keyword=keyword)]
    if rule.unmatched == "ignore":
        return None, [Finding("ignored", False, "no keyword in the job's output or message: ignored")]
    if rule.unmatched == "fail":
        why = "no keyword in the job's output or message: counted as a failure"
        return _as(ping, "fail"), [Finding("unmatched_failed", True, why)]
    return ping, []


def _first(keywords: Folded, texts: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The first keyword found, as configured, and where: ``output`` (looked at first) or ``message``."""
    for keyword, folded in keywords:
        for where, text in texts:
            if folded in text:
                return keyword, where
    return None


@lru_cache(maxsize=1024)
def _folded(rule: KeywordRule) -> tuple[Folded, Folded, Folded]:
    """The rule's failure, success and start keywords, folded once per rule (rules are shared,
    hashable objects; the cache is bounded)."""

    def fold(keywords: tuple[str, ...]) -> Folded:
        return tuple((keyword, keyword.casefold()) for keyword in keywords if keyword.casefold())

    return fold(rule.failure), fold(rule.success), fold(rule.start)


def _as(ping: Ping, kind: PingKind) -> Ping:
    return msgspec.structs.replace(ping, kind=kind)
