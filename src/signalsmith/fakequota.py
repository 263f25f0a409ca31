"""The fake LLM's per-key provider state: sliding 60-second windows of requests and tokens (RPM
and TPM quotas) and the system prompts each key has sent (prompt-prefix caching).

Keys are kept only as a hash; the API key itself is never stored.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "CACHED_PROMPTS_KEPT",
    "WINDOW_S",
    "Admission",
    "Quotas",
    "Ticket",
    "Usage",
    "decimal_seconds",
    "duration",
    "key_id",
    "tokens_of",
]

WINDOW_S: Final = 60.0  # an entry counts against the quota for this long after it entered
CACHED_PROMPTS_KEPT: Final = 64  # distinct system prompts remembered per key
KEYS_KEPT: Final = 1024  # keys whose state is kept; the least recently used is forgotten

Reason = Literal["requests", "tokens", "too_large"]


def key_id(token: str) -> str:
    """A short stable name for an API key that does not reveal it."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def tokens_of(chars: int) -> int:
    """The fake's token count for a text of ``chars`` characters."""
    return math.ceil(chars / 4)


def duration(seconds: float) -> str:
    """Go-style duration text as OpenAI writes reset headers: "1s", "1.5s", "250ms"."""
    millis = math.ceil(seconds * 1000)
    if millis <= 0:
        return "0s"
    return f"{millis}ms" if millis < 1000 else decimal_seconds(millis / 1000) + "s"


def decimal_seconds(seconds: float) -> str:
    """Decimal seconds rounded up to the millisecond, so waiting that long is always enough."""
    return f"{math.ceil(seconds * 1000) / 1000:.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, slots=True)
class Usage:
    """One quota dimension as the x-ratelimit headers report it."""

    limit: int
    remaining: int  # never below 0
    reset_s: float  # until the window is empty again, so the whole limit is free


@dataclass(slots=True)
class Ticket:
    """An admitted request's window entry; its completion tokens are added once known."""

    at: float
    tokens: int


class _Window:
    """One key's entries of the last 60 seconds, oldest first, with their token total kept as
    entries come, go and grow: a check costs the same with 40 entries or 40,000."""

    __slots__ = ("entries", "tokens")

    def __init__(self) -> None:
        self.entries: deque[Ticket] = deque()
        self.tokens = 0

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, ticket: Ticket) -> None:
        self.entries.append(ticket)
        self.tokens += ticket.tokens

    def grow(self, ticket: Ticket, tokens: int) -> None:
        """Add tokens to an entry, counted in the total only while the entry is still in."""
        ticket.tokens += tokens
        if self.entries and self.entries[0].at <= ticket.at:
            self.tokens += tokens

    def expire(self, now: float) -> None:
        entries = self.entries
        while entries and entries[0].at + WINDOW_S <= now:
            self.tokens -= entries.popleft().tokens


@dataclass(frozen=True, slots=True)
class Admission:
    """What the quota check decided, with each configured dimension's state (None: no quota)."""

    ticket: Ticket | None  # None: rejected
    requests: Usage | None
    tokens: Usage | None
    reason: Reason | None = None  # why it was rejected
    retry_after_s: float | None = None  # until it would fit; None when it never can
    used_requests: int = 0  # in the window when it was rejected, for the error message
    used_tokens: int = 0
    requested_tokens: int = 0  # the refused request's prompt tokens

    def refusal(self) -> tuple[str, str]:
        """The error type ("requests" or "tokens") and OpenAI's wording for this refusal."""
        if self.reason == "requests" and self.requests is not None:
            kind, per = "requests", "requests per min (RPM)"
            limit, used, asked = self.requests.limit, self.used_requests, 1
        else:
            kind, per = "tokens", "tokens per min (TPM)"
            limit = self.tokens.limit if self.tokens is not None else 0
            used, asked = self.used_tokens, self.requested_tokens
        if self.retry_after_s is None:
            return kind, (
                f"Request too large for {per} (fake): Limit {limit}, Requested {asked}. "
                "The input or output tokens must be reduced in order to run successfully."
            )
        return kind, (
            f"Rate limit reached for {per} (fake): Limit {limit}, Used {used}, "
            f"Requested {asked}. Please try again in {duration(self.retry_after_s)}."
        )


@dataclass(slots=True)
class _KeyState:
    window: _Window = field(default_factory=_Window)
    prompts: OrderedDict[str, None] = field(default_factory=OrderedDict)


