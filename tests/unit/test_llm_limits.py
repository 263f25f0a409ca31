"""LLM limits: sliding windows, daily budgets, breakers, backoff, Retry-After; on a manual clock."""

from __future__ import annotations

import random

import pytest

from signalsmith.analyze.llm.limits import (
    BreakerState,
    CircuitBreaker,
    DailyBudget,
    ManualClock,
    RateLimiter,
    backoff_delay,
    estimate_tokens,
    retry_after,
)

# The seed's provider limits (a Groq-style free tier).
SEED_RPM = 14
SEED_TPM = 950_000
# 2026-09-21 14:13:20 UTC, the ManualClock default.
START = 1_790_000_000.0
NEXT_MIDNIGHT = 1_790_035_200.0


class _TopOfRange(random.Random):
    """A 'random' source that always returns the top of the range, exposing the jitter ceiling."""

    def random(self) -> float:
        return 1.0


def _state(breaker: CircuitBreaker) -> BreakerState:
    # A plain read of the property; mypy would keep an earlier assert's narrowing across calls.
    return breaker.state


def test_rpm_window_holds_the_15th_request_until_the_first_leaves() -> None:
    """With rpm=14, the 15th request in a minute waits exactly until the first is 60 s old."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=14, tpm=None, clock=clock)
    for second in range(14):
        assert limiter.wait_for(1) == 0.0
        limiter.take(1)
        if second < 13:
            clock.advance(1)
    # First request at t=0, fourteenth at t=13: the window frees up at t=60.
    assert limiter.wait_for(1) == pytest.approx(47.0)
    clock.advance(46.5)
    assert limiter.wait_for(1) == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.wait_for(1) == 0.0
    limiter.take(1)
    # The 16th waits for the second request (t=1) to leave.
    assert limiter.wait_for(1) == pytest.approx(1.0)


def test_take_refuses_a_request_that_does_not_fit() -> None:
    """take() without waiting is a caller bug, not a silent overrun of the provider's limit."""
    limiter = RateLimiter(rpm=1, tpm=None, clock=ManualClock())
    limiter.take(1)
    with pytest.raises(RuntimeError, match="wait_for"):
        limiter.take(1)


def test_tpm_window_with_seed_limits() -> None:
    """At 950k TPM, three 300k requests fit; the fourth waits until the first leaves the window."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=SEED_RPM, tpm=SEED_TPM, clock=clock)
    for _ in range(3):
        assert limiter.wait_for(300_000) == 0.0
        limiter.take(300_000)
        clock.advance(10)
    # 900k in the window; 50k more fits now, 300k only once the t=0 request expires at t=60.
    assert limiter.wait_for(50_000) == 0.0
    assert limiter.wait_for(300_000) == pytest.approx(30.0)
    # 350k fits beside two remaining 300k requests (exactly 950k); 400k needs two gone, at t=70.
    assert limiter.wait_for(350_000) == pytest.approx(30.0)
    assert limiter.wait_for(400_000) == pytest.approx(40.0)


def test_oversize_request_fits_only_into_an_empty_window() -> None:
    """A request above the whole TPM is not refused forever: it goes once the window is empty."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=SEED_RPM, tpm=SEED_TPM, clock=clock)
    assert limiter.wait_for(1_200_000) == 0.0
    limiter.take(100)
    clock.advance(15)
    assert limiter.wait_for(1_200_000) == pytest.approx(45.0)
    clock.advance(45)
    assert limiter.wait_for(1_200_000) == 0.0
    limiter.take(1_200_000)
    # It fills the window to the brim: even one token waits until it leaves.
    assert limiter.wait_for(1) == pytest.approx(60.0)


def test_reconcile_lowers_and_raises_the_window_token_count() -> None:
    """Provider-reported usage replaces the estimate, freeing or consuming window capacity."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=SEED_RPM, tpm=SEED_TPM, clock=clock)
    reservation = limiter.take(900_000)
    assert limiter.wait_for(300_000) == pytest.approx(60.0)
    reservation.reconcile(100_000)
    assert reservation.tokens == 100_000
    assert limiter.wait_for(300_000) == 0.0
    reservation.reconcile(950_000)
    assert limiter.wait_for(1) == pytest.approx(60.0)


def test_cancel_frees_capacity_and_is_idempotent() -> None:
    """A call that never happened gives back its request slot and tokens, once."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=2, tpm=1_000, clock=clock)
    kept = limiter.take(400)
    cancelled = limiter.take(600)
    assert limiter.wait_for(1) == pytest.approx(60.0)
    cancelled.cancel()
    cancelled.cancel()
    assert limiter.wait_for(600) == 0.0
    assert limiter.wait_for(601) == pytest.approx(60.0)
    # Reconciling a cancelled reservation must not resurrect its tokens.
    cancelled.reconcile(1_000)
    assert limiter.wait_for(600) == 0.0
    assert kept.tokens == 400


