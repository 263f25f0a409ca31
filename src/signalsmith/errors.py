"""The one error tree of signalsmith; third-party exceptions are translated into it at the edges.

SignalsmithError
├── ConfigError        operator mistake, raised at start-up; the message names the setting
├── TransientError     the world is briefly unavailable (Redis down, provider busy):
│   │                  leave the message pending and retry it later
│   └── ProvidersFailed    every LLM provider failed this time; carries each one's reason
│                          (and what was already paid for the question, when anything was)
├── ProviderError      one LLM call failed (429, 5xx, timeout, connection, rejected):
│                      the chain decides whether to wait, retry, or fall back
├── CommitRefused      Redis refused a commit for what it holds (not an outage): the worker
│                      commits the batch entry by entry and dead-letters the entry refused
└── PoisonInput        this input can never succeed: dead-letter it with the reason
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from signalsmith.domain import ModelCall


class SignalsmithError(Exception):
    """Base of every error signalsmith raises on purpose."""


class ConfigError(SignalsmithError):
    """A setting is missing or wrong; start-up stops with this one-line message."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class TransientError(SignalsmithError):
    """Retry later: the message stays pending and is redelivered."""


class ProvidersFailed(TransientError):
    """No provider could answer; ``reasons`` says why, one line per provider."""

    def __init__(
        self,
        reasons: Sequence[str],
        *,
        batch_refused: bool = False,
        spent: ModelCall | None = None,
    ) -> None:
        super().__init__("every LLM provider failed: " + "; ".join(reasons))
        self.reasons = tuple(reasons)
        self.batch_refused = batch_refused  # a provider refused a batched request as too big
        # What the question had already cost when it failed: its share of a batch whose entry
        # for it was no answer, before it was asked again alone and that failed.
        self._spent = spent

    def take_spent(self) -> ModelCall | None:
        """What was paid before the failure, handed out once: one failure shared by several
        askers (single flight) is billed once."""
        spent, self._spent = self._spent, None
        return spent


ProviderFailure = Literal["rate_limited", "server", "timeout", "connection", "rejected", "busy"]


class ProviderError(SignalsmithError):
    """One call to one provider failed; ``kind`` drives retry and fallback."""

    def __init__(
        self,
        kind: ProviderFailure,
        message: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.status = status
        self.headers = dict(headers or {})  # lower-cased; rate-limit headers say how long to wait


class CommitRefused(SignalsmithError):
    """A commit script failed on its content (a key of the wrong type, a record too large); it
    checks before writing, so nothing of the batch was written."""


class PoisonInput(SignalsmithError):
    """The input can never become a valid event; it goes to the dead-letter stream."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # a short, closed vocabulary: used as a metrics label
        self.detail = detail
