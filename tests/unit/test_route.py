"""The tier rules: the relevance gate and what ``uncertain`` sends to the LLM. Pure."""

from __future__ import annotations

import pytest

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.analyze.route import WHOLE_TEXT, Reason, Thresholds, is_chatter, uncertain
from signalsmith.domain import Opinion, Signals, Verdict

RULE = Thresholds(clean=0.55, contested=0.7)
BULLISH = Signals(bullish=1)


def _opinion(verdict: Verdict, confidence: float, signals: Signals) -> Opinion:
    return Opinion(verdict, confidence, 0.5 if verdict is Verdict.BUY else -0.5, (), signals)


def test_chatter_without_ticker_or_market_words_is_gated() -> None:
    """No ticker and no market vocabulary: chatter. A ticker, a market word, a cashtag or a
    percentage each make it market content."""
    assert is_chatter("what a nice weekend at the lake", ["*"])
    assert not is_chatter("what a nice weekend at the lake", ["AAPL"])
    assert not is_chatter("Net sales rose to EUR 52 mn", ["*"])
    assert not is_chatter("margins up 3% this quarter", ["*"])
    assert not is_chatter("$NVDA", ["*"])


def test_confident_one_way_cues_settle_offline() -> None:
    """A BUY above the clean bar with cues pointing one way is not asked about."""
    assert uncertain(_opinion(Verdict.BUY, 0.8, BULLISH), "AMD", False, RULE) is None


def test_low_confidence_goes_to_the_llm() -> None:
    """Below LLM_UNCERTAIN_BELOW the lexicon cannot settle it."""
    reason = uncertain(_opinion(Verdict.BUY, 0.5, BULLISH), "AMD", False, RULE)
    assert reason is Reason.LOW_CONFIDENCE


@pytest.mark.parametrize(
    "signals",
    [
        Signals(bullish=1, bearish=1),
        Signals(bullish=1, negated=1),
        Signals(bullish=1, asked=1, hedges=1),
        Signals(bullish=1, hedged=1, hedges=1),
    ],
)
def test_contested_cues_need_the_higher_bar(signals: Signals) -> None:
    """Cues both ways, negation, a hedge or a question: asked below the contested bar only."""
    assert uncertain(_opinion(Verdict.BUY, 0.65, signals), "AMD", False, RULE) is Reason.CONTESTED
    assert uncertain(_opinion(Verdict.BUY, 0.75, signals), "AMD", False, RULE) is None


def test_contrast_matters_only_across_several_tickers() -> None:
    """'but' between two tickers may split them; in a one-ticker post it does not contest."""
    opinion = _opinion(Verdict.SELL, 0.65, Signals(bearish=1, contrasted=1))
    assert uncertain(opinion, "AMD", True, RULE) is Reason.CONTESTED
    assert uncertain(opinion, "AMD", False, RULE) is None


def test_sarcasm_and_undecided_cues_always_go() -> None:
    """Sarcasm inverts the literal reading, with or without a cue; cues ending in HOLD are
    undecided."""
    sarcastic = _opinion(Verdict.SELL, 0.9, Signals(bearish=1, sarcasm=True))
    assert uncertain(sarcastic, "AMD", False, RULE) is Reason.SARCASM
    bare = _opinion(Verdict.HOLD, 0.1, Signals(sarcasm=True))
    assert uncertain(bare, "AMD", False, RULE) is Reason.SARCASM
    undecided = _opinion(Verdict.HOLD, 0.3, Signals(bullish=1, bearish=1))
    assert uncertain(undecided, "AMD", False, RULE) is Reason.UNDECIDED


@pytest.mark.parametrize(
    ("signals", "ticker", "reason"),
    [
        (Signals(unscored=1), WHOLE_TEXT, Reason.UNSCORED),
        (Signals(unscored=1), "AMD", Reason.UNSCORED),
        (Signals(), "AMD", Reason.UNREAD),
        (Signals(), WHOLE_TEXT, None),
        (Signals(hedges=1), "AMD", None),
        (Signals(scheduled=1), "AMD", None),
        (Signals(scheduled=1, unscored=1), "AMD", None),
    ],
)
def test_nothing_scored(signals: Signals, ticker: str, reason: Reason | None) -> None:
    """No cue: market terms left unscored go to the LLM, and so does a plain statement about a
    ticker; a question, a whole text with nothing recognised and a calendar notice stay HOLD."""
    assert uncertain(_opinion(Verdict.HOLD, 0.1, signals), ticker, False, RULE) is reason


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon()


@pytest.mark.parametrize(
    ("text", "ticker", "reason"),
    [
        ("Picked up a big bag of $KLAC this week, conviction is high", "KLAC", None),
        ("Stockpiling $ORCL every payday and chilling", "ORCL", Reason.UNREAD),
        ("Does anyone know what $ORCL pays per quarter?", "ORCL", None),
        ("Oracle to host its analyst day on Thursday", "ORCL", None),
        ("Wow, $ORCL guidance day again. Can't wait 🙄", "ORCL", Reason.SARCASM),
        ("It went from 80 to 95 thousand tonnes.", WHOLE_TEXT, Reason.UNSCORED),
        ("Prices at the pump rose.", WHOLE_TEXT, Reason.UNSCORED),
        ("The headquarters are located in Oslo.", WHOLE_TEXT, None),
        ("I think $ORCL is undervalued here", "ORCL", Reason.CONTESTED),
        ("Oracle plunged 25% after a profit warning and a downgrade", "ORCL", None),
    ],
)
def test_routing_of_lexicon_opinions(
    lexicon: Lexicon, text: str, ticker: str, reason: Reason | None
) -> None:
    """The rule on the lexicon's own opinions of hand-written posts."""
    if ticker == WHOLE_TEXT:
        opinion = lexicon.judge(text)
    else:
        opinion = lexicon.judge_for(text, [ticker])[ticker]
    assert uncertain(opinion, ticker, False, RULE) is reason
