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


# (text, what each ticker asked about gets).
CASES: tuple[tuple[str, dict[str, Verdict]], ...] = (
    # The rating a stock moves from is history; the move is the news.
    ("Deutsche Bank upgrades Ford to hold from sell, says worst is priced in", {"F": BUY}),
    ("Barclays cuts Nike to underweight from equal weight", {"NKE": SELL}),
    ("Jefferies moves Pfizer to buy from hold after the trial data", {"PFE": BUY}),
    # A neutral rating or kept guidance is the conclusion: the reasons beside it weigh less,
    # and the words naming a kept target are no news.
    (
        "Wells Fargo initiates Carnival at equal weight, sees balanced risk after a rally",
        {"CCL": HOLD},
    ),
    (
        "Rosenblatt keeps neutral on Micron, sees memory prices stabilizing but not rising",
        {"MU": HOLD},
    ),
    (
        "Citi starts Uber with a neutral rating, likes the growth but fears the costs",
        {"UBER": HOLD},
    ),
    ("Oracle reaffirms fiscal-year cloud growth target", {"ORCL": HOLD}),
    ("Tesla reaffirms delivery growth target; shares flat", {"TSLA": HOLD}),
    # ... but only what they cover: a rating word before the noun makes it an analyst's call,
    # news in another clause still counts, and a downgrade to neutral is a downgrade.
    ("Goldman reiterates buy on Nvidia, $1,200 target", {"NVDA": BUY}),
    ("Oracle reaffirms its outlook as cloud revenue jumps 30%", {"ORCL": BUY}),
    ("UBS downgrades Tesla to neutral, sees demand slowing", {"TSLA": SELL}),
    # A firm that rates a stock and is news itself: the rating stays with the stock.
    ("UBS downgrades Tesla to sell. UBS shares rise 2% after earnings", {"UBS": BUY, "TSLA": SELL}),
    ("UBS raises its Tesla price target. UBS shares flat", {"UBS": HOLD, "TSLA": BUY}),
    ("UBS raises price target on Tesla; UBS cuts 3,000 jobs", {"UBS": SELL, "TSLA": BUY}),
    # A rating kept is less news than the target cut beside it; alone it is still a view.
    ("BofA trims Netflix price target to $720 but keeps buy rating", {"NFLX": HOLD}),
    ("Needham maintains buy rating on Apple", {"AAPL": BUY}),
    ("Barclays trims Target's price target", {"TGT": SELL}),
    # A risk cut is good news; a miss "a touch below" forecasts is a small one.
    ("Novartis heart drug cuts stroke risk in late-stage trial", {"NVS": BUY}),
    ("AstraZeneca profit jumps, revenue a touch below forecasts", {"AZN": BUY}),
    # A ticker before a change word with an object acts; the object is what changes.
    ("Tesla raised prices again. Buyers didn't come. Q2 deliveries fall 5%", {"TSLA": SELL}),
    ("Tesla raised its delivery guidance", {"TSLA": BUY}),
    ("Tesla cut by a third in a week", {"TSLA": SELL}),
    # Credit losses are bad when they grow.
    ("Bank of America sets aside more for bad loans as card defaults rise", {"BAC": SELL}),
    ("Capital One delinquencies fall for a third month", {"COF": BUY}),
    # A change "in line with" the past is no news.
    ("Progressive monthly premiums grow in line with last year's pace", {"PGR": HOLD}),
    ("Progressive monthly premiums grow 12%, fastest in a decade", {"PGR": BUY}),
    # Valuation against a fair value estimate.
    (
        "Morningstar says Palantir trades at more than double its fair value estimate",
        {"PLTR": SELL},
    ),
    ("Morningstar sees Ford trading 30% below its fair value", {"F": BUY}),
    # A takeover's premium is the target's; a blocked one takes it away.
    ("Judge blocks Kroger's takeover of Albertsons", {"KR": HOLD, "ACI": SELL}),
    ("Kroger's takeover of Albertsons approved by FTC", {"KR": HOLD, "ACI": BUY}),
    # "not so much" answers the clause before it the other way round.
    ("Delta crushed it; United not so much", {"DAL": BUY, "UAL": SELL}),
    ("AMD beat estimates, Intel not so much", {"AMD": BUY, "INTC": SELL}),
    # A rotation's links come after its verb: an earlier "to Ford" is no side of it.
    (
        "Analysts point to Ford as Target loses share to Walmart",
        {"F": HOLD, "TGT": SELL, "WMT": BUY},
    ),
    # A gain reported follows the position named nearest before it.
    (
        "$PLTR calls printing, $SNOW puts printing too. hedged and happy",
        {"PLTR": BUY, "SNOW": SELL},
    ),
    ("Bought $SPY puts yesterday. Printing", {"SPY": SELL}),
    # A portfolio update: each position its own verdict, "not adding, not selling" is a hold,
    # and good news put off ("going to take years") is no good news.
    (
        "exited $NKE completely, the turnaround is going to take years. $LULU stays, not adding,"
        " not selling. new position in $DECK, Hoka is still taking share.",
        {"NKE": SELL, "LULU": HOLD, "DECK": BUY},
    ),
    # A post naming its positions is the poster's own account: the position's move since
    # entry does not outweigh the position.
    ("Pair trade update: long $HD, short $LOW is up 6% since entry", {"HD": BUY, "LOW": SELL}),
    ("Trimmed $AAPL to fund more $MSFT", {"AAPL": SELL, "MSFT": BUY}),
)


