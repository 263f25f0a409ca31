"""Versioned wire shapes: the v1 ``trading_intelligence`` envelope and seed 000's flat records.

The v1 fields are the contract; signalsmith's additions (``decision.source``, ``decision.status``,
``meta``) live where a v1 consumer ignores them. Models are frozen; build them with the
functions here, never from domain objects elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from signalsmith.domain import DIRECTION_OF, Decision, Direction, Post, Status, Verdict, Vote

SCHEMA_VERSION = "1"
ARENA = "trading_intelligence"
SUMMARY_LIMIT = 300
FACTORS_LIMIT = 10


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AgentSignalV1(_Wire):
    agent: str
    domain: str
    signal: Direction
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str = ""
    key_factors: list[str] = Field(default_factory=list)


class TargetV1(_Wire):
    ticker: str
    trade_date: str = ""
    exchange: str = ""
    asset_class: str = "equity"


class SynthesisV1(_Wire):
    verdict: Verdict
    confidence: float = Field(ge=0.0, le=1.0)
    ensemble_score: float = Field(ge=-1.0, le=1.0)
    reasoning: str = ""


class SourceMetricsV1(_Wire):
    total_calls: int = 0
    successful: int = 0
    failed: int = 0
    total_bytes: int = 0
    by_source: dict[str, int] = Field(default_factory=dict)


class SourceRef(_Wire):
    """Where the decision came from: the input entry and the post it carried."""

    stream: str
    entry_id: str
    post_id: str
    url: str = ""
    author: str = ""
    subreddit: str = ""
    created: str = ""
    title: str = ""


class DecisionV1(_Wire):
    target: TargetV1
    synthesis: SynthesisV1
    agent_signals: list[AgentSignalV1] = Field(default_factory=list)
    source_metrics: SourceMetricsV1 = Field(default_factory=SourceMetricsV1)
    phase_timings: list[dict[str, JsonValue]] = Field(default_factory=list)
    arena_total_seconds: float | None = None
    # signalsmith additions, ignored by a v1 consumer:
    source: SourceRef | None = None
    status: Status = Status.OK
    kind: Literal["post", "consensus"] = "post"


class EnvelopeV1(_Wire):
    schema_version: Literal["1"] = "1"
    arena: Literal["trading_intelligence"] = "trading_intelligence"
    decision: DecisionV1
    published_at: datetime
    correlation_id: str
    arena_id: str = ""
    meta: dict[str, JsonValue] = Field(default_factory=dict)


def correlation_id(stream: str, entry_id: str, ticker: str) -> str:
    """Deterministic id: a redelivered post yields the same id for the same ticker."""
    digest = hashlib.sha256(f"{stream}\x1f{entry_id}\x1f{ticker}".encode())
    return digest.hexdigest()[:32]


def trade_date(post: Post, now: datetime) -> str:
    """The UTC date the post speaks for: when it was created, else when it was handled."""
    return (post.created or now).date().isoformat()


def _agent_signal(vote: Vote) -> AgentSignalV1:
    opinion = vote.opinion
    if opinion is None:
        return AgentSignalV1(
            agent=vote.analyzer,
            domain=vote.domain,
            signal=Direction.NEUTRAL,
            confidence=0.0,
            summary=f"{vote.status.value}: {vote.error}"[:SUMMARY_LIMIT],
        )
    summary = f"{opinion.verdict.value} score={opinion.score:+.2f}"
    return AgentSignalV1(
        agent=vote.analyzer,
        domain=vote.domain,
        signal=DIRECTION_OF[opinion.verdict],
        confidence=opinion.confidence,
        summary=summary[:SUMMARY_LIMIT],
        key_factors=[factor[:120] for factor in opinion.evidence[:FACTORS_LIMIT]],
    )


def source_ref(post: Post, stream: str, entry_id: str) -> SourceRef:
    return SourceRef(
        stream=stream,
        entry_id=entry_id,
        post_id=post.id,
        url=post.url,
        author=post.author,
        subreddit=post.subreddit,
        created=post.created.isoformat() if post.created else "",
        title=post.title[:SUMMARY_LIMIT],
    )


def build_envelope(
    decision: Decision,
    *,
    source: SourceRef,
    trade_day: str,
    asset_class: str,
    published_at: datetime,
    arena_id: str,
    timings: Mapping[str, float],
    meta: Mapping[str, JsonValue],
) -> EnvelopeV1:
    """The v1 envelope for one (post, ticker) decision."""
    failed = sum(1 for vote in decision.votes if vote.opinion is None)
    return EnvelopeV1(
        decision=DecisionV1(
            target=TargetV1(ticker=decision.ticker, trade_date=trade_day, asset_class=asset_class),
            synthesis=SynthesisV1(
                verdict=decision.verdict,
                confidence=decision.confidence,
                ensemble_score=decision.score,
                reasoning=decision.reasoning,
            ),
            agent_signals=[_agent_signal(vote) for vote in decision.votes],
            source_metrics=SourceMetricsV1(
                total_calls=len(decision.votes),
                successful=len(decision.votes) - failed,
                failed=failed,
                by_source={vote.analyzer: 1 for vote in decision.votes},
            ),
            phase_timings=[{"phase": name, "ms": round(ms, 3)} for name, ms in timings.items()],
            arena_total_seconds=round(sum(timings.values()) / 1000, 6),
            source=source,
            status=decision.status,
        ),
        published_at=published_at,
        correlation_id=correlation_id(source.stream, source.entry_id, decision.ticker),
        arena_id=arena_id,
        meta=dict(meta),
    )


def legacy_record(
    decision: Decision, post: Post, entry_id: str, published_at: datetime
) -> dict[str, str]:
    """Seed 000's flat signal, exactly its fields; only BUY and SELL have one."""
    return {
        "decision": decision.verdict.value.lower(),
        "ticker": decision.ticker,
        "analysis": decision.reasoning,
        "src": entry_id,
        "time": published_at.isoformat(),
        "post_title": post.title,
        "post_body": post.body,
        "post_url": post.url,
        "post_author": post.author,
        "post_subreddit": post.subreddit,
        "post_created": str(int(post.created.timestamp())) if post.created else "",
    }
