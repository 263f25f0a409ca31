"""Decide: votes become one decision; no opinion is never a silent HOLD."""

from __future__ import annotations

from signalsmith.decide import decide
from signalsmith.domain import Opinion, Status, Verdict, Vote


def _vote(name: str, verdict: Verdict, confidence: float, score: float) -> Vote:
    return Vote(name, "sentiment", Status.OK, Opinion(verdict, confidence, score, ("cue",)))


def test_single_vote_is_taken_as_is() -> None:
    """One analyzer's opinion becomes the decision, with reasoning naming its cues."""
    decision = decide("NVDA", [_vote("lexicon", Verdict.BUY, 0.8, 0.6)])
    assert (decision.verdict, decision.confidence, decision.score, decision.status) == (
        Verdict.BUY,
        0.8,
        0.6,
        Status.OK,
    )
    assert "cue" in decision.reasoning


def test_ensemble_weights_by_confidence() -> None:
    """A confident SELL outweighs a hesitant BUY."""
    decision = decide(
        "TSLA", [_vote("a", Verdict.BUY, 0.2, 0.3), _vote("b", Verdict.SELL, 0.9, -0.8)]
    )
    assert decision.verdict is Verdict.SELL
    assert -1 <= decision.score < 0
    assert 0 < decision.confidence <= 1


def test_failed_vote_degrades_and_no_vote_is_an_error() -> None:
    """One failure among opinions is 'degraded'; no opinion at all is 'error', confidence 0."""
    failed = Vote("llm", "sentiment", Status.ERROR, None, error="timeout")
    degraded = decide("AMD", [_vote("lexicon", Verdict.BUY, 0.7, 0.5), failed])
    assert degraded.status is Status.DEGRADED
    assert degraded.verdict is Verdict.BUY
    error = decide("AMD", [failed])
    assert (error.status, error.confidence) == (Status.ERROR, 0.0)
    assert "timeout" in error.reasoning
