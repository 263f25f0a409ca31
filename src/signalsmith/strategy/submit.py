"""Submitting a signal from a trading system: one XADD to STRATEGY_STREAM, bounded by a timeout,
and never an exception into the caller's loop.

    from signalsmith.strategy.submit import SignalSubmitter

    submitter = SignalSubmitter("redis://127.0.0.1:6379/0")
    signal_id = submitter.submit({"symbol": "AAPL", "side": "buy", "price": 189.5, ...})
    # the signal id (given, or a new one), or None when it could not be queued in time

The signal is checked by the pipeline, not here (a bad one is dead-lettered with the reason):
the caller pays for one round trip to Redis and nothing else. ``AsyncSignalSubmitter`` is the
same for an asyncio loop.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

import redis
import redis.asyncio

log = logging.getLogger("signalsmith.submit")

DEFAULT_STREAM: Final = "strategy-signals"
DEFAULT_TIMEOUT_S: Final = 0.25


class SignalSubmitter:
    """Queues signals on ``stream`` through its own connection pool; thread-safe."""

    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = DEFAULT_STREAM,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._stream = stream
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def submit(self, signal: Mapping[str, Any]) -> str | None:
        """The signal's id once it is on the stream; None (and a warning logged) when it is
        not JSON or Redis did not take it within the timeout."""
        prepared = _prepared(signal)
        if prepared is None:
            return None
        signal_id, data = prepared
        try:
            self._client.xadd(self._stream, {"data": data})
        except (redis.RedisError, OSError) as exc:
            log.warning("signal %s not queued: %s", signal_id, type(exc).__name__)
            return None
        return signal_id

    def close(self) -> None:
        self._client.close()


class AsyncSignalSubmitter:
    """``SignalSubmitter`` for an asyncio loop (use it from one loop)."""

    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = DEFAULT_STREAM,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._stream = stream
        self._client = redis.asyncio.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def submit(self, signal: Mapping[str, Any]) -> str | None:
        prepared = _prepared(signal)
        if prepared is None:
            return None
        signal_id, data = prepared
        try:
            await self._client.xadd(self._stream, {"data": data})
        except (redis.RedisError, OSError) as exc:
            log.warning("signal %s not queued: %s", signal_id, type(exc).__name__)
            return None
        return signal_id

    async def aclose(self) -> None:
        await self._client.aclose()


def _prepared(signal: Mapping[str, Any]) -> tuple[str, str] | None:
    """(its id, its JSON), or None when it cannot be sent (logged)."""
    try:
        values = dict(signal)
        given = values.get("signal_id")
        signal_id = str(given) if given not in (None, "") else uuid.uuid4().hex
        values["signal_id"] = signal_id
        return signal_id, json.dumps(values, default=_plain, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        log.warning("signal not queued: not JSON (%s)", type(exc).__name__)
        return None


def _plain(value: object) -> object:
    """What json cannot write alone: times as ISO 8601, numbers of numpy and Decimal."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    number = getattr(value, "__float__", None)
    if callable(number) and math.isfinite(result := float(number())):
        return result
    raise TypeError(type(value).__name__)