def test_unsettled_counts_requests_whose_usage_is_not_known_yet() -> None:
    """Taken and not yet reconciled or cancelled, once each, even after leaving the window:
    while any is, an estimate in the window may still shrink."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=None, tpm=1_000, clock=clock)
    first, second, third = limiter.take(100), limiter.take(100), limiter.take(100)
    assert limiter.unsettled == 3
    first.reconcile(50)
    first.reconcile(60)
    second.cancel()
    second.reconcile(10)
    assert limiter.unsettled == 1
    clock.advance(61.0)
    assert limiter.room() == 1_000
    third.reconcile(80)
    assert limiter.unsettled == 0


def test_blocked_until_after_a_429() -> None:
    """After a 429 nothing fits before the deadline; an earlier one never shortens the block."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=SEED_RPM, tpm=SEED_TPM, clock=clock)
    clock.advance(5)
    limiter.blocked_until(clock.monotonic() + 30)
    limiter.blocked_until(clock.monotonic() + 10)
    assert limiter.wait_for(1) == pytest.approx(30.0)
    clock.advance(30)
    assert limiter.wait_for(1) == 0.0


def test_blocked_until_and_a_full_window_take_the_later_of_the_two() -> None:
    """A block ending before the window frees up still waits for the window."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=1, tpm=None, clock=clock)
    limiter.take(1)
    limiter.blocked_until(20)
    assert limiter.wait_for(1) == pytest.approx(60.0)
    limiter.blocked_until(90)
    assert limiter.wait_for(1) == pytest.approx(90.0)


async def test_acquire_sleeps_on_the_injected_clock() -> None:
    """acquire() sleeps exactly as long as wait_for says, on the clock it was given."""
    clock = ManualClock()
    limiter = RateLimiter(rpm=1, tpm=None, clock=clock)
    await limiter.acquire(1)
    clock.advance(12)
    await limiter.acquire(1)
    assert clock.sleeps == [pytest.approx(48.0)]
    assert clock.monotonic() == pytest.approx(60.0)


def test_unlimited_limiter_never_waits() -> None:
    """rpm=None and tpm=None mean no limit at all."""
    limiter = RateLimiter(rpm=None, tpm=None, clock=ManualClock())
    for _ in range(1_000):
        limiter.take(10**9)
    assert limiter.wait_for(10**9) == 0.0


def test_daily_budget_exhausts_and_resets_at_utc_midnight() -> None:
    """Spending the day's tokens exhausts the budget until the UTC date rolls over."""
    clock = ManualClock()
    budget = DailyBudget(tokens_per_day=1_000, clock=clock)
    budget.spend(700)
    assert budget.remaining() == 300
    assert not budget.exhausted()
    budget.spend(400)
    assert budget.remaining() == 0
    assert budget.exhausted()
    assert budget.resets_at() == NEXT_MIDNIGHT
    clock.advance(NEXT_MIDNIGHT - START - 1)
    assert budget.exhausted()
    clock.advance(1)
    assert not budget.exhausted()
    assert budget.remaining() == 1_000
    assert budget.resets_at() == NEXT_MIDNIGHT + 86_400


