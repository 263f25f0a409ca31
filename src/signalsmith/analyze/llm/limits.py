"""Pure, clock-injected rate limiting for LLM providers: sliding windows, daily budgets,
circuit breakers, jittered backoff and Retry-After parsing. No I/O; time comes from a Clock.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol

WINDOW_SECONDS = 60.0
DAY_SECONDS = 86_400
# Float sums like 0.1 + 60.0 - 0.1 can leave a wait of 1e-14 s; a caller that sleeps that long
# would not move the clock at all and spin, so anything this small counts as "now".
_EPSILON = 1e-9
# A server asking for more than a day is broken or hostile; retrying on our own schedule is safer.
_MAX_RETRY_AFTER = float(DAY_SECONDS)


class Clock(Protocol):
    """Monotonic time for intervals, wall time for UTC days and HTTP dates, and a sleep."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told; ``sleep`` advances it instantly and records the wait."""

    def __init__(self, start_wall: float = 1_790_000_000.0) -> None:
        self._start_wall = start_wall
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._elapsed

    def wall(self) -> float:
        return self._start_wall + self._elapsed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time only moves forward, got advance({seconds})")
        self._elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        # Yield like a real sleep would, so other tasks interleave as they would in production.
        await asyncio.sleep(0)


@dataclass(eq=False)
class _Entry:
    at: float
    tokens: int
    live: bool = True
    settled: bool = False  # reconciled with the provider's usage, or cancelled


class Reservation:
    """One request recorded in a RateLimiter's window; fix it up once the provider answers."""

    def __init__(self, limiter: RateLimiter, entry: _Entry) -> None:
        self._limiter = limiter
        self._entry = entry

    @property
    def tokens(self) -> int:
        return self._entry.tokens

    def reconcile(self, actual_tokens: int) -> None:
        """Replace the estimate with the provider-reported usage (no-op after cancel)."""
        _check_tokens(actual_tokens)
        self._limiter._settle(self._entry)
        if self._entry.live:
            self._limiter._retoken(self._entry, actual_tokens)

    def cancel(self) -> None:
        """The call never happened: give the request and its tokens back. Idempotent."""
        self._limiter._settle(self._entry)
        if self._entry.live:
            self._entry.live = False
            self._limiter._release(self._entry)


