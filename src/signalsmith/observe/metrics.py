"""Prometheus metrics, one registry per worker so several can live in one process (tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from signalsmith.domain import ModelCall

_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _Bound:
    """A labelled family with its first label (the pipeline) filled in."""

    def __init__(self, family: Counter, pipeline: str) -> None:
        self._family = family
        self._pipeline = pipeline

    def labels(self, value: str) -> Counter:
        return self._family.labels(self._pipeline, value)


@dataclass(frozen=True, slots=True)
class PipelineMetrics:
    """The engine's series for one pipeline."""

    messages_in: Counter
    messages_out: _Bound
    dead_lettered: _Bound
    in_flight: Gauge
    redis_errors: Counter
    commits_refused: Counter


@dataclass
class Metrics:
    """Every series signalsmith exports; names are the contract dashboards rely on."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self._engine_series(r)
        self.decisions = Counter(
            "signalsmith_decisions",
            "Decisions made, by verdict and status",
            ["verdict", "status"],
            registry=r,
        )
        self.published = Counter(
            "signalsmith_published", "Records published, by format", ["format"], registry=r
        )
        self.analysis_seconds = Histogram(
            "signalsmith_analysis_seconds",
            "Time to analyze one post, by analyzer",
            ["analyzer"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tickers_skipped = Counter(
            "signalsmith_tickers_skipped",
            "Tickers of a post left undecided, by reason (unknown, over_limit)",
            ["reason"],
            registry=r,
        )
        self.scheduled_requests = Counter(
            "signalsmith_scheduled_requests",
            "Market requests of INSIGHT_SCHEDULE's ticks, by outcome (queued by this process,"
            " taken: queued already by another, failed: Redis failed)",
            ["outcome"],
            registry=r,
        )
        self._llm_series(r)

    def _engine_series(self, r: CollectorRegistry) -> None:
        """The engine's series, one set per pipeline (label ``pipeline``)."""
        self.messages_in = Counter(
            "signalsmith_messages_in", "Stream entries read", ["pipeline"], registry=r
        )
        self.messages_out = Counter(
            "signalsmith_messages_out",
            "Stream entries finished, by outcome",
            ["pipeline", "outcome"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "signalsmith_dead_lettered",
            "Entries dead-lettered, by reason",
            ["pipeline", "reason"],
            registry=r,
        )
        self.in_flight = Gauge(
            "signalsmith_in_flight",
            "Entries read and not yet acknowledged",
            ["pipeline"],
            registry=r,
        )
        self.redis_errors = Counter(
            "signalsmith_redis_errors",
            "Reads or commits that failed and were retried (Redis or the store unavailable)",
            ["pipeline"],
            registry=r,
        )
        self.commits_refused = Counter(
            "signalsmith_commits_refused",
            "Commit batches refused for their content (retried entry by entry)",
            ["pipeline"],
            registry=r,
        )

    def pipeline(self, name: str) -> PipelineMetrics:
        """The engine's series bound to one pipeline."""
        return PipelineMetrics(
            messages_in=self.messages_in.labels(name),
            messages_out=_Bound(self.messages_out, name),
            dead_lettered=_Bound(self.dead_lettered, name),
            in_flight=self.in_flight.labels(name),
            redis_errors=self.redis_errors.labels(name),
            commits_refused=self.commits_refused.labels(name),
        )

    def _llm_series(self, r: CollectorRegistry) -> None:
        self.llm_calls = Counter(
            "signalsmith_llm_calls",
            "LLM calls, by provider and outcome",
            ["provider", "outcome"],
            registry=r,
        )
        self.llm_fallbacks = Counter(
            "signalsmith_llm_fallbacks",
            "Times a provider failed and the next was tried",
            ["provider"],
            registry=r,
        )
        self.llm_latency = Histogram(
            "signalsmith_llm_latency_seconds",
            "LLM call latency, by provider",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "signalsmith_llm_tokens",
            "LLM tokens, by provider, model and direction",
            ["provider", "model", "direction"],
            registry=r,
        )
        self.llm_cost = Counter(
            "signalsmith_llm_cost_usd",
            "Estimated LLM cost in USD, by provider and model",
            ["provider", "model"],
            registry=r,
        )
        self.llm_cache = Counter(
            "signalsmith_llm_cache", "LLM reply cache lookups, by result", ["result"], registry=r
        )
        self.llm_parse = Counter(
            "signalsmith_llm_parse",
            "LLM replies, by parse method (or failure)",
            ["method"],
            registry=r,
        )
        # Counted on every call: each series looked up once per label set, not on every call.
        self._tokens_of = cache(self.llm_tokens.labels)
        self._cost_of = cache(self.llm_cost.labels)

    def count_llm_usage(self, call: ModelCall) -> None:
        """One call's tokens (input, output and the cached share of the input) and its cost."""
        provider, model = call.provider, call.model
        self._tokens_of(provider, model, "input").inc(call.tokens_in)
        self._tokens_of(provider, model, "output").inc(call.tokens_out)
        self._tokens_of(provider, model, "cached").inc(call.tokens_cached)
        self._cost_of(provider, model).inc(call.cost_usd)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