def test_unlimited_daily_budget_is_never_exhausted() -> None:
    """tokens_per_day=None reports no remaining count and never exhausts."""
    budget = DailyBudget(tokens_per_day=None, clock=ManualClock())
    budget.spend(10**12)
    assert budget.remaining() is None
    assert not budget.exhausted()


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    """N consecutive failures open the breaker; a success in between resets the count."""
    clock = ManualClock()
    breaker = CircuitBreaker(threshold=3, cooldown=30, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    breaker.failure()
    assert _state(breaker) is BreakerState.OPEN
    assert not breaker.allow()


def test_breaker_half_open_allows_exactly_one_probe_and_success_closes() -> None:
    """After the cooldown one caller probes, a concurrent second is refused, and success closes."""
    clock = ManualClock()
    breaker = CircuitBreaker(threshold=1, cooldown=30, clock=clock)
    breaker.failure()
    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()
    breaker.success()
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()


def test_breaker_failed_probe_reopens_for_a_full_cooldown() -> None:
    """A failed probe re-opens the breaker, and the cooldown starts again from the failure."""
    clock = ManualClock()
    breaker = CircuitBreaker(threshold=2, cooldown=30, clock=clock)
    breaker.failure()
    breaker.failure()
    clock.advance(30)
    assert breaker.allow()
    clock.advance(5)
    breaker.failure()
    assert _state(breaker) is BreakerState.OPEN
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_breaker_lost_probe_does_not_wedge_half_open() -> None:
    """A probe that never reports back is presumed lost after another cooldown."""
    clock = ManualClock()
    breaker = CircuitBreaker(threshold=1, cooldown=30, clock=clock)
    breaker.failure()
    clock.advance(30)
    assert breaker.allow()
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_backoff_stays_within_zero_and_cap() -> None:
    """Every delay lies in [0, cap], for small and huge attempt numbers alike."""
    rng = random.Random(7)
    for attempt in (*range(12), 5_000):
        for _ in range(50):
            assert 0.0 <= backoff_delay(attempt, base=0.5, cap=20.0, rng=rng) <= 20.0


def test_backoff_ceiling_doubles_until_the_cap() -> None:
    """The jitter ceiling is base * 2**attempt, growing per attempt until it hits the cap."""
    top = _TopOfRange()
    ceilings = [backoff_delay(attempt, base=0.5, cap=20.0, rng=top) for attempt in range(8)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    rng = random.Random(11)
    early = sum(backoff_delay(0, base=0.5, cap=20.0, rng=rng) for _ in range(500))
    late = sum(backoff_delay(4, base=0.5, cap=20.0, rng=rng) for _ in range(500))
    assert late > early * 4


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "Mon, 21 Sep 2026 14:15:20 GMT"}, 120.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250", "retry-after": "1"}, 0.25),
        ({"x-ratelimit-reset-tokens": "1m30.5s"}, 90.5),
        ({"x-ratelimit-reset-requests": "120ms"}, 0.12),
        ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "2h"}, 7200.0),
        ({"x-ratelimit-reset-tokens": "1s"}, 1.0),
        ({"x-ratelimit-reset-tokens": "45"}, 45.0),
        ({"X-RateLimit-Reset-Requests": "2s", "X-RateLimit-Reset-Tokens": "7.66s"}, 7.66),
        ({"retry-after": "soon", "x-ratelimit-reset-tokens": "3s"}, 3.0),
    ],
)
def test_retry_after_reads_every_header_form(headers: dict[str, str], expected: float) -> None:
    """Delta-seconds, HTTP-dates, milliseconds and Go durations, with names in any case."""
    assert retry_after(headers, START) == pytest.approx(expected)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json"},
        {"retry-after": "soon"},
        {"retry-after": ""},
        {"retry-after": "nan"},
        {"retry-after": "inf"},
        {"retry-after-ms": "lots"},
        {"x-ratelimit-reset-tokens": "1m30x"},
        {"x-ratelimit-reset-tokens": "s"},
        {"x-ratelimit-reset-requests": "1m 30s"},
        {"retry-after": "-5"},
        {"retry-after-ms": "-100"},
        {"x-ratelimit-reset-tokens": "-1s"},
        {"retry-after": "Mon, 21 Sep 2026 14:13:00 GMT"},
        {"retry-after": "90000"},
        {"x-ratelimit-reset-tokens": "25h"},
    ],
)
def test_retry_after_rejects_junk_negative_and_absurd_values(headers: dict[str, str]) -> None:
    """Unparseable, negative, past or over-a-day values yield None, leaving the caller's backoff."""
    assert retry_after(headers, START) is None


def test_estimate_tokens_follows_the_formula() -> None:
    """ceil(chars/4) over the message text, plus 4 per message, plus the output allowance."""
    messages = [{"role": "system", "content": "abcde"}, {"role": "user", "content": "xyz"}]
    assert estimate_tokens(messages, max_output_tokens=100) == 2 + 8 + 100
    assert estimate_tokens([], max_output_tokens=50) == 50


def test_estimate_tokens_is_monotonic_in_text_length() -> None:
    """Longer text never estimates fewer tokens."""
    estimates = [
        estimate_tokens([{"role": "user", "content": "x" * length}], max_output_tokens=64)
        for length in range(200)
    ]
    assert estimates == sorted(estimates)
    assert estimates[-1] > estimates[0]
