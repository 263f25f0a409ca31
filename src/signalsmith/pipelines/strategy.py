"""The strategy pipeline (seed 002): a trading system's signal → too old? → the rules' rating →
the model's rating (when providers are configured) → the commit (ENHANCED_STREAM and the
decision log, which feeds the SQL tables and the CSV files).

A signal older than STRATEGY_MAX_AGE_S when its turn comes is published ``expired`` at once:
no rating, no model call. With no model the handler never waits, so the engine runs it inline
(``immediate``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from signalsmith.engine.outcome import Commit, Record
from signalsmith.envelopes import dump
from signalsmith.normalize import decode_fields, utc_now
from signalsmith.source.redis_streams import Entry, entry_time
from signalsmith.strategy.contract import Bar, SignalFacts
from signalsmith.strategy.envelope import Delivery, Rated, strategy_envelope
from signalsmith.strategy.llm_rating import ModelAnswer
from signalsmith.strategy.rating import rate_offline
from signalsmith.strategy.signals import StrategySignal, bars, facts, signal_from_fields


class SignalRater(Protocol):
    """Asks a model to rate one signal (``strategy.llm_rating.StrategyRater``)."""

    async def rate(self, signal: SignalFacts, bars: list[Bar]) -> ModelAnswer: ...


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """The settings the strategy handler reads."""

    stream: str
    max_message_bytes: int
    enhanced_stream: str
    enhanced_maxlen: int
    decision_stream: str  # every rated signal's envelope, for the store ("": none)
    decision_maxlen: int
    max_age_s: float
    max_bars: int
    arena_id: str


class StrategyHandler:
    """One signal's entry → its commit. A signal that can never be rated (malformed) raises
    ``PoisonInput``: the engine dead-letters it with the reason and the original fields."""

    def __init__(self, config: StrategyConfig, rater: SignalRater | None = None) -> None:
        self._config = config
        self._rater = rater

    @property
    def immediate(self) -> bool:
        return self._rater is None

    def handle_now(self, entry: Entry) -> Commit:
        started = time.perf_counter()
        signal, now = self._read(entry)
        return self._without_model(entry, signal, now, started)

    async def handle(self, entry: Entry) -> Commit:
        started = time.perf_counter()
        signal, now = self._read(entry)
        age = _age_s(signal, now)
        if age > self._config.max_age_s or self._rater is None:
            return self._without_model(entry, signal, now, started)
        asked = time.perf_counter()
        answer = await self._rater.rate(facts(signal), bars(signal))
        timings = {"llm": (time.perf_counter() - asked) * 1000}
        return self._commit(entry, self._offline(signal, age, answer), now, started, timings)

    def _without_model(
        self, entry: Entry, signal: StrategySignal, now: datetime, started: float
    ) -> Commit:
        """Expired, or rated by the rules alone."""
        age = _age_s(signal, now)
        if age > self._config.max_age_s:
            return self._commit(entry, self._expired(signal, age), now, started, {})
        return self._commit(entry, self._offline(signal, age, None), now, started, {})

    def _read(self, entry: Entry) -> tuple[StrategySignal, datetime]:
        now = utc_now()
        fields = decode_fields(entry.fields or {}, self._config.max_message_bytes)
        signal = signal_from_fields(
            fields, self._config.stream, entry.id, now=now, max_bars=self._config.max_bars
        )
        return signal, now

    def _offline(self, signal: StrategySignal, age: float, answer: ModelAnswer | None) -> Rated:
        tally = answer.tally if answer is not None else None
        return Rated(
            signal=facts(signal),
            bars=bars(signal),
            status="ok" if answer is None or answer.rating is not None else "degraded",
            offline=rate_offline(signal),
            model=None if answer is None else answer.rating,
            model_error=None if answer is None else answer.error,
            model_asked=answer is not None,
            models=tuple(dict.fromkeys(tally.models)) if tally is not None else (),
            tokens_in=tally.tokens_in if tally is not None else 0,
            tokens_out=tally.tokens_out if tally is not None else 0,
            cost_usd=tally.cost_usd if tally is not None else 0.0,
            age_s=age,
            max_age_s=self._config.max_age_s,
        )

    def _expired(self, signal: StrategySignal, age: float) -> Rated:
        return Rated(
            signal=facts(signal),
            bars=bars(signal),
            status="expired",
            offline=None,
            model=None,
            model_error=None,
            model_asked=False,
            models=(),
            tokens_in=0,
            tokens_out=0,
            cost_usd=0.0,
            age_s=age,
            max_age_s=self._config.max_age_s,
        )

    def _commit(
        self,
        entry: Entry,
        rated: Rated,
        now: datetime,
        started: float,
        timings: dict[str, float],
    ) -> Commit:
        config = self._config
        timings = {
            "rate": (time.perf_counter() - started) * 1000 - sum(timings.values()),
            **timings,
        }
        delivery = Delivery(
            stream=config.stream,
            entry_id=entry.id,
            received_at=entry_time(entry.id, now),
            processed_at=utc_now(),
            attempts=entry.deliveries,
            arena_id=config.arena_id,
            timings=timings,
        )
        body = dump(strategy_envelope(rated, delivery))
        records = [Record(config.enhanced_stream, {"data": body}, config.enhanced_maxlen)]
        if config.decision_stream:
            records.append(Record(config.decision_stream, {"data": body}, config.decision_maxlen))
        return Commit(entry.id, tuple(records))


def _age_s(signal: StrategySignal, now: datetime) -> float:
    return max(0.0, (now - signal.timestamp).total_seconds())
