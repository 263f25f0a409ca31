"""Where a request's candles come from when it carries none: the ``CandleSource`` seam, the raw
row every source returns, and ``FirstOf``, which asks the configured sources in order.

Sources only parse; ``signalsmith.market.candles`` validates. A source answers "none here" with
no rows, "never for this request" with ``PoisonInput`` and "not now" with ``TransientError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final, Protocol, cast

from signalsmith.errors import PoisonInput
from signalsmith.market.candles import ALIASES, EPOCH_MS_FROM, FIELDS

# (time in epoch seconds, open, high, low, close, volume); a source's rows come oldest first.
CandleRow = tuple[float, float, float, float, float, float]

_NUMBER_TYPES: Final = (int, float, Decimal)


class CandleSource(Protocol):
    """One place candles can come from (an exchange, a Redis stream, a file)."""

    @property
    def name(self) -> str:
        """What the insight records as the candles' source: ``exchange``, ``stream``, ``file``."""
        ...

    async def fetch(self, product_id: str, granularity: str, lookback: int) -> list[CandleRow]:
        """The newest ``lookback`` candles of ``product_id``, oldest first; no rows when this
        source has none for the product. Raises ``PoisonInput`` when this source can never
        answer the request and ``TransientError`` when it cannot answer now."""
        ...

    async def aclose(self) -> None:
        """Release what the source holds open (an exchange's HTTP session); a source that
        borrows its connection (the Redis client of the stream source) leaves it open."""
        ...


@dataclass(frozen=True, slots=True)
class FoundCandles:
    """The rows one source gave, and that source's name."""

    source: str
    rows: list[CandleRow]


class FirstOf:
    """Asks sources in order and keeps the first that has rows.

    A source with no rows, or one that refuses the request (``PoisonInput``: an exchange that
    does not list the product, a broken file), passes the request on to the next. A source that
    is down (``TransientError``) stops the chain: answering from a later, staler source would
    hide the outage, and the request is retried instead.
    """

    def __init__(self, *sources: CandleSource) -> None:
        self.sources = sources

    async def find(self, product_id: str, granularity: str, lookback: int) -> FoundCandles:
        """The first source's rows. Raises ``PoisonInput`` when no source has any: with the
        reason the first refusing source gave (``unknown_product``, ...) or ``no_candles``."""
        refusals: list[PoisonInput] = []
        answers: list[str] = []
        for source in self.sources:
            try:
                rows = await source.fetch(product_id, granularity, lookback)
            except PoisonInput as exc:
                refusals.append(exc)
                answers.append(f"{source.name}: {exc}")
                continue
            if rows:
                return FoundCandles(source.name, rows)
            answers.append(f"{source.name}: none")
        reason = refusals[0].reason if refusals else "no_candles"
        tried = "; ".join(answers) or "no candle source is configured"
        raise PoisonInput(reason, f"no candles for {product_id} ({tried})")

    async def aclose(self) -> None:
        """Close every source, in order."""
        for source in self.sources:
            await source.aclose()


def check_lookback(lookback: int, limit: int) -> None:
    """A lookback a source can serve: a whole number of candles from 1 to ``limit``."""
    if isinstance(lookback, bool) or not isinstance(lookback, int) or not 1 <= lookback <= limit:
        raise PoisonInput("bad_lookback", f"lookback {lookback!r:.20} is not 1 to {limit} candles")


def row_from_values(values: Sequence[object]) -> CandleRow | None:
    """Six raw values (time, open, high, low, close, volume) as a row; None when one of them
    cannot be read as a number (or the time as a time). NaN and infinity stay: judging them is
    validation's work, which says how many rows it dropped and why."""
    if len(values) != len(FIELDS):
        return None
    parsed = [parse_time(values[0]), *map(parse_number, values[1:])]
    if None in parsed:
        return None
    time, open_, high, low, close, volume = cast("list[float]", parsed)
    return (time, open_, high, low, close, volume)


def row_from_mapping(record: Mapping[str, object]) -> CandleRow | None:
    """A row from an object naming its fields (``time`` also as ``timestamp`` or ``t``, the
    prices also as ``o``/``h``/``l``/``c``/``v``, as request candles may); None when a field
    is missing or unreadable."""
    values: list[object] = []
    for name in FIELDS:
        key = next((alias for alias in ALIASES[name] if alias in record), None)
        if key is None:
            return None
        values.append(record[key])
    return row_from_values(values)


def parse_number(value: object) -> float | None:
    """A float from a number or a numeral (exchanges and files send prices as text, Parquet
    files as decimals)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, _NUMBER_TYPES):
        return _float(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_time(value: object) -> float | None:
    """Epoch seconds from epoch seconds or milliseconds (told apart by magnitude), ISO-8601 text
    (UTC unless it says otherwise), a ``datetime`` or a ``date`` (its midnight, UTC). None for
    anything else, NaN and infinity included: rows are ordered by time before validation."""
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return _timestamp(datetime.combine(value, datetime.min.time()))
    seconds = parse_number(value)
    if seconds is None:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return _iso_seconds(text) if isinstance(text, str) else None
    if not math.isfinite(seconds):
        return None
    return seconds / 1000 if abs(seconds) >= EPOCH_MS_FROM else seconds


def _float(value: float | Decimal) -> float | None:
    try:
        return float(value)
    except (OverflowError, ValueError):  # an int beyond float range; a signalling NaN
        return None


def _iso_seconds(text: str) -> float | None:
    try:
        return _timestamp(datetime.fromisoformat(text.strip()))
    except ValueError:
        return None


def _timestamp(moment: datetime) -> float | None:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # exchanges and exports report candle times in UTC
    try:
        seconds = moment.timestamp()
    except (OverflowError, OSError, ValueError):  # a year no epoch float can hold
        return None
    return seconds if math.isfinite(seconds) else None
