"""Indicators against values worked out by hand in each test (never against TA-Lib itself), and
what a series too short or too flat for an indicator gets instead of a number."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalsmith.errors import PoisonInput
from signalsmith.market.candles import CandleSeries, validate_candles
from signalsmith.market.indicators import (
    INDICATOR_NAMES,
    Indicators,
    compute_indicators,
    format_number,
)

MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def series(
    closes: Sequence[float],
    *,
    opens: Sequence[float] | None = None,
    highs: Sequence[float] | None = None,
    lows: Sequence[float] | None = None,
    volumes: Sequence[float] | None = None,
    start: float = MIDNIGHT,
    granularity_s: int = 60,
) -> CandleSeries:
    """One-minute candles from the given columns; by default each opens at its own close and
    spans one unit either side, with volume 10."""
    close = np.asarray(closes, dtype=np.float64)
    open_ = close if opens is None else np.asarray(opens, dtype=np.float64)
    high = np.maximum(open_, close) + 1 if highs is None else np.asarray(highs, dtype=np.float64)
    low = np.minimum(open_, close) - 1 if lows is None else np.asarray(lows, dtype=np.float64)
    volume = np.full(len(close), 10.0) if volumes is None else np.asarray(volumes, np.float64)
    time = start + granularity_s * np.arange(len(close), dtype=np.float64)
    return CandleSeries(time, open_, high, low, close, volume, granularity_s=granularity_s)


RISING = [10, 12, 11, 13, 15, 14, 16, 18, 17, 19, 21, 20, 22, 24, 23, 25, 27, 26, 28, 30]


def test_simple_averages_are_the_means_of_the_last_window_closes() -> None:
    """SMA 5 and SMA 20 are plain means of the last 5 and 20 closes."""
    found = compute_indicators(series(RISING))
    assert found.sma_short == pytest.approx((25 + 27 + 26 + 28 + 30) / 5)  # 27.2
    assert found.sma_long == pytest.approx(sum(RISING) / 20)  # 390 / 20 = 19.5


def test_exponential_averages_start_from_a_simple_average_then_weigh_2_over_n_plus_1() -> None:
    """EMA 3: seed = mean of the first 3 closes, then ema += k * (close - ema) with k = 2/4;
    EMA 4 the same with k = 2/5."""
    closes = [1, 2, 3, 10, 4, 6]
    found = compute_indicators(series(closes), short_window=3, long_window=4)
    ema3 = (1 + 2 + 3) / 3  # 2 at the third close
    for close in (10, 4, 6):
        ema3 += 0.5 * (close - ema3)  # 6, 5, 5.5
    ema4 = (1 + 2 + 3 + 10) / 4  # 4 at the fourth close
    for close in (4, 6):
        ema4 += 0.4 * (close - ema4)  # 4, 4.8
    assert found.ema_short == pytest.approx(ema3) == pytest.approx(5.5)
    assert found.ema_long == pytest.approx(ema4) == pytest.approx(4.8)
    assert found.sma_short == pytest.approx((10 + 4 + 6) / 3)
    assert found.sma_long == pytest.approx((3 + 10 + 4 + 6) / 4)


# Fourteen moves: ten up by 1, four down by 1, then (in the longer series) one up by 2.
MOVES = [1, 1, -1, 1, 1, -1, 1, 1, -1, 1, 1, -1, 1, 1]
RSI_CLOSES = list(np.cumsum([100.0, *MOVES]))


def test_rsi_first_value_is_average_gain_over_average_gain_plus_loss() -> None:
    """15 closes give 14 moves: average gain 10/14, average loss 4/14, RSI = 100 * 10/14."""
    found = compute_indicators(series(RSI_CLOSES))
    gain, loss = 10 / 14, 4 / 14
    assert found.rsi == pytest.approx(100 * gain / (gain + loss))  # 71.43


def test_rsi_then_smooths_wilder_style() -> None:
    """One more move of +2: gain = (10/14 * 13 + 2) / 14, loss = (4/14 * 13 + 0) / 14, so
    RSI = 100 * 158 / 210."""
    found = compute_indicators(series([*RSI_CLOSES, RSI_CLOSES[-1] + 2]))
    gain = (10 / 14 * 13 + 2) / 14
    loss = (4 / 14 * 13) / 14
    assert found.rsi == pytest.approx(100 * gain / (gain + loss))
    assert found.rsi == pytest.approx(100 * 158 / 210)  # 75.24


def test_bollinger_bands_use_the_population_standard_deviation() -> None:
    """Ten closes of 9 and ten of 11: mean 10, population variance ((10 * 1 + 10 * 1) / 20) = 1,
    so the bands are 10 +- 2 * 1; the last close 11 sits at (11 - 8) / (12 - 8) = 0.75."""
    found = compute_indicators(series([9, 11] * 10))
    assert (found.bb_upper, found.bb_middle, found.bb_lower) == (
        pytest.approx(12),
        pytest.approx(10),
        pytest.approx(8),
    )
    assert found.bb_position == pytest.approx(0.75)


def test_bollinger_position_goes_past_1_when_the_close_breaks_out() -> None:
    """Nineteen closes of 10 and one of 30: mean 11, variance (19 * 1 + 19 * 19) / 20 = 19;
    the close 30 is above the upper band 11 + 2 * sqrt(19) = 19.72."""
    found = compute_indicators(series([10] * 19 + [30]))
    assert found.bb_upper == pytest.approx(11 + 2 * math.sqrt(19))
    assert found.bb_position is not None
    assert found.bb_position > 1


def test_macd_of_a_straight_line_is_seven_times_its_slope() -> None:
    """An EMA seeded with an SMA lags a line of slope b by exactly b * (n - 1) / 2 from its
    first value on, so MACD = EMA12 - EMA26 = b * (25 - 11) / 2 = 7b; the signal line, an EMA
    of that constant, is 7b too, and the histogram 0."""
    slope = 2.0
    found = compute_indicators(series([5 + slope * i for i in range(40)]))
    assert found.macd == pytest.approx(7 * slope)
    assert found.macd_signal == pytest.approx(7 * slope)
    assert found.macd_hist == pytest.approx(0, abs=1e-9)


def test_atr_averages_14_true_ranges_then_smooths_wilder_style() -> None:
    """Closes stay at 100 and each candle spans its range r around it, so the true range is r.
    Ranges 1..14 after the first candle average 7.5; a next range of 21 gives (7.5*13+21)/14."""
    ranges = [5.0, *range(1, 15)]
    closes = [100.0] * 15
    first = compute_indicators(
        series(closes, highs=[100 + r / 2 for r in ranges], lows=[100 - r / 2 for r in ranges])
    )
    assert first.atr == pytest.approx(7.5)
    ranges.append(21.0)
    closes.append(100.0)
    then = compute_indicators(
        series(closes, highs=[100 + r / 2 for r in ranges], lows=[100 - r / 2 for r in ranges])
    )
    assert then.atr == pytest.approx((7.5 * 13 + 21) / 14)  # 8.46


def test_slow_stochastic_smooths_fast_k_twice_with_3_candle_means() -> None:
    """Every candle spans 90..110, so fast %K = 100 * (close - 90) / 20. The last five closes
    92, 96, 100, 104, 108 give fast %K 10, 30, 50, 70, 90; slow %K = means of three (30, 50, 70)
    and slow %D = the mean of those three, 50."""
    closes = [100.0] * 13 + [92, 96, 100, 104, 108]
    found = compute_indicators(
        series(closes, opens=[100.0] * 18, highs=[110.0] * 18, lows=[90.0] * 18)
    )
    assert found.stoch_k == pytest.approx((50 + 70 + 90) / 3)  # 70
    assert found.stoch_d == pytest.approx((30 + 50 + 70) / 3)  # 50


def test_on_balance_volume_starts_at_the_first_volume_and_adds_or_subtracts_with_the_close() -> (
    None
):
    """TA-Lib's convention: start at the first candle's volume (100); up +20, unchanged +0,
    down -40, up +50: 130."""
    found = compute_indicators(series([10, 11, 11, 9, 12], volumes=[100, 20, 30, 40, 50]))
    assert found.obv == pytest.approx(100 + 20 - 40 + 50)


def test_buying_and_selling_momentum_sum_volume_by_candle_colour() -> None:
    """Up candles (close > open) carry 20 + 50, down candles 40; the doji's 30 counts for
    neither: share 70 / 110, ratio 70 / 40."""
    found = compute_indicators(
        series(
            [11, 12, 9, 12, 14],
            opens=[11, 11, 10, 12, 12],
            volumes=[5, 20, 40, 30, 50],
        )
    )
    # The first candle (11 -> 11, volume 5) is a doji as well.
    assert (found.buy_volume, found.sell_volume) == (70, 40)
    assert found.buy_share_pct == pytest.approx(100 * 70 / 110)  # 63.64
    assert found.buy_sell_ratio == pytest.approx(70 / 40)


def test_price_change_runs_from_the_first_open_to_the_last_close() -> None:
    """First open 50, last close 55: +5, +10%; the first candle's own move counts."""
    found = compute_indicators(series([52, 49, 55], opens=[50, 52, 49]))
    assert found.price_change == pytest.approx(5)
    assert found.price_change_pct == pytest.approx(10)
    assert found.last_close == 55


