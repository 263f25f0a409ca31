"""Strategy signals (seed 002's payload) from stream fields (flat, or one ``data`` JSON field)
and HTTP bodies: what parses, how it is normalised, and that whatever cannot become a signal
is poison whose detail starts with the field to blame, never another exception."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalsmith.errors import PoisonInput
from signalsmith.strategy.contract import SEED_INDICATORS
from signalsmith.strategy.signals import (
    CLOCK_SKEW_S,
    MAX_INDICATORS,
    bars,
    derived_id,
    facts,
    signal_from_fields,
    signal_from_values,
)

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
SENT = NOW - timedelta(seconds=5)
MAX_BARS = 50
INDICATORS = {
    "rsi": 58.2,
    "atr": 2.1,
    "sma_20": 186.4,
    "sma_50": 181.9,
    "volume_ratio": 1.6,
    "bb_upper": 193.0,
    "bb_lower": 179.8,
    "bb_middle": 186.4,
    "stochastic_k": 62.0,
    "stochastic_d": 58.5,
}
SEED_SIGNAL: dict[str, Any] = {
    "signal_id": "sig-20260302-aapl-1",
    "symbol": "AAPL",
    "side": "buy",
    "price": 189.5,
    "timestamp": SENT.isoformat(),
    "strategy": "sma_crossover",
    "indicators": INDICATORS,
}
BAR = {"time": "2026-03-02T14:29:00Z", "open": 189.1, "high": 189.7, "low": 188.9, "close": 189.5}
FIELDS = frozenset(
    {"signal_id", "symbol", "side", "price", "timestamp", "strategy", "indicators", "bars"}
    | {"stop_loss", "data", "signal"}
)


def flat(values: dict[str, Any]) -> dict[str, str]:
    """The signal as flat stream fields: text, nested values as JSON."""
    return {
        name: value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
    }


def parse(values: dict[str, Any], max_bars: int = MAX_BARS) -> Any:
    return signal_from_values(values, now=NOW, max_bars=max_bars)


def refusal(values: dict[str, Any], max_bars: int = MAX_BARS) -> PoisonInput:
    with pytest.raises(PoisonInput) as caught:
        parse(values, max_bars)
    return caught.value


def test_the_seed_signal_parses_alike_from_flat_fields_a_data_field_and_values() -> None:
    from_flat = signal_from_fields(flat(SEED_SIGNAL), "s", "1-0", now=NOW, max_bars=MAX_BARS)
    data = {"data": json.dumps(SEED_SIGNAL)}
    from_data = signal_from_fields(data, "s", "1-0", now=NOW, max_bars=MAX_BARS)
    from_values = parse(SEED_SIGNAL)
    assert from_flat == from_data == from_values
    assert facts(from_values) == {
        "signal_id": "sig-20260302-aapl-1",
        "symbol": "AAPL",
        "side": "buy",
        "price": 189.5,
        "timestamp": "2026-03-02T14:29:55+00:00",
        "strategy": "sma_crossover",
        "indicators": INDICATORS,
    }
    assert tuple(from_values.indicators) == SEED_INDICATORS
    assert bars(from_values) == []
    assert from_values.stop_loss is None


def test_symbol_side_and_numbers_are_normalised() -> None:
    signal = parse(
        {
            **SEED_SIGNAL,
            "symbol": " btc/usd ",
            "side": "LONG",
            "price": " 64250.5 ",
            "indicators": {"rsi": "41.5", "custom_score": 3},
            "stop_loss": "63000",
            "strategy": "  breakout  ",
        }
    )
    assert (signal.symbol, signal.side, signal.price) == ("BTC-USD", "buy", 64250.5)
    assert signal.indicators == {"rsi": 41.5, "custom_score": 3.0}
    assert (signal.stop_loss, signal.strategy) == (63000.0, "breakout")
    assert parse({**SEED_SIGNAL, "side": "Short"}).side == "sell"
    assert parse({**SEED_SIGNAL, "symbol": "^gspc"}).symbol == "^GSPC"
    assert parse({**SEED_SIGNAL, "symbol": "eurusd=x"}).symbol == "EURUSD=X"


def test_without_a_signal_id_one_is_derived_from_the_entry() -> None:
    fields = flat({name: v for name, v in SEED_SIGNAL.items() if name != "signal_id"})
    first = signal_from_fields(fields, "strategy-signals", "7-1", now=NOW, max_bars=MAX_BARS)
    again = signal_from_fields(fields, "strategy-signals", "7-1", now=NOW, max_bars=MAX_BARS)
    other = signal_from_fields(fields, "strategy-signals", "7-2", now=NOW, max_bars=MAX_BARS)
    empty = signal_from_fields(
        {**fields, "signal_id": ""}, "strategy-signals", "7-1", now=NOW, max_bars=MAX_BARS
    )
    assert first.signal_id == again.signal_id == empty.signal_id
    assert first.signal_id == derived_id("strategy-signals", "7-1")
    assert other.signal_id != first.signal_id
    assert refusal({name: v for name, v in SEED_SIGNAL.items() if name != "signal_id"}).detail == (
        "signal_id: required"
    )


def test_empty_optional_flat_fields_are_absent() -> None:
    fields = {**flat(SEED_SIGNAL), "indicators": "", "bars": " ", "stop_loss": "", "strategy": ""}
    signal = signal_from_fields(fields, "s", "1-0", now=NOW, max_bars=MAX_BARS)
    assert (signal.indicators, signal.bars, signal.stop_loss, signal.strategy) == ({}, (), None, "")


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2026-03-02T14:29:55Z", SENT),
        ("2026-03-02T15:29:55+01:00", SENT),
        ("2026-03-02T14:29:55", SENT),  # no offset: UTC
        ("2026-03-02 14:29:55", SENT),
        (SENT.timestamp(), SENT),  # epoch seconds
        (int(SENT.timestamp() * 1000), SENT),  # epoch milliseconds
        (str(int(SENT.timestamp())), SENT),
        (f"{SENT.timestamp() * 1000:.0f}", SENT),
        (100_000_000_000, datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),  # the first millisecond
    ],
)
def test_timestamps_are_iso_8601_or_epoch_seconds_or_milliseconds(
    sent: object, expected: datetime
) -> None:
    assert parse({**SEED_SIGNAL, "timestamp": sent}).timestamp == expected


def test_epoch_numbers_below_1e11_are_seconds_and_from_1e11_on_milliseconds() -> None:
    """Bar times have no future check, so the rule shows at its edge: 99,999,999,999 s is the
    year 5138, 100,000,000,000 ms is March 1973."""
    edge = [{**BAR, "time": 99_999_999_999}, {**BAR, "time": 100_000_000_000}]
    times = [bar["time"] for bar in bars(parse({**SEED_SIGNAL, "bars": edge}))]
    assert times == ["5138-11-16T09:46:39+00:00", "1973-03-03T09:46:40+00:00"]


def test_an_offset_timestamp_is_reported_in_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    signal = parse({**SEED_SIGNAL, "timestamp": SENT.astimezone(eastern).isoformat()})
    assert facts(signal)["timestamp"] == "2026-03-02T14:29:55+00:00"


def test_a_timestamp_may_run_ahead_of_our_clock_only_by_the_skew_tolerance() -> None:
    inside = NOW + timedelta(seconds=CLOCK_SKEW_S - 1)
    assert parse({**SEED_SIGNAL, "timestamp": inside.isoformat()}).timestamp == inside
    beyond = NOW + timedelta(seconds=CLOCK_SKEW_S + 1)
    refused = refusal({**SEED_SIGNAL, "timestamp": beyond.isoformat()})
    assert refused.reason == "bad_signal"
    assert refused.detail.startswith("timestamp: 2026-03-02T14:31:01+00:00 is 61 s ahead")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"side": None}, "side: required"),
        ({"symbol": None}, "symbol: required"),
        ({"price": None}, "price: required"),
        ({"timestamp": None}, "timestamp: required"),
        ({"side": "hold"}, "side: buy, sell, long or short"),
        ({"side": 1}, "side: buy, sell, long or short"),
        ({"symbol": "AAPL; DROP"}, "symbol: a symbol"),
        ({"symbol": "X" * 33}, "symbol: a symbol"),
        ({"symbol": "..."}, "symbol: a symbol"),
        ({"price": "abc"}, "price: a finite number > 0"),
        ({"price": "1,5"}, "price: a finite number > 0"),
        ({"price": 0}, "price: a finite number > 0"),
        ({"price": -3.5}, "price: a finite number > 0"),
        ({"price": True}, "price: a finite number > 0"),
        ({"price": "NaN"}, "price: a finite number > 0"),
        ({"price": math.inf}, "price: a finite number > 0"),
        ({"price": 10**400}, "price: a finite number > 0"),
        ({"stop_loss": "Infinity"}, "stop_loss: a finite number > 0"),
        ({"timestamp": "yesterday"}, "timestamp: an ISO 8601 time"),
        ({"timestamp": "2026-13-01T00:00:00"}, "timestamp: an ISO 8601 time"),
        ({"timestamp": "9999-12-31T23:00:00-05:00"}, "timestamp: an ISO 8601 time"),
        ({"timestamp": -1}, "timestamp: an ISO 8601 time"),
        ({"timestamp": 1e300}, "timestamp: an ISO 8601 time"),
        ({"timestamp": [2026, 3, 2]}, "timestamp: an ISO 8601 time"),
        ({"timestamp": "2031-01-01T00:00:00Z"}, "timestamp: 2031-01-01T00:00:00+00:00 is"),
        ({"signal_id": "has space"}, "signal_id: 1-64 printable"),
        ({"signal_id": "x" * 65}, "signal_id: 1-64 printable"),
        ({"strategy": "s" * 65}, "strategy: text of at most 64"),
        ({"strategy": {"name": "x"}}, "strategy: text of at most 64"),
        ({"indicators": [1, 2]}, "indicators: an object"),
        ({"indicators": {"rsi": "high"}}, "indicators.rsi: a finite number"),
        ({"indicators": {"rsi": None}}, "indicators.rsi: a finite number"),
        ({"indicators": {"atr": {"value": 2.1}}}, "indicators.atr: a finite number"),
        ({"indicators": {"sma_20": math.nan}}, "indicators.sma_20: a finite number"),
        ({"indicators": {"": 1}}, "indicators.: a name of 1-64"),
        ({"bars": {"time": 1}}, "bars: a list of bar objects"),
        ({"bars": [BAR, [1, 2, 3]]}, "bars[1]: an object with time"),
        ({"bars": [{**BAR, "close": "n/a"}]}, "bars[0].close: a finite number"),
        ({"bars": [{**BAR, "ema_9": [1]}]}, "bars[0].ema_9: a finite number"),
        ({"bars": [{**BAR, "volume": math.inf}]}, "bars[0].volume: a finite number"),
        ({"bars": [{**BAR, "time": "noon"}]}, "bars[0].time: an ISO 8601 time"),
        ({"bars": [BAR, {"time": 1, "open": 1, "high": 1, "low": 1}]}, "bars[1].close: required"),
    ],
)
def test_a_bad_field_is_poison_whose_detail_starts_with_the_field(
    change: dict[str, Any], field: str
) -> None:
    values = {name: value for name, value in {**SEED_SIGNAL, **change}.items() if value is not None}
    refused = refusal(values)
    assert refused.reason == "bad_signal"
    assert refused.detail.startswith(field), refused.detail


def test_too_many_bars_or_indicators_are_refused() -> None:
    three = [{**BAR, "time": 1_772_461_700 + 60 * n} for n in range(3)]
    assert len(parse({**SEED_SIGNAL, "bars": three}, max_bars=3).bars) == 3
    assert refusal({**SEED_SIGNAL, "bars": [*three, BAR]}, max_bars=3).detail == (
        "bars: at most 3 bars, not 4"
    )
    many = {f"ind_{n}": float(n) for n in range(MAX_INDICATORS + 1)}
    assert refusal({**SEED_SIGNAL, "indicators": many}).detail.startswith(
        "indicators: at most 64 indicators, not 65"
    )


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({**flat(SEED_SIGNAL), "price": "NaN"}, "price: a finite number > 0"),
        ({**flat(SEED_SIGNAL), "indicators": '{"rsi": Infinity}'}, "indicators.rsi:"),
        ({**flat(SEED_SIGNAL), "indicators": "{rsi: 50"}, "indicators: not JSON"),
        ({**flat(SEED_SIGNAL), "indicators": '"rsi"'}, "indicators: an object"),
        ({**flat(SEED_SIGNAL), "bars": "[" * 5_000 + "]" * 5_000}, "bars:"),
        ({**flat(SEED_SIGNAL), "bars": '[{"time": 1, "open": NaN}]'}, "bars[0].open:"),
        ({"data": json.dumps({**SEED_SIGNAL, "price": "NaN"})}, "price:"),
        ({"data": '{"symbol": "AAPL", "price": NaN}'}, "side: required"),
        ({"data": "[1, 2]"}, "data: a JSON object"),
        ({"data": "not json"}, "data: not JSON"),
    ],
)
def test_bad_flat_and_data_fields_are_poison_naming_the_field(
    fields: dict[str, str], detail: str
) -> None:
    with pytest.raises(PoisonInput) as caught:
        signal_from_fields(fields, "s", "1-0", now=NOW, max_bars=MAX_BARS)
    assert caught.value.reason == "bad_signal"
    assert caught.value.detail.startswith(detail), caught.value.detail


def test_bars_keep_their_indicator_columns_and_are_reported_in_utc() -> None:
    sent = [
        {**BAR, "volume": 12_500, "ema_9": 188.7},
        {"time": 1_772_461_795_000, "open": "189.5", "high": 190, "low": 189.2, "close": 189.9},
    ]
    signal = signal_from_fields(
        flat({**SEED_SIGNAL, "bars": sent, "regime": "bull"}), "s", "1-0", now=NOW, max_bars=2
    )
    assert bars(signal) == [
        {
            "time": "2026-03-02T14:29:00+00:00",
            "open": 189.1,
            "high": 189.7,
            "low": 188.9,
            "close": 189.5,
            "volume": 12_500.0,
            "ema_9": 188.7,
        },
        {
            "time": "2026-03-02T14:29:55+00:00",
            "open": 189.5,
            "high": 190.0,
            "low": 189.2,
            "close": 189.9,
        },
    ]


def test_a_body_that_is_not_an_object_is_poison() -> None:
    with pytest.raises(PoisonInput, match="signal: a JSON object, not list"):
        signal_from_values([SEED_SIGNAL], now=NOW, max_bars=MAX_BARS)  # type: ignore[arg-type]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["189.5", "-1", "NaN", "1772461795", "2026-03-02T14:29:55Z", "sell"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


VALID = {**SEED_SIGNAL, "bars": [BAR], "stop_loss": 185.0}


def _check_refusal(refused: PoisonInput) -> None:
    assert refused.reason == "bad_signal"
    field = refused.detail.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
    assert field in FIELDS, refused.detail


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(st.just(VALID[name]), JSON)
            for name in sorted(FIELDS - {"data", "signal"})
        },
    )
)
def test_any_json_values_give_a_signal_or_poison_naming_a_field(values: dict[str, Any]) -> None:
    try:
        signal = parse(values)
    except PoisonInput as refused:
        _check_refusal(refused)
    else:
        assert signal.price > 0
        assert signal.timestamp <= NOW + timedelta(seconds=CLOCK_SKEW_S)
        assert all(math.isfinite(value) for value in signal.indicators.values())


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*sorted(FIELDS - {"signal"}), "x"]),
        st.one_of(
            st.text(max_size=40),
            st.sampled_from([*flat(SEED_SIGNAL).values(), "null", "[]", "{}", '[{"time": 1}]']),
            JSON.map(json.dumps),
        ),
        max_size=9,
    )
)
def test_any_flat_fields_give_a_signal_or_poison_naming_a_field(fields: dict[str, str]) -> None:
    try:
        signal = signal_from_fields(fields, "s", "1-0", now=NOW, max_bars=MAX_BARS)
    except PoisonInput as refused:
        _check_refusal(refused)
    else:
        assert 1 <= len(signal.signal_id) <= 64
        assert signal.side in {"buy", "sell"}
