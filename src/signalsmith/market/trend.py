"""A deterministic trend read of one series' indicators, and the plain insight text made from it.

Nine signals each vote between -1 (sell) and +1 (buy). A group's vote is the mean over all its
signals, one that could not be read voting 0 (no evidence); the score is the weighted sum:

* trend following, weight 0.5: close vs the short EMA, short EMA vs long EMA, close vs the long
  SMA, the MACD histogram's sign, and the change over the whole series. "Level" (vote 0) means
  within a tenth of an ATR (a whole ATR for the series' change), so noise does not vote.
* mean reversion, weight 0.3: RSI above 70 (-1) or below 30 (+1); stochastic overbought when %K
  or %D is above 80 (-1 once %K is under %D, the turn; -0.5 while it still rises) and the mirror
  below 20; the close above the upper band (-1) or in its top tenth (-0.5), mirrored below.
* momentum, weight 0.2: buying volume's share of directional volume, 50% votes 0 and 75% (25%)
  votes +1 (-1).

The score reads BUY at 0.25 or more, SELL at -0.25 or less, HOLD between, so signals that
disagree or are weak hold. Direction and strength come from the trend group alone: up or down
when its vote is at least 0.5 either way. Confidence is the share of signals that could be read
times how clear the score is (|score| / 0.5, at most 1); a HOLD claims at most 0.5, fading to 0
as the score nears either threshold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from signalsmith.domain import Verdict
from signalsmith.market.indicators import Indicators, format_number

TrendDirection = Literal["up", "down", "sideways"]
Group = Literal["trend", "reversion", "momentum"]

WEIGHTS: Mapping[Group, float] = {"trend": 0.5, "reversion": 0.3, "momentum": 0.2}
ACT_AT = 0.25  # |score| from which the read says BUY or SELL
CLEAR_AT = 0.5  # |score| at which a BUY or SELL is fully clear
TRENDING_AT = 0.5  # |mean trend vote| from which the direction is up or down
MAX_HOLD_CONFIDENCE = 0.5
MAX_INSIGHT_WORDS = 100


class TrendRead(BaseModel):
    """What the indicators say, and why: ``reasons`` quote the values used at the rounding of
    ``Indicators.values()``, the signal that moved the score most first; ``unread`` names the
    signals whose indicators were missing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    direction: TrendDirection
    strength: float  # 0..1, the trend group's agreement
    verdict: Verdict
    confidence: float  # 0..1
    score: float  # -1..1, the weighted vote
    reasons: tuple[str, ...]
    unread: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Vote:
    vote: float  # -1 sell .. +1 buy
    reason: str


_Signal = Callable[[Indicators, Mapping[str, float]], _Vote | None]


def read_trend(indicators: Indicators) -> TrendRead:
    """The trend, a verdict and a confidence from ``indicators``; no model, same input same read."""
    shown = indicators.values()
    votes: dict[str, _Vote] = {}
    for name, _, signal in _SIGNALS:
        if (vote := signal(indicators, shown)) is not None:
            votes[name] = vote
    means = {group: _mean(votes, group) for group in WEIGHTS}
    score = sum(WEIGHTS[group] * mean for group, mean in means.items())
    verdict = _verdict(score)
    pull = {name: abs(_SHARE[name] * vote.vote) for name, vote in votes.items()}
    return TrendRead(
        direction=_direction(means["trend"]),
        strength=abs(means["trend"]),
        verdict=verdict,
        confidence=_confidence(score, verdict, len(votes) / len(_SIGNALS)),
        score=score,
        reasons=tuple(votes[name].reason for name in sorted(votes, key=lambda n: -pull[n])),
        unread=tuple(name for name, _, _ in _SIGNALS if name not in votes),
    )


