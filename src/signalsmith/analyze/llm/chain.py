"""The provider chain: try each provider in priority order within its rate limits, budget,
in-flight bound and circuit breaker; honour Retry-After; retry 5xx/timeouts with jittered
backoff; fall back at once when a wait would be too long or a provider rejects the request.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from signalsmith.analyze.llm.limits import (
    BreakerState,
    CircuitBreaker,
    Clock,
    DailyBudget,
    RateLimiter,
    backoff_delay,
    retry_after,
)
from signalsmith.analyze.llm.openai_compat import Completion, OpenAICompatClient
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.domain import ModelCall
from signalsmith.errors import ProviderError, ProvidersFailed
from signalsmith.observe.metrics import Metrics
from signalsmith.redact import redact_url

Messages = Sequence[Mapping[str, str]]
FormatFor = Callable[[ProviderConfig], Mapping[str, object] | None]
_BACKOFF_BASE_S = 0.25
# Statuses that can mean the provider refused what this one request asked for (a batch's size,
# its reply room), not that the provider cannot be used: a batch refused so costs no cooldown.
_REQUEST_REFUSED = frozenset({400, 413, 422})


@dataclass
class ProviderSlot:
    """One provider and everything that decides whether it may be called now."""

    client: OpenAICompatClient
    limiter: RateLimiter
    budget: DailyBudget
    breaker: CircuitBreaker
    gate: asyncio.Semaphore
    rejected_cooldown: float = 30.0  # a rejected provider is retried after this long
    failing_until: float = 0.0  # after a rejection (bad key, unknown model): skip until then
    failing_reason: str = ""
    limited_until: float = 0.0  # after a 429: for /health
    paced_until: float = 0.0  # the provider's RPM/TPM spread evenly: when the next request is due
    counts: dict[str, int] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost_usd: float = 0.0

    @property
    def config(self) -> ProviderConfig:
        return self.client.config

    def count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def pace_s(self, tokens: int) -> float:
        """The share of a minute's quota one request of ``tokens`` takes: the time after it
        before the next request keeps to RPM and TPM evenly (0 without limits)."""
        rpm, tpm = self.config.rpm, self.config.tpm
        by_requests = 60.0 / rpm if rpm else 0.0
        by_tokens = 60.0 * tokens / tpm if tpm else 0.0
        return max(by_requests, by_tokens)


@dataclass(frozen=True, slots=True)
class ChainAnswer:
    """A completion and who gave it, with what failed on the way and what it cost. An answer
    taken from a batched request (``batch_size`` > 1) carries this question's share of it."""

    completion: Completion
    provider: ProviderConfig
    attempts: int
    errors: tuple[str, ...]
    cost_usd: float = 0.0
    batch_size: int = 1
    batch_method: str = ""  # how the batched reply was read ("" when asked alone)

    def as_call(self) -> ModelCall:
        """What this answer cost (the question's share, when batched), as the record of a call."""
        usage = self.completion
        return ModelCall(
            provider=self.provider.name,
            model=usage.model,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            cost_usd=self.cost_usd,
            tokens_cached=usage.tokens_cached,
        )


@dataclass(frozen=True, slots=True)
class _Request:
    messages: Messages
    tokens: int  # the estimate the rate limits are checked against
    max_tokens: int  # at most each provider's max_output_tokens when sent
    batched: bool = False  # several questions: a refusal may be the batch's, not the provider's


