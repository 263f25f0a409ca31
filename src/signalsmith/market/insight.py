"""A request's candles → indicators → the trend read → the insight and its envelope. Pure:
the candles are fetched before (``pipelines.market``), and what is published after.

With no model configured the trend read is the insight: its verdict, and a text that quotes
only computed values. It is an answer in its own right (status ``ok``), not a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import JsonValue

from signalsmith.envelopes import EnvelopeV1
from signalsmith.market.candles import CandleSeries, format_granularity, validate_candles
from signalsmith.market.envelope import InsightFacts, Opinion, insight_envelope
from signalsmith.market.indicators import Indicators, compute_indicators
from signalsmith.market.requests import MarketRequest
from signalsmith.market.trend import TrendRead, read_trend, render_insight

TECHNICALS = "technicals"
LLM = "llm"


@dataclass(frozen=True, slots=True)
class InsightOptions:
    """What every insight of a process shares."""

    short_window: int = 5
    long_window: int = 20
    exchange: str = ""
    arena_id: str = "signalsmith"


@dataclass(frozen=True, slots=True)
class Candles:
    """A request's raw candle rows and where they came from."""

    rows: object
    source: str  # request | file | stream | exchange
    granularity_s: int


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the request came from: a stream entry, or ("", "") for HTTP and the CLI."""

    stream: str = ""
    entry_id: str = ""


@dataclass(frozen=True, slots=True)
class Insight:
    """Everything computed for one request."""

    request: MarketRequest
    source: str  # where the candles came from
    series: CandleSeries
    indicators: Indicators
    read: TrendRead
    text: str
    envelope: EnvelopeV1


@dataclass(frozen=True, slots=True)
class Reading:
    """What the candles say: the series, its indicators and the trend read."""

    series: CandleSeries
    indicators: Indicators
    read: TrendRead


@dataclass(frozen=True, slots=True)
class ModelText:
    """What the model made of a reading (``market.llm_insight``): the accepted text, or none
    and ``degraded``; what it cost; and its record for ``meta.insight.llm``."""

    status: str  # ok | degraded
    text: str | None
    problems: tuple[str, ...]  # of the last rejected reply
    models: tuple[str, ...]
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms: float
    record: dict[str, JsonValue]


def read_candles(candles: Candles, options: InsightOptions, *, now: datetime) -> Reading:
    """Validate ``candles`` and read them. Raises ``PoisonInput`` when they cannot make a
    series (none usable, malformed)."""
    series = validate_candles(candles.rows, candles.granularity_s, now.timestamp())
    indicators = compute_indicators(
        series, short_window=options.short_window, long_window=options.long_window
    )
    return Reading(series, indicators, read_trend(indicators))


def make_insight(
    request: MarketRequest,
    candles: Candles,
    options: InsightOptions,
    *,
    now: datetime,
    origin: Origin = Origin(),
    timings: Mapping[str, float] | None = None,
    reading: Reading | None = None,
    model: ModelText | None = None,
) -> Insight:
    """The insight on ``request``'s product from ``candles`` (already ``reading`` them, when
    given): the model's text when it passed the check, else the trend read's own text, with
    status ``degraded`` when a model was asked and failed twice."""
    if reading is None:
        reading = read_candles(candles, options, now=now)
    series, indicators, read = reading.series, reading.indicators, reading.read
    own = render_insight(request.product_id, indicators, read)
    text = own if model is None or model.text is None else model.text
    technicals = Opinion(
        agent=TECHNICALS,
        domain="technical",
        verdict=read.verdict.value,
        confidence=read.confidence,
        score=read.score,
        summary=f"{read.direction} trend, strength {read.strength:.2f}",
        factors=read.reasons,
    )
    opinions = [technicals] if model is None else [technicals, _model_opinion(read, model)]
    meta = _meta(request, candles, series, indicators, read=read, text=text)
    if model is not None:
        _add_model(meta, model)
    facts = InsightFacts(
        correlation_id=request.correlation_id,
        product_id=request.product_id,
        trade_date=datetime.fromtimestamp(indicators.last_time, UTC).date().isoformat(),
        exchange=options.exchange if candles.source == "exchange" else "",
        text=text,
        status="ok" if model is None else model.status,
        stream=origin.stream,
        entry_id=origin.entry_id,
        published_at=now,
        arena_id=options.arena_id,
        timings=timings or {},
        meta=meta,
    )
    envelope = insight_envelope(facts, technicals, opinions)
    return Insight(request, candles.source, series, indicators, read, text, envelope)


def _model_opinion(read: TrendRead, model: ModelText) -> Opinion:
    """The model's agent signal: it writes the text, never the verdict, so it carries the
    read's verdict when its text passed the check, and stands aside (HOLD, 0) when not."""
    if model.text is None:
        summary = "rejected twice: " + "; ".join(model.problems)
        return Opinion(LLM, "narrative", "HOLD", 0.0, 0.0, summary, model.problems)
    summary = "insight text checked against the indicators"
    return Opinion(LLM, "narrative", read.verdict.value, read.confidence, read.score, summary, ())


def _add_model(meta: dict[str, JsonValue], model: ModelText) -> None:
    insight = meta["insight"]
    if isinstance(insight, dict):
        insight["llm"] = model.record
    meta["analyzers"] = [TECHNICALS, LLM]
    meta["models"] = list(model.models)
    meta["tokens"] = {"input": model.tokens_in, "output": model.tokens_out}
    meta["cost_usd"] = round(model.cost_usd, 6)


def _meta(
    request: MarketRequest,
    candles: Candles,
    series: CandleSeries,
    indicators: Indicators,
    *,
    read: TrendRead,
    text: str,
) -> dict[str, JsonValue]:
    insight: dict[str, JsonValue] = {
        "product_id": request.product_id,
        "prompt": request.prompt,
        "text": text,
        "indicators": dict(indicators.values()),
        "missing": dict(indicators.missing),
        "trend": {
            "direction": read.direction,
            "strength": round(read.strength, 4),
            "verdict": read.verdict.value,
            "confidence": round(read.confidence, 4),
            "score": round(read.score, 4),
            "reasons": list(read.reasons),
            "unread": list(read.unread),
        },
        "candles": {
            "source": candles.source,
            "count": len(series),
            "granularity": format_granularity(series.granularity_s),
            "first": _iso(float(series.time[0])),
            "last": _iso(float(series.time[-1])),
            "dropped": series.dropped,
            "missing_intervals": series.missing_intervals,
            "notes": list(series.notes),
        },
    }
    return {
        "insight": insight,
        "analyzers": [TECHNICALS],
        "models": [],
        "tokens": {"input": 0, "output": 0},
        "cost_usd": 0.0,
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()
