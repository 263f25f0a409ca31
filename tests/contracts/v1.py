"""An independent reading of the v1 ``trading_intelligence`` envelope contract (seed 003).

Written from the contract, not imported from signalsmith: if signalsmith's own wire models drift,
envelopes stop validating here. Like a v1 consumer, it ignores fields it does not know.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Consumer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Signal(_Consumer):
    agent: str
    domain: str
    signal: Literal["BULLISH", "BEARISH", "NEUTRAL"]
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str = Field(default="", max_length=300)
    key_factors: list[str] = Field(default_factory=list, max_length=10)


class Target(_Consumer):
    ticker: str
    trade_date: str = ""
    exchange: str = ""
    asset_class: str = "equity"


class Synthesis(_Consumer):
    verdict: Literal["BUY", "HOLD", "SELL"]
    confidence: float = Field(ge=0.0, le=1.0)
    ensemble_score: float = Field(ge=-1.0, le=1.0)
    reasoning: str = ""


class Metrics(_Consumer):
    total_calls: int = 0
    successful: int = 0
    failed: int = 0
    total_bytes: int = 0
    by_source: dict[str, int] = Field(default_factory=dict)


class Decision(_Consumer):
    target: Target
    synthesis: Synthesis
    agent_signals: list[Signal] = Field(default_factory=list)
    source_metrics: Metrics = Field(default_factory=Metrics)
    phase_timings: list[dict[str, Any]] = Field(default_factory=list)
    arena_total_seconds: float | None = None


class Envelope(_Consumer):
    schema_version: Literal["1"] = "1"
    arena: Literal["trading_intelligence"] = "trading_intelligence"
    decision: Decision
    published_at: datetime
    correlation_id: str
    arena_id: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)


def is_post(raw: dict[str, Any]) -> bool:
    """signalsmith's ``decision.kind``: a decision about one post (not a consensus or a spike)."""
    return raw["decision"].get("kind", "post") == "post"


def decode(payload: bytes | str) -> Envelope | None:
    """What a v1 consumer does: skip other schema versions, validate the rest."""
    head = json.loads(payload)
    if head.get("schema_version") != "1":
        return None
    return Envelope.model_validate(head)


SEED_000_LEGACY_FIELDS = frozenset(
    {
        "decision",
        "ticker",
        "analysis",
        "src",
        "time",
        "post_title",
        "post_body",
        "post_url",
        "post_author",
        "post_subreddit",
        "post_created",
    }
)

DECISION_HASH_FIELDS = frozenset(
    {
        "json",
        "ticker",
        "trade_date",
        "verdict",
        "confidence",
        "ensemble_score",
        "published_at",
        "correlation_id",
        "arena_id",
    }
)
