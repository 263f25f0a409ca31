"""The worker: the one place that knows every stage and runs them in order for each entry.

read → normalize → tickers → analyze → decide → build outputs → commit (publish + ack, atomic)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from pydantic import JsonValue
from redis.exceptions import RedisError

from signalsmith import __version__
from signalsmith.analyze.base import Analyzer
from signalsmith.decide import decide
from signalsmith.domain import Analysis, ModelCall, Post, Status, Vote
from signalsmith.envelopes import source_ref, trade_date
from signalsmith.errors import PoisonInput, TransientError
from signalsmith.normalize import decode_fields, to_post, utc_now
from signalsmith.observe.metrics import Metrics
from signalsmith.sink.outputs import OutputPolicy, PostContext, build_commit, dead_letter_commit
from signalsmith.sink.redis_publish import Commit, RedisCommitter
from signalsmith.source.redis_streams import Entry, StreamSource
from signalsmith.tickers import SymbolBook, TickerExtractor

log = structlog.get_logger("signalsmith.worker")

_RETRY_PAUSE_S = 1.0
_MAX_REDIS_BACKOFF_S = 5.0


@dataclass(frozen=True, slots=True)
class Retry:
    """Leave the entry pending: it is redelivered and tried again."""

    entry_id: str
    error: str


Outcome = Commit | Retry


@dataclass
class WorkerStats:
    """Counts since start, for /health and the exit summary."""

    read: int = 0
    acknowledged: int = 0
    published: int = 0
    dead_lettered: int = 0
    retried: int = 0
    skipped: int = 0  # no longer ours when we came to acknowledge (reclaimed or acked elsewhere)
    last_error: str = ""
    last_error_at: datetime | None = None
    started_at: datetime = field(default_factory=utc_now)
    redis_ok: bool = False
    group_ready: bool = False

    def error(self, message: str) -> None:
        self.last_error = message[:500]
        self.last_error_at = utc_now()


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The settings the worker itself reads."""

    stream: str
    dlq_stream: str
    dlq_maxlen: int
    read_count: int
    max_message_bytes: int
    policy: OutputPolicy


