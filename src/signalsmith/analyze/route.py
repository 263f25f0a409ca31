"""Which tier settles a (post, ticker): the relevance gate, and the ``uncertain`` rule that sends
to the LLM only what the lexicon's own opinion cannot settle. Pure.

The rule reads the lexicon's ``Opinion``: its verdict, its confidence and the ``Signals`` the
lexicon counted on the way (cues each way, negations, hedges, questions, sarcasm, contrast,
market terms it recognised but could not score, dates and upcoming events).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from signalsmith.domain import Opinion, Signals, Verdict
from signalsmith.prefilter import is_market_related

WHOLE_TEXT: Final = "*"  # the pseudo-ticker ``analyze`` and ``eval`` use for a text with none


class Reason(StrEnum):
    """Why the LLM is asked about a ticker."""

    POLICY = "policy always"
    LOW_CONFIDENCE = "low confidence"
    CONTESTED = "contested cues, not confident enough"
    SARCASM = "sarcasm"
    UNDECIDED = "cues without a direction"
    UNSCORED = "market terms no cue scored"
    UNREAD = "no cue for a ticker the text states something about"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The lexicon confidence that settles a ticker without the LLM."""

    clean: float = 0.55  # every cue points one way (LLM_UNCERTAIN_BELOW)
    contested: float = 0.7  # cues both ways, negation, a hedge or question, contrast across
    # tickers (LLM_CONTESTED_BELOW)


IRRELEVANT: Final = "no ticker and no market vocabulary: not market content, the LLM was not asked"


def is_chatter(text: str, tickers: Sequence[str]) -> bool:
    """The relevance gate: no ticker (only the whole-text target) and no market vocabulary."""
    return all(ticker == WHOLE_TEXT for ticker in tickers) and not is_market_related(text)


def uncertain(
    opinion: Opinion, ticker: str, several_tickers: bool, thresholds: Thresholds
) -> Reason | None:
    """Why the lexicon's opinion of ``ticker`` cannot settle it, or None when it can."""
    signals = opinion.signals
    if signals.sarcasm:
        return Reason.SARCASM
    if not signals.cues:
        return _nothing_scored(signals, ticker)
    if opinion.verdict is Verdict.HOLD:
        return Reason.UNDECIDED
    if _contested(signals, several_tickers):
        return Reason.CONTESTED if opinion.confidence < thresholds.contested else None
    return Reason.LOW_CONFIDENCE if opinion.confidence < thresholds.clean else None


def _contested(signals: Signals, several_tickers: bool) -> bool:
    """Cues both ways, a negation, a hedge or a question, or a contrast that may split tickers."""
    mixed = signals.bullish > 0 and signals.bearish > 0
    hedged = signals.negated + signals.hedged + signals.asked > 0
    return mixed or hedged or (signals.contrasted > 0 and several_tickers)


def _nothing_scored(signals: Signals, ticker: str) -> Reason | None:
    """No cue scored: HOLD stands for a notice of a date or event and for a question; market
    terms the lexicon could not score, or a plain statement about a ticker, go to the LLM."""
    if signals.scheduled:
        return None  # "to report Q3 results on Tuesday": a calendar, not a view
    if signals.unscored:
        return Reason.UNSCORED
    if ticker != WHOLE_TEXT and not signals.hedges:
        return Reason.UNREAD  # "oil going back to 90. $XOM and chill": a view in other words
    return None
