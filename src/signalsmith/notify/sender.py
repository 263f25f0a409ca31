"""Sending one notice to one channel through apprise, and the channel's backoff.

The only module that imports apprise. Whatever apprise reports or raises becomes a
``TransientError`` whose message names the channel by its masked form only: apprise's own
errors and results can quote the URL, so none of their text is passed on.

apprise sends with blocking HTTP clients; its ``async_notify`` runs them in its own worker
threads, so a slow service never blocks the event loop. Its per-service socket timeouts bound a
send (4 s to connect and 4 s to read unless the URL sets ``cto``/``rto``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from signalsmith.errors import ConfigError, TransientError
from signalsmith.notify.channels import SETTING, Channel
from signalsmith.notify.message import TITLE_MAX


class Notifier(Protocol):
    """One channel's sending: its limits, a wait while it is backing off, and one send."""

    @property
    def channel(self) -> Channel: ...

    @property
    def limit(self) -> int:
        """Title and body together, in UTF-16 code units."""
        ...

    @property
    def title_limit(self) -> int:
        """The title alone (0: the service has no title; it is put in the body)."""
        ...

    async def ready(self) -> None:
        """Wait until the channel may be tried again after failures."""
        ...

    async def send(self, title: str, body: str) -> None:
        """Deliver one message; raises ``TransientError`` when the channel did not take it."""
        ...


class Backoff:
    """A failing channel is tried less and less often: after ``n`` failures in a row the next
    attempt waits ``base_s * 2**(n-1)`` seconds, at most ``max_s``; a success resets it. Each
    entry is also retried by the engine (after CLAIM_IDLE_MS, up to MAX_DELIVERIES); this keeps
    the entries that keep arriving meanwhile from hammering a dead webhook."""

    def __init__(
        self, base_s: float, max_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._base_s = base_s
        self._max_s = max_s
        self._clock = clock
        self._failures = 0
        self._not_before = 0.0

    @property
    def failures(self) -> int:
        return self._failures

    def delay(self) -> float:
        """Seconds to wait before the next attempt (0 when the channel is healthy)."""
        return max(0.0, self._not_before - self._clock())

    def failed(self) -> None:
        self._failures += 1
        wait = min(self._max_s, self._base_s * 2 ** min(self._failures - 1, 30))
        self._not_before = self._clock() + wait

    def succeeded(self) -> None:
        self._failures = 0
        self._not_before = 0.0


class AppriseNotifier:
    """A channel through apprise: one ``Apprise`` object per channel (its throttling and
    connection reuse span every send), at most ``max_in_flight`` sends at once."""

    def __init__(self, channel: Channel, backoff: Backoff, *, max_in_flight: int = 1) -> None:
        import apprise

        service = apprise.Apprise.instantiate(channel.url)
        if service is None:
            raise ConfigError(
                SETTING, f"{channel.shown}: apprise has no service for this URL or cannot read it"
            )
        self._apprise = apprise.Apprise()
        self._apprise.add(service)
        self._text = apprise.NotifyFormat.TEXT
        self._channel = channel
        self._limit = _smaller(channel.limit, getattr(service, "body_maxlen", 0))
        title_max = getattr(service, "title_maxlen", TITLE_MAX)
        self._title_limit = 0 if title_max == 0 else _smaller(TITLE_MAX, title_max)
        self._backoff = backoff
        self._gate = asyncio.Semaphore(max_in_flight)

    @property
    def channel(self) -> Channel:
        return self._channel

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def title_limit(self) -> int:
        return self._title_limit

    async def ready(self) -> None:
        delay = self._backoff.delay()
        if delay > 0:
            await asyncio.sleep(delay)

    async def send(self, title: str, body: str) -> None:
        async with self._gate:
            try:
                result = await self._apprise.async_notify(
                    body=body, title=title, body_format=self._text
                )
            except Exception as exc:  # apprise's own failure: translated here, its text dropped
                self._backoff.failed()
                raise TransientError(
                    f"{self._channel.shown}: apprise failed ({type(exc).__name__})"
                ) from None
        delivered, status = bool(result), _status(result)
        _close(result)
        if not delivered:
            self._backoff.failed()
            raise TransientError(
                f"{self._channel.shown}: not delivered ({status}, "
                f"{self._backoff.failures} failure(s) in a row)"
            )
        self._backoff.succeeded()


def _smaller(ours: int, theirs: object) -> int:
    """``ours``, or apprise's figure for the service when it is a smaller positive number."""
    if isinstance(theirs, int) and 0 < theirs < ours:
        return theirs
    return ours


def _status(result: object) -> str:
    """apprise's verdict on a send (FAILURE, TIMEOUT, ...): a name, never its log lines."""
    status = getattr(result, "status", None)
    name = getattr(status, "name", None)
    return name.lower() if isinstance(name, str) else "refused"


def _close(result: object) -> None:
    """Release what apprise keeps for a result's logs (apprise 2 results; 1.x returns a bool)."""
    close = getattr(result, "close", None)
    if callable(close):
        close()
