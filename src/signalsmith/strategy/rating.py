"""The rules' rating of a strategy signal: does the context its indicators describe support the
side? Pure and cheap (it runs for every signal, with or without a model).

Six rules each vote between -1 (the context argues against the side) and +1 (it supports it).
The directional ones are written for a buy and mirrored for a sell (the vote changes sign):

* trend, weight 0.30 (``sma_20``, ``sma_50``): the mean of three comparisons, each +1 above,
  -1 below, 0 equal: price vs SMA 20, price vs SMA 50, SMA 20 vs SMA 50. A price above both
  with SMA 20 above SMA 50 is an uptrend (+1 for a buy).
* RSI, weight 0.20 (``rsi``): 70 or more is overbought (-1 for a buy), 30 or less oversold
  (+1), between is neutral (0).
* stochastic, weight 0.15 (``stochastic_k``, ``stochastic_d``): two thirds the zone (%K 80 or
  more overbought -1, 20 or less oversold +1, else 0) and one third the cross (%K above %D
  rising +1, below falling -1): overbought and turning down is -1.
* Bollinger, weight 0.15 (``bb_upper``, ``bb_lower``): the price's place (price - lower) /
  (upper - lower): above the upper band is stretched (-1 for a buy), in its top tenth -0.5;
  below the lower band is a mean-reversion entry (+1), in its bottom tenth +0.5; else 0.
* volume, weight 0.10 (``volume_ratio``), either side: 1.5 or more confirms the move (+1),
  0.5 or less is weak (-0.5), else 0.
* risk, weight 0.10 (``atr``, and ``stop_loss`` when sent), either side: the stop's distance
  in ATRs: under 0.5 the stop is inside the noise (-1), 0.5 to 1 tight (0), 1 to 2 good
  (+0.5), 2 to 3 wide (0), over 3 a wide risk (-0.5); a stop on the wrong side of the price
  is -1. Without a stop: ATR above 5% of the price is high volatility (-0.5), else 0.

A rule whose indicators are missing (or unusable: bands not apart, ATR not above 0) does not
vote and ``unread`` says why. The score is the weighted mean of the votes cast (-1..1, four
decimals); agreement is ``confirm`` from 0.25, ``reject`` from -0.25 down, ``caution``
between. The rating is 1 + 4.5 * (score + 1), rounded half up: -1 → 1, 0 → 6 (5.5 rounds up),
1 → 10. Confidence is the share of the six rules that voted times how clear the score is:
min(1, |score| / 0.5) for confirm or reject; for caution at most 0.5, fading to 0 as the
score nears either threshold. No rule voting: caution, rating 5, confidence 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from signalsmith.strategy.contract import Agreement, OfflineRating
from signalsmith.strategy.signals import StrategySignal

CONFIRM_AT: Final = 0.25  # score from which the rules confirm (and -0.25 down: reject)
CLEAR_AT: Final = 0.5  # |score| at which a confirm or reject is fully clear
MAX_CAUTION_CONFIDENCE: Final = 0.5
NO_RULE_RATING: Final = 5
OVERBOUGHT_RSI, OVERSOLD_RSI = 70.0, 30.0
OVERBOUGHT_K, OVERSOLD_K = 80.0, 20.0
BAND_EDGE: Final = 0.1  # the top and bottom tenth of the Bollinger band
HIGH_VOLUME, LOW_VOLUME = 1.5, 0.5
NOISY_STOP_ATR, TIGHT_STOP_ATR, GOOD_STOP_ATR, WIDE_STOP_ATR = 0.5, 1.0, 2.0, 3.0
HIGH_VOLATILITY: Final = 0.05  # ATR / price


@dataclass(frozen=True, slots=True)
class _Read:
    lean: float  # -1..1: for a buy (directional rules) or for either side (the others)
    quote: str  # the values used and what they mean


_Rule = Callable[[StrategySignal], _Read | str]  # a str: why the rule could not vote


def rate_offline(signal: StrategySignal) -> OfflineRating:
    """The rules' rating of ``signal``; the same signal always gets the same rating."""
    votes: list[tuple[float, float, str]] = []  # weight, vote, reason
    unread: list[str] = []
    for name, weight, directional, rule in _RULES:
        read = rule(signal)
        if isinstance(read, str):
            unread.append(f"{name}: {read}")
            continue
        vote = -read.lean if directional and signal.side == "sell" else read.lean
        votes.append((weight, vote, f"{read.quote} ({_effect(vote, signal.side)})"))
    if not votes:
        return _no_rule(unread)
    total = sum(weight for weight, _, _ in votes)
    score = round(max(-1.0, min(1.0, sum(w * v for w, v, _ in votes) / total)), 4)
    agreement = _agreement(score)
    strongest = sorted(votes, key=lambda item: -abs(item[0] * item[1]))  # stable: rule order
    return OfflineRating(
        score=score,
        rating=_rating(score),
        agreement=agreement,
        confidence=_confidence(score, agreement, len(votes) / len(_RULES)),
        reasons=[reason for _, _, reason in strongest],
        unread=unread,
    )


