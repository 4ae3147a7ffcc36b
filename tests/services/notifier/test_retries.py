"""The retry schedule: exponential backoff with jitter, Retry-After, a window from the first try."""

import pytest

from services.notifier.retries import RetryPolicy, TryResult

POLICY = RetryPolicy(initial_s=1.0, max_delay_s=300.0, max_age_s=3600.0, jitter=0.2)
T0 = 1_700_000_000_000
TRANSIENT = TryResult(ok=False, status_code=503, error="receiver answered HTTP 503")


def test_a_success_is_delivered():
    assert (
        POLICY.decide(TryResult(ok=True), attempt=1, first_attempt_ms=T0, now_ms=T0, rand=0.5).outcome
        == "delivered"
    )


def test_a_permanent_failure_fails_at_once_whatever_the_time_left():
    decision = POLICY.decide(TryResult(ok=False, permanent=True, error="HTTP 400"), attempt=1, first_attempt_ms=T0,
                             now_ms=T0, rand=0.5)  # fmt: skip

    assert (decision.outcome, decision.next_attempt_ms, decision.error) == ("failed", None, "HTTP 400")


def test_the_first_retry_comes_after_about_a_second_then_each_wait_doubles_up_to_the_cap():
    waits_s = [POLICY.backoff_s(attempt, rand=0.5) for attempt in range(1, 12)]

    assert waits_s == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


@pytest.mark.parametrize(("rand", "wait_s"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_jitter_spreads_each_wait_by_up_to_a_fifth(rand, wait_s):
    assert POLICY.backoff_s(1, rand) == pytest.approx(wait_s, abs=1e-5)


def test_a_transient_failure_is_retried_after_the_backoff():
    decision = POLICY.decide(TRANSIENT, attempt=3, first_attempt_ms=T0, now_ms=T0 + 10_000, rand=0.5)

    assert (decision.outcome, decision.next_attempt_ms) == ("retrying", T0 + 10_000 + 4000)
    assert "503" in decision.error


def test_retry_after_wins_when_it_asks_for_longer():
    asked = TryResult(ok=False, status_code=429, retry_after_s=2.0)

    decision = POLICY.decide(asked, attempt=1, first_attempt_ms=T0, now_ms=T0, rand=0.999)

    assert decision.next_attempt_ms == T0 + 2000


def test_the_last_try_is_made_at_the_end_of_the_window():
    decision = POLICY.decide(TRANSIENT, attempt=12, first_attempt_ms=T0, now_ms=T0 + 3_500_000, rand=0.5)

    assert (decision.outcome, decision.next_attempt_ms) == ("retrying", T0 + 3_600_000)


def test_it_gives_up_once_the_window_is_over():
    decision = POLICY.decide(TRANSIENT, attempt=20, first_attempt_ms=T0, now_ms=T0 + 3_600_000, rand=0.5)

    assert decision.outcome == "failed" and "gave up after 20 tries" in decision.error


def test_a_retry_after_beyond_the_window_fails_rather_than_knock_early():
    asked = TryResult(ok=False, status_code=429, error="HTTP 429", retry_after_s=7200.0)

    decision = POLICY.decide(asked, attempt=1, first_attempt_ms=T0, now_ms=T0, rand=0.5)

    assert decision.outcome == "failed" and "Retry-After 7200 s" in decision.error