class LLMChain:
    """Calls providers in order until one answers; raises ProvidersFailed when none can."""

    def __init__(
        self,
        slots: Sequence[ProviderSlot],
        *,
        clock: Clock,
        metrics: Metrics,
        max_wait_s: float,
        attempts: int,
        max_tokens: int,
        temperature: float,
        rng: random.Random | None = None,
    ) -> None:
        self.slots = tuple(slots)
        self._clock = clock
        self._metrics = metrics
        self._calls = cache(metrics.llm_calls.labels)  # a series' lookup, once per label set
        self._latency = cache(metrics.llm_latency.labels)
        self._max_wait = max_wait_s
        self._attempts = attempts
        self._max_tokens = max_tokens
        self._reply_cap = min((slot.config.max_output_tokens for slot in self.slots), default=None)
        self._temperature = temperature
        self._rng = rng or random.Random()
        self._released = asyncio.Event()  # set whenever a call ends: capacity may be free

    @property
    def providers(self) -> tuple[ProviderConfig, ...]:
        return tuple(slot.config for slot in self.slots)

    @property
    def max_tokens(self) -> int:
        """The reply room of a request without its own: LLM_MAX_OUTPUT_TOKENS, within
        ``reply_cap`` (what the rate-limit estimates reserve)."""
        return (
            self._max_tokens if self._reply_cap is None else min(self._max_tokens, self._reply_cap)
        )

    @property
    def reply_cap(self) -> int | None:
        """The smallest <NAME>_MAX_OUTPUT_TOKENS: the most reply room any request may have
        (None without providers)."""
        return self._reply_cap

    async def complete(
        self,
        messages: Messages,
        format_for: FormatFor,
        tokens: int,
        max_tokens: int | None = None,
        *,
        batched: bool = False,
    ) -> ChainAnswer:
        """The first answer any provider gives, trying them in priority order; ``max_tokens``
        overrides LLM_MAX_OUTPUT_TOKENS for this request (a batch needs room for every item),
        and each provider is asked for at most its own <NAME>_MAX_OUTPUT_TOKENS. A ``batched``
        request a provider refuses (400, 413, 422) falls back without putting it in cooldown:
        the refusal may be the batch's size; ProvidersFailed.batch_refused tells the caller."""
        errors: list[str] = []
        refused = False  # a batched request some provider refused as a request (its size)
        request = _Request(messages, tokens, max_tokens or self._max_tokens, batched)
        for slot in self.slots:
            skip = self.unavailable(slot)
            if skip:
                errors.append(f"{slot.config.name}: skipped, {skip}")
                continue
            try:
                completion, attempts = await self._try(
                    slot, request, format_for(slot.config), errors
                )
            except ProviderError as exc:
                refused = refused or (batched and _refuses_the_request(exc))
                self._metrics.llm_fallbacks.labels(slot.config.name).inc()
                continue
            cost = slot.config.cost(
                completion.tokens_in, completion.tokens_out, completion.tokens_cached
            )
            return ChainAnswer(completion, slot.config, attempts, tuple(errors), cost)
        raise ProvidersFailed(errors or ["no provider configured"], batch_refused=refused)

    def ready_in(self, tokens: int, *, patient: bool = True) -> float | None:
        """Seconds until a request of ``tokens`` would go out at once and keep to its provider's
        pace (0.0: now); None while the provider it would go to has every call slot in use.
        Providers the chain would skip or fall back from are passed over as ``complete`` does;
        when none is left, 0.0: asking now fails at once, which is the answer (None instead
        while a call in flight may give back tokens its estimate holds). Not ``patient``:
        a pace longer than LLM_MAX_WAIT_S is not waited for (the limits still are)."""
        now = self._clock.monotonic()
        settling = False
        for slot in self.slots:
            if self.unavailable(slot):
                continue
            limit = slot.limiter.wait_for(tokens)
            if limit > self._max_wait:
                settling = settling or slot.limiter.unsettled > 0
                continue
            if slot.gate.locked():
                return None
            pace = slot.paced_until - now
            if not patient and pace > self._max_wait:
                pace = 0.0
            return max(limit, pace, 0.0)
        # Too long for every provider: final unless a call in flight still holds an estimate,
        # which its reported usage may shrink (then wait for it to end, as for a call slot).
        return None if settling else 0.0

    def waits_too_long(self, tokens: int) -> bool:
        """True when some provider could be tried but none would take a request of ``tokens``
        within LLM_MAX_WAIT_S of its own rate limits, and no call in flight there may give
        estimated tokens back: asking now would fail at once."""
        usable = [slot for slot in self.slots if not self.unavailable(slot)]
        return bool(usable) and all(
            slot.limiter.wait_for(tokens) > self._max_wait and not slot.limiter.unsettled
            for slot in usable
        )

    def token_room(self) -> int | None:
        """Tokens left in the TPM window of the provider a request would go to now (None: no
        TPM limit there, or no provider left)."""
        for slot in self.slots:
            if not self.unavailable(slot):
                return slot.limiter.room()
        return None

    def watch_releases(self) -> asyncio.Event:
        """Cleared now, set when the next call ends: clear, check ``ready_in``, then wait."""
        self._released.clear()
        return self._released

    def unavailable(self, slot: ProviderSlot) -> str:
        """Why the provider must be skipped right now, or "" when it may be tried."""
        if slot.budget.exhausted():
            return "daily token budget used up"
        if self._clock.monotonic() < slot.failing_until:
            return f"failing: {slot.failing_reason}"
        if slot.breaker.state is BreakerState.OPEN:
            return "circuit open after repeated failures"
        return ""

    async def _try(
        self,
        slot: ProviderSlot,
        request: _Request,
        response_format: Mapping[str, object] | None,
        errors: list[str],
    ) -> tuple[Completion, int]:
        for attempt in range(self._attempts):
            try:
                return await self._call(slot, request, response_format), attempt + 1
            except ProviderError as exc:
                errors.append(f"{slot.config.name}: {exc}")
                delay = self._after_failure(slot, exc, attempt, batched=request.batched)
                await self._clock.sleep(delay)
        raise ProviderError("server", f"gave up after {self._attempts} attempts")

    async def _admit(self, slot: ProviderSlot, tokens: int) -> None:
        """Wait (boundedly) for rate-limit capacity, then ask the circuit breaker."""
        while (wait := slot.limiter.wait_for(tokens)) > 0:
            if wait > self._max_wait:
                slot.count("local_limit")
                raise ProviderError("rate_limited", f"own rate limit: would wait {wait:.1f}s")
            await self._clock.sleep(wait)
        if not slot.breaker.allow():
            raise ProviderError("busy", "circuit open")

    async def _call(
        self,
        slot: ProviderSlot,
        request: _Request,
        response_format: Mapping[str, object] | None,
    ) -> Completion:
        name, tokens = slot.config.name, request.tokens
        async with slot.gate:
            # admitted inside the gate, with no await between the last check and take():
            # a 429 seen by another call while this one queued must count
            await self._admit(slot, tokens)
            reservation = slot.limiter.take(tokens)
            sent_at = self._clock.monotonic()
            slot.paced_until = sent_at + slot.pace_s(tokens)
            try:
                completion = await slot.client.complete(
                    request.messages,
                    response_format=response_format,
                    max_tokens=min(request.max_tokens, slot.config.max_output_tokens),
                    temperature=self._temperature,
                )
            except ProviderError as exc:
                reservation.cancel()
                slot.count(exc.kind)
                self._calls(name, exc.kind).inc()
                raise
            except BaseException:  # cancelled mid-call: it may be billed; the estimate stands
                reservation.reconcile(tokens)
                raise
            finally:
                self._released.set()
        used = completion.tokens_in + completion.tokens_out
        reservation.reconcile(used or tokens)
        if used:  # the pace of what was really spent, not of the estimate
            slot.paced_until = sent_at + slot.pace_s(used)
        slot.budget.spend(used)
        slot.breaker.success()
        slot.count("ok")
        slot.tokens_in += completion.tokens_in
        slot.tokens_out += completion.tokens_out
        slot.tokens_cached += completion.tokens_cached
        slot.cost_usd += slot.config.cost(
            completion.tokens_in, completion.tokens_out, completion.tokens_cached
        )
        self._calls(name, "ok").inc()
        self._latency(name).observe(completion.latency_ms / 1000)
        return completion

    def _after_failure(
        self, slot: ProviderSlot, exc: ProviderError, attempt: int, *, batched: bool = False
    ) -> float:
        """How long to wait before trying this provider again; raises to fall back now."""
        if exc.kind == "rate_limited":
            return self._rate_limited(slot, exc, attempt)
        if batched and _refuses_the_request(exc):
            raise exc  # the batch, not the provider: its questions are asked again alone
        if exc.kind == "rejected":
            slot.failing_until = self._clock.monotonic() + slot.rejected_cooldown
            slot.failing_reason = str(exc)
            raise exc
        if exc.kind == "busy":
            raise exc
        slot.breaker.failure()
        if attempt + 1 >= self._attempts:
            raise exc
        return backoff_delay(attempt, base=_BACKOFF_BASE_S, cap=self._max_wait, rng=self._rng)

    def _rate_limited(self, slot: ProviderSlot, exc: ProviderError, attempt: int) -> float:
        if not exc.headers:  # our own limit said no: the wait is already known to be too long
            raise exc
        wait = retry_after(exc.headers, self._clock.wall())
        if wait is None:
            wait = backoff_delay(attempt, base=1.0, cap=self._max_wait, rng=self._rng)
        until = self._clock.monotonic() + wait
        slot.limiter.blocked_until(until)
        slot.limited_until = until
        if wait > self._max_wait or attempt + 1 >= self._attempts:
            raise exc
        return wait


def _refuses_the_request(exc: ProviderError) -> bool:
    return exc.kind == "rejected" and exc.status in _REQUEST_REFUSED


def slot_health(slot: ProviderSlot, chain: LLMChain, now: float) -> dict[str, object]:
    """The provider's state for /health; never a key, not even one inside the base URL."""
    reason = chain.unavailable(slot)
    if slot.budget.exhausted():
        state = "budget_exhausted"
    elif now < slot.failing_until:
        state = "failing"
    elif reason:
        state = "circuit_open"
    elif now < slot.limited_until:
        state = "rate_limited"
    else:
        state = "ok"
    return {
        "name": slot.config.name,
        "model": slot.config.model,
        "base_url": redact_url(slot.config.base_url),
        "state": state,
        "reason": reason or None,
        "breaker": slot.breaker.state.value,
        "in_flight_limit": slot.config.max_in_flight,
        "budget_remaining": slot.budget.remaining(),
        "calls": dict(slot.counts),
        "tokens": {
            "input": slot.tokens_in,
            "output": slot.tokens_out,
            "cached": slot.tokens_cached,
        },
        "cost_usd": round(slot.cost_usd, 6),
    }
