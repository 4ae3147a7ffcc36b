"""What one rule of ``shared.rules`` found in one run (:class:`Finding`): its own module, so the
modules that judge (``run_times``, ``cadence``, ``keywords``) and ``verdicts``, which gathers
their findings, can all import it without importing each other."""

from __future__ import annotations

from typing import NamedTuple

from shared.rules import Verdict


class Finding(NamedTuple):
    verdict: Verdict
    alert: bool
    """A problem (else only a mark on the run)."""
    reason: str
    """For people, one line: the status reason and the alert's text when it alerts."""
    duration_ms: int | None = None
    usual_ms: tuple[float, float] | None = None
    """The usual range (low, high) the run was judged against."""
    keyword: str | None = None


__all__ = ["Finding"]
