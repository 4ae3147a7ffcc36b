"""Keywords in a success ping's output or message (docs/semantics.md, "Keywords"). SKELETON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.events import Ping
from shared.rules import KeywordRule

if TYPE_CHECKING:
    from services.evaluator.logic.verdicts import Finding


def classify(rule: KeywordRule, ping: Ping) -> tuple[Ping | None, list[Finding]]:
    """What the ping is, by its words: the ping as it counts (its ``kind`` changed by a match; None:
    ignored, history only) and what was found (a finding per match, none when nothing changed)."""
    return ping, []