class Quotas:
    """Every key's window and cached prompts behind one lock: the check and the record of an
    admitted request happen together, so concurrent calls can never both take the last slot."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def admit(self, key: str, rpm: int | None, tpm: int | None, prompt_tokens: int) -> Admission:
        """Record the request and return its ticket if it fits both quotas, else say why not."""
        with self._lock:
            now = self._clock()
            window = self._state(key).window
            window.expire(now)
            over_requests = rpm is not None and len(window) + 1 > rpm
            if not (over_requests or (tpm is not None and window.tokens + prompt_tokens > tpm)):
                window.add(ticket := Ticket(now, prompt_tokens))
                requests, tokens = _usages(window, rpm, tpm, now)
                return Admission(ticket, requests, tokens)
            return _rejection(window, rpm, tpm, prompt_tokens, now, over_requests=over_requests)

    def spend(self, key: str, ticket: Ticket, tokens: int) -> None:
        """Add an admitted request's completion tokens to its window entry."""
        with self._lock:
            self._state(key).window.grow(ticket, tokens)

    def usage(
        self, key: str, rpm: int | None, tpm: int | None
    ) -> tuple[Usage | None, Usage | None]:
        """The key's requests and tokens usage now, without recording anything."""
        with self._lock:
            now = self._clock()
            window = self._state(key).window
            window.expire(now)
            return _usages(window, rpm, tpm, now)

    def cached(self, key: str, system: str) -> bool:
        """Whether ``system`` was sent with this key before; remembers it either way."""
        digest = hashlib.sha256(system.encode()).hexdigest()
        with self._lock:
            prompts = self._state(key).prompts
            seen = digest in prompts
            prompts[digest] = None
            prompts.move_to_end(digest)
            while len(prompts) > CACHED_PROMPTS_KEPT:
                prompts.popitem(last=False)
            return seen

    def _state(self, key: str) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
            while len(self._keys) > KEYS_KEPT:
                self._keys.popitem(last=False)
        self._keys.move_to_end(key)
        return state


def _rejection(
    window: _Window,
    rpm: int | None,
    tpm: int | None,
    prompt_tokens: int,
    now: float,
    *,
    over_requests: bool,
) -> Admission:
    requests, tokens = _usages(window, rpm, tpm, now)
    token_wait = _wait_for_tokens(window, tpm, prompt_tokens, now)
    reason: Reason = "requests" if over_requests else "tokens"
    wait = None
    if token_wait is None:
        reason = "too_large"
    else:
        wait = max(_wait_for_requests(window, rpm, now), token_wait)
    return Admission(
        None,
        requests,
        tokens,
        reason=reason,
        retry_after_s=wait,
        used_requests=len(window),
        used_tokens=window.tokens,
        requested_tokens=prompt_tokens,
    )


def _wait_for_requests(window: _Window, rpm: int | None, now: float) -> float:
    """Until enough of the oldest entries have left for one more request to fit."""
    if rpm is None or len(window) < rpm:
        return 0.0
    last_to_leave = window.entries[len(window) - rpm]
    return last_to_leave.at + WINDOW_S - now


def _wait_for_tokens(
    window: _Window, tpm: int | None, prompt_tokens: int, now: float
) -> float | None:
    """Until enough of the oldest entries have left for ``prompt_tokens`` to fit; None if the
    request is larger than the whole quota."""
    if tpm is None:
        return 0.0
    if prompt_tokens > tpm:
        return None
    used, wait = window.tokens, 0.0
    for ticket in window.entries:
        if used + prompt_tokens <= tpm:
            break
        used -= ticket.tokens
        wait = ticket.at + WINDOW_S - now
    return wait


def _usages(
    window: _Window, rpm: int | None, tpm: int | None, now: float
) -> tuple[Usage | None, Usage | None]:
    entries = window.entries
    newest = entries[-1].at + WINDOW_S - now if entries else 0.0
    with_tokens = next((t for t in reversed(entries) if t.tokens), None)
    requests = None if rpm is None else Usage(rpm, max(0, rpm - len(window)), newest)
    if tpm is None:
        return requests, None
    used = window.tokens
    reset = with_tokens.at + WINDOW_S - now if with_tokens is not None else 0.0
    return requests, Usage(tpm, max(0, tpm - used), reset)
