"""Company names anchor cues the way symbols do, so each named company gets its own clause."""

from __future__ import annotations

import pytest

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.domain import Verdict

LEXICON = Lexicon()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Netflix up, Disney down after earnings", {"NFLX": Verdict.BUY, "DIS": Verdict.SELL}),
        (
            "Tesla's deliveries beat while Ford's sales slumped",
            {"TSLA": Verdict.BUY, "F": Verdict.SELL},
        ),
        (
            "Bank of America shares fall while Goldman Sachs rallies",
            {"BAC": Verdict.SELL, "GS": Verdict.BUY},
        ),
        ("Sold Exxon and bought Nvidia", {"XOM": Verdict.SELL, "NVDA": Verdict.BUY}),
        # Market share moves from one to the other.
        (
            "Target loses share to Walmart as shoppers trade down",
            {"TGT": Verdict.SELL, "WMT": Verdict.BUY},
        ),
        ("AMD gains share from Intel in servers", {"AMD": Verdict.BUY, "INTC": Verdict.SELL}),
        # A list whose second member is a name of several words reaches both.
        (
            "Ford and General Motors shares sink after tariff news",
            {"F": Verdict.SELL, "GM": Verdict.SELL},
        ),
        # Two names sharing words ("the trade desk", "trade desk") once crashed the anchoring.
        ("The Trade Desk shares jump 10%", {"TTD": Verdict.BUY}),
        # A bank that only rated the stock (no decision of its own) does not take the cue.
        ("JPM upgrades AAPL", {"AAPL": Verdict.BUY}),
        ("$JPM upgrades $AAPL", {"AAPL": Verdict.BUY}),
        ("UBS slashes Tesla price target", {"TSLA": Verdict.SELL}),
    ],
)
def test_each_named_company_gets_its_own_clause(text: str, expected: dict[str, Verdict]) -> None:
    opinions = LEXICON.judge_for(text, list(expected))
    assert {ticker: opinion.verdict for ticker, opinion in opinions.items()} == expected


def test_a_name_said_in_lower_case_anchors_only_when_its_mode_allows() -> None:
    """ "apple" (capitalised names only) is the fruit and anchors nothing: AAPL gets the whole
    text's opinion; "Apple" anchors its own clause. "nvidia" is the company either way."""
    lower = LEXICON.judge_for("apple pie is great, nvidia is crashing", ["AAPL", "NVDA"])
    assert lower["AAPL"] == lower["NVDA"]
    capital = LEXICON.judge_for("Apple is great, nvidia is crashing", ["AAPL", "NVDA"])
    assert capital["AAPL"].verdict is Verdict.BUY
    assert capital["NVDA"].verdict is Verdict.SELL
