"""What a rated strategy signal's envelope carries in ``meta.strategy``: the wire contract
between the strategy pipeline and its consumers (SQL tables, CSV files, notifications, the
API). Consumers read it leniently (a v1 envelope from another producer may lack any part).

The envelope around it: ``correlation_id`` = ``signal.signal_id``; ``decision.kind`` =
``"strategy"``; ``decision.target.ticker`` = the symbol and ``trade_date`` the signal's UTC
date; ``decision.status``: ``ok`` (rated), ``degraded`` (a model was asked and gave no valid
rating: the offline rating stands, ``llm_error`` says why) or ``expired`` (older than
STRATEGY_MAX_AGE_S when its turn came: not rated, no model call); ``decision.synthesis``: the
side (BUY for buy, SELL for sell) when the final agreement is ``confirm``, else HOLD, with the
final confidence; agent signals ``rules`` and, when asked, ``llm``.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Side = Literal["buy", "sell"]
Agreement = Literal["confirm", "caution", "reject"]
Outcome = Literal["ok", "degraded", "expired"]
AGREEMENTS: tuple[Agreement, ...] = ("confirm", "caution", "reject")
# The seed's indicator names: the CSV files have a column for each, in this order.
SEED_INDICATORS = (
    "rsi",
    "atr",
    "sma_20",
    "sma_50",
    "volume_ratio",
    "bb_upper",
    "bb_lower",
    "bb_middle",
    "stochastic_k",
    "stochastic_d",
)


class SignalFacts(TypedDict):
    """The signal as received, validated."""

    signal_id: str
    symbol: str  # upper case, e.g. AAPL, BTC-USD
    side: Side  # long and short arrive as buy and sell
    price: float
    timestamp: str  # ISO 8601, UTC
    strategy: str
    indicators: dict[str, float]


class OfflineRating(TypedDict):
    """The rules' rating (``strategy.rating``): needs no key."""

    score: float  # -1 (the context contradicts the side) .. 1 (supports it)
    rating: int  # 1..10, from the score
    agreement: Agreement
    confidence: float  # 0..1
    reasons: list[str]  # each quoting the values it used
    unread: list[str]  # rules skipped for a missing indicator, with why


class ModelRating(TypedDict):
    """The model's rating, validated (rating 1..10, agreement, confidence 0..1)."""

    rating: int
    agreement: Agreement
    confidence: float
    reasoning: str
    risks: list[str]
    key_factors: list[str]
    model: str  # provider/model
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms: float
    batch_size: int  # signals in the request that answered (1: asked alone)


class Bar(TypedDict, total=False):
    """One bar sent with the signal: OHLCV plus any indicator columns (numbers)."""

    time: str  # ISO 8601, UTC
    open: float
    high: float
    low: float
    close: float
    volume: float


class StrategyMeta(TypedDict):
    """``meta.strategy``."""

    signal: SignalFacts
    status: Outcome
    offline: OfflineRating | None  # None when expired
    llm: ModelRating | None  # None: no provider, expired, or no valid reply (see llm_error)
    llm_error: str | None
    agreement: Agreement | None  # the final one: the model's when it rated, else the rules'
    rating: int | None  # the final one, 1..10
    confidence: float
    age_s: float  # the signal's age when its turn came
    received_at: str  # ISO 8601: when it reached the stream (its entry id's time)
    processed_at: str
    processing_ms: float
    attempts: int  # deliveries of the entry so far
    bars: list[Bar]