class Worker:
    """Consumes one stream through its group until stopped, idle, or a message budget is spent."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        source: StreamSource,
        committer: RedisCommitter,
        analyzers: Sequence[Analyzer],
        book: SymbolBook,
        extractor: TickerExtractor,
        metrics: Metrics,
    ) -> None:
        self._config = config
        self._source = source
        self._committer = committer
        self._analyzers = tuple(analyzers)
        self._book = book
        self._extractor = extractor
        self.metrics = metrics
        self.stats = WorkerStats()

    @property
    def analyzer_names(self) -> tuple[str, ...]:
        return tuple(analyzer.name for analyzer in self._analyzers)

    async def run(
        self,
        stop: asyncio.Event,
        *,
        until_idle: float | None = None,
        max_messages: int | None = None,
    ) -> WorkerStats:
        """The loop: read a batch, handle it, commit it; Redis failures are waited out."""
        idle_since = time.monotonic()
        failures = 0
        while not stop.is_set() and not self._spent(max_messages):
            try:
                await self._ensure_group()
                entries = await self._source.read(self._batch_size(max_messages))
                failures = 0
                if entries:
                    idle_since = time.monotonic()
                    if await self._process(entries):
                        await _sleep_unless(stop, _RETRY_PAUSE_S)
                elif until_idle is not None and await self._idle(idle_since, until_idle):
                    break
            except RedisError as exc:
                failures += 1
                await self._redis_failed(exc, failures, stop)
        return self.stats

    async def _ensure_group(self) -> None:
        if not self.stats.group_ready:
            await self._source.ensure_group()
            self.stats.group_ready = self.stats.redis_ok = True

    async def _idle(self, idle_since: float, until_idle: float) -> bool:
        quiet = time.monotonic() - idle_since >= until_idle
        return quiet and await self._source.pending() == 0

    def _spent(self, max_messages: int | None) -> bool:
        return max_messages is not None and self.stats.read >= max_messages

    def _batch_size(self, max_messages: int | None) -> int:
        if max_messages is None:
            return self._config.read_count
        return max(1, min(self._config.read_count, max_messages - self.stats.read))

    async def _redis_failed(self, exc: RedisError, failures: int, stop: asyncio.Event) -> None:
        self.stats.redis_ok = self.stats.group_ready = False
        self.stats.error(f"redis: {exc}")
        self.metrics.redis_errors.inc()
        self._source.rewind()
        delay = min(_MAX_REDIS_BACKOFF_S, 0.1 * 2**failures)
        log.warning("redis unavailable, retrying", error=str(exc), retry_in_s=delay)
        await _sleep_unless(stop, delay)

    async def _process(self, entries: Sequence[Entry]) -> int:
        """Handle and commit a batch; returns how many entries were left pending to retry."""
        self.stats.read += len(entries)
        self.metrics.messages_in.inc(len(entries))
        self.metrics.in_flight.set(len(entries))
        outcomes = await asyncio.gather(*(self.handle(entry) for entry in entries))
        commits = [outcome for outcome in outcomes if isinstance(outcome, Commit)]
        applied = await self._committer.commit(commits)
        retries = [outcome for outcome in outcomes if isinstance(outcome, Retry)]
        self._account(commits, applied, retries)
        self.metrics.in_flight.set(0)
        return len(retries)

    async def handle(self, entry: Entry) -> Outcome:
        """One entry through every stage; never raises for bad input."""
        started = time.perf_counter()
        if entry.fields is None:
            return self._dead_letter(entry, PoisonInput("deleted", "entry no longer in stream"))
        try:
            post = to_post(
                decode_fields(entry.fields, self._config.max_message_bytes),
                entry.id,
                self._config.stream,
            )
        except PoisonInput as exc:
            return self._dead_letter(entry, exc)
        tickers = post.tickers or self._extractor.extract(post.text)
        if not tickers:
            return Commit(entry_id=entry.id)
        parsed = time.perf_counter()
        try:
            votes, calls = await self._analyze(post, tickers)
        except TransientError as exc:
            return Retry(entry.id, str(exc))
        decisions = [decide(ticker, votes[ticker]) for ticker in tickers]
        for decision in decisions:
            self.metrics.decisions.labels(decision.verdict.value, decision.status.value).inc()
        timings = {
            "normalize": (parsed - started) * 1000,
            "analyze": (time.perf_counter() - parsed) * 1000,
        }
        return build_commit(
            entry.id,
            decisions,
            self._context(post, entry.id, timings, calls),
            self._config.policy,
            {ticker: self._book.asset_class(ticker) for ticker in tickers},
        )

    async def _analyze(
        self, post: Post, tickers: Sequence[str]
    ) -> tuple[dict[str, list[Vote]], list[ModelCall]]:
        votes: dict[str, list[Vote]] = {ticker: [] for ticker in tickers}
        calls: list[ModelCall] = []
        for analyzer in self._analyzers:
            started = time.perf_counter()
            analysis = await self._ask(analyzer, post, tickers)
            self.metrics.analysis_seconds.labels(analyzer.name).observe(
                time.perf_counter() - started
            )
            calls += analysis.calls
            for ticker in tickers:
                cast = analysis.votes.get(ticker) or (_failed(analyzer, "no vote for ticker"),)
                votes[ticker] += cast
        return votes, calls

    async def _ask(self, analyzer: Analyzer, post: Post, tickers: Sequence[str]) -> Analysis:
        try:
            return await analyzer.analyze(post, tickers)
        except (TransientError, asyncio.CancelledError):
            raise
        except Exception as exc:  # an analyzer bug must cost one decision, not the worker
            log.exception("analyzer failed", analyzer=analyzer.name, post=post.id)
            self.stats.error(f"{analyzer.name}: {exc}")
            return Analysis(votes={ticker: (_failed(analyzer, str(exc)),) for ticker in tickers})

    def _context(
        self,
        post: Post,
        entry_id: str,
        timings: Mapping[str, float],
        calls: Sequence[ModelCall],
    ) -> PostContext:
        now = utc_now()
        meta: dict[str, JsonValue] = {
            "producer": f"signalsmith {__version__}",
            "analyzers": list(self.analyzer_names),
            "models": [*sorted({f"{c.provider}/{c.model}" for c in calls})],
            "tokens": {
                "input": sum(c.tokens_in for c in calls),
                "output": sum(c.tokens_out for c in calls),
            },
            "cost_usd": round(sum(c.cost_usd for c in calls), 8),
            "latency_ms": round(sum(timings.values()), 3),
            "llm_calls": [_call_meta(call) for call in calls],
        }
        return PostContext(
            post=post,
            source=source_ref(post, self._config.stream, entry_id),
            trade_date=trade_date(post, now),
            now=now,
            timings=timings,
            meta=meta,
        )

    def _dead_letter(self, entry: Entry, exc: PoisonInput) -> Commit:
        log.warning("dead-lettering entry", entry_id=entry.id, reason=exc.reason, detail=exc.detail)
        self.metrics.dead_lettered.labels(exc.reason).inc()
        self.stats.dead_lettered += 1
        return dead_letter_commit(
            entry.id,
            entry.fields,
            stream=self._config.stream,
            dlq_stream=self._config.dlq_stream,
            reason=exc.reason,
            detail=exc.detail,
            now=utc_now(),
            maxlen=self._config.dlq_maxlen,
        )

    def _account(
        self, commits: Sequence[Commit], applied: Sequence[bool], retries: Sequence[Retry]
    ) -> None:
        for commit, done in zip(commits, applied, strict=True):
            if not done:
                self.stats.skipped += 1
                self.metrics.messages_out.labels("skipped").inc()
                continue
            self.stats.acknowledged += 1
            self.stats.published += sum(
                1 for r in commit.records if r.stream != self._config.dlq_stream
            )
            outcome = "published" if commit.records else "acknowledged"
            if any(r.stream == self._config.dlq_stream for r in commit.records):
                outcome = "dead_lettered"
            self.metrics.messages_out.labels(outcome).inc()
        for retry in retries:
            self.stats.retried += 1
            self.stats.error(retry.error)
            self.metrics.messages_out.labels("retry").inc()
        if retries:
            self._source.rewind()


def _call_meta(call: ModelCall) -> dict[str, JsonValue]:
    return {
        "provider": call.provider,
        "model": call.model,
        "tokens_in": call.tokens_in,
        "tokens_out": call.tokens_out,
        "cost_usd": round(call.cost_usd, 8),
        "latency_ms": round(call.latency_ms, 3),
        "parse_method": call.parse_method,
        "cached": call.cached,
        "attempts": call.attempts,
        "errors": list(call.errors),
    }


def _failed(analyzer: Analyzer, error: str) -> Vote:
    return Vote(
        analyzer=analyzer.name,
        domain="sentiment",
        status=Status.ERROR,
        opinion=None,
        error=error[:300],
    )


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
