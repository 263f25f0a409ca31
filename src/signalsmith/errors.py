"""The one error tree of signalsmith; third-party exceptions are translated into it at the edges.

SignalsmithError
├── ConfigError        operator mistake, raised at start-up; the message names the setting
├── TransientError     the world is briefly unavailable (Redis down, provider busy):
│                      leave the message pending and retry it later
└── PoisonInput        this input can never succeed: dead-letter it with the reason
"""

from __future__ import annotations


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


class PoisonInput(SignalsmithError):
    """The input can never become a valid event; it goes to the dead-letter stream."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # a short, closed vocabulary: used as a metrics label
        self.detail = detail
