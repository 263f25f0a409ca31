"""Candle validation: every accepted row form gives the same series, each accidental problem drops
its row and is noted, and hostile input is a ``PoisonInput`` (a dead letter), never another
exception and never a series that breaks the indicators."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from signalsmith.errors import PoisonInput
from signalsmith.market.candles import (
    MAX_PRICE,
    MAX_ROWS,
    MAX_VOLUME,
    MIN_PRICE,
    CandleSeries,
    format_granularity,
    parse_granularity,
    validate_candles,
)

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
NOW = T0 + 3_600.0  # an hour later: every candle below has closed


def row(minute: int, close: float = 100.0, volume: float = 5.0) -> list[float]:
    """A one-minute candle at ``T0 + minute``, opening at 100 and spanning 1 either side."""
    return [T0 + 60 * minute, 100.0, max(100.0, close) + 1, min(100.0, close) - 1, close, volume]


ROWS = [row(0, 101), row(1, 102), row(2, 99)]


def poison(rows: object, granularity_s: int = 60, now: float = NOW) -> PoisonInput:
    with pytest.raises(PoisonInput) as caught:
        validate_candles(rows, granularity_s, now)
    return caught.value


def test_list_rows_become_a_typed_series() -> None:
    """Six-column rows become one read-only float64 array per field, with nothing to note."""
    found = validate_candles(ROWS, 60, NOW)
    assert len(found) == 3
    assert found.close.tolist() == [101, 102, 99]
    assert found.time.tolist() == [T0, T0 + 60, T0 + 120]
    assert all(column.dtype == np.float64 for column in found.columns())
    assert found.granularity_s == 60
    assert (found.notes, found.dropped, found.missing_intervals) == ((), 0, 0)
    with pytest.raises(ValueError, match="read-only"):
        found.close[0] = 1.0


@pytest.mark.parametrize("time_key", ["time", "timestamp", "t"])
def test_object_rows_with_any_time_name_give_the_same_series(time_key: str) -> None:
    """Objects with full names or o/h/l/c/v, numbers or numerals, read like the lists."""
    objects = [
        {time_key: t, "open": o, "high": str(h), "l": lo, "c": c, "volume": v}
        for t, o, h, lo, c, v in ROWS
    ]
    found = validate_candles(objects, 60, NOW)
    expected = validate_candles(ROWS, 60, NOW)
    for got, want in zip(found.columns(), expected.columns(), strict=True):
        assert got.tolist() == want.tolist()


def test_seconds_milliseconds_and_iso_times_agree() -> None:
    """Epoch seconds, epoch milliseconds (told apart by size), and ISO-8601 with Z, an offset, or
    no zone (read as UTC) all name the same minute."""
    times: list[object] = [
        T0,
        (T0 + 60) * 1000,
        "2026-01-01T00:02:00Z",
        "2026-01-01T01:03:00+01:00",
        "2026-01-01T00:04:00",
        str(T0 + 300),
    ]
    rows = [[t, 100, 101, 99, 100, 1] for t in times]
    found = validate_candles(rows, 60, NOW)
    assert found.time.tolist() == [T0 + 60 * minute for minute in range(6)]


def test_rows_are_sorted_by_time() -> None:
    found = validate_candles([ROWS[2], ROWS[0], ROWS[1]], 60, NOW)
    assert found.close.tolist() == [101, 102, 99]


def test_a_repeated_time_keeps_the_last_row_given_and_says_so() -> None:
    """Sources resend a candle when it is corrected; the later row is the correction."""
    found = validate_candles([*ROWS, row(1, 105)], 60, NOW)
    assert found.close.tolist() == [101, 105, 99]
    assert found.notes == ("1 row repeated an earlier row's time; the last given was kept",)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ([T0 + 180, None, 101, 99, 100, 1], "a missing value"),
        ([T0 + 180, "abc", 101, 99, 100, 1], "a value that is not a number"),
        ([T0 + 180, 100, 101, 99, float("nan"), 1], "a NaN or infinite value"),
        ([T0 + 180, 100, "inf", 99, 100, 1], "a NaN or infinite value"),
        ([T0 + 180, 100, 101, 99, 100, 10**400], "a value that is not a number"),
        ([T0 + 180, -100, 101, -101, 100, 1], "a price at or below zero"),
        ([T0 + 180, 0, 101, 0, 100, 1], "a price at or below zero"),
        ([T0 + 180, 1e-13, 101, 1e-13, 100, 1], "a price outside 1e-12 to 1e12"),
        ([T0 + 180, 100, 1e13, 99, 100, 1], "a price outside 1e-12 to 1e12"),
        ([T0 + 180, 100, 101, 99, 100, -1], "a negative volume"),
        ([T0 + 180, 100, 101, 99, 100, 1e19], "a volume above 1e18"),
        ([T0 + 180, 100, 99, 101, 100, 1], "high below low"),
        ([T0 + 180, 102, 101, 99, 100, 1], "open or close outside the high-low range"),
        ([T0 + 180, 100, 101, 99, 98, 1], "open or close outside the high-low range"),
        (["not a time", 100, 101, 99, 100, 1], "a time that is not a time"),
        ([-60, 100, 101, 99, 100, 1], "a time before 1970 or more than a day ahead"),
        ([NOW + 2 * 86_400, 100, 101, 99, 100, 1], "a time before 1970 or more than a day ahead"),
    ],
)
def test_a_row_that_cannot_be_a_candle_is_dropped_and_counted(bad: list[Any], reason: str) -> None:
    """The rest of the series survives; the note counts the dropped row under its problem."""
    found = validate_candles([*ROWS, bad], 60, NOW)
    assert len(found) == 3
    assert found.dropped == 1
    assert found.notes == (f"dropped 1 of 4 rows: 1 with {reason}",)


@pytest.mark.parametrize(
    "edge",
    [
        [0, MIN_PRICE, MIN_PRICE, MIN_PRICE, MIN_PRICE, 0],  # 1970 itself, the lowest price
        [T0 + 180, MAX_PRICE, MAX_PRICE, MAX_PRICE, MAX_PRICE, MAX_VOLUME],
        [T0 + 180, 100, 101, 99, 101, -0.0],  # the close at the high, no volume
        [T0 + 180, 99, 101, 99, 100, 1],  # the open at the low
    ],
)
def test_values_exactly_on_a_bound_are_kept(edge: list[float]) -> None:
    """Every check allows its bound itself; numbers and numerals agree on it."""
    for rows in ([*ROWS, edge], [*ROWS, [str(value) for value in edge]]):
        found = validate_candles(rows, 60, NOW)
        assert (len(found), found.dropped) == (4, 0)
        assert not any(note.startswith("dropped") for note in found.notes)


def test_one_bad_row_among_many_is_named_and_the_rest_kept() -> None:
    """A long series from a working source with one broken row in its middle."""
    rows = [row(minute, 100.0 + minute % 3) for minute in range(50)]
    rows[20] = [T0 + 60 * 20, 100, 99, 101, 100, 1]
    found = validate_candles(rows, 60, NOW)
    assert len(found) == 49
    assert found.notes[0] == "dropped 1 of 50 rows: 1 with high below low"


def test_drops_are_counted_per_problem_most_common_first() -> None:
    bad = [[T0 + 180, None, 1, 1, 1, 1], [T0 + 240, 1, 1, 2, 1, 1], [T0 + 300, None, 1, 1, 1, 1]]
    found = validate_candles([*ROWS, *bad], 60, NOW)
    assert found.notes == ("dropped 3 of 6 rows: 2 with a missing value, 1 with high below low",)


def test_nothing_usable_left_rejects_the_input_with_every_reason() -> None:
    caught = poison([[T0, None, 1, 1, 1, 1], [T0 + 60, 1, 1, 2, 1, 1], row(60)])
    assert caught.reason == "no_candles"
    assert caught.detail == (
        "none of 3 rows is a usable closed candle: 1 with a missing value,"
        " 1 with high below low; 1 still forming"
    )


def test_no_rows_is_no_candles() -> None:
    assert poison([]).reason == "no_candles"


def test_missing_intervals_are_counted_and_located() -> None:
    """Minutes 3-4 and 7 are missing: three intervals in two gaps, the longest after minute 2."""
    found = validate_candles([row(m) for m in (0, 1, 2, 5, 6, 8)], 60, NOW)
    assert found.missing_intervals == 3
    assert found.notes == (
        "3 missing 1m intervals in 2 gaps, the longest 2 after 2026-01-01T00:02:00Z",
    )


def test_the_candle_still_forming_is_left_out() -> None:
    """At 00:03:30 the 00:03 candle has not closed; the 00:02 candle closed at 00:03 exactly."""
    found = validate_candles([*ROWS, row(3)], 60, T0 + 210)
    assert found.time[-1] == T0 + 120
    assert found.notes == ("left out 1 candle still forming (the 1m interval ends after now)",)
    assert len(validate_candles(ROWS, 60, T0 + 180)) == 3


def test_candles_closer_than_the_granularity_are_noted() -> None:
    """One-minute candles declared as five-minute ones: the note points at the granularity."""
    found = validate_candles(ROWS, 300, NOW)
    assert found.notes == ("2 candles less than half a 5m interval after the one before",)


def test_input_size_is_bounded() -> None:
    at_limit = [row(m - MAX_ROWS, 100.5) for m in range(MAX_ROWS)]
    assert len(validate_candles(at_limit, 60, NOW)) == MAX_ROWS
    caught = poison([*at_limit, row(0)])
    assert (caught.reason, caught.detail) == ("too_many_candles", "10001 rows, limit 10000")


@pytest.mark.parametrize(
    ("rows", "reason", "detail"),
    [
        ({"time": T0}, "wrong_type", "candles must be a list of rows, not dict"),
        ("[[1, 2, 3, 4, 5, 6]]", "wrong_type", "candles must be a list of rows, not str"),
        (None, "wrong_type", "candles must be a list of rows, not NoneType"),
        ([ROWS[0], "row"], "wrong_type", "row 1 is str, not a list or an object"),
        ([ROWS[0], 7], "wrong_type", "row 1 is int, not a list or an object"),
        ([[T0, 1, 1, 1, 1]], "bad_candles", "row 0 has 5 columns; expected time, open, high, low,"),
        ([[T0, *[1] * 12]], "bad_candles", "row 0 has 13 columns"),
        ([{"time": T0, "open": 1, "high": 1, "low": 1, "close": 1}], "bad_candles", "'volume'"),
        ([[T0, [1, [2]], 1, 1, 1, 1]], "wrong_type", "row 0: open is list, not a number"),
        ([[T0, 1, {"a": 1}, 1, 1, 1]], "wrong_type", "row 0: high is dict, not a number"),
        ([[T0, 1, 1, 1, True, 1]], "wrong_type", "row 0: close is bool, not a number"),
        ([[[T0], 1, 1, 1, 1, 1]], "wrong_type", "row 0: time is list, not a number"),
    ],
)
def test_the_wrong_shape_rejects_the_whole_input(rows: object, reason: str, detail: str) -> None:
    """A shape problem means the producer speaks another format: guessing would mislead."""
    caught = poison(rows)
    assert caught.reason == reason
    assert detail in caught.detail


def test_exchange_klines_with_extra_columns_are_read_by_their_first_six() -> None:
    """Binance-style rows: millisecond open time, prices as text, then six more columns."""
    kline = [T0 * 1000, "100.0", "101.5", "99.5", "101.0", "12.5", T0 * 1000 + 59_999, "1262", 40]
    found = validate_candles([kline], 60, NOW)
    assert (found.time[0], found.high[0], found.volume[0]) == (T0, 101.5, 12.5)


def test_series_invariants_are_held_by_the_constructor() -> None:
    """Direct construction (tests, sources that already validated) cannot break the shape."""
    one = np.array([1.0])
    with pytest.raises(ValueError, match="same length"):
        CandleSeries(np.array([1.0, 2.0]), one, one, one, one, one, granularity_s=60)
    two = np.array([1.0, 1.0])
    with pytest.raises(ValueError, match="increasing"):
        CandleSeries(two, two, two, two, two, two, granularity_s=60)
    empty = np.array([])
    with pytest.raises(ValueError, match="at least one"):
        CandleSeries(empty, empty, empty, empty, empty, empty, granularity_s=60)


def test_the_granularity_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="granularity_s"):
        validate_candles(ROWS, 0, NOW)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m", 60),
        ("5m", 300),
        ("15m", 900),
        ("1h", 3_600),
        ("6h", 21_600),
        ("1d", 86_400),
        ("1w", 604_800),
        (" 1H ", 3_600),
        ("300", 300),
        (60, 60),
    ],
)
def test_granularity_names_and_seconds_are_read(text: object, seconds: int) -> None:
    assert parse_granularity(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "1y", "1.5m", "-1m", "0m", "2w", "²m", None, True, 1.5])
def test_other_granularities_are_refused_with_an_example(text: object) -> None:
    with pytest.raises(PoisonInput) as caught:
        parse_granularity(text)
    assert caught.value.reason == "bad_granularity"


@pytest.mark.parametrize("seconds", [1, 60, 300, 900, 3_600, 21_600, 86_400, 5_400, 604_800])
def test_a_granularity_name_reads_back_to_its_seconds(seconds: int) -> None:
    assert parse_granularity(format_granularity(seconds)) == seconds


# --- Fuzzing: anything at all is either a valid series or a clear PoisonInput. ---

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["nan", "-inf", "1e400", "2026-01-01T00:00:00Z", "9999-12-31", "0x10"])
)
HOSTILE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=40,
)
VALUE = (
    SCALARS
    | st.lists(SCALARS, max_size=3)
    | st.dictionaries(st.text(max_size=5), SCALARS, max_size=3)
)
NAMES = ("time", "timestamp", "t", "open", "high", "low", "close", "volume", "o", "c", "v", "x")
HOSTILE_ROW = (
    st.lists(VALUE, min_size=6, max_size=6)
    | st.lists(VALUE, max_size=13)
    | st.dictionaries(st.sampled_from(NAMES), VALUE, min_size=5)
    | VALUE
)
PRICE = st.floats(min_value=-10, max_value=1e6) | st.sampled_from([math.nan, math.inf, -math.inf])
NEAR_VALID_VALUE = PRICE | st.none() | st.integers(-5, 10**6) | PRICE.map(str)
TIME = st.integers(min_value=-10, max_value=80).map(lambda minute: T0 + 60 * minute)
VALID_ROW = st.builds(
    lambda time, open_, close, up, down, volume: [
        time,
        open_,
        max(open_, close) + up,
        min(open_, close) - down,
        close,
        volume,
    ],
    TIME | TIME.map(lambda seconds: seconds * 1000),
    st.floats(min_value=1, max_value=1e5),
    st.floats(min_value=1, max_value=1e5),
    st.floats(min_value=0, max_value=10),
    st.floats(min_value=0, max_value=0.5),
    st.floats(min_value=0, max_value=1e6),
)


def _corrupt(candle: list[Any], column: int, value: object) -> list[Any]:
    return [value if index == column else item for index, item in enumerate(candle)]


NEAR_VALID_ROW = VALID_ROW | st.builds(
    _corrupt, VALID_ROW, st.integers(min_value=1, max_value=5), NEAR_VALID_VALUE
)


def assert_valid_series(found: CandleSeries, granularity_s: int, now: float) -> None:
    """What every consumer of a series relies on."""
    columns = np.stack(found.columns())
    assert len(found) >= 1
    assert np.isfinite(columns).all()
    assert (np.diff(found.time) > 0).all()
    assert (found.time + granularity_s <= now).all()
    prices = np.stack([found.open, found.high, found.low, found.close])
    assert ((prices >= MIN_PRICE) & (prices <= MAX_PRICE)).all()
    assert ((found.volume >= 0) & (found.volume <= MAX_VOLUME)).all()
    assert (found.low <= np.minimum(found.open, found.close)).all()
    assert (found.high >= np.maximum(found.open, found.close)).all()


def validate_or_poison(rows: object, granularity_s: int = 60) -> CandleSeries | None:
    """The series if ``rows`` give one (checked), else ``None`` after checking the refusal."""
    try:
        found = validate_candles(rows, granularity_s, NOW)
    except PoisonInput as exc:
        refusal = exc
    else:
        assert_valid_series(found, granularity_s, NOW)
        return found
    assert refusal.reason in {"wrong_type", "bad_candles", "no_candles", "too_many_candles"}
    assert refusal.detail
    return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(HOSTILE)
@example([[T0, [[[[[[[[1]]]]]]]], 1, 1, 1, 1]])
@example([{"t": {"t": {"t": T0}}, "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}])
@example([[10**400, 1, 1, 1, 1, 1]])
@example([[T0, 1e308, 1e308, 1e308, 1e308, 1e308]])
@example([[T0, 1e-300, 1e-300, 1e-300, 1e-300, 0]])
def test_anything_at_all_is_a_valid_series_or_poison(rows: object) -> None:
    validate_or_poison(rows)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(HOSTILE_ROW, max_size=12))
def test_rows_of_hostile_values_are_a_valid_series_or_poison(rows: list[Any]) -> None:
    validate_or_poison(rows)


@settings(max_examples=300, deadline=None)
@given(st.lists(NEAR_VALID_ROW, min_size=1, max_size=40), st.sampled_from([60, 120, 300]))
def test_nearly_valid_rows_keep_every_row_that_is_a_candle(
    rows: list[list[Any]], granularity_s: int
) -> None:
    """Whatever survives is a valid series; every row dropped is counted in a note."""
    found = validate_or_poison(rows, granularity_s)
    if found is not None:
        assert found.dropped == sum(1 for row in rows if not _candle_like(row))


def _candle_like(values: list[Any]) -> bool:
    try:
        _, open_, high, low, close, volume = (float(value) for value in values)
    except (TypeError, ValueError, OverflowError):
        return False
    numbers = (open_, high, low, close, volume)
    return (
        all(math.isfinite(number) for number in numbers)
        and MIN_PRICE <= min(open_, high, low, close) <= max(open_, high, low, close) <= MAX_PRICE
        and 0 <= volume <= MAX_VOLUME
        and low <= min(open_, close)
        and max(open_, close) <= high
    )


PLAIN_ROW = VALID_ROW | st.builds(
    _corrupt, VALID_ROW, st.integers(min_value=0, max_value=5), PRICE | st.integers(-5, 10**6)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(PLAIN_ROW, max_size=20))
def test_plain_number_rows_read_the_same_as_objects(rows: list[list[float]]) -> None:
    """Plain numeric lists take a fast path; objects are read value by value. Both give the same
    series, the same notes, or the same refusal."""
    names = ("time", "open", "high", "low", "close", "volume")
    objects = [dict(zip(names, candle, strict=True)) for candle in rows]
    assert _outcome(rows) == _outcome(objects)


def _outcome(rows: object) -> tuple[object, ...]:
    try:
        found = validate_candles(rows, 60, NOW)
    except PoisonInput as exc:
        return (str(exc),)
    return (*(column.tolist() for column in found.columns()), found.notes)
