"""Candles as sources deliver them, checked and turned into one typed, time-ordered series.

A problem a source can have by accident (a missing value, a NaN, high below low) drops that row
and says so in the series' ``notes``; a shape that shows the producer speaks another format (rows
of the wrong kind or length, nested values, too many rows) rejects the whole input as poison.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from numbers import Real
from typing import cast

import numpy as np
import numpy.typing as npt

from signalsmith.errors import PoisonInput

FloatArray = npt.NDArray[np.float64]

FIELDS = ("time", "open", "high", "low", "close", "volume")
MAX_ROWS = 10_000
MAX_COLUMNS = 12  # Binance-style klines carry extra columns after the sixth; they are ignored
FUTURE_SLACK_S = 86_400.0  # a clock a day ahead of ours is a wrong clock, not a closed candle
EPOCH_MS_FROM = 1e11  # as seconds this is the year 5138; as milliseconds it is 1973
MAX_GRANULARITY_S = 7 * 86_400
# Wider than any market's prices (a meme token at 1e-10, a price in dong at 2e9) and volumes,
# narrow enough that no sum, square or average over 10,000 candles leaves float range.
MIN_PRICE, MAX_PRICE = 1e-12, 1e12
MAX_VOLUME = 1e18

# Names an object row may use for each field, tried in this order.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "time": ("time", "timestamp", "t"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "v"),
}

_UNITS: tuple[tuple[str, int], ...] = (
    ("w", 604_800),
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
    ("s", 1),
)
_UNIT_S: Mapping[str, int] = dict(_UNITS)
_ROW_TYPES = frozenset({list, tuple})
_PLAIN_NUMBERS = frozenset({float, int})
_PLAIN_SCALARS = frozenset({float, int, str})
_GRANULARITY = re.compile(r"([0-9]{1,7})([smhdw]?)")


class _Unusable(Exception):
    """One row's values cannot be a candle; the row is dropped and ``reason`` is counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, eq=False)
class CandleSeries:
    """Closed candles in strictly increasing time, one read-only float64 array per field.

    ``time`` is each candle's open time in epoch seconds. ``notes`` says, in words, what
    validation dropped or found missing; ``dropped`` and ``missing_intervals`` count it.
    The constructor holds the structural invariants only; ``validate_candles`` checks prices.
    """

    time: FloatArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    granularity_s: int
    notes: tuple[str, ...] = ()
    dropped: int = 0
    missing_intervals: int = 0

    def __post_init__(self) -> None:
        for name in FIELDS:
            column = np.array(getattr(self, name), dtype=np.float64)
            column.flags.writeable = False  # frozen means the numbers too
            object.__setattr__(self, name, column)
        if {column.shape for column in self.columns()} != {(len(self.time),)}:
            raise ValueError("every field of a candle series is a 1-D array of the same length")
        if len(self.time) == 0:
            raise ValueError("a candle series holds at least one candle")
        if np.any(np.diff(self.time) <= 0):
            raise ValueError("candle times must be strictly increasing")
        if self.granularity_s <= 0:
            raise ValueError(f"granularity must be positive seconds, not {self.granularity_s}")

    def __len__(self) -> int:
        return len(self.time)

    def columns(self) -> tuple[FloatArray, ...]:
        """The six arrays in ``FIELDS`` order."""
        return (self.time, self.open, self.high, self.low, self.close, self.volume)


