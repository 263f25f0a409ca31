"""Behaviour of the offline finance lexicon: lingo, news phrases, modifiers, attribution."""

from __future__ import annotations

import pytest

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.domain import Opinion, Verdict

BUY, SELL, HOLD = Verdict.BUY, Verdict.SELL, Verdict.HOLD

# Hand-written for this project: social posts and news sentences with the verdict a careful
# reader would give. Kept apart from the rule tables so they test rather than restate them.
LABELED: tuple[tuple[Verdict, str], ...] = (
    (BUY, "Just loaded up on more $AMD calls, this thing is going to the moon 🚀🚀"),
    (BUY, "Bought the dip on NVDA today, diamond hands 💎🙌"),
    (BUY, "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period."),
    (BUY, "Net sales increased by 18% to EUR 245 million."),
    (BUY, "The company's net loss narrowed to $2.1 million from $5.4 million a year earlier."),
    (BUY, "Apple beat estimates and raised guidance for the holiday quarter."),
    (BUY, "Morgan Stanley upgraded the stock to overweight and raised its price target to $210."),
    (BUY, "The company swung to a profit of EUR 4.2 mn in the third quarter."),
    (BUY, "Very bullish on PLTR after that contract win, adding to my position."),
    (BUY, "MSFT breaking out to an all-time high, this is just the beginning 📈"),
    (BUY, "Costs fell 12% as the restructuring program took hold, lifting margins."),
    (BUY, "TSLA is massively undervalued at these levels imo"),
    (BUY, "Short squeeze incoming on GME, shorts are trapped"),
    (BUY, "No longer bearish on INTC, the turnaround is real"),
    (BUY, "Order intake grew 25% year-on-year, driven by strong demand in Asia."),
    (BUY, "Long NVDA into earnings, the AI demand story is strong"),
    (BUY, "Despite the selloff, I'm buying more META here."),
    (SELL, "Operating loss widened to EUR 3.5 mn from EUR 1.2 mn."),
    (SELL, "The company cut its outlook for the full year citing weak demand."),
    (SELL, "Analysts downgraded the shares to sell after the earnings miss."),
    (SELL, "Net sales fell 9% to EUR 58 million in the quarter."),
    (SELL, "Sold everything, this stock is going to zero 📉"),
    (SELL, "Classic dead cat bounce, bagholders are getting rekt 💀"),
    (SELL, "Rug pull incoming, the CEO dumped his shares"),
    (SELL, "The retailer missed estimates and lowered guidance, shares plunged 15% after hours."),
    (SELL, "Regulators opened an investigation into the automaker after a massive recall."),
    (SELL, "The firm filed for Chapter 11 bankruptcy protection on Monday."),
    (SELL, "Bearish on SNAP, overvalued garbage with no path to profitability"),
    (SELL, "Bought puts on SPY, this market is about to tank"),
    (SELL, "The company issued a profit warning as costs increased sharply."),
    (SELL, "Price target cut to $45 from $60 at Goldman."),
    (SELL, "Great, another 20% drop, love being a bagholder /s"),
    (SELL, "Revenue rose 5% but operating loss widened, not impressed."),
    (SELL, "Not bullish on RIVN here, cash burn is insane"),
    (HOLD, "Earnings are scheduled for Thursday after the close."),
    (HOLD, "The company will hold its annual general meeting in Helsinki on 15 March."),
    (HOLD, "What's everyone's position on the Fed meeting next week?"),
    (HOLD, "The board appointed a new chief financial officer effective January 1."),
    (HOLD, "Not financial advice, just sharing my watchlist for the week."),
    (HOLD, "The company operates 45 stores across Finland and Sweden."),
    (HOLD, "Anyone know what time the market opens on Monday?"),
    (HOLD, "Net sales totalled EUR 120 million, compared with EUR 120 million a year earlier."),
)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon()


