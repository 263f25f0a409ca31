"""The v1 envelope of an insight (``decision.kind = "insight"``): the product as the target,
the trend read (or the model's verdict) as the synthesis, one agent signal per analyst, and
the indicators, candles and insight text in ``meta``. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from signalsmith.envelopes import (
    ARENA,
    FACTORS_LIMIT,
    SCHEMA_VERSION,
    SUMMARY_LIMIT,
    AgentSignalV1,
    EnvelopeV1,
    Kind,
)

_DIRECTION = {"BUY": "BULLISH", "SELL": "BEARISH", "HOLD": "NEUTRAL"}
# The quote currencies of exchange pairs (BTC-USD, ETH-BTC); BRK-B is a share class.
_QUOTES = frozenset({"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "USDC", "USDT", "DAI", "BTC", "ETH"})


@dataclass(frozen=True, slots=True)
class Opinion:
    """One analyst's reading of the product: the technicals, or the model."""

    agent: str
    domain: str
    verdict: str  # BUY | SELL | HOLD
    confidence: float
    score: float  # -1..1
    summary: str
    factors: Sequence[str]


@dataclass(frozen=True, slots=True)
class InsightFacts:
    """Everything an insight envelope says besides its opinions."""

    correlation_id: str
    product_id: str
    trade_date: str
    exchange: str
    text: str  # the insight (at most 100 words), also the synthesis' reasoning
    status: str  # ok | degraded
    stream: str  # where the request came from ("" for HTTP and the CLI)
    entry_id: str
    published_at: datetime
    arena_id: str
    timings: Mapping[str, float]
    meta: Mapping[str, JsonValue]
    kind: Kind = "insight"  # the strategy pipeline's envelopes share the shape: "strategy"


def asset_class(product_id: str) -> str:
    """``BTC-USD`` and the like are crypto pairs; a bare symbol is an equity."""
    return "crypto" if product_id.partition("-")[2] in _QUOTES else "equity"


def insight_envelope(
    facts: InsightFacts, chosen: Opinion, opinions: Sequence[Opinion]
) -> EnvelopeV1:
    """The envelope: ``chosen``'s verdict is the synthesis, every opinion an agent signal."""
    timings = facts.timings
    return {
        "schema_version": SCHEMA_VERSION,
        "arena": ARENA,
        "decision": {
            "target": {
                "ticker": facts.product_id,
                "trade_date": facts.trade_date,
                "exchange": facts.exchange,
                "asset_class": asset_class(facts.product_id),
            },
            "synthesis": {
                "verdict": chosen.verdict,
                "confidence": round(chosen.confidence, 4),
                "ensemble_score": round(chosen.score, 4),
                "reasoning": facts.text,
            },
            "agent_signals": [_signal(opinion) for opinion in opinions],
            "source_metrics": {
                "total_calls": len(opinions),
                "successful": len(opinions),
                "failed": 0,
                "total_bytes": 0,
                "by_source": {opinion.agent: 1 for opinion in opinions},
            },
            "phase_timings": [{"phase": name, "ms": round(ms, 3)} for name, ms in timings.items()],
            "arena_total_seconds": round(sum(timings.values()) / 1000, 6),
            "source": {
                "stream": facts.stream,
                "entry_id": facts.entry_id,
                "post_id": "",
                "url": "",
                "author": "",
                "subreddit": "",
                "created": "",
                "title": "",
            },
            "status": facts.status,
            "kind": facts.kind,
        },
        "published_at": facts.published_at.isoformat(),
        "correlation_id": facts.correlation_id,
        "arena_id": facts.arena_id,
        "meta": dict(facts.meta),
    }


def _signal(opinion: Opinion) -> AgentSignalV1:
    return {
        "agent": opinion.agent,
        "domain": opinion.domain,
        "signal": _DIRECTION[opinion.verdict],
        "confidence": round(opinion.confidence, 4),
        "summary": opinion.summary[:SUMMARY_LIMIT],
        "key_factors": [factor[:120] for factor in opinion.factors[:FACTORS_LIMIT]],
    }
