"""The shapes of the query API's answers, for its OpenAPI document (/docs) and its tests; the
endpoints render the same fields directly (``render``), without a validation pass per row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, JsonValue

Kind = Literal["post", "consensus", "spike", "insight", "strategy"]
VerdictName = Literal["BUY", "SELL", "HOLD"]
StatusName = Literal["ok", "degraded", "abstain", "error", "expired"]


class Decision(BaseModel):
    """One row of the store: a decision on one ticker (a post's, a spike's, ...)."""

    id: int
    correlation_id: str
    kind: Kind
    ticker: str
    trade_date: date
    verdict: VerdictName
    confidence: float
    score: float = Field(description="the synthesis' ensemble score, -1..1")
    status: StatusName
    source_stream: str | None
    source_entry_id: str | None
    post_id: str | None
    post_url: str | None
    post_author: str | None
    post_subreddit: str | None
    post_created: datetime | None
    analyzers: str = Field(description="comma-separated")
    models: str = Field(description="provider/model, comma-separated")
    tokens_in: int
    tokens_out: int
    cost_usd: float
    published_at: datetime
    stored_at: datetime


class DecisionDetail(Decision):
    envelope: dict[str, JsonValue] = Field(description="the v1 envelope as published")


class DecisionPage(BaseModel):
    items: list[Decision]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class ConsensusView(BaseModel):
    """The confidence-weighted consensus of the post rows with status ok or degraded, as the
    live (ticker, trade date) hash computes it (``signalsmith.consensus.day_consensus``)."""

    verdict: VerdictName
    confidence: float
    score: float
    posts: int
    buy: int
    sell: int
    hold: int


class TickerMentions(BaseModel):
    ticker: str
    mentions: int = Field(description="post rows in the window, whatever their status")
    last_seen: datetime
    consensus: ConsensusView


class TickerList(BaseModel):
    since: datetime
    until: datetime | None
    items: list[TickerMentions]


class TradeDay(BaseModel):
    trade_date: date
    mentions: int
    consensus: ConsensusView


class RollingWindow(BaseModel):
    window_s: int
    since: datetime
    mentions: int
    consensus: ConsensusView


class TickerDetail(BaseModel):
    ticker: str
    days: list[TradeDay] = Field(description="newest first; days without posts are left out")
    window: RollingWindow
    recent: list[Decision] = Field(description="the latest decisions of any kind")
    spikes: list[Decision] = Field(description="the latest spikes within the days shown")


class Insight(BaseModel):
    """One market insight: what the store keeps of it besides its envelope."""

    id: int
    correlation_id: str
    product_id: str
    trade_date: date
    status: StatusName
    verdict: VerdictName
    confidence: float
    score: float = Field(description="the synthesis' ensemble score, -1..1")
    direction: str | None = Field(description="the trend read's: up | down | sideways")
    strength: float | None
    text: str = Field(description="the insight, at most 100 words")
    prompt: str | None
    granularity: str | None
    candles: int | None = Field(description="how many candles were read")
    candle_source: str | None = Field(description="request | file | stream | exchange")
    last_candle: datetime | None
    models: str = Field(description="provider/model, comma-separated")
    tokens_in: int
    tokens_out: int
    cost_usd: float
    indicators: dict[str, float]
    published_at: datetime
    stored_at: datetime


class InsightDetail(Insight):
    envelope: dict[str, JsonValue] | None = Field(description="the v1 envelope as published")


class InsightPage(BaseModel):
    items: list[Insight]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class QueuedInsight(BaseModel):
    """A request queued by POST /api/insights (202), or one not answered yet (GET, 202)."""

    correlation_id: str
    state: Literal["pending", "processing", "decided", "failed"] = Field(
        description="pending: not read yet; processing: being computed; decided: on its way "
        "to the store; failed: dead-lettered"
    )
    deliveries: int | None = Field(None, description="processing: times it was delivered")
    product_id: str | None = None
    queued: bool | None = Field(None, description="false: this id was queued already")
    entry_id: str | None = Field(None, description="its entry on MARKET_STREAM")
    result: str | None = Field(None, description="where the insight will be")
    reason: str | None = Field(None, description="why it failed (state failed)")
    detail: str | None = None


class StrategyRating(BaseModel):
    """One rating of a strategy signal: the rules' or the model's."""

    analyst: Literal["rules", "llm"]
    model: str | None = Field(description='"rules", or provider/model')
    rating: int | None = Field(description="1..10")
    agreement: Literal["confirm", "caution", "reject"] | None
    confidence: float | None
    reasoning: str | None = Field(description="the model's; the rules' reasons joined")
    risks: list[str] | None
    key_factors: list[str] | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None
    latency_ms: float | None


class StrategySignal(BaseModel):
    """One strategy signal (``llm_enhancement_tasks``) with its ratings: ``pending`` from the
    moment it is queued, then decided."""

    id: int
    signal_id: str
    symbol: str
    side: Literal["buy", "sell"] | None
    strategy: str | None
    price: float | None
    signal_time: datetime | None
    status: Literal["pending", "done", "failed", "expired"] = Field(
        description="pending: queued, not decided yet; done: rated; failed: the model gave no "
        "valid rating (the rules' stands, last_error says why); expired: too old when its turn "
        "came, not rated"
    )
    attempts: int | None = Field(description="deliveries of its stream entry")
    received_at: datetime | None
    processed_at: datetime | None
    processing_ms: float | None
    age_s: float | None = Field(description="its age when its turn came")
    last_error: str | None
    agreement: Literal["confirm", "caution", "reject"] | None = Field(description="the final one")
    rating: int | None = Field(description="the final one, 1..10")
    confidence: float | None = Field(description="the final one")
    published_at: datetime = Field(
        description="when it was decided; pending: when it was queued (pages are ordered by it)"
    )
    created_at: datetime = Field(description="when the store got it")
    ratings: list[StrategyRating] = Field(description="the rules', then the model's")


class StrategySignalDetail(StrategySignal):
    envelope: dict[str, JsonValue] | None = Field(description="the v1 envelope as published")


class StrategySignalPage(BaseModel):
    items: list[StrategySignal]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class StrategyCounts(BaseModel):
    """Counts of decided signals, from the store."""

    processed: int = Field(description="status done")
    failed: int
    expired: int
    total: int
    avg_processing_ms: float | None = Field(description="of the processed signals")
    rating_distribution: dict[str, int] = Field(description='final rating "1".."10" -> signals')
    agreements: dict[str, int] = Field(description="final agreement -> signals")
    llm_rated: int = Field(description="ratings given by a model")
    tokens_in: int
    tokens_out: int
    cost_usd: float


class StrategyCountsOf(StrategyCounts):
    strategy: str | None


class StrategyStats(StrategyCounts):
    pending: int | None = Field(
        description="signals on STRATEGY_STREAM not decided yet (the strategy group's lag plus "
        "its pending entries, from Redis); null when unknown"
    )
    strategies: list[StrategyCountsOf] | None = Field(
        description="per strategy, with per_strategy=true; the most signals first"
    )


class SignalState(BaseModel):
    """A signal POSTed and not decided yet (GET /api/strategy-signals/{signal_id}: 202), or
    dead-lettered (200, with the reason)."""

    signal_id: str
    state: Literal["pending", "processing", "decided", "failed"] = Field(
        description="pending: not read yet; processing: being rated; decided: on its way to "
        "the store; failed: dead-lettered"
    )
    deliveries: int | None = Field(None, description="processing: times it was delivered")
    reason: str | None = Field(None, description="why it failed (state failed)")
    detail: str | None = None


class QueuedSignal(BaseModel):
    """A strategy signal queued by POST /api/strategy-signals (202)."""

    signal_id: str
    symbol: str
    state: Literal["pending"]
    queued: bool = Field(description="false: this signal id was queued already")
    entry_id: str | None = Field(description="its entry on STRATEGY_STREAM")
    result: str = Field(description="where the rated signal will be")


class Problem(BaseModel):
    detail: str