def test_day_high_and_low_cover_only_the_last_candles_utc_day() -> None:
    """Two candles before midnight (high 200, low 1) do not count; the day's three span
    high max(13, 16, 12) = 16 and low min(8, 9, 10) = 8."""
    found = compute_indicators(
        series(
            [100, 100, 10, 12, 11],
            opens=[100, 100, 10, 12, 11],
            highs=[200, 101, 13, 16, 12],
            lows=[1, 99, 8, 9, 10],
            start=MIDNIGHT - 120,
        )
    )
    assert (found.day_high, found.day_low) == (16, 8)


def test_volume_change_compares_the_last_window_with_the_one_before() -> None:
    """Window 2: the last two volumes 30 + 50 = 80 against 10 + 20 = 30 before: +50, +166.67%."""
    found = compute_indicators(
        series([1, 2, 3, 4, 5], volumes=[99, 10, 20, 30, 50]), short_window=2, long_window=3
    )
    assert found.volume_change == pytest.approx(50)
    assert found.volume_change_pct == pytest.approx(100 * 50 / 30)


def test_short_series_get_none_and_a_reason_for_each_missing_indicator() -> None:
    """Nine candles: the long averages need 20, RSI 15, MACD 34, stochastic 18; the reasons say
    how many are needed and how many there are. What nine candles allow is still computed."""
    found = compute_indicators(series(RISING[:9]))
    assert found.rsi is None
    assert found.missing["rsi"] == "needs 15 candles, have 9"
    assert found.missing["sma_long"] == "needs 20 candles, have 9"
    assert found.missing["macd_hist"] == "needs 34 candles, have 9"
    assert found.missing["stoch_d"] == "needs 18 candles, have 9"
    assert found.missing["atr"] == "needs 15 candles, have 9"
    assert found.missing["volume_change"] == "needs 10 candles, have 9"
    assert found.sma_short == pytest.approx((15 + 14 + 16 + 18 + 17) / 5)
    for name in INDICATOR_NAMES:
        assert (getattr(found, name) is None) == (name in found.missing), name


