"""Analyst ratings and company statements that state a view outright, and what they do to the
cues beside them; which capitalised words may compete with a requested ticker for a cue."""

from __future__ import annotations

import pytest

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.domain import Verdict

BUY, SELL, HOLD = Verdict.BUY, Verdict.SELL, Verdict.HOLD


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon()


def verdict(lexicon: Lexicon, text: str, ticker: str) -> Verdict:
    return lexicon.judge_for(text, [ticker])[ticker].verdict


@pytest.mark.parametrize(
    ("text", "ticker", "expected"),
    [
        # The rating a stock moves from is history; the move is the news.
        ("Deutsche Bank upgrades Ford to hold from sell, says worst is priced in", "F", BUY),
        ("Barclays cuts Nike to underweight from equal weight", "NKE", SELL),
        ("Jefferies moves Pfizer to buy from hold after the trial data", "PFE", BUY),
    ],
)
def test_the_rating_moved_from_does_not_score(
    lexicon: Lexicon, text: str, ticker: str, expected: Verdict
) -> None:
    assert verdict(lexicon, text, ticker) is expected


@pytest.mark.parametrize(
    ("text", "ticker"),
    [
        ("Wells Fargo initiates Carnival at equal weight, sees balanced risk after a rally", "CCL"),
        ("Rosenblatt keeps neutral on Micron, sees memory prices stabilizing but not rising", "MU"),
        ("Citi starts Uber with a neutral rating, likes the growth but fears the costs", "UBER"),
        ("Oracle reaffirms fiscal-year cloud growth target", "ORCL"),
        ("Tesla reaffirms delivery growth target; shares flat", "TSLA"),
    ],
)
def test_a_neutral_view_stated_outright_is_hold(lexicon: Lexicon, text: str, ticker: str) -> None:
    """The rating is the conclusion; the reasons beside it weigh less, and the words naming a
    kept target are no news."""
    assert verdict(lexicon, text, ticker) is HOLD


@pytest.mark.parametrize(
    ("text", "ticker", "expected"),
    [
        # A rating word before the noun makes it an analyst's call, not kept guidance.
        ("Goldman reiterates buy on Nvidia, $1,200 target", "NVDA", BUY),
        ("Oracle reaffirms its outlook as cloud revenue jumps 30%", "ORCL", BUY),
        ("UBS downgrades Tesla to neutral, sees demand slowing", "TSLA", SELL),
    ],
)
def test_a_stance_does_not_quiet_what_it_does_not_cover(
    lexicon: Lexicon, text: str, ticker: str, expected: Verdict
) -> None:
    assert verdict(lexicon, text, ticker) is expected


def test_an_unlisted_capitalised_word_does_not_take_a_tickers_cue(lexicon: Lexicon) -> None:
    """ "NBA" is no listed symbol: the record low is Warner Bros Discovery's."""
    text = "Warner Bros Discovery shares hit record low after NBA loss"
    assert verdict(lexicon, text, "WBD") is SELL


def test_a_listed_symbol_named_unasked_still_takes_its_own_cue(lexicon: Lexicon) -> None:
    """Only NVDA was asked about; AMD's fall is AMD's, so NVDA keeps its own rise."""
    assert verdict(lexicon, "NVDA jumps 5% while AMD sinks 8%", "NVDA") is BUY
