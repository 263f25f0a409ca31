"""The posts pipeline (seed 000): a post's entry → its tickers → analysis → one decision per
ticker → the commit (signals, the decision log, the consensus folds).

normalize → tickers → analyze → decide → build outputs
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

import structlog
from pydantic import JsonValue

from signalsmith import __version__
from signalsmith.analyze.base import Analyzer, ImmediateAnalyzer
from signalsmith.decide import decide
from signalsmith.dedup import quick_fingerprint
from signalsmith.domain import Analysis, ModelCall, Post, Status, Vote
from signalsmith.engine.outcome import Commit
from signalsmith.envelopes import source_ref, trade_date
from signalsmith.errors import PoisonInput, TransientError
from signalsmith.normalize import decode_fields, to_post, utc_now
from signalsmith.observe.metrics import Metrics
from signalsmith.sink.outputs import OutputPolicy, PostContext, build_commit
from signalsmith.source.redis_streams import Entry
from signalsmith.tickers import SymbolBook, TickerExtractor

log = structlog.get_logger("signalsmith.posts")

_LISTED_SKIPPED = 20  # tickers named in an envelope's record of those left undecided


@dataclass(frozen=True, slots=True)
class _Parsed:
    post: Post
    tickers: Sequence[str]
    skipped: Mapping[str, Sequence[str]]  # tickers left undecided, by reason


@dataclass(frozen=True, slots=True)
class PostsConfig:
    """The settings the posts handler reads."""

    stream: str
    max_message_bytes: int
    policy: OutputPolicy
    max_tickers: int = 10  # decisions per post; the other tickers are recorded, not decided


class PostsHandler:
    """One post's entry → its commit. Raises ``PoisonInput`` for an entry that cannot become a
    post (the engine dead-letters it) and ``TransientError`` when analysis must wait."""

    def __init__(
        self,
        config: PostsConfig,
        *,
        analyzers: Sequence[Analyzer],
        book: SymbolBook,
        extractor: TickerExtractor,
        metrics: Metrics,
        on_error: Callable[[str], None],
    ) -> None:
        self._config = config
        self._analyzers = tuple(analyzers)
        self._book = book
        self._extractor = extractor
        self._on_error = on_error
        # Every analyzer answers without waiting (offline only): posts are handled inline.
        immediate = [a for a in self._analyzers if isinstance(a, ImmediateAnalyzer)]
        self._immediate = immediate if len(immediate) == len(self._analyzers) else []
        self._timer = cache(metrics.analysis_seconds.labels)
        self._decided = cache(metrics.decisions.labels)
        self._skipped = cache(metrics.tickers_skipped.labels)

    @property
    def immediate(self) -> bool:
        return bool(self._immediate)

    @property
    def analyzer_names(self) -> tuple[str, ...]:
        return tuple(analyzer.name for analyzer in self._analyzers)

    async def handle(self, entry: Entry) -> Commit:
        started = time.perf_counter()
        parsed = self._parse(entry)
        if not isinstance(parsed, _Parsed):
            return parsed
        analyzing = time.perf_counter()
        votes, calls = await self._analyze(parsed.post, parsed.tickers)
        return self._decide(entry.id, parsed, votes, calls, started=started, analyzing=analyzing)

    def handle_now(self, entry: Entry) -> Commit:
        started = time.perf_counter()
        parsed = self._parse(entry)
        if not isinstance(parsed, _Parsed):
            return parsed
        analyzing = time.perf_counter()
        votes = self._analyze_now(parsed.post, parsed.tickers)
        return self._decide(entry.id, parsed, votes, [], started=started, analyzing=analyzing)

    def _parse(self, entry: Entry) -> _Parsed | Commit:
        """The post and its tickers, or a plain acknowledgement (no ticker to decide)."""
        post = to_post(
            decode_fields(entry.fields or {}, self._config.max_message_bytes),
            entry.id,
            self._config.stream,
        )
        return self._with_tickers(entry, post)

    def _with_tickers(self, entry: Entry, post: Post) -> _Parsed | Commit:
        """The tickers to decide: the producer's, when it names listed ones, else those the text
        mentions; at most MAX_TICKERS_PER_POST. Those left out are recorded with the reason."""
        skipped: dict[str, list[str]] = {}
        tickers: list[str] = []
        if post.tickers:
            listed = {raw: self._extractor.normalize(raw) for raw in post.tickers}
            tickers = list(dict.fromkeys(t for t in listed.values() if t is not None))
            unknown = [raw for raw, symbol in listed.items() if symbol is None]
            if unknown:
                skipped["unknown"] = unknown
            if not tickers:
                detail = f"no listed symbol among {len(unknown)}: {', '.join(unknown[:20])}"
                raise PoisonInput("unknown_tickers", detail)
        # A bank that only rated a stock is no subject, whoever listed it.
        found, raters = self._extractor.subjects(post.text, tickers)
        tickers = list(found)
        if raters:
            skipped["rater"] = [rater.symbol for rater in raters]
            post = replace(post, raters=tuple(rater.name for rater in raters))
        if len(tickers) > self._config.max_tickers:
            tickers, skipped["over_limit"] = (
                tickers[: self._config.max_tickers],
                tickers[self._config.max_tickers :],
            )
        for reason, symbols in skipped.items():
            self._skipped(reason).inc(len(symbols))
        if not tickers:  # a post whose only firms rated an unknown stock is counted above
            return Commit(entry_id=entry.id)
        return _Parsed(post, tickers, skipped)

    def _decide(
        self,
        entry_id: str,
        parsed: _Parsed,
        votes: Mapping[str, Sequence[Vote]],
        calls: Sequence[ModelCall],
        *,
        started: float,
        analyzing: float,
    ) -> Commit:
        post, tickers = parsed.post, parsed.tickers
        decisions = [decide(ticker, votes[ticker]) for ticker in tickers]
        for decision in decisions:
            self._decided(decision.verdict, decision.status).inc()
        timings = {
            "normalize": (analyzing - started) * 1000,
            "analyze": (time.perf_counter() - analyzing) * 1000,
        }
        return build_commit(
            entry_id,
            decisions,
            self._context(post, entry_id, timings, calls, parsed.skipped),
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
            self._timer(analyzer.name).observe(time.perf_counter() - started)
            calls += analysis.calls
            for ticker in tickers:
                cast = analysis.votes.get(ticker) or (_failed(analyzer, "no vote for ticker"),)
                votes[ticker] += cast
        return votes, calls

    def _analyze_now(self, post: Post, tickers: Sequence[str]) -> dict[str, list[Vote]]:
        votes: dict[str, list[Vote]] = {ticker: [] for ticker in tickers}
        for analyzer in self._immediate:
            started = time.perf_counter()
            try:
                cast = analyzer.analyze_now(post, tickers)
            except Exception as exc:  # an analyzer bug must cost one decision, not the worker
                failed = self._crashed(analyzer, post, exc)
                cast = dict.fromkeys(tickers, failed)
            self._timer(analyzer.name).observe(time.perf_counter() - started)
            for ticker in tickers:
                votes[ticker].append(cast.get(ticker) or _failed(analyzer, "no vote for ticker"))
        return votes

    async def _ask(self, analyzer: Analyzer, post: Post, tickers: Sequence[str]) -> Analysis:
        try:
            return await analyzer.analyze(post, tickers)
        except (TransientError, asyncio.CancelledError):
            raise
        except Exception as exc:  # an analyzer bug must cost one decision, not the worker
            failed = self._crashed(analyzer, post, exc)
            return Analysis(votes={ticker: (failed,) for ticker in tickers})

    def _crashed(self, analyzer: Analyzer, post: Post, exc: Exception) -> Vote:
        """An analyzer raised: log it, remember it, and vote ``error`` with the reason."""
        log.exception("analyzer failed", analyzer=analyzer.name, post=post.id)
        self._on_error(f"{analyzer.name}: {exc}")
        return _failed(analyzer, str(exc))

    def _context(
        self,
        post: Post,
        entry_id: str,
        timings: Mapping[str, float],
        calls: Sequence[ModelCall],
        skipped: Mapping[str, Sequence[str]],
    ) -> PostContext:
        now = utc_now()
        meta: dict[str, JsonValue] = {
            "producer": f"signalsmith {__version__}",
            "analyzers": list(self.analyzer_names),
            "models": [*sorted({f"{c.provider}/{c.model}" for c in calls})],
            "tokens": {
                "input": sum(c.tokens_in for c in calls),
                "output": sum(c.tokens_out for c in calls),
                "cached": sum(c.tokens_cached for c in calls),
            },
            "cost_usd": round(sum(c.cost_usd for c in calls), 8),
            "latency_ms": round(sum(timings.values()), 3),
            "llm_calls": [_call_meta(call) for call in calls],
        }
        if skipped:
            meta["tickers_skipped"] = {
                reason: {"count": len(symbols), "symbols": list(symbols[:_LISTED_SKIPPED])}
                for reason, symbols in skipped.items()
            }
        return PostContext(
            post=post,
            source=source_ref(post, self._config.stream, entry_id),
            trade_date=trade_date(post, now),
            now=now,
            timings=timings,
            meta=meta,
            story=quick_fingerprint(post.text),
            author=_author_key(post),
        )


def _author_key(post: Post) -> str:
    """Who posted, as a short key: the same author on the same source is the same key."""
    if not post.author:
        return ""
    name = f"{post.source}\x1f{post.author.casefold()}".encode()
    return hashlib.blake2b(name, digest_size=8).hexdigest()


def _call_meta(call: ModelCall) -> dict[str, JsonValue]:
    return {
        "provider": call.provider,
        "model": call.model,
        "tokens_in": call.tokens_in,
        "tokens_out": call.tokens_out,
        "tokens_cached": call.tokens_cached,
        "cost_usd": round(call.cost_usd, 8),
        "latency_ms": round(call.latency_ms, 3),
        "parse_method": call.parse_method,
        "batch_size": call.batch_size,
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