@pytest.mark.parametrize(
    ("name", "needs"),
    [("rsi", 15), ("sma_long", 20), ("bb_upper", 20), ("macd", 34), ("atr", 15), ("stoch_k", 18)],
)
def test_each_indicator_appears_at_exactly_the_length_the_reason_names(
    name: str, needs: int
) -> None:
    """The stated requirement is TA-Lib's own: one candle fewer is missing, that many is not."""
    closes = [100 + (i % 7) - (i % 3) for i in range(needs)]
    assert getattr(compute_indicators(series(closes[:-1])), name) is None
    assert getattr(compute_indicators(series(closes)), name) is not None


def test_indicators_undefined_on_a_flat_series_are_missing_not_zero() -> None:
    """A close that never moves has no RSI (TA-Lib would say 0, 'oversold'); candles with no
    range have no stochastic; bands of no width place nothing."""
    flat = series([100.0] * 40, highs=[100.0] * 40, lows=[100.0] * 40)
    found = compute_indicators(flat)
    assert found.rsi is None
    assert found.missing["rsi"] == "the close never moved"
    assert found.stoch_k is None
    assert found.stoch_d is None
    assert found.bb_position is None
    assert found.bb_middle == 100
    assert found.atr == 0


def test_ratios_without_a_denominator_are_missing() -> None:
    """Only up candles: no selling volume, so no buy/sell ratio; no volume at all before the
    last window: no percentage change."""
    found = compute_indicators(
        series([2, 3, 4, 5], opens=[1, 2, 3, 4], volumes=[0, 0, 5, 5]),
        short_window=2,
        long_window=3,
    )
    assert found.buy_share_pct == 100
    assert found.buy_sell_ratio is None
    assert found.missing["buy_sell_ratio"] == "no selling volume"
    assert found.volume_change == 10
    assert found.volume_change_pct is None


def test_windows_are_checked() -> None:
    """A short window must be at least 2 and shorter than the long one."""
    with pytest.raises(ValueError, match="windows"):
        compute_indicators(series(RISING), short_window=20, long_window=5)
    with pytest.raises(ValueError, match="windows"):
        compute_indicators(series(RISING), short_window=1, long_window=5)


