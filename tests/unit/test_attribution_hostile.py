"""Hostile texts for ticker roles and attribution: a post at the 64 KiB limit made of thousands
of mentions, names or change words is read in one pass, never in time that grows with the
square of its length (such posts once held the loop for 7 to 70 seconds)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.decide import DEAD_ZONE
from signalsmith.domain import Verdict
from signalsmith.tickers import TickerExtractor, load_symbol_book

LIMIT = 65_536
EXTRACTOR = TickerExtractor()
LEXICON = Lexicon()
# Thousands of different listed tickers, each one a cashtag.
MANY = [f"${symbol}" for symbol in sorted(load_symbol_book().names) if symbol.isalpha()][:3_000]

HOSTILE = [
    "AAPL MSFT " * 6_600,  # one sentence, two tickers named thousands of times
    "UBS downgrades AAPL at " * 2_900,  # a rater's place, over and over
    "BofA downgraded " * 4_100 + "$CCL",
    "Gap " * 16_400,  # an ordinary-word name, each needing its context
    "up AAPL down MSFT, " * 3_500,  # change words and subjects, all in one sentence
    "beats MSFT as AAPL " * 3_500,  # clause joins before every ticker
    "AAPL, MSFT, " * 5_500 + "soar",  # one list of thousands
    "profit rose sales fell " * 2_900,
    "$AAPL calls printing $MSFT puts printing " * 1_600,  # positions, each gain asks for one
    "AAPL beats; MSFT not so much; " * 2_100,  # each answer reads the clause before
    "Oracle reaffirms its growth target at neutral " * 1_400,  # stances, each with its reach
    # Thousands of tickers, each in a hedged sentence: every ticker's scope reads its own.
    "".join(f"{tag} maybe fell. " for tag in MANY),
    # ... and cues shared by all of them: in sentences naming none, or clauses naming none.
    " ".join(MANY[:2_000]) + ". " + "Sales fell. " * 4_000,
    " ".join(MANY[:2_000]) + ", sales fell" * 4_000,
    # Analyst actions among research firms, kept guidance, position words used as verbs.
    "GM upgrade " * 6_000,
    "UBS upgrades AAPL " * 3_700,
    "backs view \N{ROCKET} " * 5_000,
    "the CEO calls it $AAPL puts printing " * 1_800,
    "risk rose " * 6_600,
    "Citi GS " * 9_000,  # bare symbols beside names, each checked against the names found
    "strong $TSLA sales weak " * 2_800,  # adjectives, each looking for its noun
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_a_huge_hostile_text_is_read_in_one_pass(text: str) -> None:
    text = text[:LIMIT]
    subjects, raters = EXTRACTOR.roles(text)
    assert not set(subjects) & {rater.symbol for rater in raters}
    opinions = LEXICON.judge_for(text, [*subjects, "MSFT"])
    assert set(opinions) == {*subjects, "MSFT"}
    for opinion in opinions.values():
        assert -1.0 <= opinion.score <= 1.0
        assert 0.0 <= opinion.confidence <= 1.0
        assert len(opinion.evidence) <= 12
        assert (opinion.verdict is Verdict.HOLD) == (abs(opinion.score) < DEAD_ZONE)


WORDS = st.sampled_from(
    [
        "UBS",
        "Tesla",
        "downgrades",
        "downgraded",
        "to",
        "sell",
        "at",
        "by",
        "Gap",
        "shares",
        "up",
        "down",
        "as",
        "and",
        "$AMD",
        "Goldman",
        "Sachs",
        "cuts",
        "target",
        "on",
        ",",
        ".",
        "says",
        "sees",
        "Netflix",
        "Disney",
        "beats",
        "misses",
        "while",
        "'s",
        "Bank",
        "of",
        "America",
        "price",
        "rallies",
        "sinks",
        "I",
        "bought",
        "calls",
        "puts",
        "printing",
        "not so much",
        "reaffirms",
        "guidance",
        "at neutral",
        "from sell",
        "blocks",
        "takeover",
        ";",
        "\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(WORDS, max_size=80))
def test_any_mix_of_firms_names_and_rating_words_keeps_roles_apart(words: list[str]) -> None:
    """Whatever the mix, a firm is a subject or a rater, never both, and every subject gets
    an opinion of its own."""
    text = " ".join(words)
    subjects, raters = EXTRACTOR.roles(text)
    assert not set(subjects) & {rater.symbol for rater in raters}
    assert EXTRACTOR.extract(text) == subjects
    if subjects:
        assert set(LEXICON.judge_for(text, subjects)) == set(subjects)