def render_insight(product_id: str, indicators: Indicators, read: TrendRead) -> str:
    """At most 100 plain words that open with the product: the read, then its strongest reasons,
    then the last close and the day's range. Every number comes from ``indicators.values()``,
    so the text can be checked the same way a model's insight is."""
    if not product_id or product_id.split() != [product_id]:
        raise ValueError(f"product_id must be one word such as BTC-USD, not {product_id!r:.40}")
    shown = indicators.values()
    opening = (
        f"{product_id}: {_strength_word(read.strength)} {read.direction} trend, "
        f"{read.verdict.value} with {_confidence_word(read.confidence)} confidence."
    )
    closing = _closing(shown)
    sentences = [opening]
    budget = MAX_INSIGHT_WORDS - _words(opening) - _words(closing)
    for reason in read.reasons:
        sentence = reason[0].upper() + reason[1:] + "."
        if _words(sentence) > budget:
            break
        sentences.append(sentence)
        budget -= _words(sentence)
    sentences.append(closing)
    return " ".join(sentence for sentence in sentences if sentence)


def _closing(shown: Mapping[str, float]) -> str:
    if "last_close" not in shown:
        return ""
    text = f"Last close {format_number(shown['last_close'])}"
    if "day_low" in shown and "day_high" in shown:
        text += (
            f", day range {format_number(shown['day_low'])} to {format_number(shown['day_high'])}"
        )
    return text + "."