def test_values_round_once_at_the_scale_of_each_number() -> None:
    """Prices keep five significant digits (at least two decimals), moves in price units two
    decimals more, 0-100 scales two decimals, volumes four significant digits."""
    found = Indicators(
        candles=300,
        granularity_s=60,
        short_window=5,
        long_window=20,
        last_time=MIDNIGHT,
        last_close=50123.456789,
        macd_hist=-12.345678,
        rsi=71.23456,
        buy_volume=0.123456789,
        sell_volume=12345.6789,
        buy_share_pct=0.00001,
    )
    assert found.values() == {
        "candles": 300,
        "short_window": 5,
        "long_window": 20,
        "last_close": 50123.46,
        "macd_hist": -12.3457,
        "rsi": 71.23,
        "buy_volume": 0.1235,
        "sell_volume": 12346,
        "buy_share_pct": 0.0,
    }
    assert found.last_close == 50123.456789  # the model itself keeps every digit


def test_small_prices_keep_their_significant_digits() -> None:
    """A price of 0.0000123456 rounds to 9 decimals, not to 0.00."""
    found = Indicators(
        candles=1,
        granularity_s=60,
        short_window=5,
        long_window=20,
        last_time=MIDNIGHT,
        last_close=0.0000123456,
        day_high=0.0000124999,
    )
    assert found.values()["last_close"] == 0.000012346
    assert format_number(found.values()["day_high"]) == "0.0000125"


def test_values_are_rounded_once_and_every_caller_gets_its_own_dict() -> None:
    """The trend read, the text, the envelope and the prompt all ask; a caller that adds to
    its dict (the prompt adds its settings) changes nobody else's."""
    found = compute_indicators(series(RISING))
    first = found.values()
    first["sell_share_pct"] = 1.0
    assert "sell_share_pct" not in found.values()
    assert found.values() == compute_indicators(series(RISING)).values()


def test_a_copy_with_changed_fields_rounds_its_own_values() -> None:
    """Rounded values kept by the original never leak into a copy made with other fields, and
    do not take part in equality."""
    found = compute_indicators(series(RISING))
    rounded = found.values()
    changed = found.model_copy(update={"rsi": None, "last_close": 31.0})
    assert "rsi" in rounded
    assert "rsi" not in changed.values()
    assert changed.values()["last_close"] == 31.0
    assert found.model_copy() == found == compute_indicators(series(RISING))


def test_format_number_never_uses_an_exponent() -> None:
    """Quoted numbers are plain decimals a reader (and a checker) can match."""
    assert format_number(0.0000123) == "0.0000123"
    assert format_number(50000.0) == "50000"
    assert format_number(-2.5) == "-2.5"


def test_the_model_is_frozen_and_records_its_windows() -> None:
    """The defaults are the 5-candle and 20-candle windows; nothing can be changed after."""
    found = compute_indicators(series(RISING))
    assert (found.short_window, found.long_window, found.candles) == (5, 20, 20)
    assert found.last_time == MIDNIGHT + 19 * 60
    with pytest.raises(ValueError, match="frozen"):
        found.rsi = 50.0  # type: ignore[misc]


SCALES = st.sampled_from([2e-12, 1e-6, 1.0, 5e4, 5e11])
MOVES_ST = st.lists(
    st.tuples(
        st.floats(min_value=-0.05, max_value=0.05),  # the close against the open
        st.floats(min_value=0, max_value=0.02),  # wick above the body
        st.floats(min_value=0, max_value=0.02),  # wick below
        st.floats(min_value=0, max_value=1e18) | st.just(0.0),  # volume
    ),
    min_size=1,
    max_size=80,
)


def walk(scale: float, moves: list[tuple[float, float, float, float]]) -> CandleSeries:
    """A validated series from relative moves around ``scale``; rows out of bounds drop."""
    rows, price = [], scale
    for minute, (change, up, down, volume) in enumerate(moves):
        close = price * (1 + change)
        high, low = max(price, close) * (1 + up), min(price, close) * (1 - down)
        rows.append([MIDNIGHT + 60 * minute, price, high, low, close, volume])
        price = close
    try:
        return validate_candles(rows, 60, MIDNIGHT + 60 * (len(moves) + 1))
    except PoisonInput:
        return series([scale])  # every row left the price range: one plain candle instead


@settings(max_examples=200, deadline=None)
@given(SCALES, MOVES_ST)
def test_any_valid_series_gives_finite_indicators_or_reasons(
    scale: float, moves: list[tuple[float, float, float, float]]
) -> None:
    """From a penny token to a price in the hundreds of billions, with volumes up to 1e18: no
    warning, no error, every indicator finite or missing with a reason, and so every value."""
    found = compute_indicators(walk(scale, moves))
    for name in INDICATOR_NAMES:
        value = getattr(found, name)
        assert (value is None) == (name in found.missing), name
        assert value is None or math.isfinite(value), name
    assert all(math.isfinite(value) for value in found.values().values())