def _no_rule(unread: list[str]) -> OfflineRating:
    return OfflineRating(
        score=0.0,
        rating=NO_RULE_RATING,
        agreement="caution",
        confidence=0.0,
        reasons=[],
        unread=unread,
    )


def _trend(signal: StrategySignal) -> _Read | str:
    ind = signal.indicators
    if (missing := _missing(signal, "sma_20", "sma_50")) is not None:
        return missing
    price, short, long = signal.price, ind["sma_20"], ind["sma_50"]
    lean = (_sign(price - short) + _sign(price - long) + _sign(short - long)) / 3
    shape = {1.0: "uptrend", -1.0: "downtrend"}.get(lean, "mixed trend")
    return _Read(
        lean,
        f"price {_n(price)} {_where(price, short)} SMA 20 {_n(short)} and "
        f"{_where(price, long)} SMA 50 {_n(long)}, SMA 20 {_where(short, long)} SMA 50: {shape}",
    )


def _rsi(signal: StrategySignal) -> _Read | str:
    if (missing := _missing(signal, "rsi")) is not None:
        return missing
    rsi = signal.indicators["rsi"]
    if rsi >= OVERBOUGHT_RSI:
        return _Read(-1.0, f"RSI {_n(rsi)}, overbought")
    if rsi <= OVERSOLD_RSI:
        return _Read(1.0, f"RSI {_n(rsi)}, oversold")
    return _Read(0.0, f"RSI {_n(rsi)}, neither overbought nor oversold")


def _stochastic(signal: StrategySignal) -> _Read | str:
    if (missing := _missing(signal, "stochastic_k", "stochastic_d")) is not None:
        return missing
    k, d = signal.indicators["stochastic_k"], signal.indicators["stochastic_d"]
    zone, zone_word = 0.0, "mid-range"
    if k >= OVERBOUGHT_K:
        zone, zone_word = -1.0, "overbought"
    elif k <= OVERSOLD_K:
        zone, zone_word = 1.0, "oversold"
    cross = _sign(k - d)
    turn = {1.0: "rising", -1.0: "falling"}.get(cross, "flat")
    return _Read(
        (2 * zone + cross) / 3,
        f"stochastic %K {_n(k)} {_where(k, d)} %D {_n(d)}: {zone_word}, {turn}",
    )


def _bollinger(signal: StrategySignal) -> _Read | str:
    if (missing := _missing(signal, "bb_upper", "bb_lower")) is not None:
        return missing
    upper, lower = signal.indicators["bb_upper"], signal.indicators["bb_lower"]
    if upper <= lower:
        return f"bb_upper {_n(upper)} is not above bb_lower {_n(lower)}"
    place = (signal.price - lower) / (upper - lower)
    lean, meaning = _band_zone(place)
    quote = f"price {_n(signal.price)} at {_n(round(place, 2))} of the band {_n(lower)}-{_n(upper)}"
    return _Read(lean, f"{quote}: {meaning}")


def _band_zone(place: float) -> tuple[float, str]:
    """For a buy: 0 is the lower band, 1 the upper."""
    if place > 1:
        return -1.0, "above the upper band, stretched"
    if place < 0:
        return 1.0, "below the lower band, a mean-reversion entry"
    if place >= 1 - BAND_EDGE:
        return -0.5, "near the upper band"
    if place <= BAND_EDGE:
        return 0.5, "near the lower band"
    return 0.0, "inside the band"