def _in_range(opinion: Opinion) -> bool:
    return 0.0 <= opinion.confidence <= 1.0 and -1.0 <= opinion.score <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "Buying the dip on AMD, loading up before earnings 🚀",
        "NVDA to the moon, diamond hands 💎🙌 tendies incoming",
        "Adding to my position in COST, very bullish, breakout to an all-time high 📈",
        "GME short squeeze is on, calls printing",
        "PLTR is undervalued here, going long",
    ],
)
def test_clear_bullish_lingo_is_buy(lexicon: Lexicon, text: str) -> None:
    """Unambiguous bullish trading lingo and emoji give BUY with a positive score."""
    opinion = lexicon.judge(text)
    assert opinion.verdict is BUY
    assert opinion.score > 0


@pytest.mark.parametrize(
    "text",
    [
        "Sold everything, this is going to zero 📉",
        "Classic dead cat bounce, bagholders getting wrecked 💀🩸",
        "Rug pull. Paper hands were right, it's overvalued garbage 🐻",
        "Bearish on SMCI, bought puts",
        "Took profits and trimmed the rest, this looks like a top",
    ],
)
def test_clear_bearish_lingo_is_sell(lexicon: Lexicon, text: str) -> None:
    """Unambiguous bearish trading lingo and emoji give SELL with a negative score."""
    opinion = lexicon.judge(text)
    assert opinion.verdict is SELL
    assert opinion.score < 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Operating profit rose to EUR 13.1 mn from EUR 8.7 mn.", BUY),
        ("The operating loss widened to EUR 3.5 mn.", SELL),
        ("Net loss increased to $40 million.", SELL),
        ("The net loss narrowed to EUR 1.1 mn from EUR 2.9 mn.", BUY),
        ("Costs fell 8% in the quarter.", BUY),
        ("Net sales decreased by 5%.", SELL),
        ("Revenue grew 14% year on year.", BUY),
        ("EPS beat consensus by 12 cents.", BUY),
        ("The company beat estimates and raised guidance.", BUY),
        ("The retailer cut its outlook for the year.", SELL),
        ("The company lowered guidance again.", SELL),
        ("Price target raised to $250 at Jefferies.", BUY),
        ("Price target cut to $40.", SELL),
        ("The stock was upgraded to buy at Citi.", BUY),
        ("Analysts downgraded the stock to sell.", SELL),
        ("Quarterly sales fell short of expectations.", SELL),
        ("The group missed estimates for a third straight quarter.", SELL),
        ("The company swung to a profit in the second quarter.", BUY),
        ("The company swung to a loss in the second quarter.", SELL),
        ("The carmaker announced layoffs of 3,000 workers.", SELL),
        ("Regulators issued a recall for 80,000 vehicles.", SELL),
        ("The SEC opened an investigation into the accounting.", SELL),
        ("The lender filed for bankruptcy.", SELL),
        ("The chipmaker issued a profit warning.", SELL),
    ],
)
def test_news_direction_of_change_phrases(lexicon: Lexicon, text: str, expected: Verdict) -> None:
    """News phrases read as subject x change: a loss or cost rising is bad, falling is good."""
    assert lexicon.judge(text).verdict is expected


def test_negated_bullish_is_not_buy(lexicon: Lexicon) -> None:
    """ "not bullish" flips the cue: the verdict is not BUY and the evidence says negated."""
    opinion = lexicon.judge("I am not bullish on this stock")
    assert opinion.verdict is not BUY
    assert opinion.score < 0
    assert "negated: not bullish" in opinion.evidence


def test_no_longer_bearish_is_not_sell(lexicon: Lexicon) -> None:
    """ "no longer bearish" is a two-word negator and turns the bearish cue around."""
    assert lexicon.judge("No longer bearish on INTC").score > 0


def test_never_selling_is_bullish_or_hold(lexicon: Lexicon) -> None:
    """A negated trade ("never selling") means staying put: mildly positive, never SELL."""
    opinion = lexicon.judge("never selling my shares")
    assert opinion.verdict is not SELL
    assert opinion.score > 0


def test_dont_buy_is_not_buy(lexicon: Lexicon) -> None:
    """ "don't buy" is not a buy signal, and the curly apostrophe reads the same."""
    for text in ("Don't buy this stock", "Don’t buy this stock"):
        opinion = lexicon.judge(text)
        assert opinion.verdict is not BUY
        assert opinion.score < 0


