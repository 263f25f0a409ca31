"""Candles from Redis: one stream per product, ``<prefix>:<PRODUCT>`` (``candles:BTC-USD``),
appended in time order by a feed of the operator's, one candle per entry.

An entry holds flat fields ``time``, ``open``, ``high``, ``low``, ``close``, ``volume`` (or
their short names ``t``/``o``/``h``/``l``/``c``/``v``), or one field ``data`` with the same as
a JSON object or a ``[time, open, high, low, close, volume]`` list. An entry that is neither
is left out and counted: one bad write of a feed must not silence the product.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final, cast

import structlog
from redis.exceptions import RedisError, ResponseError

from signalsmith.errors import PoisonInput, TransientError
from signalsmith.market.candles import FIELDS
from signalsmith.market.requests import MAX_LOOKBACK
from signalsmith.market.sources import (
    CandleRow,
    check_lookback,
    row_from_mapping,
    row_from_values,
)
from signalsmith.redisclient import RedisClient

log = structlog.get_logger("signalsmith.market")

DEFAULT_PREFIX: Final = "candles"
MAX_DATA_BYTES: Final = 4_096  # a candle is ~100 bytes of JSON; more is another format
MAX_COLUMNS: Final = 12  # Binance-style klines carry extra columns after the sixth

RawEntry = tuple[bytes | str, Mapping[bytes | str, bytes | str]]


class StreamCandles:
    """A ``CandleSource`` over the product's candle stream: its newest ``lookback`` entries.

    An empty or missing stream has no rows (the next source is asked). Raises
    ``TransientError`` when Redis does not answer and ``PoisonInput("bad_candle_stream")``
    when the key holds something other than a stream. ``skipped`` counts malformed entries
    left out since start.
    """

    name: Final = "stream"

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_lookback: int = MAX_LOOKBACK,
    ) -> None:
        self._redis = redis
        self.prefix = prefix
        self._max_lookback = max_lookback
        self.skipped = 0

    def key(self, product_id: str) -> str:
        """The stream that holds ``product_id``'s candles."""
        return f"{self.prefix}:{product_id}"

    async def fetch(self, product_id: str, granularity: str, lookback: int) -> list[CandleRow]:
        """The newest ``lookback`` entries' candles, oldest first; a malformed entry among them
        is left out, so fewer rows may come back."""
        check_lookback(lookback, self._max_lookback)
        key = self.key(product_id)
        try:
            newest_first = await self._redis.xrevrange(key, count=lookback)
        except ResponseError as exc:
            if str(exc).startswith("WRONGTYPE"):
                raise PoisonInput("bad_candle_stream", f"{key} is not a stream") from None
            raise TransientError(f"candles from {key}: {exc}") from exc
        except RedisError as exc:
            raise TransientError(f"candles from {key}: {type(exc).__name__}: {exc}") from exc
        rows, skipped = entry_rows(reversed(cast("list[RawEntry]", newest_first)))
        if skipped:
            self.skipped += skipped
            log.warning("malformed candle entries skipped", stream=key, skipped=skipped)
        return rows

    async def aclose(self) -> None:
        """Nothing to release: the Redis client is the caller's, shared with the rest."""


def entry_rows(entries: Iterable[RawEntry]) -> tuple[list[CandleRow], int]:
    """The rows of ``entries`` in their order, and how many entries were malformed."""
    rows: list[CandleRow] = []
    skipped = 0
    for _entry_id, fields in entries:
        row = entry_row(fields)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    return rows, skipped


def entry_row(fields: Mapping[bytes | str, bytes | str]) -> CandleRow | None:
    """One entry's candle (see the module docstring); None when it holds none."""
    named = {_text(name): value for name, value in fields.items()}
    if "data" not in named:
        return row_from_mapping(named)
    data = named["data"]
    if len(data) > MAX_DATA_BYTES:
        return None
    try:
        decoded: object = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or nested past Python's stack
        return None
    if isinstance(decoded, dict):
        return row_from_mapping(decoded)
    if isinstance(decoded, list) and len(FIELDS) <= len(decoded) <= MAX_COLUMNS:
        return row_from_values(decoded[: len(FIELDS)])
    return None


def _text(name: bytes | str) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name