def _volume(signal: StrategySignal) -> _Read | str:
    if (missing := _missing(signal, "volume_ratio")) is not None:
        return missing
    ratio = signal.indicators["volume_ratio"]
    if ratio >= HIGH_VOLUME:
        return _Read(1.0, f"volume ratio {_n(ratio)}, confirms the move")
    if ratio <= LOW_VOLUME:
        return _Read(-0.5, f"volume ratio {_n(ratio)}, weak")
    return _Read(0.0, f"volume ratio {_n(ratio)}, ordinary")


def _risk(signal: StrategySignal) -> _Read | str:
    if (missing := _missing(signal, "atr")) is not None:
        return missing
    atr, price, stop = signal.indicators["atr"], signal.price, signal.stop_loss
    if atr <= 0:
        return f"atr {_n(atr)} is not above 0"
    if stop is None:
        share = atr / price
        quote = f"ATR {_n(atr)} is {_n(round(100 * share, 2))}% of the price {_n(price)}"
        if share > HIGH_VOLATILITY:
            return _Read(-0.5, f"{quote}: high volatility")
        return _Read(0.0, f"{quote}, no stop sent")
    if (stop >= price) if signal.side == "buy" else (stop <= price):
        return _Read(-1.0, f"stop {_n(stop)} on the wrong side of the price {_n(price)}")
    return _stop_distance(abs(price - stop) / atr, f"stop {_n(stop)}", atr)


def _stop_distance(distance: float, stop: str, atr: float) -> _Read:
    quote = f"{stop} is {_n(round(distance, 2))} ATR ({_n(atr)}) from the price"
    if distance < NOISY_STOP_ATR:
        return _Read(-1.0, f"{quote}: inside the noise")
    if distance < TIGHT_STOP_ATR:
        return _Read(0.0, f"{quote}: tight")
    if distance <= GOOD_STOP_ATR:
        return _Read(0.5, f"{quote}: well placed")
    if distance <= WIDE_STOP_ATR:
        return _Read(0.0, f"{quote}: wide")
    return _Read(-0.5, f"{quote}: a wide risk")


_RULES: tuple[tuple[str, float, bool, _Rule], ...] = (
    ("trend", 0.30, True, _trend),
    ("rsi", 0.20, True, _rsi),
    ("stochastic", 0.15, True, _stochastic),
    ("bollinger", 0.15, True, _bollinger),
    ("volume", 0.10, False, _volume),
    ("risk", 0.10, False, _risk),
)
WEIGHTS: Final = {name: weight for name, weight, _, _ in _RULES}


def _missing(signal: StrategySignal, *names: str) -> str | None:
    absent = [name for name in names if name not in signal.indicators]
    return f"no {' or '.join(absent)}" if absent else None


def _agreement(score: float) -> Agreement:
    if score >= CONFIRM_AT:
        return "confirm"
    if score <= -CONFIRM_AT:
        return "reject"
    return "caution"


def _rating(score: float) -> int:
    """1..10, linear in the score, rounded half up (0 → 5.5 → 6)."""
    return min(10, max(1, math.floor(round(1 + 4.5 * (score + 1), 9) + 0.5)))


def _confidence(score: float, agreement: Agreement, coverage: float) -> float:
    if agreement == "caution":
        clarity = MAX_CAUTION_CONFIDENCE * (1 - abs(score) / CONFIRM_AT)
    else:
        clarity = min(1.0, abs(score) / CLEAR_AT)
    return round(coverage * clarity, 4)


def _effect(vote: float, side: str) -> str:
    if vote == 0:
        return "neutral"
    mildly = "" if abs(vote) >= 0.75 else "mildly "
    return f"{mildly}{'supports' if vote > 0 else 'against'} the {side}"


def _sign(value: float) -> float:
    return 1.0 if value > 0 else -1.0 if value < 0 else 0.0


def _where(value: float, reference: float) -> str:
    return "above" if value > reference else "below" if value < reference else "level with"


def _n(value: float) -> str:
    """A number in at most six significant digits, never in exponent form: 189.5, 0.00001234."""
    text = f"{value:.6g}"
    if "e" not in text:
        return text
    text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
