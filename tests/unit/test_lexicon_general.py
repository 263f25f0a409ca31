"""The lexicon on hand-written texts in the three styles it meets: press-release sentences,
headlines and social posts. Written for this project (no public benchmark text), they check
that the rules generalize beyond the phrases the tables spell out."""

from __future__ import annotations

import pytest

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.domain import Verdict

BUY, SELL, HOLD = Verdict.BUY, Verdict.SELL, Verdict.HOLD

NEWS: tuple[tuple[Verdict, str], ...] = (
    (BUY, "Net sales totalled EUR 64.2 mn, up from EUR 51.9 mn a year earlier."),
    (BUY, "Operating profit was EUR 7.4 mn, compared with EUR 5.1 mn in the previous year."),
    (BUY, "Operating profit increased to EUR 4.6 mn from EUR 3.3 mn."),
    (BUY, "The group's order backlog stood at EUR 410 mn at the end of June (EUR 352 mn)."),
    (BUY, "Earnings per share were EUR 0.31, up from EUR 0.12 in the comparison period."),
    (BUY, "The operating result improved from a loss of EUR 1.2 mn to a profit of EUR 0.8 mn."),
    (BUY, "The company has signed a three-year service agreement with a Swedish utility."),
    (BUY, "Kalmeri Oyj has won an order worth EUR 14 mn from a German paper mill."),
    (BUY, "The engineering group was selected to supply turbines for a new power plant."),
    (BUY, "The net loss narrowed to EUR 0.9 mn from EUR 2.4 mn."),
    (BUY, "Gross margin rose by 2.1 percentage points to 41.3%."),
    (BUY, "The company delivered 12% more units than in the corresponding period last year."),
    (BUY, "Operating cash flow turned positive in the third quarter."),
    (SELL, "Net sales decreased to EUR 31.8 mn from EUR 36.2 mn."),
    (SELL, "The operating loss was EUR 3.1 mn, compared with a loss of EUR 1.4 mn a year ago."),
    (SELL, "Operating profit totalled EUR 2.2 mn (EUR 4.9 mn)."),
    (SELL, "The company will temporarily lay off 150 employees at its Tampere plant."),
    (SELL, "The group plans to close its factory in Lahti, affecting some 90 jobs."),
    (SELL, "The customer terminated the supply contract signed in 2022."),
    (SELL, "Pre-tax profit fell to EUR 1.1 mn from EUR 3.9 mn."),
    (SELL, "The company swung to an operating loss of EUR 2.7 mn."),
    (SELL, "Costs rose faster than sales, and the operating margin weakened to 3.2%."),
    (HOLD, "The company's net sales in 2023 amounted to EUR 88 mn."),
    (HOLD, "The company is headquartered in Espoo and employs some 1,200 people."),
    (HOLD, "The share capital of the company is EUR 22.8 mn, divided into 40 million shares."),
    (HOLD, "The interim report for January-March will be published on 25 April."),
    (HOLD, "The agreement was signed in Helsinki on Tuesday, the company said."),
    (HOLD, "The Board proposes that no dividend be paid for the financial year."),
    (HOLD, "The company's products are sold in over 40 countries."),
    (HOLD, "The acquisition will be financed with cash and a new term loan."),
    (HOLD, "Net sales in the first quarter totalled EUR 12.4 mn."),
    (HOLD, "The AGM authorised the board to decide on a share issue of up to 5 million shares."),
    (HOLD, "The figures are unaudited and given in euros unless otherwise stated."),
    (HOLD, "Mr Virtanen will start as chief executive officer on 1 September."),
)

