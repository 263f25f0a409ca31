"""The cheap check that runs before any model: does a text talk about markets at all. Pure; a word
list, no network. (What the lexicon recognised but could not score, it reports itself.)
"""

from __future__ import annotations

import re
from typing import Final


def _vocabulary(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that make a text market content even when no cue scored it: instruments, venues,
# reporting, trading lingo. A text without a ticker and without any of these is chatter.
_MARKET_WORDS: Final = _vocabulary(
    """
    stock stocks share shares shareholder shareholders equity equities market markets
    invest invests invested investing investment investments investor investors
    trade trades traded trading trader traders portfolio position positions stake
    price prices priced valuation valued earnings revenue revenues sales profit profits loss
    losses margin margins dividend dividends buyback repurchase eps ebit ebitda guidance
    outlook forecast forecasts quarter quarterly fiscal results analyst analysts upgrade
    downgrade rating target ipo etf etfs fund funds index indices nasdaq dow nyse sp500 spx
    bond bonds yield yields treasury treasuries rates fed inflation cpi recession gdp
    crypto bitcoin btc ethereum eth altcoin altcoins coin coins token tokens staking defi
    options option calls puts strike expiry leaps bull bulls bullish bear bears bearish
    rally selloff long short shorts shorting squeeze hodl moon yolo dip bagholder
    company companies ceo cfo board merger acquisition acquire acquires acquired ipo
    mn bn million billion eur usd sek nok dkk gbp jpy percent
    """
)
_MARKET_MARKS: Final = re.compile(r"%|\$[A-Za-z]|[$€£¥]\s?\d|🚀|📈|📉|🐻|🐂|💎")

_WORD: Final = re.compile(r"[a-z0-9&][a-z0-9&'\-]*")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def is_market_related(text: str) -> bool:
    """Whether a text uses any market vocabulary, a cashtag, a currency amount or a percentage."""
    return bool(_MARKET_MARKS.search(text)) or not _words(text).isdisjoint(_MARKET_WORDS)
