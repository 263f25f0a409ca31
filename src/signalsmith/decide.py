"""Combine the analyzers' votes on one (post, ticker) into one decision. Pure.

The score is the confidence-weighted mean of the opinions; the verdict follows it with a dead
zone around zero. A decision with no opinion at all is an ``error`` (or ``abstain``), never a
silent HOLD.
"""

from __future__ import annotations

from collections.abc import Sequence

from signalsmith.domain import Decision, Opinion, Status, Verdict, Vote

# |score| below this is HOLD: too weak to act on. The one dead zone: the lexicon's opinions,
# the decisions and the consensus all use it, so a HOLD at one level is a HOLD at the others.
DEAD_ZONE = 0.15
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


def overall(ticker: str, decisions: Sequence[Decision]) -> Decision:
    """One text's decision from its tickers' own, so the two never disagree: their common
    direction when every ticker that has one points the same way (score and confidence: the
    mean over those tickers; every ticker HOLD: HOLD, the mean over all), else HOLD with no
    confidence, since the text is mixed (one ticker BUY, another SELL)."""
    votes = tuple(vote for decision in decisions for vote in decision.votes)
    status = next((d.status for d in decisions if d.status is not Status.OK), Status.OK)
    directional = [d for d in decisions if d.verdict is not Verdict.HOLD]
    verdicts = {d.verdict for d in directional}
    if len(verdicts) > 1:
        named = ", ".join(f"{d.ticker} {d.verdict.value}" for d in directional)
        return Decision(ticker, Verdict.HOLD, 0.0, 0.0, f"mixed: {named}", status, votes)
    counted = directional or list(decisions)
    verdict = directional[0].verdict if directional else Verdict.HOLD
    score = sum(d.score for d in counted) / len(counted)
    confidence = sum(d.confidence for d in counted) / len(counted)
    if len(decisions) == 1:
        reasoning = decisions[0].reasoning
    else:
        reasoning = " || ".join(f"{d.ticker}: {d.reasoning}" for d in decisions)
    confidence, score = round(confidence, 4), round(score, 4)
    return Decision(ticker, verdict, confidence, score, reasoning, status, votes)


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