def test_sarcasm_is_not_read_as_praise(lexicon: Lexicon) -> None:
    """The sarcastic bagholder post is SELL, and the evidence names the sarcasm."""
    opinion = lexicon.judge("Great, another 20% drop, love being a bagholder /s")
    assert opinion.verdict is SELL
    assert any(item.startswith("sarcasm:") for item in opinion.evidence)


def test_sarcasm_marker_flips_positive_cues(lexicon: Lexicon) -> None:
    """A "/s" marker turns otherwise bullish praise away from BUY and lowers confidence."""
    plain = lexicon.judge("Amazing quarter, this stock is going to the moon")
    sarcastic = lexicon.judge("Amazing quarter, this stock is going to the moon /s")
    assert plain.verdict is BUY
    assert sarcastic.verdict is not BUY
    assert sarcastic.score < plain.score


@pytest.mark.parametrize(
    ("plain", "hedged"),
    [
        ("NVDA is going to the moon", "Is NVDA going to the moon?"),
        ("AMD is a buy here", "AMD might be a buy here"),
        ("Bullish on TSLA", "Thoughts on TSLA? Maybe bullish"),
    ],
)
def test_questions_and_hedges_lower_confidence(lexicon: Lexicon, plain: str, hedged: str) -> None:
    """A question or hedge over the same cue gives lower confidence than the plain statement."""
    assert lexicon.judge(hedged).confidence < lexicon.judge(plain).confidence


def test_intensifier_strengthens_the_cue(lexicon: Lexicon) -> None:
    """ "extremely bullish" scores further from zero than "bullish"."""
    assert lexicon.judge("extremely bullish").score > lexicon.judge("bullish").score


def test_clause_after_but_outweighs_the_one_before(lexicon: Lexicon) -> None:
    """With "but", the second clause wins: good news then bad news reads bearish."""
    opinion = lexicon.judge("Revenue rose 5% but the operating loss widened sharply")
    assert opinion.verdict is SELL
    assert "contrast: but" in opinion.evidence


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The weather in Helsinki is cold this week.",
        "Anyone know a good pizza place near the office?",
        "The company will publish its annual report on 3 March.",
    ],
)
def test_irrelevant_text_is_hold_with_low_confidence(lexicon: Lexicon, text: str) -> None:
    """Text without market cues is HOLD with low confidence and a zero-ish score."""
    opinion = lexicon.judge(text)
    assert opinion.verdict is HOLD
    assert opinion.confidence <= 0.3
    assert abs(opinion.score) < 0.2


def test_no_evidence_means_hold_and_empty_evidence(lexicon: Lexicon) -> None:
    """No cue at all gives HOLD, a score of exactly 0 and no evidence."""
    opinion = lexicon.judge("The meeting is on Tuesday.")
    assert (opinion.verdict, opinion.score, opinion.evidence) == (HOLD, 0.0, ())


@pytest.mark.parametrize("text", [text for _, text in LABELED])
def test_confidence_and_score_stay_in_range(lexicon: Lexicon, text: str) -> None:
    """Confidence is always in [0, 1] and score in [-1, 1], whole-text and per ticker."""
    assert _in_range(lexicon.judge(text))
    for opinion in lexicon.judge_for(text, ["NVDA", "AMD", "XYZ"]).values():
        assert _in_range(opinion)


def test_strong_agreeing_evidence_is_more_confident(lexicon: Lexicon) -> None:
    """Several agreeing cues give more confidence than one weak cue."""
    weak = lexicon.judge("bought some shares")
    strong = lexicon.judge("Beat estimates, raised guidance, upgraded to buy, very bullish")
    assert strong.confidence > weak.confidence
    assert strong.score > weak.score


@pytest.mark.parametrize(("expected", "text"), [row for row in LABELED if row[0] is not HOLD])
def test_actionable_verdicts_carry_evidence(lexicon: Lexicon, expected: Verdict, text: str) -> None:
    """Every BUY or SELL names the cues behind it."""
    opinion = lexicon.judge(text)
    if opinion.verdict is not HOLD:
        assert opinion.evidence
        assert all(isinstance(item, str) and item for item in opinion.evidence)


