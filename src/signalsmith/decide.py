"""Combine the analyzers' votes on one (post, ticker) into one decision. Pure.

The score is the confidence-weighted mean of the opinions; the verdict follows it with a dead
zone around zero. A decision with no opinion at all is an ``error`` (or ``abstain``), never a
silent HOLD.
"""

from __future__ import annotations

from collections.abc import Sequence

from signalsmith.domain import Decision, Opinion, Status, Verdict, Vote

DEAD_ZONE = 0.15  # |score| below this is HOLD: too weak to act on
_MIN_WEIGHT = 0.05  # a zero-confidence opinion still counts a little, so weights never sum to 0


def verdict_for(score: float) -> Verdict:
    if score >= DEAD_ZONE:
        return Verdict.BUY
    if score <= -DEAD_ZONE:
        return Verdict.SELL
    return Verdict.HOLD


def decide(ticker: str, votes: Sequence[Vote]) -> Decision:
    """One decision from every vote cast for ``ticker``."""
    opinions = [vote.opinion for vote in votes if vote.opinion is not None]
    if not opinions:
        return _no_opinion(ticker, votes)
    status = Status.OK if len(opinions) == len(votes) else Status.DEGRADED
    if len(opinions) == 1:
        verdict, score, confidence = _single(opinions[0])
    else:
        verdict, score, confidence = _ensemble(opinions)
    return Decision(
        ticker=ticker,
        verdict=verdict,
        confidence=round(confidence, 4),
        score=round(score, 4),
        reasoning=_reasoning(votes),
        status=status,
        votes=tuple(votes),
    )


def _single(opinion: Opinion) -> tuple[Verdict, float, float]:
    return opinion.verdict, _clamp(opinion.score, -1.0), _clamp(opinion.confidence, 0.0)


def _ensemble(opinions: Sequence[Opinion]) -> tuple[Verdict, float, float]:
    weights = [max(opinion.confidence, _MIN_WEIGHT) for opinion in opinions]
    total = sum(weights)
    score = sum(w * o.score for w, o in zip(weights, opinions, strict=True)) / total
    verdict = verdict_for(score)
    agreeing = sum(w for w, o in zip(weights, opinions, strict=True) if o.verdict is verdict)
    mean_confidence = sum(o.confidence for o in opinions) / len(opinions)
    return verdict, _clamp(score, -1.0), _clamp(mean_confidence * agreeing / total, 0.0)


def _clamp(value: float, low: float) -> float:
    return max(low, min(1.0, value))


def _no_opinion(ticker: str, votes: Sequence[Vote]) -> Decision:
    abstained = bool(votes) and all(vote.status is Status.ABSTAIN for vote in votes)
    return Decision(
        ticker=ticker,
        verdict=Verdict.HOLD,
        confidence=0.0,
        score=0.0,
        reasoning=_reasoning(votes) or "no analyzer ran",
        status=Status.ABSTAIN if abstained else Status.ERROR,
        votes=tuple(votes),
    )


def _reasoning(votes: Sequence[Vote]) -> str:
    parts: list[str] = []
    for vote in votes:
        if vote.opinion is None:
            parts.append(f"{vote.analyzer}: {vote.status.value} ({vote.error})")
            continue
        opinion = vote.opinion
        cues = "; ".join(opinion.evidence[:6]) or "no cues"
        parts.append(
            f"{vote.analyzer}: {opinion.verdict.value} "
            f"(score {opinion.score:+.2f}, confidence {opinion.confidence:.2f}): {cues}"
        )
    return " | ".join(parts)