class RateLimiter:
    """Requests/min and tokens/min over a sliding 60 s window (either may be None = unlimited)."""

    def __init__(self, rpm: int | None, tpm: int | None, clock: Clock) -> None:
        if rpm is not None and rpm < 1:
            raise ValueError(f"rpm must be at least 1 or None, got {rpm}")
        if tpm is not None and tpm < 1:
            raise ValueError(f"tpm must be at least 1 or None, got {tpm}")
        self._rpm = rpm
        self._tpm = tpm
        self._clock = clock
        self._entries: deque[_Entry] = deque()
        self._in_window = 0  # the tokens of ``_entries``, kept as they change
        self._unsettled = 0  # requests taken whose usage is not known yet (still estimates)
        self._blocked_until = -math.inf

    def wait_for(self, tokens: int) -> float:
        """Seconds until a request estimated at ``tokens`` fits (0.0 = now).

        A request larger than the whole TPM fits only when the window holds no tokens.
        """
        _check_tokens(tokens)
        now = self._clock.monotonic()
        self._prune(now)
        start = max(now, self._blocked_until)
        # Entries leave the window oldest first, so try "after the k oldest have left" for k=0,1,..;
        # the first k that fits gives the earliest time.
        need = tokens if self._tpm is None else min(tokens, self._tpm)
        in_window = self._in_window
        count = len(self._entries)
        at = start
        for entry in self._entries:
            if self._fits(count, in_window, need):
                break
            at = max(start, entry.at + WINDOW_SECONDS)
            count -= 1
            in_window -= entry.tokens
        wait = at - now
        return 0.0 if wait < _EPSILON else wait

    def room(self) -> int | None:
        """Tokens the window has left now (None without a TPM limit)."""
        if self._tpm is None:
            return None
        self._prune(self._clock.monotonic())
        return max(0, self._tpm - self._in_window)

    @property
    def unsettled(self) -> int:
        """Requests taken and not yet reconciled or cancelled: their estimates may shrink."""
        return self._unsettled

    def take(self, tokens: int) -> Reservation:
        """Record a request now; only valid when ``wait_for(tokens) == 0``."""
        if self.wait_for(tokens) > 0:
            raise RuntimeError("RateLimiter.take called before wait_for(tokens) reached 0")
        entry = _Entry(self._clock.monotonic(), tokens)
        self._entries.append(entry)
        self._in_window += tokens
        self._unsettled += 1
        return Reservation(self, entry)

    async def acquire(self, tokens: int) -> Reservation:
        """Sleep on the clock until the request fits, then take it."""
        while (wait := self.wait_for(tokens)) > 0:
            await self._clock.sleep(wait)
        return self.take(tokens)

    def blocked_until(self, monotonic_deadline: float) -> None:
        """A 429 told us to back off: nothing fits before ``monotonic_deadline``.

        A later deadline extends the block; an earlier one never shortens it.
        """
        self._blocked_until = max(self._blocked_until, monotonic_deadline)

    def _fits(self, count: int, in_window: int, need: int) -> bool:
        rpm_ok = self._rpm is None or count + 1 <= self._rpm
        tpm_ok = self._tpm is None or in_window + need <= self._tpm
        return rpm_ok and tpm_ok

    def _prune(self, now: float) -> None:
        while self._entries and self._entries[0].at + WINDOW_SECONDS <= now + _EPSILON:
            entry = self._entries.popleft()
            entry.live = False
            self._in_window -= entry.tokens

    def _settle(self, entry: _Entry) -> None:
        if not entry.settled:
            entry.settled = True
            self._unsettled -= 1

    def _retoken(self, entry: _Entry, tokens: int) -> None:
        self._in_window += tokens - entry.tokens
        entry.tokens = tokens

    def _release(self, entry: _Entry) -> None:
        # The entry may already have aged out of the window; then there is nothing to give back.
        if entry in self._entries:
            self._entries.remove(entry)
            self._in_window -= entry.tokens


