"""Raters versus subjects: a firm that only rates another stock gets no verdict of its own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalsmith.decide import decide, overall
from signalsmith.domain import Opinion, Status, Verdict, Vote
from signalsmith.raters import Mention, raters
from signalsmith.tickers import TickerExtractor

EXTRACTOR = TickerExtractor()


@pytest.mark.parametrize(
    ("text", "subjects", "rater"),
    [
        ("Tesla downgraded to sell at UBS", ("TSLA",), "UBS"),
        ("Goldman Sachs cuts price target on AMD after weak guidance", ("AMD",), "GS"),
        ("Morgan Stanley's Adam Jonas says Tesla is overvalued", ("TSLA",), "MS"),
        ("Nvidia upgraded to buy by BofA", ("NVDA",), "BAC"),
        ("Apple Inc. was downgraded at Barclays", ("AAPL",), "BCS"),
        ("JPMorgan sees 20% upside in Nvidia", ("NVDA",), "JPM"),
        ("KeyBanc cuts Oracle to sector weight after capex guidance balloons", ("ORCL",), "KEY"),
        ("lol MS just slapped an underweight on $RIVN with a $6 target", ("RIVN",), "MS"),
        ("BofA downgraded $CCL this morning and I bought more", ("CCL",), "BAC"),
        ("Wells Fargo raises Apple price target to $250", ("AAPL",), "WFC"),
        ("Moody's downgrades Boeing to junk", ("BA",), "MCO"),
        ("Morgan Stanley downgraded at Wells Fargo", ("MS",), "WFC"),
        ("Barclays downgrades Bank of America", ("BAC",), "BCS"),
        (
            "Goldman Sachs (NYSE:GS) downgrades Advanced Micro Devices (NASDAQ:AMD) to sell",
            ("AMD",),
            "GS",
        ),
        ("Tesla will fall, says UBS", ("TSLA",), "UBS"),
        ("AMD is a buy, according to Jefferies", ("AMD",), "JEF"),
        # The stock it rated need not be one we know: the firm still only rated it.
        ("BMO upgrades Frobnicator Corp to outperform", (), "BMO"),
    ],
)
def test_the_firm_that_rates_is_not_a_subject(
    text: str, subjects: tuple[str, ...], rater: str
) -> None:
    found, rating = EXTRACTOR.roles(text)
    assert found == subjects
    assert [r.symbol for r in rating] == [rater]
    assert EXTRACTOR.extract(text) == subjects


@pytest.mark.parametrize(
    ("text", "subjects"),
    [
        ("UBS posts record profit", ("UBS",)),
        ("Goldman Sachs shares jump after trading revenue beats", ("GS",)),
        ("Goldman says trading revenue jumped", ("GS",)),
        ("UBS upgrades its outlook for the year", ("UBS",)),
        ("Citi fined by regulators", ("C",)),
        # Named as a rater in one sentence and as the news in the next: a subject.
        ("UBS cuts Tesla to sell; UBS shares slip 2%", ("UBS", "TSLA")),
        # A product "upgrade" is not a rating.
        ("Microsoft upgrades Azure with NVDA chips", ("MSFT", "NVDA")),
        ("Sold GS, bought MS", ("GS", "MS")),
        # Only research firms rate: a company cutting a supplier is doing business.
        ("Apple cut Qualcomm from the iPhone modem", ("AAPL", "QCOM")),
        # Named after "from" or "says" without a rating: the bank's own news, or what is
        # talked about.
        ("Customers pulled $20bn from Wells Fargo as JPMorgan gained deposits", ("WFC", "JPM")),
        ("Jim Cramer says Goldman Sachs is a buy, also likes Apple", ("GS", "AAPL")),
        # "cuts" with a target only in a later clause is the company's own move.
        ("Tesla cuts prices again, price target lowered at UBS", ("TSLA",)),
    ],
)
def test_a_firm_that_is_the_news_stays_a_subject(text: str, subjects: tuple[str, ...]) -> None:
    assert EXTRACTOR.extract(text) == subjects


def test_the_rater_is_named_as_written() -> None:
    _, rating = EXTRACTOR.roles("Goldman Sachs cuts price target on AMD")
    assert [(r.symbol, r.name) for r in rating] == [("GS", "Goldman Sachs")]


@given(st.text(max_size=400), st.lists(st.tuples(st.integers(0, 400), st.sampled_from("AB"))))
def test_any_text_and_mentions_give_raters_among_the_mentions(
    text: str, spots: list[tuple[int, str]]
) -> None:
    mentions = [Mention(at, min(len(text), at + 3), symbol) for at, symbol in sorted(spots)]
    found = raters(text, [m for m in mentions if m.start <= len(text)])
    assert {r.symbol for r in found} <= {m.symbol for m in mentions}


def test_the_whole_text_follows_its_tickers() -> None:
    buy = decide("A", [Vote("x", "s", Status.OK, Opinion(Verdict.BUY, 0.8, 0.6))])
    hold = decide("B", [Vote("x", "s", Status.OK, Opinion(Verdict.HOLD, 0.4, -0.18))])
    sell = decide("C", [Vote("x", "s", Status.OK, Opinion(Verdict.SELL, 0.6, -0.4))])
    other_hold = decide("D", [Vote("x", "s", Status.OK, Opinion(Verdict.HOLD, 0.2, -0.1))])
    one_way = overall("*", [buy, hold])
    assert (one_way.verdict, one_way.score, one_way.confidence) == (Verdict.BUY, 0.6, 0.8)
    mixed = overall("*", [buy, sell])
    assert (mixed.verdict, mixed.confidence) == (Verdict.HOLD, 0.0)
    assert mixed.reasoning == "mixed: A BUY, C SELL"
    # Two HOLDs leaning the same way stay HOLD at the top (they once summed to a SELL).
    quiet = overall("*", [hold, other_hold])
    assert (quiet.verdict, quiet.score, quiet.confidence) == (Verdict.HOLD, -0.14, 0.3)


def test_a_producers_tickers_are_checked_for_raters_too() -> None:
    """A producer listing every symbol it saw ("TSLA,UBS") does not make the rater a subject."""
    raters = EXTRACTOR.raters_among("UBS cuts Tesla to sell", ["TSLA", "UBS"])
    assert [r.symbol for r in raters] == ["UBS"]
    assert EXTRACTOR.raters_among("UBS posts record profit", ["UBS"]) == ()
    assert EXTRACTOR.raters_among("UBS cuts Tesla to sell", ["TSLA"]) == ()
