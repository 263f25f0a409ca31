"""The market insight's prompt: the shipped template or MARKET_PROMPT_FILE, rendered from one
series' computed values; the numbers it states (all a reply may quote back); and the follow-up
that asks again when a reply fails the check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from signalsmith.errors import ConfigError
from signalsmith.market.candles import format_granularity
from signalsmith.market.indicators import (
    BAND_PERIOD,
    BAND_WIDTH,
    INDICATOR_NAMES,
    MACD_FAST,
    MACD_SIGNAL,
    MACD_SLOW,
    RSI_PERIOD,
    Indicators,
    format_number,
)
from signalsmith.market.trend import MAX_INSIGHT_WORDS

SETTING: Final = "MARKET_PROMPT_FILE"
MISSING: Final = "n/a"  # what a placeholder says for an indicator the series is too short for
RSI_OVERBOUGHT, RSI_OVERSOLD = 70, 30  # the levels the trend read uses, stated to the model

# The settings behind the indicators, stated in the prompt so that a reply may name them
# ("the 14-period RSI") without that counting as an invented number.
_SETTINGS: Final[Mapping[str, float]] = {
    "rsi_period": RSI_PERIOD,
    "rsi_overbought": RSI_OVERBOUGHT,
    "rsi_oversold": RSI_OVERSOLD,
    "band_period": BAND_PERIOD,
    "band_width": BAND_WIDTH,
    "macd_fast_period": MACD_FAST,
    "macd_slow_period": MACD_SLOW,
    "macd_signal_period": MACD_SIGNAL,
    "max_words": MAX_INSIGHT_WORDS,
}
NUMBER_FIELDS: Final[tuple[str, ...]] = (
    "candles",
    "short_window",
    "long_window",
    "candle_size",
    *INDICATOR_NAMES,
    "sell_share_pct",
    *_SETTINGS,
)
PLACEHOLDERS: Final = frozenset({"product", "candle", *NUMBER_FIELDS})

_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_UNIT_WORDS: Final[Mapping[str, str]] = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
}

DEFAULT_PROMPT: Final = """\
You are a seasoned market analyst who writes short, plain notes for active traders.

{product}, from its last {candles} {candle} candles:
- Last close: {last_close}
- Simple moving averages: {sma_short} over {short_window} candles, {sma_long} over \
{long_window} candles
- Exponential moving averages: {ema_short} over {short_window} candles, {ema_long} over \
{long_window} candles
- RSI ({rsi_period} periods; above {rsi_overbought} is overbought, below {rsi_oversold} \
oversold): {rsi}
- Bollinger bands ({band_period} periods, {band_width} standard deviations): upper {bb_upper}, \
lower {bb_lower}
- MACD ({macd_fast_period}/{macd_slow_period}/{macd_signal_period}): line {macd}, signal \
{macd_signal}, histogram {macd_hist}
- Price change across these candles: {price_change} ({price_change_pct}%)
- Volume of the last {short_window} candles against the {short_window} before them: \
{volume_change} ({volume_change_pct}%)
- Today's high and low: {day_high} and {day_low}
- Volume on rising candles: {buy_volume} ({buy_share_pct}%); on falling candles: \
{sell_volume} ({sell_share_pct}%)