HEADLINES: tuple[tuple[Verdict, str], ...] = (
    (BUY, "Chipmaker shares soar after blowout quarter"),
    (BUY, "Retailer raises full-year outlook on strong holiday demand"),
    (BUY, "Airline posts first annual profit in four years"),
    (BUY, "Defense group lands $2 billion Navy contract"),
    (BUY, "Bank lifts dividend, unveils $10 billion buyback"),
    (BUY, "Analyst upgrades software maker to buy, sees 30% upside"),
    (BUY, "Drugmaker wins FDA approval for obesity pill"),
    (BUY, "Automaker's quarterly deliveries top estimates"),
    (SELL, "Shares of the retailer tumble after it slashes guidance"),
    (SELL, "Regulators fine lender $200 million over compliance failures"),
    (SELL, "Chipmaker to cut 4,000 jobs as demand slumps"),
    (SELL, "Carmaker recalls 500,000 vehicles over brake defect"),
    (SELL, "Streaming firm misses subscriber forecasts, stock sinks"),
    (SELL, "Brewer downgraded to underperform on weak volumes"),
    (SELL, "Miner's profit halves as copper prices slide"),
    (SELL, "Insurer faces probe over sales practices"),
    (HOLD, "Tech giant to hold annual developer conference in June"),
    (HOLD, "What to expect from bank earnings this week"),
    (HOLD, "Revenue grew in line with analyst estimates"),
    (HOLD, "The turnaround will take years"),
    (HOLD, "Oil major names new chief financial officer"),
    (HOLD, "Is the chipmaker a buy before earnings?"),
)

SOCIAL: tuple[tuple[Verdict, str], ...] = (
    (BUY, "$AMD 180c for next Friday, let's ride"),
    (BUY, "Opened a starter position in $PYPL today"),
    (BUY, "$TSLA held support at 200 again, higher lows on the daily"),
    (BUY, "Not selling a single share of $NVDA"),
    (BUY, "$AAPL golden cross on the daily, adding on dips"),
    (BUY, "Flipped long $SPY at the open"),
    (BUY, "$HOOD ripping, calls paying off big"),
    (BUY, "Picked up more $COST this morning"),
    (SELL, "$SNAP 8p, this chart is a mess"),
    (SELL, "Out of $PINS. Guidance was a joke"),
    (SELL, "$BA lost support, next stop 150"),
    (SELL, "wouldn't touch $LCID with a ten foot pole"),
    (SELL, "Took my loss on $RIVN and moved on, this thing keeps bleeding"),
    (SELL, "Great, another red day for $PLTR. Love that for me"),
    (SELL, "$INTC double top and rolling over, short here"),
    (SELL, "Stopped out of $ROKU, chart broke down"),
    (SELL, "Gap up on my whole watchlist, trimmed everything into strength, sitting in cash"),
    (SELL, "Went to cash last week, this tape is ugly"),
    (SELL, "My short position is printing"),
    (SELL, "Went short at the open and it's printing"),
    (BUY, "He puts his money where his mouth is and bought more shares"),
    (HOLD, "Anyone know when $MSFT reports?"),
    (HOLD, "What are your price targets for $AMZN next year?"),
    (HOLD, "Watching $SHOP at these levels, no position yet"),
    (HOLD, "$DIS earnings after the bell tonight"),
)

# (text, ticker, expected) for posts naming several tickers with different views.
ATTRIBUTION: tuple[tuple[str, str, Verdict], ...] = (
    ("Long $AMD, short $INTC", "AMD", BUY),
    ("Long $AMD, short $INTC", "INTC", SELL),
    ("$KO > $PEP, sold my PEP and doubled my KO", "KO", BUY),
    ("$KO > $PEP, sold my PEP and doubled my KO", "PEP", SELL),
    ("Swapped my $F for $GM", "F", SELL),
    ("Swapped my $F for $GM", "GM", BUY),
    ("$MU up 6% while $WDC fell 4%", "MU", BUY),
    ("$MU up 6% while $WDC fell 4%", "WDC", SELL),
)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon()


@pytest.mark.parametrize(("expected", "text"), NEWS)
def test_news_sentences(lexicon: Lexicon, expected: Verdict, text: str) -> None:
    """Reported changes of a metric carry its direction; descriptive sentences are HOLD."""
    assert lexicon.judge(text).verdict is expected, lexicon.judge(text).evidence


@pytest.mark.parametrize(("expected", "text"), HEADLINES)
def test_headlines(lexicon: Lexicon, expected: Verdict, text: str) -> None:
    """Beats, wins and raises are BUY; cuts, fines and recalls SELL; plain events HOLD."""
    assert lexicon.judge(text).verdict is expected, lexicon.judge(text).evidence


@pytest.mark.parametrize(("expected", "text"), SOCIAL)
def test_social_posts(lexicon: Lexicon, expected: Verdict, text: str) -> None:
    """Trading intent, chart slang and option shorthand; questions without a stance are HOLD."""
    assert lexicon.judge(text).verdict is expected, lexicon.judge(text).evidence


