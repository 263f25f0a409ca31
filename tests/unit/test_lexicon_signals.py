"""The ``Signals`` the lexicon counts beside its opinion: what routing reads instead of parsing
the evidence lines. Hand-written texts."""

from __future__ import annotations

import pytest

from signalsmith.analyze.lexicon import Lexicon
from signalsmith.domain import Opinion, Signals, Verdict


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon()


def test_cues_are_counted_by_direction(lexicon: Lexicon) -> None:
    """Each scored cue counts once on its side, after modifiers have set its sign."""
    signals = lexicon.judge("Revenue jumped and margins expanded, but debt ballooned").signals
    assert (signals.bullish, signals.bearish) == (2, 1)
    assert signals.cues == 3
    assert signals.contrasted == 1  # the cue after "but"


def test_negated_hedged_and_asked_cues(lexicon: Lexicon) -> None:
    """A negation, a hedge word and a question each mark the cues they reach."""
    assert lexicon.judge("Not bullish on this one").signals.negated == 1
    hedged = lexicon.judge("I think it is undervalued").signals
    assert (hedged.hedged, hedged.asked, hedged.hedges) == (1, 0, 1)
    asked = lexicon.judge("Is it undervalued?").signals
    assert (asked.hedged, asked.asked, asked.hedges) == (0, 1, 1)


def test_sarcasm_and_hedges_are_reported_without_any_cue(lexicon: Lexicon) -> None:
    """'any day now 🙄' scores nothing, yet the reader must know it is sarcastic; a question
    with no cue is still a question."""
    opinion = lexicon.judge("Payout coming any day now 🙄")
    assert opinion.signals.cues == 0
    assert opinion.signals.sarcasm
    assert lexicon.judge("When does the quarter end?").signals.hedges == 1


@pytest.mark.parametrize(
    "text",
    [
        "Prices at the pump rose.",  # a change word with nothing it changes
        "It went from 80 to 95 thousand tonnes.",  # a change told by figures, of nothing named
        "Grabbed some 150c before the print",  # option shorthand left a number
        "The group signed in Bergen on Monday.",  # an event verb without its object
    ],
)
def test_market_terms_recognised_but_not_scored(lexicon: Lexicon, text: str) -> None:
    """Coverage: the lexicon knows these words are about markets even though no cue scored."""
    opinion = lexicon.judge(text)
    assert opinion.signals.cues == 0
    assert opinion.signals.unscored >= 1


def test_plain_text_has_no_unscored_terms(lexicon: Lexicon) -> None:
    """Text without market vocabulary leaves every signal at zero."""
    assert lexicon.judge("The headquarters are located in Oslo.").signals == Signals()


def test_dates_and_upcoming_events_are_scheduled(lexicon: Lexicon) -> None:
    """A notice that something will happen is counted, so routing can leave it HOLD."""
    assert lexicon.judge("Oracle to host its analyst day on Thursday").signals.scheduled >= 1
    assert lexicon.judge("Oracle shares jumped").signals.scheduled == 0


def test_signals_follow_the_ticker_whose_sentences_hold_them(lexicon: Lexicon) -> None:
    """A hedge or an unscored term in a sentence naming one ticker is not the other's; a
    sentence naming no ticker belongs to every ticker."""
    text = "Loading more $AMD. Maybe $INTC fell? The boat sailed."
    opinions = lexicon.judge_for(text, ["AMD", "INTC"])
    assert opinions["AMD"].signals.hedges == 0
    assert opinions["INTC"].signals.hedges == 1
    text = "Loading more $AMD. $INTC 40c for june. Yields rose."
    opinions = lexicon.judge_for(text, ["AMD", "INTC"])
    assert opinions["AMD"].signals.unscored == 1  # "rose", a sentence naming no ticker
    assert opinions["INTC"].signals.unscored == 1


def test_signals_default_keeps_other_analyzers_opinions_valid() -> None:
    """Analyzers that count nothing leave the field at its empty default."""
    assert Opinion(Verdict.BUY, 0.9, 0.9).signals == Signals()
