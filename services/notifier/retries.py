"""When a failed delivery is tried again, and when it is given up. Pure: no I/O, no clock
reads, no randomness of its own (the caller passes the clock and a random number).

- **Transient failures** (timeouts, connection errors, 5xx, 408, 429) are retried with
  exponential backoff: ``initial_s`` after the first try, then twice as long each time up
  to ``max_delay_s``, each wait stretched or shrunk by up to ``jitter`` (±20 %) so that the
  alerts of a burst do not all come back at the same moment.
- **Retry-After** wins when it asks for longer: the next try is never earlier than the
  receiver said.
- **Max age**: retries stop ``max_age_s`` after the *first* try (which survives restarts, see
  :class:`~shared.events.DeliveryAttempt`). When the backoff would overshoot, one last try is
  made at the end of the window; when ``Retry-After`` alone points past it, the delivery
  fails at once rather than knock early.
- **Permanent failures** (other 4xx, a refused address, a bad config) fail at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.events import DeliveryOutcome
from shared.settings import Settings


@dataclass(frozen=True)
class TryResult:
    """What one try of one message came to (see :func:`services.notifier.sending.try_send`)."""

    ok: bool
    permanent: bool = False
    """Only for a failure: trying again will not help."""
    status_code: int | None = None
    error: str = ""
    latency_ms: int = 0
    retry_after_s: float | None = None
    """How long the receiver asked us to wait (``Retry-After``), when it said."""


@dataclass(frozen=True)
class Decision:
    outcome: DeliveryOutcome
    next_attempt_ms: int | None = None
    """With ``retrying``: when the next try is due (epoch ms)."""
    error: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 1.0
    max_delay_s: float = 300.0
    max_age_s: float = 3600.0
    jitter: float = 0.2

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            initial_s=settings.delivery_retry_initial_s,
            max_delay_s=settings.delivery_retry_max_delay_s,
            max_age_s=settings.delivery_max_age_s,
        )

    def backoff_s(self, attempt: int, rand: float) -> float:
        """The wait after failed try number ``attempt`` (1-based); ``rand`` in [0, 1)."""
        base_s = min(self.max_delay_s, self.initial_s * 2 ** min(attempt - 1, 60))
        return base_s * (1 - self.jitter + 2 * self.jitter * rand)

    def decide(
        self, result: TryResult, *, attempt: int, first_attempt_ms: int, now_ms: int, rand: float
    ) -> Decision:
        """What follows try number ``attempt``, which ended at ``now_ms`` with ``result``."""
        if result.ok:
            return Decision("delivered")
        if result.permanent:
            return Decision("failed", error=result.error)
        deadline_ms = first_attempt_ms + math.ceil(self.max_age_s * 1000)
        if result.retry_after_s is not None and now_ms + math.ceil(result.retry_after_s * 1000) > deadline_ms:
            return Decision("failed", error=f"{result.error} (gave up: Retry-After {result.retry_after_s:g} s "
                                            f"is past the {self.max_age_s:g} s retry window)")  # fmt: skip
        wait_s = max(self.backoff_s(attempt, rand), result.retry_after_s or 0.0)
        due_ms = min(now_ms + math.ceil(wait_s * 1000), deadline_ms)
        if due_ms <= now_ms:
            return Decision(
                "failed", error=f"{result.error} (gave up after {attempt} tries in {self.max_age_s:g} s)"
            )
        return Decision("retrying", next_attempt_ms=due_ms, error=result.error)