def _close_vs_short_ema(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    if ind.last_close is None or ind.ema_short is None:
        return None
    vote, side = _compare(ind.last_close, ind.ema_short, _level_band(ind))
    return _Vote(
        vote,
        f"close {format_number(shown['last_close'])} {side} the {ind.short_window}-candle EMA "
        f"{format_number(shown['ema_short'])}",
    )


def _short_vs_long_ema(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    if ind.ema_short is None or ind.ema_long is None:
        return None
    vote, side = _compare(ind.ema_short, ind.ema_long, _level_band(ind))
    return _Vote(
        vote,
        f"{ind.short_window}-candle EMA {format_number(shown['ema_short'])} {side} the "
        f"{ind.long_window}-candle EMA {format_number(shown['ema_long'])}",
    )


def _close_vs_long_sma(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    if ind.last_close is None or ind.sma_long is None:
        return None
    vote, side = _compare(ind.last_close, ind.sma_long, _level_band(ind))
    return _Vote(
        vote,
        f"close {format_number(shown['last_close'])} {side} the {ind.long_window}-candle SMA "
        f"{format_number(shown['sma_long'])}",
    )


def _macd_histogram(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    if ind.macd_hist is None:
        return None
    vote, _ = _compare(ind.macd_hist, 0.0, _level_band(ind))
    sign = {1.0: "positive", -1.0: "negative", 0.0: "flat"}[vote]
    return _Vote(vote, f"MACD histogram {format_number(shown['macd_hist'])}, {sign}")


def _series_change(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    if ind.price_change is None or ind.price_change_pct is None:
        return None
    vote, _ = _compare(ind.price_change, 0.0, 10 * _level_band(ind))
    word = {1.0: "up", -1.0: "down", 0.0: "little changed"}[vote]
    return _Vote(
        vote,
        f"price {word} {format_number(abs(shown['price_change_pct']))}% "
        f"({format_number(abs(shown['price_change']))}) over {ind.candles} candles",
    )


def _rsi(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    if ind.rsi is None:
        return None
    rsi = format_number(shown["rsi"])
    if ind.rsi > 70:
        return _Vote(-1.0, f"RSI {rsi}, overbought")
    if ind.rsi < 30:
        return _Vote(1.0, f"RSI {rsi}, oversold")
    return _Vote(0.0, f"RSI {rsi}, neither overbought nor oversold")


def _stochastic(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    """Overbought while either line is above 80: %K under %D there is the turn itself, so it
    votes fully even as %K drops out of the zone; the mirror for oversold."""
    if ind.stoch_k is None or ind.stoch_d is None:
        return None
    k, d = ind.stoch_k, ind.stoch_d
    quoted = (
        f"stochastic %K {format_number(shown['stoch_k'])} (%D {format_number(shown['stoch_d'])})"
    )
    if max(k, d) > 80:
        turned = k < d
        return _Vote(-1.0 if turned else -0.5, f"{quoted}, overbought" + _turning(turned, "down"))
    if min(k, d) < 20:
        turned = k > d
        return _Vote(1.0 if turned else 0.5, f"{quoted}, oversold" + _turning(turned, "up"))
    return _Vote(0.0, f"{quoted}, mid-range")


def _turning(turned: bool, way: str) -> str:
    return f" and turning {way}" if turned else ""


def _band_position(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    if ind.bb_position is None:
        return None
    position = ind.bb_position
    if position > 1:
        return _Vote(-1.0, f"close above the upper band {format_number(shown['bb_upper'])}")
    if position < 0:
        return _Vote(1.0, f"close below the lower band {format_number(shown['bb_lower'])}")
    at = f"at {format_number(shown['bb_position'])} of the Bollinger band"
    if position >= 0.9:
        return _Vote(-0.5, f"close {at}, near the upper band")
    if position <= 0.1:
        return _Vote(0.5, f"close {at}, near the lower band")
    return _Vote(0.0, f"close {at}")


def _buying_share(ind: Indicators, shown: Mapping[str, float]) -> _Vote | None:
    if ind.buy_share_pct is None:
        return None
    vote = max(-1.0, min(1.0, (ind.buy_share_pct - 50) / 25))
    return _Vote(vote, f"buying {format_number(shown['buy_share_pct'])}% of directional volume")


_SIGNALS: tuple[tuple[str, Group, _Signal], ...] = (
    ("close vs short EMA", "trend", _close_vs_short_ema),
    ("short vs long EMA", "trend", _short_vs_long_ema),
    ("close vs long SMA", "trend", _close_vs_long_sma),
    ("MACD histogram", "trend", _macd_histogram),
    ("change over the series", "trend", _series_change),
    ("RSI", "reversion", _rsi),
    ("stochastic", "reversion", _stochastic),
    ("Bollinger position", "reversion", _band_position),
    ("buying share", "momentum", _buying_share),
)
_GROUP_OF: Mapping[str, Group] = {name: group for name, group, _ in _SIGNALS}
_GROUP_SIZE: Mapping[Group, int] = Counter(group for _, group, _ in _SIGNALS)
# Each signal's weight in the score: its group's weight shared among the group's signals.
_SHARE: Mapping[str, float] = {
    name: WEIGHTS[group] / _GROUP_SIZE[group] for name, group in _GROUP_OF.items()
}


def _compare(value: float, reference: float, band: float) -> tuple[float, str]:
    """+1 above, -1 below, 0 within ``band`` of the reference; and the word for it."""
    if value > reference + band:
        return 1.0, "above"
    if value < reference - band:
        return -1.0, "below"
    return 0.0, "level with"


def _level_band(ind: Indicators) -> float:
    """A tenth of the average true range; without an ATR, 0.05% of the close."""
    if ind.atr is not None:
        return 0.1 * ind.atr
    return 0.0005 * abs(ind.last_close or 0.0)


def _mean(votes: Mapping[str, _Vote], group: Group) -> float:
    """The group's mean vote; a signal that could not be read votes 0, as no evidence should."""
    mine = [vote.vote for name, vote in votes.items() if _GROUP_OF[name] == group]
    return sum(mine) / _GROUP_SIZE[group]


def _verdict(score: float) -> Verdict:
    if score >= ACT_AT:
        return Verdict.BUY
    if score <= -ACT_AT:
        return Verdict.SELL
    return Verdict.HOLD


def _direction(trend: float) -> TrendDirection:
    if trend >= TRENDING_AT:
        return "up"
    if trend <= -TRENDING_AT:
        return "down"
    return "sideways"


def _confidence(score: float, verdict: Verdict, coverage: float) -> float:
    if verdict is Verdict.HOLD:
        return coverage * MAX_HOLD_CONFIDENCE * (1 - abs(score) / ACT_AT)
    return coverage * min(1.0, abs(score) / CLEAR_AT)


def _strength_word(strength: float) -> str:
    if strength >= 0.75:
        return "strong"
    return "moderate" if strength >= 0.5 else "weak"


def _confidence_word(confidence: float) -> str:
    if confidence >= 0.7:
        return "high"
    return "moderate" if confidence >= 0.4 else "low"


def _words(text: str) -> int:
    return len(text.split())