# Ordinary text the rules above must leave alone: each narrows one of them.
NARROWED: tuple[tuple[str, dict[str, Verdict]], ...] = (
    # A research firm that is the stock rated keeps the action; a bank can be the rated one.
    ("Goldman Sachs upgraded to buy on Apple Card exit", {"GS": BUY, "AAPL": HOLD}),
    ("UBS downgrades Bank of America to sell", {"UBS": HOLD, "BAC": SELL}),
    ("Bank of America downgraded to sell by UBS", {"BAC": SELL, "UBS": HOLD}),
    # Kept guidance keeps only the words naming it, not news beside it.
    ("Nvidia confirms record demand and raises its outlook", {"NVDA": BUY}),
    ("Morgan Stanley backs Tesla, lifts target to $400", {"TSLA": BUY}),
    # A neutral rating quiets its own ticker's clauses, and "at neutral" needs a rating.
    ("Barclays starts Nvidia at overweight and AMD at equal weight", {"NVDA": BUY, "AMD": HOLD}),
    ("The Fed is at neutral, and Nvidia soared 10%", {"NVDA": BUY}),
    # "not so much" answers the nearest view before it, for the tickers named with it.
    ("$DAL crushed it; $UAL, $AAL not so much", {"DAL": BUY, "UAL": SELL, "AAL": SELL}),
    ("$DAL crushed it; $UAL, sadly, not so much", {"DAL": BUY, "UAL": SELL}),
    ("Delta crushed it; the rest of the airlines not so much", {"DAL": BUY}),
    ("Apple beat estimates, and I'm not so much worried about China", {"AAPL": BUY}),
    # Positions are positions: "long enough" is none, "calls it" and "puts X first" are verbs.
    ("Holding $SPY puts long enough, printing", {"SPY": SELL}),
    ("Bought $SPY puts. Printing, unlike my calls", {"SPY": SELL}),
    (
        "Nvidia shares fell 8% despite record revenue; the CEO calls it a transition year",
        {"NVDA": SELL},
    ),
    ("Tesla stock jumped 10% despite weak margins, as he puts robotaxi first", {"TSLA": BUY}),
    ("I have puts on SPY and they are printing", {"SPY": SELL}),
    ("NVDA calls yesterday. Today printing on my SPY puts", {"NVDA": BUY, "SPY": SELL}),
    # A rater passes an action on to a stock named a few words after it, not to one that
    # is itself a rater there; an action naming its own rating stays with the firm.
    ("Goldman Sachs raises the price target on Apple", {"GS": HOLD, "AAPL": BUY}),
    ("JPMorgan downgrades both Tesla and Ford", {"JPM": HOLD, "TSLA": SELL, "F": SELL}),
    ("Goldman Sachs upgrades iPhone maker Apple", {"GS": HOLD, "AAPL": BUY}),
    ("JPMorgan cuts Goldman Sachs to neutral", {"JPM": HOLD, "GS": SELL}),
    ("Citi downgraded by Goldman Sachs", {"C": SELL, "GS": HOLD}),
    ("Morgan Stanley raises price target on JPMorgan", {"MS": HOLD, "JPM": BUY}),
    # "not so much" in a sentence of its own keeps its ticker.
    ("Nvidia crushed it. AMD? Not so much.", {"NVDA": BUY, "AMD": SELL}),
    ("Judge blocks the $8.5 billion takeover of Capri by Tapestry", {"CPRI": SELL}),
    # A deal stop needs its deal; "in line with" its past; selling into strength a sale.
    ("Dark pool blocks show institutions buying NVDA", {"NVDA": BUY}),
    ("Walmart's dividend rises in line with earnings", {"WMT": BUY}),
    ("Competitors would take years to replicate Costco's moat", {"COST": HOLD}),
    ("Adding to my NVDA position into strength", {"NVDA": BUY}),
    ("Tesla cut nearly in half this year", {"TSLA": SELL}),
    ("Risk-on rally lifts Nvidia", {"NVDA": BUY}),
)