@pytest.mark.parametrize(("text", "ticker", "expected"), ATTRIBUTION)
def test_per_ticker_attribution(
    lexicon: Lexicon, text: str, ticker: str, expected: Verdict
) -> None:
    """A post bullish on one ticker and bearish on another gives each its own verdict."""
    tickers = [word.strip("$,.") for word in text.split() if word.startswith("$")]
    opinions = lexicon.judge_for(text, list(dict.fromkeys(tickers)))
    assert opinions[ticker].verdict is expected, opinions[ticker].evidence


def test_figures_in_brackets_compare_with_the_same_currency_only(lexicon: Lexicon) -> None:
    """ "EUR 9.8 mn (EUR 7.3 mn)" is this year against last; a conversion is no comparison."""
    assert lexicon.judge("Operating profit was EUR 9.8 mn (EUR 7.3 mn).").verdict is BUY
    assert lexicon.judge("Operating profit was EUR 9.8 mn (USD 10.6 mn).").verdict is HOLD


def test_equal_figures_and_years_are_no_change(lexicon: Lexicon) -> None:
    """Neither "EUR 120 mn compared with EUR 120 mn" nor "from 2019 to 2023" is a change."""
    assert lexicon.judge("Sales were EUR 120 mn, compared with EUR 120 mn.").verdict is HOLD
    assert lexicon.judge("Net sales data from 2019 to 2023 is restated.").verdict is HOLD


def test_a_loss_growing_in_figures_is_bearish(lexicon: Lexicon) -> None:
    """A bigger loss than before is worse, and a loss turning into a profit is better."""
    worse = "The net loss was EUR 5.2 mn, compared with a loss of EUR 3.0 mn."
    swing = "The result was a profit of EUR 1.1 mn, compared with a loss of EUR 0.7 mn."
    assert lexicon.judge(worse).verdict is SELL
    assert lexicon.judge(swing).verdict is BUY


def test_spaced_newswire_decimals_do_not_split_sentences(lexicon: Lexicon) -> None:
    """Some newswire copies print "EUR193 .3 mn"; the change word still finds its subject."""
    text = "Net sales decreased to EUR193 .3 mn from EUR205 .1 mn."
    assert lexicon.judge(text).verdict is SELL


def test_option_shorthand_needs_a_ticker_or_expiry(lexicon: Lexicon) -> None:
    """ "$AMD 180c" is calls; "rose 10p to 250p" is pence and says nothing about options."""
    assert lexicon.judge("$AMD 180c").verdict is BUY
    assert lexicon.judge("$XOM 100p for June").verdict is SELL
    assert "calls" not in " ".join(lexicon.judge("Shares rose 10p to 250p").evidence)


def test_a_question_without_stance_is_hold(lexicon: Lexicon) -> None:
    """Asking whether something is a buy is not a view; saying it with conviction is."""
    assert lexicon.judge("Is $RIVN a buy here?").verdict is HOLD
    assert lexicon.judge("$RIVN is a buy here").verdict is BUY


def test_buying_into_a_sell_off_is_bullish(lexicon: Lexicon) -> None:
    """The fall a buyer mentions is the occasion for buying, not a bearish view."""
    assert lexicon.judge("Bought $CRM after the sell-off, red days are gifts").verdict is BUY


def test_contract_words_need_their_object(lexicon: Lexicon) -> None:
    """ "Signed" counts with a contract after it, not in "the deal was signed on Monday"."""
    assert lexicon.judge("The company signed a supply contract with Wartsila.").verdict is BUY
    assert lexicon.judge("The agreement was signed on Monday in Oslo.").verdict is HOLD


def test_a_ticker_inside_a_cue_is_that_cues_subject() -> None:
    """A symbol that is also a word of the cue's phrase ("POSITION IN COST") does not break
    attribution: the post is judged, bullish here."""
    text = "ADDING TO MY POSITION IN COST, VERY BULLISH, BREAKOUT TO AN ALL-TIME HIGH 📈"
    assert Lexicon().judge_for(text, ["COST"])["COST"].verdict is Verdict.BUY
