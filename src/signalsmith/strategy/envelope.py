"""A rated (or expired) strategy signal → its v1 envelope (``decision.kind = "strategy"``).
Pure; the shape of ``meta.strategy`` is ``strategy.contract.StrategyMeta``.

The synthesis is the signal's side (BUY for a buy, SELL for a sell) when the final agreement
is ``confirm``, HOLD otherwise; the final rating is the model's when it rated, else the
rules'. ``ensemble_score`` leans the way the context points: the support for the side
(-1..1) times +1 for a buy, -1 for a sell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from signalsmith.envelopes import EnvelopeV1
from signalsmith.market.envelope import InsightFacts, Opinion, insight_envelope
from signalsmith.strategy.contract import (
    Agreement,
    Bar,
    ModelRating,
    OfflineRating,
    Outcome,
    SignalFacts,
    StrategyMeta,
)

RULES = "rules"
LLM = "llm"


@dataclass(frozen=True, slots=True)
class Rated:
    """What became of one signal."""

    signal: SignalFacts
    bars: Sequence[Bar]
    status: Outcome
    offline: OfflineRating | None  # None: expired
    model: ModelRating | None
    model_error: str | None  # a model was asked and gave no rating: why
    model_asked: bool
    models: Sequence[str]  # provider/model of every answer used
    tokens_in: int
    tokens_out: int
    cost_usd: float
    age_s: float
    max_age_s: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where and when the signal was handled."""

    stream: str  # "" for HTTP
    entry_id: str
    received_at: datetime
    processed_at: datetime
    attempts: int
    arena_id: str
    timings: Mapping[str, float]


def strategy_envelope(rated: Rated, delivery: Delivery) -> EnvelopeV1:
    signal = rated.signal
    rules = _rules_opinion(rated)
    opinions = [rules] if not rated.model_asked else [rules, _model_opinion(rated)]
    chosen = opinions[-1] if rated.model is not None else rules
    facts = InsightFacts(
        correlation_id=signal["signal_id"],
        product_id=signal["symbol"],
        trade_date=signal["timestamp"][:10],
        exchange="",
        text=_reasoning(rated),
        status=rated.status,
        stream=delivery.stream,
        entry_id=delivery.entry_id,
        published_at=delivery.processed_at,
        arena_id=delivery.arena_id,
        timings=delivery.timings,
        meta=_meta(rated, delivery),
        kind="strategy",
    )
    return insight_envelope(facts, chosen, opinions)


def final(rated: Rated) -> tuple[Agreement | None, int | None, float]:
    """The final agreement, rating and confidence: the model's when it rated, else the rules'."""
    if rated.model is not None:
        return rated.model["agreement"], rated.model["rating"], rated.model["confidence"]
    if rated.offline is not None:
        return rated.offline["agreement"], rated.offline["rating"], rated.offline["confidence"]
    return None, None, 0.0


def _rules_opinion(rated: Rated) -> Opinion:
    offline = rated.offline
    if offline is None:
        return Opinion(RULES, "technical", "HOLD", 0.0, 0.0, _expired(rated), ())
    return _opinion(
        RULES,
        rated.signal["side"],
        agreement=offline["agreement"],
        confidence=offline["confidence"],
        support=offline["score"],
        summary=f"rating {offline['rating']}/10, {offline['agreement']}",
        factors=offline["reasons"],
    )


def _model_opinion(rated: Rated) -> Opinion:
    model = rated.model
    if model is None:
        summary = f"no rating: {rated.model_error or 'not asked'}"
        return Opinion(LLM, "narrative", "HOLD", 0.0, 0.0, summary, ())
    support = (model["rating"] - 5.5) / 4.5  # 1..10 onto -1..1
    summary = f"rating {model['rating']}/10, {model['agreement']}: {model['reasoning']}"
    factors = [*model["key_factors"], *(f"risk: {risk}" for risk in model["risks"])]
    return _opinion(
        LLM,
        rated.signal["side"],
        agreement=model["agreement"],
        confidence=model["confidence"],
        support=support,
        summary=summary,
        factors=factors,
    )


def _opinion(
    agent: str,
    side: str,
    *,
    agreement: Agreement,
    confidence: float,
    support: float,
    summary: str,
    factors: Sequence[str],
) -> Opinion:
    verdict = ("BUY" if side == "buy" else "SELL") if agreement == "confirm" else "HOLD"
    score = max(-1.0, min(1.0, support if side == "buy" else -support))
    domain = "technical" if agent == RULES else "narrative"
    return Opinion(agent, domain, verdict, confidence, score, summary, tuple(factors))


def _reasoning(rated: Rated) -> str:
    if rated.offline is None:
        return _expired(rated)
    if rated.model is not None:
        return rated.model["reasoning"]
    return "; ".join(rated.offline["reasons"]) or "no indicator to rate it by"


def _expired(rated: Rated) -> str:
    return (
        f"expired: {rated.age_s:.0f} s old when its turn came "
        f"(STRATEGY_MAX_AGE_S {rated.max_age_s:g}); not rated"
    )


def _meta(rated: Rated, delivery: Delivery) -> dict[str, JsonValue]:
    agreement, rating, confidence = final(rated)
    processing_ms = sum(delivery.timings.values())
    strategy: StrategyMeta = {
        "signal": rated.signal,
        "status": rated.status,
        "offline": rated.offline,
        "llm": rated.model,
        "llm_error": rated.model_error,
        "agreement": agreement,
        "rating": rating,
        "confidence": round(confidence, 4),
        "age_s": round(rated.age_s, 3),
        "received_at": delivery.received_at.isoformat(),
        "processed_at": delivery.processed_at.isoformat(),
        "processing_ms": round(processing_ms, 3),
        "attempts": delivery.attempts,
        "bars": list(rated.bars),
    }
    analyzers = [RULES] if rated.offline is not None else []
    return {
        "strategy": strategy,  # type: ignore[dict-item]
        "analyzers": [*analyzers, *([LLM] if rated.model_asked else [])],
        "models": list(rated.models),
        "tokens": {"input": rated.tokens_in, "output": rated.tokens_out},
        "cost_usd": round(rated.cost_usd, 6),
    }
