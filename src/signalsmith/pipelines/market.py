"""The market pipeline (seed 001): a request's entry → its candles → indicators → the trend
read → the insight → the commit (the insight stream, the decision log, the per-(product, date)
hash).

request → candles (the request's own, else the configured sources) → ``make_insight`` → commit
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from signalsmith.engine.outcome import Commit, Record
from signalsmith.envelopes import dump
from signalsmith.errors import PoisonInput
from signalsmith.market.candles import parse_granularity
from signalsmith.market.indicators import Indicators
from signalsmith.market.insight import (
    Candles,
    Insight,
    InsightOptions,
    ModelText,
    Origin,
    make_insight,
    read_candles,
)
from signalsmith.market.requests import MarketRequest, request_from_fields
from signalsmith.normalize import decode_fields, utc_now
from signalsmith.sink.hash_part import HashWrite
from signalsmith.source.redis_streams import Entry

NOWHERE = Origin()  # a request over HTTP or from the CLI


class ModelWriter(Protocol):
    """Asks a model for the insight on a reading (``market.llm_insight.InsightWriter``)."""

    async def write(self, product_id: str, indicators: Indicators) -> ModelText: ...


class CandleFinder(Protocol):
    """Where candles come from when a request carries none. Raises ``PoisonInput`` when the
    product has none anywhere (unknown product), ``TransientError`` when a source is down."""

    async def find(self, product_id: str, granularity: str, lookback: int) -> Candles: ...


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """The settings the market handler reads."""

    stream: str
    max_message_bytes: int
    insight_stream: str
    insight_maxlen: int
    decision_stream: str  # every insight's envelope, for the store ("": none)
    decision_maxlen: int
    hash_prefix: str
    hash_ttl_s: int
    granularity: str
    lookback: int
    options: InsightOptions


class MarketHandler:
    """One request's entry → its commit. Raises ``PoisonInput`` for a request that can never
    succeed (the engine dead-letters it with the request) and ``TransientError`` while its
    candles cannot be fetched (it is retried, then dead-lettered after MAX_DELIVERIES)."""

    immediate = False  # candles may come over the network

    def __init__(
        self, config: MarketConfig, candles: CandleFinder, model: ModelWriter | None = None
    ) -> None:
        self._config = config
        self._candles = candles
        self._model = model

    async def handle(self, entry: Entry) -> Commit:
        fields = decode_fields(entry.fields or {}, self._config.max_message_bytes)
        request = request_from_fields(fields, self._config.stream, entry.id)
        insight = await self.insight(request, Origin(self._config.stream, entry.id))
        return self.commit(entry.id, insight)

    def handle_now(self, entry: Entry) -> Commit:
        raise NotImplementedError("market requests are handled by handle()")

    async def insight(
        self, request: MarketRequest, origin: Origin = NOWHERE, candles: Candles | None = None
    ) -> Insight:
        """The insight on one request (the stream's, an HTTP body's or the CLI's), from
        ``candles`` when given (a file named on the command line)."""
        started = time.perf_counter()
        if candles is None:
            candles = await self._request_candles(request)
        fetched = time.perf_counter()
        now = utc_now()
        timings = {"candles": (fetched - started) * 1000}
        if self._model is None:
            return make_insight(
                request, candles, self._config.options, now=now, origin=origin, timings=timings
            )
        reading = read_candles(candles, self._config.options, now=now)
        model = await self._model.write(request.product_id, reading.indicators)
        timings["llm"] = model.latency_ms
        return make_insight(
            request,
            candles,
            self._config.options,
            now=now,
            origin=origin,
            timings=timings,
            reading=reading,
            model=model,
        )

    async def _request_candles(self, request: MarketRequest) -> Candles:
        granularity = request.granularity or self._config.granularity
        seconds = parse_granularity(granularity)
        if request.candles is not None:
            if not request.candles:
                raise PoisonInput("no_candles", "the request's candles are empty")
            return Candles(request.candles, "request", seconds)
        lookback = request.lookback or self._config.lookback
        return await self._candles.find(request.product_id, granularity, lookback)

    def commit(self, entry_id: str, insight: Insight) -> Commit:
        """The insight published, logged for the store, and kept in its day's hash."""
        config = self._config
        body = dump(insight.envelope)
        records = [Record(config.insight_stream, {"data": body}, config.insight_maxlen)]
        if config.decision_stream:
            records.append(Record(config.decision_stream, {"data": body}, config.decision_maxlen))
        return Commit(entry_id, tuple(records), (self._hash(insight, body),))

    def _hash(self, insight: Insight, body: str) -> HashWrite:
        """Seed 003's per-(ticker, trade date) hash, holding the day's newest insight."""
        envelope = insight.envelope
        target = envelope["decision"]["target"]
        synthesis = envelope["decision"]["synthesis"]
        key = f"{self._config.hash_prefix}:{target['ticker']}:{target['trade_date']}"
        return HashWrite(
            key,
            {
                "json": body,
                "ticker": target["ticker"],
                "trade_date": target["trade_date"],
                "verdict": synthesis["verdict"],
                "confidence": str(synthesis["confidence"]),
                "ensemble_score": str(synthesis["ensemble_score"]),
                "published_at": envelope["published_at"],
                "correlation_id": envelope["correlation_id"],
                "arena_id": envelope["arena_id"],
            },
            self._config.hash_ttl_s,
        )