@pytest.mark.parametrize(("text", "expected"), CASES + NARROWED)
def test_each_ticker_gets_its_own_verdict(
    lexicon: Lexicon, text: str, expected: dict[str, Verdict]
) -> None:
    opinions = lexicon.judge_for(text, list(expected))
    got = {ticker: opinion.verdict for ticker, opinion in opinions.items()}
    assert got == expected, {ticker: opinions[ticker].evidence for ticker in expected}


def test_an_unlisted_capitalised_word_does_not_take_a_tickers_cue(lexicon: Lexicon) -> None:
    """ "NBA" is no listed symbol: the record low is Warner Bros Discovery's."""
    text = "Warner Bros Discovery shares hit record low after NBA loss"
    assert verdict(lexicon, text, "WBD") is SELL


def test_a_listed_symbol_named_unasked_still_takes_its_own_cue(lexicon: Lexicon) -> None:
    """Only NVDA was asked about; AMD's fall is AMD's, so NVDA keeps its own rise."""
    assert verdict(lexicon, "NVDA jumps 5% while AMD sinks 8%", "NVDA") is BUY


@pytest.mark.parametrize("count", [2, 12])
def test_cues_shared_by_many_tickers_reach_each_of_them(lexicon: Lexicon, count: int) -> None:
    """A cue in a sentence naming no ticker, or in a clause naming none, is every named
    ticker's, whether the text names two tickers or a dozen; a ticker's own cue stays its own."""
    every = ["AAPL", "MSFT", "NVDA", "AMD", "INTC", "TSLA", "META", "AMZN", "NFLX", "ORCL", "CRM"]
    tags = [*every, "ADBE"][:count]
    text = f"{' '.join(f'${tag}' for tag in tags)}, all of them. Revenue fell. $AAPL soars 9%"
    opinions = lexicon.judge_for(text, tags)
    assert {opinions[tag].verdict for tag in tags[1:]} == {SELL}
    assert {opinions[tag].score for tag in tags[1:]} == {opinions["MSFT"].score}
    assert opinions["AAPL"].score > opinions["MSFT"].score  # the fall, and its own rise


def test_a_long_text_about_one_ticker_reads_all_of_its_cues(lexicon: Lexicon) -> None:
    """Hundreds of cues in sentences naming no ticker all reach the one ticker asked about,
    as they reach the whole text's opinion: the last 120 say it turned."""
    text = (
        "NVDA earnings recap. "
        + "Revenue grew strongly. " * 260
        + "Margins collapsed. Guidance was cut. Shares plunged. " * 40
    )
    assert lexicon.judge(text).verdict is SELL
    assert lexicon.judge_for(text, ["NVDA"])["NVDA"].verdict is SELL
