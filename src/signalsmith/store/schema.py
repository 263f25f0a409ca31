"""The store's tables: a row per decision (one per post and ticker, one per spike), with the
columns users filter on and the envelope as published, and per ticker and hour the sums that
rank tickers; what insights and rated strategy signals say, in tables of their own. Alembic
migrations create them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite's rowid alias must be INTEGER; PostgreSQL gets a 64-bit identity.
RowId = BigInteger().with_variant(Integer(), "sqlite")
FOLDED: Final = ("ok", "degraded")  # the statuses a consensus folds in
SUMS: Final = (
    "mentions",
    "posts",
    "buy",
    "sell",
    "weight_sum",
    "weighted_score",
    "confidence_sum",
    "last_seen",
)


class Base(DeclarativeBase):
    pass


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    correlation_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # post | consensus | spike | insight | strategy
    ticker: Mapped[str] = mapped_column(String(32))
    trade_date: Mapped[date] = mapped_column(Date)
    verdict: Mapped[str] = mapped_column(String(8))  # BUY | SELL | HOLD
    confidence: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)  # the synthesis' ensemble_score, -1..1
    status: Mapped[str] = mapped_column(String(16))  # ok | degraded | abstain | error
    source_stream: Mapped[str | None] = mapped_column(String(256))
    source_entry_id: Mapped[str | None] = mapped_column(String(64))
    post_id: Mapped[str | None] = mapped_column(String(256))
    post_url: Mapped[str | None] = mapped_column(Text)
    post_author: Mapped[str | None] = mapped_column(String(256))
    post_subreddit: Mapped[str | None] = mapped_column(String(256))
    post_created: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    analyzers: Mapped[str] = mapped_column(String(512), default="")  # comma-separated
    models: Mapped[str] = mapped_column(String(1024), default="")  # provider/model, comma-sep.
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    envelope: Mapped[str] = mapped_column(Text)  # the v1 envelope JSON, as published

    # Pages are ranges of (…, published_at, id) read newest first; the query API's sums
    # (consensus per ticker, daily history) read the trailing columns from the index alone.
    __table_args__ = (
        Index(
            "ix_decisions_ticker_published",
            "ticker",
            "published_at",
            "id",
            "kind",
            "status",
            "verdict",
            "confidence",
            "score",
            "trade_date",
        ),
        Index("ix_decisions_published", "published_at", "id"),
        Index(
            "ix_decisions_kind_published",
            "kind",
            "published_at",
            "id",
            "ticker",
            "status",
            "verdict",
            "confidence",
            "score",
        ),
        Index("ix_decisions_ticker_kind_published", "ticker", "kind", "published_at", "id"),
    )


class _PostSums:
    """The sums of a group of post rows that a consensus is computed from."""

    mentions: Mapped[int] = mapped_column(Integer)  # post rows, any status
    posts: Mapped[int] = mapped_column(Integer)  # post rows whose status is FOLDED
    buy: Mapped[int] = mapped_column(Integer)
    sell: Mapped[int] = mapped_column(Integer)
    weight_sum: Mapped[float] = mapped_column(Float)
    weighted_score: Mapped[float] = mapped_column(Float)
    confidence_sum: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TickerHourRow(_PostSums, Base):
    """Per ticker and hour of publication, the sums of its post rows that ``/api/tickers``
    ranks by: a day's window reads a few thousand of these instead of every row. The store's
    writer keeps them in the transaction that inserts the rows, for new rows only, so a
    redelivery or a backfill never counts a row twice."""

    __tablename__ = "ticker_hours"

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # published_at // 3600 s
    ticker: Mapped[str] = mapped_column(String(32), primary_key=True)

    # An hour's range is the table itself on SQLite (clustered on the key); PostgreSQL reads
    # it from a covering index alone (measured: 24 ms for a day through the key, 9.5 ms so).
    __table_args__ = (
        Index(
            "ix_ticker_hours_covering",
            "hour",
            postgresql_include=["ticker", *SUMS],
        ).ddl_if(dialect="postgresql"),
        {"sqlite_with_rowid": False},
    )


class TickerDayRow(_PostSums, Base):
    """Per ticker and trade date, the same sums: a ticker's daily history, kept like
    ``ticker_hours``."""

    __tablename__ = "ticker_days"

    ticker: Mapped[str] = mapped_column(String(32), primary_key=True)
    trade_date: Mapped[date] = mapped_column(Date, primary_key=True)

    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - SQLAlchemy's own attribute


class InsightRow(Base):
    """One market insight (a ``decisions`` row of kind ``insight``) with what an insight says:
    its text, the trend read, its candles and its indicators. The store's writer derives it from
    the envelope in the transaction that inserts the decision row; ``/api/insights`` reads it."""

    __tablename__ = "insights"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    correlation_id: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[str] = mapped_column(String(32))
    trade_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # ok | degraded
    verdict: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    direction: Mapped[str | None] = mapped_column(String(16))  # up | down | sideways
    strength: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str | None] = mapped_column(String(64))
    granularity: Mapped[str | None] = mapped_column(String(16))
    candles: Mapped[int | None] = mapped_column(Integer)
    candle_source: Mapped[str | None] = mapped_column(String(16))
    last_candle: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    models: Mapped[str] = mapped_column(String(1024), default="")
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    indicators: Mapped[str] = mapped_column(Text)  # JSON object: name -> value
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_insights_product_published", "product_id", "published_at", "id"),
        Index("ix_insights_published", "published_at", "id"),
    )


class EnhancementTaskRow(Base):
    """One strategy signal (seed 002's ``llm_enhancement_tasks``): ``pending`` from the moment
    it is queued (the store's own group on STRATEGY_STREAM writes that row), then as it was
    decided (``done``: rated; ``failed``: a model was asked and gave no valid rating, the rules'
    rating stands and ``last_error`` says why; ``expired``: too old when its turn came, not
    rated), with its timings and the final rating. The decided row is derived from a
    ``decisions`` row of kind ``strategy`` in the transaction that inserts that row, and
    replaces the pending one; a pending row never replaces a decided one.

    Whether a pending signal is being rated right now (``processing``) is Redis' to say: its
    entry read by the strategy group and not acknowledged yet. ``GET
    /api/strategy-signals/{signal_id}`` asks it for a signal POSTed; the statistics take
    ``pending`` from Redis too (``strategy.stats.pending_signals``)."""

    __tablename__ = "llm_enhancement_tasks"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    signal_id: Mapped[str] = mapped_column(String(64), unique=True)  # the correlation id
    symbol: Mapped[str] = mapped_column(String(32))  # the decision's ticker
    side: Mapped[str | None] = mapped_column(String(8))  # buy | sell
    strategy: Mapped[str | None] = mapped_column(String(64))
    price: Mapped[float | None] = mapped_column(Float)
    signal_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # pending | done | failed | expired
    attempts: Mapped[int | None] = mapped_column(Integer)  # deliveries of its stream entry
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processing_ms: Mapped[float | None] = mapped_column(Float)
    age_s: Mapped[float | None] = mapped_column(Float)  # its age when its turn came
    last_error: Mapped[str | None] = mapped_column(Text)
    agreement: Mapped[str | None] = mapped_column(String(16))  # confirm | caution | reject
    rating: Mapped[int | None] = mapped_column(Integer)  # the final one, 1..10
    confidence: Mapped[float | None] = mapped_column(Float)  # the final one, 0..1
    # decided (pending: queued)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # stored

    # /api/strategy-signals reads pages newest first, as ranges of (..., published_at, id).
    __table_args__ = (
        Index("ix_llm_tasks_symbol_published", "symbol", "published_at", "id"),
        Index("ix_llm_tasks_strategy_published", "strategy", "published_at", "id"),
        Index("ix_llm_tasks_status_published", "status", "published_at", "id"),
        Index("ix_llm_tasks_published", "published_at", "id"),
    )


class AnalysisResultRow(Base):
    """One rating of a strategy signal (seed 002's ``llm_analysis_results``): the rules'
    (``analyst = "rules"``, ``model = "rules"``) and, when a model rated it, the model's
    (``analyst = "llm"``, ``model`` = provider/model, with its tokens, cost and latency). Kept
    by the store's writer with the signal's ``llm_enhancement_tasks`` row."""

    __tablename__ = "llm_analysis_results"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    signal_id: Mapped[str] = mapped_column(String(64))
    analyst: Mapped[str] = mapped_column(String(16))  # rules | llm
    model: Mapped[str | None] = mapped_column(String(256))
    rating: Mapped[int | None] = mapped_column(Integer)  # 1..10
    agreement: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    reasoning: Mapped[str | None] = mapped_column(Text)  # the model's; the rules' reasons joined
    risks: Mapped[str | None] = mapped_column(Text)  # JSON list of strings
    key_factors: Mapped[str | None] = mapped_column(Text)  # JSON list of strings
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("signal_id", "analyst", name="uq_llm_analysis_results_signal_analyst"),
    )