Tell traders which way {product} is trending and what buying and selling reveal about the \
mood of the market.
- Use no more than {max_words} words.
- Begin with the substance itself: no greeting, title, preamble or sign-off.
- Mention {product} by name.
- Every number you write must be one listed above, as written or rounded. Do not work out new \
ones: no differences, ratios, levels or targets of your own. Skip any value shown as n/a.
"""


def candle_words(granularity_s: int) -> tuple[str, int]:
    """The candle size as a reader says it (``5-minute``, ``1-hour``) and its count (5, 1)."""
    text = format_granularity(granularity_s)
    return f"{text[:-1]}-{_UNIT_WORDS[text[-1]]}", int(text[:-1])


def prompt_values(indicators: Indicators) -> dict[str, float]:
    """Every number a rendered prompt can state, by placeholder name: the indicators as
    ``Indicators.values()`` rounds them, the selling share, the candle size and the fixed
    settings (RSI 14 and its 70/30 levels, Bollinger 20/2, MACD 12/26/9, the word limit).
    A reply is checked against exactly these (``market.check``)."""
    values = indicators.values()
    if "buy_share_pct" in values:
        values["sell_share_pct"] = round(100.0 - values["buy_share_pct"], 2)
    values["candle_size"] = float(candle_words(indicators.granularity_s)[1])
    values.update({name: float(value) for name, value in _SETTINGS.items()})
    return values


def unknown_placeholders(template: str) -> list[str]:
    """The ``{name}`` placeholders in ``template`` that are not in ``PLACEHOLDERS``, in order."""
    found = (match.group(1) for match in _PLACEHOLDER.finditer(template))
    return list(dict.fromkeys(name for name in found if name not in PLACEHOLDERS))


def build_prompt(template: str, product_id: str, indicators: Indicators) -> str:
    """``template`` with every ``{name}`` placeholder filled in.

    Numbers are written plainly (never in exponent form) at the rounding of
    ``prompt_values``; an indicator the series could not give reads ``n/a``, so a custom
    template never breaks on a short series. ``{product}`` is the product id and ``{candle}``
    the candle size in words (``5-minute``). Only ``{name}`` with a known name is replaced, so
    other braces (a JSON example) stay as written. The candle size comes from ``indicators``,
    which were computed from the series itself, so the prompt cannot disagree with them.
    Raises ``ValueError`` for an unknown placeholder (``load_market_prompt`` refuses those
    at start-up).
    """
    unknown = unknown_placeholders(template)
    if unknown:
        raise ValueError(f"unknown placeholders in the market prompt: {', '.join(unknown)}")
    filled = dict.fromkeys(NUMBER_FIELDS, MISSING)
    filled.update({name: format_number(value) for name, value in prompt_values(indicators).items()})
    filled["product"] = product_id
    filled["candle"] = candle_words(indicators.granularity_s)[0]
    # A function replacement, so nothing in a value is read as a group reference.
    return _PLACEHOLDER.sub(lambda match: filled[match.group(1)], template)


def load_market_prompt(path: Path | None) -> str:
    """The shipped ``DEFAULT_PROMPT`` for ``None``, else the template in MARKET_PROMPT_FILE.

    Raises ``ConfigError`` naming MARKET_PROMPT_FILE when the file cannot be read, is empty,
    names a placeholder that does not exist (a typo would otherwise reach the model as
    literal text), or has no placeholder at all (the model would see none of the values).
    """
    if path is None:
        return DEFAULT_PROMPT
    try:
        # utf-8-sig: an editor's byte-order mark must not become part of the prompt.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(SETTING, f"cannot read {path}: {error}") from error
    if not text.strip():
        raise ConfigError(SETTING, f"{path} is empty")
    unknown = unknown_placeholders(text)
    if unknown:
        named = ", ".join(f"{{{name}}}" for name in unknown)
        raise ConfigError(
            SETTING, f"{path} names unknown placeholders {named}; known: {_known_list()}"
        )
    if not _PLACEHOLDER.search(text):
        raise ConfigError(
            SETTING,
            f"{path} has no placeholder, so the model would see none of the computed values; "
            f"use some of: {_known_list()}",
        )
    return text


def follow_up(problems: Sequence[str]) -> str:
    """The message that asks once more after a reply failed the check, saying why."""
    reasons = "\n".join(f"- {problem}" for problem in problems)
    return (
        "That answer cannot be published, because:\n"
        f"{reasons}\n"
        "Write the note again, keeping to every rule of the first message, and reply with the "
        "note alone."
    )


def _known_list() -> str:
    return ", ".join(f"{{{name}}}" for name in sorted(PLACEHOLDERS))