def parse_granularity(value: object) -> int:
    """Seconds per candle from ``1m``, ``5m``, ``15m``, ``1h``, ``6h``, ``1d`` (any whole count
    of s, m, h, d or w) or from whole seconds (``60``, ``"300"``), which is how exchange APIs
    such as Coinbase's name it. Anything else, or outside 1 s to 1 week, is poison."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (match := _GRANULARITY.fullmatch(value.strip().lower())):
        seconds = int(match[1]) * _UNIT_S[match[2] or "s"]
    else:
        raise PoisonInput(
            "bad_granularity", f"{value!r:.40} is not a granularity such as 1m, 5m, 1h or 1d"
        )
    if not 1 <= seconds <= MAX_GRANULARITY_S:
        raise PoisonInput(
            "bad_granularity", f"{value!r:.40} is {seconds} s, outside 1 s to {MAX_GRANULARITY_S} s"
        )
    return seconds


def format_granularity(seconds: int) -> str:
    """The shortest name ``parse_granularity`` reads back: 60 → ``1m``, 5400 → ``90m``."""
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError(f"granularity must be positive whole seconds, not {seconds}")


def validate_candles(rows: object, granularity_s: int, now: float) -> CandleSeries:
    """The closed candles among ``rows``, sorted by time, one per time (the last usable row given
    for a time wins).

    ``rows`` is a list of ``[time, open, high, low, close, volume]`` sequences or of objects
    with those names (time also as ``timestamp`` or ``t``; o/h/l/c/v accepted). A time is epoch
    seconds, epoch milliseconds (told apart by magnitude) or ISO-8601 text. A candle whose
    interval ends after ``now`` is still forming and left out: its close is not yet a close.
    A row is dropped (and counted in ``notes``) for a missing, non-numeric, NaN or infinite
    value, a time before 1970 or over a day ahead, a price outside ``MIN_PRICE``..``MAX_PRICE``,
    a volume below 0 or above ``MAX_VOLUME``, high below low, or open/close outside high-low.
    Raises ``PoisonInput`` when the input's shape is wrong or nothing usable is left.
    """
    if isinstance(granularity_s, bool) or not isinstance(granularity_s, int) or granularity_s <= 0:
        raise ValueError(f"granularity_s must be positive whole seconds, not {granularity_s!r}")
    items = _row_list(rows)
    drops: Counter[str] = Counter()
    table = _plain_table(items)
    if table is None:
        table = _read_table([_row_values(item, index) for index, item in enumerate(items)], drops)
    table = _usable(table, now, drops)
    closed = table[table[:, 0] + granularity_s <= now]
    forming = len(table) - len(closed)
    if len(closed) == 0:
        raise PoisonInput("no_candles", _nothing_left(len(items), drops, forming))
    kept, duplicates = _last_per_time(closed)
    time, open_, high, low, close, volume = kept.T  # CandleSeries copies each column
    missing, gap_note = _gaps(time, granularity_s)
    notes = (
        _dropped_note(len(items), drops),
        _duplicates_note(duplicates),
        _forming_note(forming, granularity_s),
        gap_note,
        _crowded_note(time, granularity_s),
    )
    return CandleSeries(
        time,
        open_,
        high,
        low,
        close,
        volume,
        granularity_s=granularity_s,
        notes=tuple(note for note in notes if note),
        dropped=drops.total(),
        missing_intervals=missing,
    )


def _row_list(rows: object) -> Sequence[object]:
    if isinstance(rows, str | bytes | bytearray) or not isinstance(rows, Sequence):
        kind = type(rows).__name__
        raise PoisonInput("wrong_type", f"candles must be a list of rows, not {kind}")
    if len(rows) > MAX_ROWS:
        raise PoisonInput("too_many_candles", f"{len(rows)} rows, limit {MAX_ROWS}")
    if not rows:
        raise PoisonInput("no_candles", "the input holds no rows")
    return rows


def _plain_table(items: Sequence[object]) -> FloatArray | None:
    """The common case, every row a list of six plain numbers, converted at C speed; ``None``
    sends any other input through ``_parsed_table``, which reads each value and names problems.
    """
    if not set(map(type, items)) <= _ROW_TYPES:
        return None
    lists = cast("Sequence[Sequence[object]]", items)
    if set(map(len, lists)) != {len(FIELDS)}:
        return None
    if not _PLAIN_NUMBERS.issuperset(map(type, chain.from_iterable(lists))):
        return None
    try:  # one flat pass: faster than numpy's nested-list reader, same conversions
        flat = np.fromiter(chain.from_iterable(lists), np.float64, len(lists) * len(FIELDS))
    except OverflowError:  # an int beyond float range; the careful path drops just its row
        return None
    table = flat.reshape(len(lists), len(FIELDS))
    table[:, 0] = _seconds(table[:, 0])
    return table


def _read_table(raw: Sequence[Sequence[object]], drops: Counter[str]) -> FloatArray:
    """Rows of six raw values as a table of floats. Numbers and numerals (JSON APIs send prices
    as text) convert at C speed, which parses text exactly as ``float`` does; anything else
    goes value by value: a row with a missing or unreadable value is dropped and counted in
    ``drops``, a value of the wrong type rejects the input."""
    if set(map(type, chain.from_iterable(raw))) <= _PLAIN_SCALARS:
        try:
            table = np.array(raw, dtype=np.float64)
        except (ValueError, OverflowError):  # text that is no number (or an ISO time); huge ints
            pass
        else:
            table[:, 0] = _seconds(table[:, 0])
            return table
    parsed: list[list[float]] = []
    for index, values in enumerate(raw):
        try:
            parsed.append([_time(values[0], index), *_prices(values[1:], index)])
        except _Unusable as exc:
            drops[exc.reason] += 1
    return np.array(parsed, dtype=np.float64).reshape(len(parsed), len(FIELDS))


def _prices(raw: Sequence[object], index: int) -> list[float]:
    return [_number(value, index, name) for value, name in zip(raw, FIELDS[1:], strict=True)]


def _usable(table: FloatArray, now: float, drops: Counter[str]) -> FloatArray:
    """The rows that can be candles; each dropped row is counted under its first problem."""
    if _all_usable(table, now):
        return table
    time, open_, high, low, close, volume = table.T
    prices = table[:, 1:5]
    checks = (
        ("a NaN or infinite value", ~np.isfinite(table).all(axis=1)),
        ("a time before 1970 or more than a day ahead", (time < 0) | (time > now + FUTURE_SLACK_S)),
        ("a price at or below zero", (prices <= 0).any(axis=1)),
        (
            "a price outside 1e-12 to 1e12",
            ((prices < MIN_PRICE) | (prices > MAX_PRICE)).any(axis=1),
        ),
        ("a negative volume", volume < 0),
        ("a volume above 1e18", volume > MAX_VOLUME),
        ("high below low", high < low),
        (
            "open or close outside the high-low range",
            (open_ < low) | (open_ > high) | (close < low) | (close > high),
        ),
    )
    bad = np.zeros(len(table), dtype=bool)
    for reason, mask in checks:
        fresh = int(np.count_nonzero(mask & ~bad))
        if fresh:
            drops[reason] += fresh
        bad |= mask
    return table[~bad]


def _all_usable(table: FloatArray, now: float) -> bool:
    """Whether every row passes every check of ``_usable``, in one pass over the table: each
    value within its column's bounds (which NaN and infinity never are) and open and close
    within high-low (so high is not below low). Rows of a source that works all pass."""
    lowest = (0.0, MIN_PRICE, MIN_PRICE, MIN_PRICE, MIN_PRICE, 0.0)
    highest = (now + FUTURE_SLACK_S, MAX_PRICE, MAX_PRICE, MAX_PRICE, MAX_PRICE, MAX_VOLUME)
    _, open_, high, low, close, _ = table.T
    within = (table >= lowest) & (table <= highest)
    inside = (low <= open_) & (open_ <= high) & (low <= close) & (close <= high)
    return bool(within.all() and inside.all())


def _last_per_time(closed: FloatArray) -> tuple[FloatArray, int]:
    """One row per time, the last given, in time order; and how many repeats were left out."""
    times = closed[:, 0]
    if np.all(times[1:] > times[:-1]):  # already in order with no repeats, as sources send them
        return closed, 0
    unique, first_from_end = np.unique(times[::-1], return_index=True)
    return closed[len(times) - 1 - first_from_end], len(times) - len(unique)


def _seconds(time: FloatArray) -> FloatArray:
    """Epoch milliseconds to seconds, told apart by magnitude."""
    return np.where(time >= EPOCH_MS_FROM, time / 1000, time)


def _row_values(item: object, index: int) -> list[object]:
    """The six raw values of one row in ``FIELDS`` order; a row of another shape is poison."""
    if isinstance(item, Mapping):
        return [_field(item, name, index) for name in FIELDS]
    if isinstance(item, list | tuple):
        if not len(FIELDS) <= len(item) <= MAX_COLUMNS:
            raise PoisonInput(
                "bad_candles",
                f"row {index} has {len(item)} columns; expected time, open, high, low, close,"
                " volume",
            )
        return list(item[: len(FIELDS)])
    raise PoisonInput(
        "wrong_type", f"row {index} is {type(item).__name__}, not a list or an object"
    )


def _field(item: Mapping[object, object], name: str, index: int) -> object:
    for key in ALIASES[name]:
        if key in item:
            return item[key]
    raise PoisonInput("bad_candles", f"row {index} has no {name!r} field")


def _number(value: object, index: int, name: str) -> float:
    """A float (NaN and inf are judged later, with the row); a missing or unreadable scalar
    drops the row, a value of any other type is poison."""
    if type(value) not in _PLAIN_SCALARS:  # exact types first: the abstract check is slow
        _check_scalar(value, index, name)
    try:
        return float(cast("float | str", value))
    except (ValueError, OverflowError):  # text that is no numeral; an int beyond float range
        raise _Unusable("a value that is not a number") from None


def _check_scalar(value: object, index: int, name: str) -> None:
    if value is None:
        raise _Unusable("a missing value")
    if isinstance(value, bool) or not isinstance(value, str | Real):
        raise PoisonInput(
            "wrong_type", f"row {index}: {name} is {type(value).__name__}, not a number"
        )


def _time(value: object, index: int) -> float:
    """Epoch seconds from seconds, milliseconds or ISO-8601 text (UTC unless it says)."""
    if isinstance(value, str) and not _is_numeral(value):
        return _iso_seconds(value)
    seconds = _number(value, index, "time")
    return seconds / 1000 if seconds >= EPOCH_MS_FROM else seconds


def _is_numeral(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _iso_seconds(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # exchanges report candle times in UTC
        return parsed.timestamp()
    except (ValueError, OverflowError):  # not a time; a time that no epoch float can hold
        raise _Unusable("a time that is not a time") from None


def _gaps(time: FloatArray, granularity_s: int) -> tuple[int, str]:
    """How many whole intervals are missing between candles, and a note saying where."""
    missing = np.maximum(np.rint(np.diff(time) / granularity_s) - 1, 0)
    total = int(missing.sum())
    if total == 0:
        return 0, ""
    longest = int(np.argmax(missing))
    unit = format_granularity(granularity_s)
    return total, (
        f"{_many(total, f'missing {unit} interval')} in {_many(np.count_nonzero(missing), 'gap')},"
        f" the longest {int(missing[longest])} after {_iso(time[longest])}"
    )


def _crowded_note(time: FloatArray, granularity_s: int) -> str:
    """Candles closer than half an interval suggest the granularity given is not the data's."""
    crowded = int(np.count_nonzero(np.diff(time) < granularity_s / 2))
    if crowded == 0:
        return ""
    unit = format_granularity(granularity_s)
    return f"{_many(crowded, 'candle')} less than half a {unit} interval after the one before"


def _dropped_note(rows: int, drops: Counter[str]) -> str:
    if not drops:
        return ""
    return f"dropped {drops.total()} of {rows} rows: {_reasons(drops)}"


def _duplicates_note(duplicates: int) -> str:
    if duplicates == 0:
        return ""
    return f"{_many(duplicates, 'row')} repeated an earlier row's time; the last given was kept"


def _forming_note(forming: int, granularity_s: int) -> str:
    if forming == 0:
        return ""
    unit = format_granularity(granularity_s)
    return f"left out {_many(forming, 'candle')} still forming (the {unit} interval ends after now)"


def _nothing_left(rows: int, drops: Counter[str], forming: int) -> str:
    parts = [_reasons(drops)] if drops else []
    if forming:
        parts.append(f"{forming} still forming")
    return f"none of {rows} rows is a usable closed candle: {'; '.join(parts)}"


def _reasons(drops: Counter[str]) -> str:
    return ", ".join(f"{count} with {reason}" for reason, count in drops.most_common())


def _many(count: int | np.integer, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")