class DailyBudget:
    """Tokens per UTC day; exhausted until the UTC date rolls over."""

    def __init__(self, tokens_per_day: int | None, clock: Clock) -> None:
        if tokens_per_day is not None and tokens_per_day < 0:
            raise ValueError(f"tokens_per_day must be non-negative or None, got {tokens_per_day}")
        self._limit = tokens_per_day
        self._clock = clock
        self._day = self._today()
        self._spent = 0

    def remaining(self) -> int | None:
        """Tokens left today, never below 0; None when unlimited."""
        if self._limit is None:
            return None
        self._roll()
        return max(0, self._limit - self._spent)

    def exhausted(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining == 0

    def spend(self, tokens: int) -> None:
        """Count tokens against today; overspending is recorded, not refused (the call happened)."""
        _check_tokens(tokens)
        self._roll()
        self._spent += tokens

    def resets_at(self) -> float:
        """Wall time of the next UTC midnight."""
        return float((self._today() + 1) * DAY_SECONDS)

    def _today(self) -> int:
        # Unix time has no leap seconds, so whole days since the epoch are UTC dates.
        return math.floor(self._clock.wall() / DAY_SECONDS)

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            self._spent = 0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``cooldown`` s lets ONE probe through
    (half-open); success closes, failure re-opens.

    A probe that never reports back (its task was cancelled) is presumed lost after another
    ``cooldown``, and the next caller becomes the probe, so the breaker cannot wedge half-open.
    """

    def __init__(self, threshold: int, cooldown: float, clock: Clock) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        if cooldown < 0:
            raise ValueError(f"cooldown must be non-negative, got {cooldown}")
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock.monotonic() - self._opened_at < self._cooldown:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def allow(self) -> bool:
        """May a call go out now? While half-open, True for exactly one caller (the probe)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        now = self._clock.monotonic()
        if self._probe_at is not None and now - self._probe_at < self._cooldown:
            return False
        self._probe_at = now
        return True

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_at = None

    def failure(self) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open()
        elif state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self._threshold:
                self._open()
        # Failures while OPEN come from calls sent before it opened; they don't restart cooldown.

    def _open(self) -> None:
        self._opened_at = self._clock.monotonic()
        self._probe_at = None
        self._failures = 0


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt)); attempt from 0."""
    if attempt < 0:
        raise ValueError(f"attempt starts at 0, got {attempt}")
    if base < 0 or cap < 0:
        raise ValueError(f"base and cap must be non-negative, got base={base}, cap={cap}")
    # 2.0**1024 overflows; past ~1000 doublings every realistic base is already beyond any cap.
    ceiling = min(cap, base * 2.0 ** min(attempt, 1000))
    return rng.uniform(0.0, ceiling)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def retry_after(headers: Mapping[str, str], now_wall: float) -> float | None:
    """Seconds to wait according to a 429/503's headers, or None if nothing usable.

    Prefers ``retry-after-ms`` (millisecond precision, as the OpenAI SDK does), then
    ``retry-after`` (delta-seconds or HTTP-date), then the larger of ``x-ratelimit-reset-requests``
    and ``x-ratelimit-reset-tokens`` (Go-style durations like "6m0s" or bare seconds).
    A header that is junk, negative or over a day is skipped in favour of the next one.
    """
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    ms = _seconds(_number(lowered.get("retry-after-ms")), scale=1e-3)
    if ms is not None:
        return ms
    plain = lowered.get("retry-after")
    after = _seconds(_number(plain)) if plain is not None else None
    if after is None and plain is not None:
        after = _http_date_delay(plain, now_wall)
    if after is not None:
        return after
    resets = [
        _seconds(_duration(lowered.get(name)))
        for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
    ]
    usable = [reset for reset in resets if reset is not None]
    return max(usable) if usable else None


def _seconds(value: float | None, scale: float = 1.0) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    seconds = value * scale
    if seconds < 0 or seconds > _MAX_RETRY_AFTER:
        return None
    return seconds


def _number(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _duration(text: str | None) -> float | None:
    """Go ``time.Duration`` text ("1m30.5s", "120ms", "2h") or a bare number of seconds."""
    if not text:
        return None
    bare = _number(text)
    if bare is not None:
        return bare
    total = 0.0
    position = 0
    for part in _DURATION_PART.finditer(text):
        if part.start() != position:
            return None
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        position = part.end()
    return total if position == len(text) else None


def _http_date_delay(text: str, now_wall: float) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # HTTP-dates are always GMT; a naive result (from "-0000") means the same.
    if when.tzinfo is None:
        return _seconds(when.replace(tzinfo=UTC).timestamp() - now_wall)
    return _seconds(when.timestamp() - now_wall)


def estimate_tokens(messages: Sequence[Mapping[str, str]], max_output_tokens: int) -> int:
    """Cheap pre-call estimate: ceil(chars/4) + 4 per message + max_output_tokens.

    Counts every field but ``role``, whose cost the 4-per-message overhead already covers.
    Errs high on purpose: reconcile() corrects it, and an underestimate risks a 429.
    """
    if max_output_tokens < 0:
        raise ValueError(f"max_output_tokens must be non-negative, got {max_output_tokens}")
    chars = sum(
        len(value) for message in messages for key, value in message.items() if key != "role"
    )
    return -(-chars // 4) + 4 * len(messages) + max_output_tokens


def _check_tokens(tokens: int) -> None:
    if tokens < 0:
        raise ValueError(f"token counts are non-negative, got {tokens}")
