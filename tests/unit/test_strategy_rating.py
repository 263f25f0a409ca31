"""The rules' rating of a strategy signal: each case's arithmetic is stated beside it (weights:
trend 0.30, RSI 0.20, stochastic 0.15, Bollinger 0.15, volume 0.10, risk 0.10); a sell reads the
same context mirrored; missing indicators cost confidence and are named; the score moves the
obvious way as one indicator moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalsmith.strategy.contract import OfflineRating, Side
from signalsmith.strategy.rating import WEIGHTS, rate_offline
from signalsmith.strategy.signals import StrategySignal, signal_from_values

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
SEED_INDICATORS = {
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
# Buying into a downtrend that is not yet oversold, on thin volume.
FALLING = {
    "rsi": 45.0,
    "atr": 1.5,
    "sma_20": 100.0,
    "sma_50": 105.0,
    "volume_ratio": 0.4,
    "bb_upper": 110.0,
    "bb_lower": 90.0,
    "bb_middle": 100.0,
    "stochastic_k": 40.0,
    "stochastic_d": 55.0,
}


def signal(
    side: Side, price: float, indicators: dict[str, float], stop_loss: float | None = None
) -> StrategySignal:
    values: dict[str, Any] = {
        "signal_id": "s-1",
        "symbol": "AAPL",
        "side": side,
        "price": price,
        "timestamp": (NOW - timedelta(seconds=5)).isoformat(),
        "indicators": indicators,
    }
    if stop_loss is not None:
        values["stop_loss"] = stop_loss
    return signal_from_values(values, now=NOW, max_bars=0)


def rated(
    side: Side, price: float, indicators: dict[str, float], stop_loss: float | None = None
) -> OfflineRating:
    return rate_offline(signal(side, price, indicators, stop_loss))


def test_the_weights_are_the_documented_ones() -> None:
    assert WEIGHTS == {
        "trend": 0.30,
        "rsi": 0.20,
        "stochastic": 0.15,
        "bollinger": 0.15,
        "volume": 0.10,
        "risk": 0.10,
    }


def test_the_seed_buy_in_an_uptrend_on_strong_volume_is_confirmed() -> None:
    """trend: 189.5 > 186.4, 189.5 > 181.9, 186.4 > 181.9 -> +1 x 0.30 = 0.30; RSI 58.2 -> 0;
    stochastic: mid-range 0, %K 62 > %D 58.5 +1 -> (2*0 + 1)/3 x 0.15 = 0.05; Bollinger:
    (189.5-179.8)/(193-179.8) = 0.73 -> 0; volume 1.6 >= 1.5 -> +1 x 0.10 = 0.10; risk: ATR
    2.1/189.5 = 1.11% -> 0. Score 0.45/1.00 = 0.45: confirm; rating 1 + 4.5 x 1.45 = 7.525 -> 8;
    confidence 6/6 x min(1, 0.45/0.5) = 0.9."""
    rating = rated("buy", 189.5, SEED_INDICATORS)
    assert (rating["score"], rating["agreement"], rating["rating"]) == (0.45, "confirm", 8)
    assert rating["confidence"] == pytest.approx(0.9)
    assert rating["unread"] == []
    assert rating["reasons"] == [
        "price 189.5 above SMA 20 186.4 and above SMA 50 181.9, SMA 20 above SMA 50: uptrend "
        "(supports the buy)",
        "volume ratio 1.6, confirms the move (supports the buy)",
        "stochastic %K 62 above %D 58.5: mid-range, rising (mildly supports the buy)",
        "RSI 58.2, neither overbought nor oversold (neutral)",
        "price 189.5 at 0.73 of the band 179.8-193: inside the band (neutral)",
        "ATR 2.1 is 1.11% of the price 189.5, no stop sent (neutral)",
    ]


def test_a_buy_into_a_downtrend_on_thin_volume_is_rejected() -> None:
    """trend: 95 < 100, 95 < 105, 100 < 105 -> -1 x 0.30 = -0.30; RSI 45 -> 0; stochastic: 0
    and %K 40 < %D 55 -> -1/3 x 0.15 = -0.05; Bollinger (95-90)/20 = 0.25 -> 0; volume 0.4 <=
    0.5 -> -0.5 x 0.10 = -0.05; risk 1.5/95 = 1.58% -> 0. Score -0.40: reject; rating
    1 + 4.5 x 0.6 = 3.7 -> 4; confidence min(1, 0.4/0.5) = 0.8."""
    rating = rated("buy", 95.0, FALLING)
    assert (rating["score"], rating["agreement"], rating["rating"]) == (-0.4, "reject", 4)
    assert rating["confidence"] == pytest.approx(0.8)
    assert rating["reasons"][0].endswith("downtrend (against the buy)")
    assert "volume ratio 0.4, weak (mildly against the buy)" in rating["reasons"]


def test_a_sell_reads_the_same_context_mirrored() -> None:
    """The directional votes change sign (trend +0.30, stochastic +0.05), volume and risk do
    not (volume still -0.05): score 0.30, confirm; rating 1 + 4.5 x 1.3 = 6.85 -> 7;
    confidence min(1, 0.3/0.5) = 0.6."""
    rating = rated("sell", 95.0, FALLING)
    assert (rating["score"], rating["agreement"], rating["rating"]) == (0.3, "confirm", 7)
    assert rating["confidence"] == pytest.approx(0.6)
    assert rating["reasons"][0].endswith("downtrend (supports the sell)")
    assert "volume ratio 0.4, weak (mildly against the sell)" in rating["reasons"]


def test_an_overbought_buy_and_an_oversold_sell_are_argued_against() -> None:
    """RSI 75 alone: -1 for a buy, so score -1, reject, rating 1, confidence 1/6; RSI 25 alone
    for a sell: the mirror."""
    buy = rated("buy", 100.0, {"rsi": 75.0})
    sell = rated("sell", 100.0, {"rsi": 25.0})
    for rating, side in ((buy, "buy"), (sell, "sell")):
        assert (rating["score"], rating["agreement"], rating["rating"]) == (-1.0, "reject", 1)
        assert rating["confidence"] == pytest.approx(1 / 6, abs=1e-4)
        assert rating["reasons"][0].endswith(f"(against the {side})")
        assert len(rating["unread"]) == 5


def test_without_indicators_the_rules_say_caution_with_no_confidence_and_why() -> None:
    rating = rated("buy", 189.5, {})
    assert rating == {
        "score": 0.0,
        "rating": 5,
        "agreement": "caution",
        "confidence": 0.0,
        "reasons": [],
        "unread": [
            "trend: no sma_20 or sma_50",
            "rsi: no rsi",
            "stochastic: no stochastic_k or stochastic_d",
            "bollinger: no bb_upper or bb_lower",
            "volume: no volume_ratio",
            "risk: no atr",
        ],
    }


def test_unusable_indicators_are_unread_with_the_values() -> None:
    rating = rated("buy", 100.0, {"bb_upper": 90.0, "bb_lower": 95.0, "atr": 0.0})
    assert rating["agreement"] == "caution"
    assert rating["confidence"] == 0.0
    assert "bollinger: bb_upper 90 is not above bb_lower 95" in rating["unread"]
    assert "risk: atr 0 is not above 0" in rating["unread"]


def test_a_neutral_score_rates_6_because_5_5_rounds_half_up() -> None:
    """RSI 50 alone votes 0: score 0, rating 1 + 4.5 x 1 = 5.5 -> 6; caution confidence
    1/6 x 0.5 x (1 - 0/0.25) = 0.0833."""
    rating = rated("buy", 100.0, {"rsi": 50.0})
    assert (rating["score"], rating["agreement"], rating["rating"]) == (0.0, "caution", 6)
    assert rating["confidence"] == pytest.approx(0.0833)


@pytest.mark.parametrize(
    ("case", "vote", "rating", "words"),
    [
        # |100 - 99.5| / 2 = 0.25 ATR < 0.5: inside the noise, -1 -> rating 1
        (("buy", 99.5, 2.0), -1.0, 1, "stop 99.5 is 0.25 ATR (2) from the price: inside the noise"),
        # 1 / 2 = 0.5 ATR: tight, 0 -> rating 5.5 -> 6
        (("buy", 99.0, 2.0), 0.0, 6, "stop 99 is 0.5 ATR (2) from the price: tight"),
        # 3 / 2 = 1.5 ATR: well placed, +0.5 -> rating 1 + 4.5 x 1.5 = 7.75 -> 8
        (("buy", 97.0, 2.0), 0.5, 8, "stop 97 is 1.5 ATR (2) from the price: well placed"),
        # 5 / 2 = 2.5 ATR: wide, 0
        (("buy", 95.0, 2.0), 0.0, 6, "stop 95 is 2.5 ATR (2) from the price: wide"),
        # 10 / 2 = 5 ATR > 3: a wide risk, -0.5 -> rating 1 + 4.5 x 0.5 = 3.25 -> 3
        (("buy", 90.0, 2.0), -0.5, 3, "stop 90 is 5 ATR (2) from the price: a wide risk"),
        (("buy", 101.0, 2.0), -1.0, 1, "stop 101 on the wrong side of the price 100"),
        (("sell", 103.0, 2.0), 0.5, 8, "stop 103 is 1.5 ATR (2) from the price: well placed"),
        (("sell", 99.0, 2.0), -1.0, 1, "stop 99 on the wrong side of the price 100"),
        # no stop: ATR 6 is 6% of 100 > 5%: high volatility, -0.5
        (("buy", None, 6.0), -0.5, 3, "ATR 6 is 6% of the price 100: high volatility"),
        (("sell", None, 2.0), 0.0, 6, "ATR 2 is 2% of the price 100, no stop sent"),
    ],
)
def test_the_stop_distance_in_atrs(
    case: tuple[Side, float | None, float], vote: float, rating: int, words: str
) -> None:
    """The risk rule alone (weight 0.10 of 0.10): the score is its vote. ``case``: the side,
    the stop and the ATR, at a price of 100."""
    side, stop, atr = case
    got = rated(side, 100.0, {"atr": atr}, stop)
    assert (got["score"], got["rating"]) == (vote, rating)
    assert got["reasons"][0].startswith(words), got["reasons"][0]
    assert got["confidence"] <= 1 / 6 + 1e-4


def test_numbers_are_quoted_compactly_at_any_scale() -> None:
    tiny = rated("buy", 0.00001234, {"sma_20": 0.000012, "sma_50": 0.0000115})
    assert tiny["reasons"][0].startswith("price 0.00001234 above SMA 20 0.000012 and above SMA 50")
    huge = rated("buy", 1_234_567.891, {"rsi": 33.333333})
    assert huge["reasons"][0] == "RSI 33.3333, neither overbought nor oversold (neutral)"
    big = rated("sell", 1_234_567.891, {"sma_20": 1_250_000.0, "sma_50": 1_300_000.0})
    assert big["reasons"][0].startswith("price 1234570 below SMA 20 1250000 and below SMA 50")


LEVEL = st.floats(min_value=1.0, max_value=1_000.0)
INDICATORS = st.fixed_dictionaries(
    {},
    optional={
        "atr": st.floats(min_value=0.0, max_value=50.0),
        "sma_20": LEVEL,
        "sma_50": LEVEL,
        "volume_ratio": st.floats(min_value=0.0, max_value=5.0),
        "bb_upper": LEVEL,
        "bb_lower": LEVEL,
        "stochastic_k": st.floats(min_value=0.0, max_value=100.0),
        "stochastic_d": st.floats(min_value=0.0, max_value=100.0),
    },
)
SIDES = st.sampled_from(["buy", "sell"])
STOPS = st.none() | LEVEL
# A side, a price, the other indicators and a stop (or none).
CONTEXTS = st.tuples(SIDES, LEVEL, INDICATORS, STOPS)
Context = tuple[Side, float, dict[str, float], float | None]


@settings(max_examples=300, deadline=None)
@given(CONTEXTS, st.floats(0.0, 100.0), st.floats(0.0, 100.0))
def test_a_higher_rsi_never_raises_a_buys_score_nor_lowers_a_sells(
    context: Context, rsi: float, more: float
) -> None:
    side, price, others, stop = context
    low, high = sorted((rsi, more))
    at_low = rated(side, price, {**others, "rsi": low}, stop)
    at_high = rated(side, price, {**others, "rsi": high}, stop)
    if side == "buy":
        assert at_high["score"] <= at_low["score"]
        assert at_high["rating"] <= at_low["rating"]
    else:
        assert at_high["score"] >= at_low["score"]
        assert at_high["rating"] >= at_low["rating"]


@settings(max_examples=200, deadline=None)
@given(CONTEXTS, st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_more_volume_never_lowers_the_score_on_either_side(
    context: Context, ratio: float, more: float
) -> None:
    side, price, others, stop = context
    low, high = sorted((ratio, more))
    at_low = rated(side, price, {**others, "volume_ratio": low}, stop)
    at_high = rated(side, price, {**others, "volume_ratio": high}, stop)
    assert at_high["score"] >= at_low["score"]


@settings(max_examples=200, deadline=None)
@given(LEVEL, LEVEL, LEVEL, LEVEL)
def test_a_higher_price_against_the_moving_averages_never_lowers_a_buys_trend_score(
    price: float, more: float, sma_20: float, sma_50: float
) -> None:
    low, high = sorted((price, more))
    averages = {"sma_20": sma_20, "sma_50": sma_50}
    assert rated("buy", high, averages)["score"] >= rated("buy", low, averages)["score"]


@settings(max_examples=200, deadline=None)
@given(LEVEL, INDICATORS, st.floats(min_value=0.0, max_value=100.0))
def test_a_sells_score_is_a_buys_negated_when_only_directional_rules_vote(
    price: float, indicators: dict[str, float], rsi: float
) -> None:
    directional = {
        name: value
        for name, value in {**indicators, "rsi": rsi}.items()
        if name not in {"volume_ratio", "atr"}
    }
    buy, sell = rated("buy", price, directional), rated("sell", price, directional)
    assert sell["score"] == -buy["score"]
    assert sell["confidence"] == buy["confidence"]


@settings(max_examples=300, deadline=None)
@given(CONTEXTS, st.none() | st.floats(0.0, 100.0))
def test_every_rating_is_in_range_and_consistent_with_its_score(
    context: Context, rsi: float | None
) -> None:
    side, price, indicators, stop = context
    rating = rated(side, price, {**indicators, **({} if rsi is None else {"rsi": rsi})}, stop)
    score = rating["score"]
    assert -1.0 <= score <= 1.0
    assert 0.0 <= rating["confidence"] <= 1.0
    assert 1 <= rating["rating"] <= 10
    expected = "confirm" if score >= 0.25 else "reject" if score <= -0.25 else "caution"
    assert rating["agreement"] == expected
    assert len(rating["reasons"]) + len(rating["unread"]) == len(WEIGHTS)
    if rating["reasons"]:
        assert abs(rating["rating"] - (1 + 4.5 * (score + 1))) <= 0.5
