"""The deterministic trend read: clear trends buy or sell, flat or conflicting ones hold, missing
indicators cost confidence; the plain insight stays short, names the product first and quotes
only numbers the indicators hold."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalsmith.domain import Verdict
from signalsmith.market.candles import CandleSeries
from signalsmith.market.indicators import Indicators, compute_indicators
from signalsmith.market.trend import TrendRead, read_trend, render_insight

MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z
STEPS = np.arange(60)
PULLBACK = np.where(STEPS % 3 == 0, 0.6, 0.0)  # every third candle gives some back


def series(closes: Sequence[float] | np.ndarray) -> CandleSeries:
    """One-minute candles that open at the previous close and span 0.2 beyond their body."""
    close = np.asarray(closes, dtype=np.float64)
    open_ = np.concatenate([close[:1], close[:-1]])
    high = np.maximum(open_, close) + 0.2
    low = np.minimum(open_, close) - 0.2
    time = MIDNIGHT + 60 * np.arange(len(close), dtype=np.float64)
    return CandleSeries(time, open_, high, low, close, np.full(len(close), 10.0), granularity_s=60)


def indicators(closes: Sequence[float] | np.ndarray) -> Indicators:
    return compute_indicators(series(closes))


UP = 100 + 0.5 * STEPS - PULLBACK
DOWN = 200 - 0.5 * STEPS + PULLBACK
NOISE = 100 + np.random.default_rng(3).normal(0, 0.3, 60)
# Fifty candles up by 1, then three losses of 0.7: still overbought, momentum turned.
RISE = 100 + np.arange(50.0)
TURN = np.concatenate([RISE, RISE[-1] - np.array([0.7, 1.4, 2.1])])


def test_a_clear_uptrend_reads_up_and_buy() -> None:
    read = read_trend(indicators(UP))
    assert (read.direction, read.verdict) == ("up", Verdict.BUY)
    assert read.strength >= 0.75
    assert read.confidence > 0.5


def test_a_clear_downtrend_reads_down_and_sell() -> None:
    read = read_trend(indicators(DOWN))
    assert (read.direction, read.verdict) == ("down", Verdict.SELL)
    assert read.strength >= 0.75
    assert read.score < 0


def test_a_flat_noisy_market_reads_sideways_and_holds() -> None:
    read = read_trend(indicators(NOISE))
    assert (read.direction, read.verdict) == ("sideways", Verdict.HOLD)
    assert read.confidence <= 0.5  # a HOLD is the absence of a signal, never a strong claim


def test_an_overbought_rise_that_turns_is_no_longer_a_buy() -> None:
    """The rise alone reads BUY despite being overbought; once it turns (close under the short
    EMA, MACD histogram negative, stochastic %K under %D) with RSI still overbought, it holds."""
    assert read_trend(indicators(RISE)).verdict is Verdict.BUY
    read = read_trend(indicators(TURN))
    assert read.verdict is Verdict.HOLD
    assert read.direction != "up"
    assert any(re.fullmatch(r"RSI [\d.]+, overbought", reason) for reason in read.reasons)
    assert any(re.fullmatch(r"MACD histogram -[\d.]+, negative", r) for r in read.reasons)
    assert any(r.startswith("close") and "below the 5-candle EMA" in r for r in read.reasons)
    assert any(r.endswith("overbought and turning down") for r in read.reasons)


def test_missing_indicators_lower_confidence_and_are_named() -> None:
    """The same uptrend without MACD, RSI and stochastic: same verdict, less confidence."""
    full = indicators(UP)
    partial = full.model_copy(
        update={"macd_hist": None, "rsi": None, "stoch_k": None, "stoch_d": None}
    )
    whole, part = read_trend(full), read_trend(partial)
    assert part.verdict is whole.verdict is Verdict.BUY
    assert part.confidence < whole.confidence
    assert part.unread == ("MACD histogram", "RSI", "stochastic")
    assert whole.unread == ()


def test_a_short_series_reads_with_less_confidence() -> None:
    """Twenty candles of the same climb leave MACD unread; the read says so and claims less."""
    short = read_trend(indicators(UP[:20]))
    assert "MACD histogram" in short.unread
    assert short.confidence < read_trend(indicators(UP)).confidence


def test_an_empty_read_holds_with_no_confidence() -> None:
    """A single candle: almost nothing to read, so nothing to claim."""
    read = read_trend(indicators([100.0]))
    assert (read.verdict, read.direction) == (Verdict.HOLD, "sideways")
    assert read.confidence < 0.2


def test_the_read_is_deterministic() -> None:
    assert read_trend(indicators(NOISE)) == read_trend(indicators(NOISE))


@pytest.mark.parametrize("closes", [UP, DOWN, NOISE, TURN, UP[:12]], ids=str)
def test_reasons_quote_only_values_the_indicators_hold(closes: np.ndarray) -> None:
    found = indicators(closes)
    read = read_trend(found)
    assert read.reasons
    quoted = {number for reason in read.reasons for number in _numbers(reason)}
    assert quoted <= _known(found)


ANY_PRODUCT = ["BTC-USD", "ETH-EUR", "1INCH-USD"]


@pytest.mark.parametrize("closes", [UP, DOWN, NOISE, TURN, UP[:12], [100.0]], ids=str)
@pytest.mark.parametrize("product", ANY_PRODUCT)
def test_the_insight_is_short_opens_with_the_product_and_invents_no_number(
    closes: np.ndarray, product: str
) -> None:
    """At most 100 words, no introduction, and every number in it (after the product's own
    name) is one of the rounded indicator values, sign aside ("down 1.2%")."""
    found = indicators(closes)
    text = render_insight(product, found, read_trend(found))
    assert len(text.split()) <= 100
    assert text.startswith(f"{product}: ")
    assert not re.search(r"\b(here is|here's|in summary|as an)\b", text, re.IGNORECASE)
    assert set(_numbers(text.removeprefix(product))) <= _known(found)


def test_the_insight_states_the_read_in_words() -> None:
    found = indicators(UP)
    text = render_insight("BTC-USD", found, read_trend(found))
    assert text.startswith("BTC-USD: strong up trend, BUY with")
    assert f"Last close {found.values()['last_close']:g}" in text


@pytest.mark.parametrize("product", ["", "BTC USD", " BTC-USD"])
def test_the_insight_needs_a_one_word_product(product: str) -> None:
    found = indicators(UP)
    with pytest.raises(ValueError, match="product_id"):
        render_insight(product, found, read_trend(found))


def test_the_read_is_a_frozen_model() -> None:
    read = read_trend(indicators(UP))
    assert isinstance(read, TrendRead)
    with pytest.raises(ValueError, match="frozen"):
        read.verdict = Verdict.SELL  # type: ignore[misc]


def _numbers(text: str) -> list[float]:
    return [float(number) for number in re.findall(r"\d+(?:\.\d+)?", text)]


def _known(found: Indicators) -> set[float]:
    return {abs(value) for value in found.values().values()}


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([2e-12, 1e-6, 1.0, 5e4, 5e11]),
    st.lists(st.floats(min_value=-0.03, max_value=0.03), min_size=1, max_size=80),
    st.sampled_from(ANY_PRODUCT),
)
def test_any_series_reads_in_bounds_and_renders_checkably(
    scale: float, changes: list[float], product: str
) -> None:
    """Whatever the price scale and path: bounded read, short insight, only known numbers."""
    close = scale * np.cumprod(1 + np.asarray(changes))
    open_ = np.concatenate([[scale], close[:-1]])
    time = MIDNIGHT + 60 * np.arange(len(close), dtype=np.float64)
    high, low = np.maximum(open_, close) * 1.002, np.minimum(open_, close) * 0.998
    volume = np.linspace(0, 1e6, len(close))
    found = compute_indicators(
        CandleSeries(time, open_, high, low, close, volume, granularity_s=60)
    )
    read = read_trend(found)
    assert 0 <= read.strength <= 1
    assert 0 <= read.confidence <= 1
    assert -1 <= read.score <= 1
    text = render_insight(product, found, read)
    assert len(text.split()) <= 100
    assert text.startswith(f"{product}: ")
    assert set(_numbers(text.removeprefix(product))) <= _known(found)