def test_rotation_gives_different_verdicts_per_ticker(lexicon: Lexicon) -> None:
    """ "Rotating out of INTC into AMD": INTC is SELL, AMD is BUY."""
    opinions = lexicon.judge_for("Rotating out of INTC into AMD", ["INTC", "AMD"])
    assert opinions["INTC"].verdict is SELL
    assert opinions["AMD"].verdict is BUY


def test_long_and_short_in_one_post_split_per_ticker(lexicon: Lexicon) -> None:
    """ "Long NVDA, short SMCI": NVDA is BUY and SMCI is SELL."""
    opinions = lexicon.judge_for("Long NVDA, short SMCI", ["NVDA", "SMCI"])
    assert opinions["NVDA"].verdict is BUY
    assert opinions["SMCI"].verdict is SELL


def test_switching_with_cashtags_splits_per_ticker(lexicon: Lexicon) -> None:
    """Cashtags count as mentions: "switched from $TSLA to $RIVN" is SELL then BUY."""
    opinions = lexicon.judge_for("Switched from $TSLA to $RIVN this morning", ["TSLA", "RIVN"])
    assert (opinions["TSLA"].verdict, opinions["RIVN"].verdict) == (SELL, BUY)


def test_sentences_attribute_cues_to_their_ticker(lexicon: Lexicon) -> None:
    """Each sentence's cues go to the ticker it names; a ticker-free sentence applies to all."""
    text = "AAPL beat estimates and raised guidance. META missed and cut its outlook. Markets up."
    opinions = lexicon.judge_for(text, ["AAPL", "META"])
    assert opinions["AAPL"].verdict is BUY
    assert opinions["META"].verdict is SELL


def test_a_listed_group_of_tickers_shares_the_cue(lexicon: Lexicon) -> None:
    """ "Loading up on AMZN, COST and V": the cue applies to every ticker in the list."""
    opinions = lexicon.judge_for("Loading up on AMZN, COST and V", ["AMZN", "COST", "V"])
    assert {opinion.verdict for opinion in opinions.values()} == {BUY}


def test_buying_puts_is_bearish_for_the_ticker(lexicon: Lexicon) -> None:
    """Buying verbs next to puts are a bet on a fall: "Loaded up on SPY puts" is SELL."""
    assert lexicon.judge_for("Loaded up on SPY puts", ["SPY"])["SPY"].verdict is SELL


def test_ticker_found_by_company_name_gets_whole_text_opinion(lexicon: Lexicon) -> None:
    """A ticker the text never spells out falls back to the whole-text opinion."""
    text = "Apple beat estimates and raised guidance"
    opinions = lexicon.judge_for(text, ["AAPL"])
    assert opinions["AAPL"] == lexicon.judge(text)


def test_ticker_free_text_applies_to_every_ticker(lexicon: Lexicon) -> None:
    """With no ticker named anywhere, every requested ticker gets the same opinion."""
    opinions = lexicon.judge_for("Very bullish, buying the dip", ["NVDA", "AMD"])
    assert opinions["NVDA"] == opinions["AMD"]
    assert opinions["NVDA"].verdict is BUY


def test_judge_for_returns_one_opinion_per_requested_ticker(lexicon: Lexicon) -> None:
    """The result has exactly the requested tickers as keys, and none for an empty request."""
    assert set(lexicon.judge_for("Long NVDA", ["NVDA", "AMD"])) == {"NVDA", "AMD"}
    assert lexicon.judge_for("Long NVDA", []) == {}


def test_labeled_sentences_accuracy(lexicon: Lexicon) -> None:
    """On the hand-labelled mix of social posts and news sentences, accuracy is at least 0.85."""
    wrong = [
        (expected.value, lexicon.judge(text).verdict.value, text)
        for expected, text in LABELED
        if lexicon.judge(text).verdict is not expected
    ]
    accuracy = 1 - len(wrong) / len(LABELED)
    assert len(LABELED) >= 40
    assert accuracy >= 0.85, wrong
