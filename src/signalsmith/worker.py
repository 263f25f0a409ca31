"""The worker: the one place that knows every stage and runs them in order for each entry.

read → normalize → tickers → analyze → decide → build outputs → commit (publish + ack, atomic)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

import structlog
from pydantic import JsonValue
from redis.exceptions import RedisError

from signalsmith import __version__
from signalsmith.analyze.base import Analyzer, ImmediateAnalyzer
from signalsmith.decide import decide
from signalsmith.dedup import quick_fingerprint
from signalsmith.domain import Analysis, ModelCall, Post, Status, Vote
from signalsmith.engine.outcome import Commit
from signalsmith.envelopes import source_ref, trade_date
from signalsmith.errors import CommitRefused, PoisonInput, TransientError
from signalsmith.normalize import decode_fields, to_post, utc_now
from signalsmith.observe.metrics import Metrics
from signalsmith.sink.outputs import OutputPolicy, PostContext, build_commit, dead_letter_commit
from signalsmith.sink.redis_publish import RedisCommitter
from signalsmith.source.redis_streams import Entry, StreamSource
from signalsmith.tickers import SymbolBook, TickerExtractor

log = structlog.get_logger("signalsmith.worker")

_MAX_REMEMBERED_ERRORS = 10_000
_MAX_REDIS_BACKOFF_S = 5.0
_YIELD_EVERY = 8  # posts handled inline between two turns of the event loop
_LISTED_SKIPPED = 20  # tickers named in an envelope's record of those left undecided


@dataclass(frozen=True, slots=True)
class _Parsed:
    post: Post
    tickers: Sequence[str]
    skipped: Mapping[str, Sequence[str]]  # tickers left undecided, by reason


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
    commits_ok: bool = True  # False while commits fail (an outage or a server that cannot write)

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
    max_in_flight: int = 64
    max_deliveries: int = 5
    max_tickers: int = 10  # decisions per post; the other tickers are recorded, not decided
    drain_timeout_s: float = 8.0
    block_s: float = 1.0


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
        self._last_errors: dict[str, str] = {}  # entry id -> why it was left pending
        # Every analyzer answers without waiting (offline only): posts are handled inline.
        immediate = [a for a in self._analyzers if isinstance(a, ImmediateAnalyzer)]
        self._immediate = immediate if len(immediate) == len(self._analyzers) else []
        self._timer = cache(metrics.analysis_seconds.labels)
        self._decided = cache(metrics.decisions.labels)
        self._out = cache(metrics.messages_out.labels)
        self._skipped = cache(metrics.tickers_skipped.labels)
        self._ahead: asyncio.Future[list[Entry]] | None = None  # the next entries, being read
        self._buffer: deque[Entry] = deque()  # read ahead, not started yet
        # Posts waiting on analysis at once. Handled inline, a post never waits, so a batch is
        # bounded by READ_COUNT alone.
        self._limit = config.max_in_flight
        if self._immediate:
            self._limit = max(config.max_in_flight, config.read_count)
        # Entries read ahead: offline, the next batch; with waiting analyzers, a few, enough to
        # refill the slots that free up while the next read is on its way.
        self._ahead_size = self._limit if self._immediate else max(1, self._limit // 8)

    def _remember_error(self, entry_id: str, error: str) -> None:
        if len(self._last_errors) >= _MAX_REMEMBERED_ERRORS:
            self._last_errors.pop(next(iter(self._last_errors)))
        self._last_errors[entry_id] = error[:500]

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
        """Keep up to MAX_IN_FLIGHT posts in analysis; commit what finishes in the background
        while the next posts are handled (one commit in flight); wait out Redis."""
        window = _Window(self._limit)
        commits = _CommitQueue(self._commit, 2 * max(self._limit, self._config.read_count))
        idle_since = time.monotonic()
        failures = 0
        while not stop.is_set() and not self._spent(max_messages):
            try:
                await self._ensure_group()
                started = await self._fill(window, max_messages)
                failures = 0
                if started:
                    idle_since = time.monotonic()
                must_wait = window.full or (not started and len(window) > 0)
                await commits.submit(
                    await window.finished(self._config.block_s if must_wait else 0)
                )
                if not started and not window and until_idle is not None:
                    await commits.flush()
                    if await self._idle(idle_since, until_idle):
                        break
            except (RedisError, TransientError) as exc:  # Redis, or a dead-letter stream refused
                failures += 1
                # Whatever was still on the wire finishes (or fails) before the rewind, so a
                # late read cannot hand us entries that the history read has already passed.
                await commits.settle()
                await self._settle_read_ahead()
                await self._redis_failed(exc, failures, stop)
        await self._drain(window, commits)
        return self.stats

    async def _fill(self, window: _Window, max_messages: int | None) -> int:
        """Read as many entries as the window has room for and start handling them."""
        room = self._room(window.room, max_messages)
        if room <= 0:
            return 0
        entries = [e for e in await self._read(room, wait=not window) if e.id not in window]
        await self._start(window, entries)
        if entries:
            self._read_ahead(max_messages)
        return len(entries)

    def _read_ahead(self, max_messages: int | None) -> None:
        """Read the next entries while these are handled, so a slot that frees up is refilled
        without a round trip to Redis (and, offline, the read reaches Redis ahead of this
        batch's commit instead of queuing behind it). A bounded number wait, delivered to us."""
        if self._ahead is not None or len(self._buffer) * 2 > self._ahead_size:
            return
        held = len(self._buffer)
        count = self._room(self._ahead_size - held, max_messages, held=held)
        if count > 0:
            self._ahead = asyncio.ensure_future(self._source.read(count, wait=False))

    def _room(self, room: int, max_messages: int | None, *, held: int = 0) -> int:
        """``room`` capped by one read and by the message budget (``held``: read, not started)."""
        room = min(room, self._config.read_count)
        if max_messages is not None:
            room = min(room, max_messages - self.stats.read - held)
        return room

    async def _read(self, count: int, *, wait: bool) -> list[Entry]:
        if not self._buffer:
            await self._collect_ahead()
        if self._buffer:
            return [self._buffer.popleft() for _ in range(min(count, len(self._buffer)))]
        return await self._source.read(count, wait=wait)

    async def _start(self, window: _Window, entries: Sequence[Entry]) -> None:
        self.stats.read += len(entries)
        self.metrics.messages_in.inc(len(entries))
        for n, entry in enumerate(entries, start=1):
            if not self._immediate:
                window.start(entry.id, self.handle(entry))
                continue
            window.finish(self.handle_now(entry))
            if n % _YIELD_EVERY == 0:
                # Let the event loop run: the previous batch's commit is still being written to
                # Redis (a batch is hundreds of KB), and it would wait for this whole batch.
                await asyncio.sleep(0)
        self.metrics.in_flight.set(len(window))

    async def _commit(self, outcomes: Sequence[Outcome]) -> None:
        commits = [outcome for outcome in outcomes if isinstance(outcome, Commit)]
        try:
            applied = await self._committer.commit(commits)
            self.stats.commits_ok = True
        except RedisError:
            self.stats.commits_ok = False
            raise
        except CommitRefused as exc:
            self.metrics.commits_refused.inc()
            log.warning("commit refused; committing entry by entry", error=str(exc))
            commits, applied = await self._commit_apart(commits)
        self._account(commits, applied, [o for o in outcomes if isinstance(o, Retry)])

    async def _commit_apart(self, commits: Sequence[Commit]) -> tuple[list[Commit], list[bool]]:
        """Each commit on its own: the one Redis refuses becomes a dead letter with the reason
        (the script refuses before writing, so nothing is written twice). A dead letter refused
        too (the dead-letter stream clobbered) is no entry's fault: like an outage, the rest
        stays pending and is tried again after a pause, and /readyz says so."""
        done: list[Commit] = []
        applied: list[bool] = []
        for commit in commits:
            try:
                applied += await self._committer.commit([commit])
                done.append(commit)
                continue
            except CommitRefused as exc:
                letter = await self._refused(commit, str(exc))
            try:
                applied += await self._committer.commit([letter])
            except CommitRefused as exc:
                self._account(done, applied, ())
                self.stats.commits_ok = False
                self._remember_error(commit.entry_id, f"dead letter refused: {exc}")
                raise TransientError(f"dead letters refused: {exc}") from None
            done.append(letter)
        return done, applied

    async def _refused(self, commit: Commit, error: str) -> Commit:
        fields = await self._source.fetch(commit.entry_id)
        self.stats.error(f"entry {commit.entry_id}: commit refused: {error}")
        entry = Entry(commit.entry_id, fields)
        return self._dead_letter(entry, PoisonInput("commit_refused", error))

    async def _drain(self, window: _Window, commits: _CommitQueue) -> None:
        """On the way out: finish what can finish in DRAIN_TIMEOUT, starting the entries read
        ahead as slots free up; the rest stays pending."""
        deadline = time.monotonic() + self._config.drain_timeout_s
        try:
            await self._collect_ahead()
            while self._buffer and (left := deadline - time.monotonic()) > 0:
                await self._start(window, await self._read(window.room, wait=False))
                await commits.submit(await window.finished(left if window.full else 0))
            outcomes = await window.drain(max(0.0, deadline - time.monotonic()))
            await commits.submit(outcomes)
            await commits.flush()
        except (RedisError, TransientError) as exc:  # pending, reclaimed later: nothing is lost
            log.warning("could not acknowledge on shutdown", error=str(exc), posts=len(window))
        self.metrics.in_flight.set(0)

    async def _collect_ahead(self) -> None:
        """The read ahead's entries, once it is done, into the buffer."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._buffer.extend(await ahead)

    async def _settle_read_ahead(self) -> None:
        """After a Redis error: wait out the read ahead and forget what was read ahead; it stays
        pending and is read again by the rewind that follows."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            with contextlib.suppress(RedisError):
                await ahead
        self._buffer.clear()

    async def _ensure_group(self) -> None:
        if not self.stats.group_ready:
            await self._source.ensure_group()
            self.stats.group_ready = self.stats.redis_ok = True

    async def _idle(self, idle_since: float, until_idle: float) -> bool:
        quiet = time.monotonic() - idle_since >= until_idle
        return quiet and await self._source.pending() == 0

    def _spent(self, max_messages: int | None) -> bool:
        return max_messages is not None and self.stats.read >= max_messages

    async def _redis_failed(
        self, exc: RedisError | TransientError, failures: int, stop: asyncio.Event
    ) -> None:
        self.stats.redis_ok = self.stats.group_ready = False
        self.stats.error(f"redis: {exc}")
        self.metrics.redis_errors.inc()
        self._source.rewind()
        delay = min(_MAX_REDIS_BACKOFF_S, 0.1 * 2**failures)
        log.warning("redis unavailable, retrying", error=str(exc), retry_in_s=delay)
        await _sleep_unless(stop, delay)

    async def handle(self, entry: Entry) -> Outcome:
        """One entry through every stage; never raises: a world that is briefly unavailable
        leaves it pending, anything else becomes a dead letter with the reason."""
        started = time.perf_counter()
        try:
            parsed = self._parse(entry)
            if not isinstance(parsed, _Parsed):
                return parsed
            analyzing = time.perf_counter()
            votes, calls = await self._analyze(parsed.post, parsed.tickers)
            return self._decide(
                entry.id, parsed, votes, calls, started=started, analyzing=analyzing
            )
        except (TransientError, RedisError) as exc:  # Redis is waited out, the entry retried
            self._remember_error(entry.id, str(exc))
            return Retry(entry.id, str(exc))
        except Exception as exc:  # a bug met on this entry must cost the entry, not the worker
            return self._internal_error(entry, exc)

    def handle_now(self, entry: Entry) -> Outcome:
        """``handle`` without a task or an await, when every analyzer answers immediately."""
        started = time.perf_counter()
        try:
            parsed = self._parse(entry)
            if not isinstance(parsed, _Parsed):
                return parsed
            analyzing = time.perf_counter()
            votes = self._analyze_now(parsed.post, parsed.tickers)
            return self._decide(entry.id, parsed, votes, [], started=started, analyzing=analyzing)
        except Exception as exc:  # a bug met on this entry must cost the entry, not the worker
            return self._internal_error(entry, exc)

    def _internal_error(self, entry: Entry, exc: Exception) -> Commit:
        """Handling raised where nothing should: the same entry would raise again, so it goes to
        the dead letters with the error (``dlq replay`` re-drives it once the cause is fixed)."""
        log.exception("handling an entry failed", entry_id=entry.id)
        self.stats.error(f"entry {entry.id}: {type(exc).__name__}: {exc}")
        return self._dead_letter(
            entry, PoisonInput("internal_error", f"{type(exc).__name__}: {str(exc)[:300]}")
        )

    def _parse(self, entry: Entry) -> _Parsed | Commit:
        """The post and its tickers, or what to commit instead (a dead letter, a plain ack)."""
        if entry.deliveries > self._config.max_deliveries:
            last = self._last_errors.pop(entry.id, "unknown (failed in another consumer)")
            detail = f"delivered {entry.deliveries} times; last error: {last}"
            return self._dead_letter(entry, PoisonInput("max_deliveries", detail))
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
        return self._with_tickers(entry, post)

    def _with_tickers(self, entry: Entry, post: Post) -> _Parsed | Commit:
        """The tickers to decide: the producer's, when it names listed ones, else those the text
        mentions; at most MAX_TICKERS_PER_POST. Those left out are recorded with the reason."""
        skipped: dict[str, list[str]] = {}
        if post.tickers:
            listed = {raw: self._extractor.normalize(raw) for raw in post.tickers}
            tickers = list(dict.fromkeys(t for t in listed.values() if t is not None))
            unknown = [raw for raw, symbol in listed.items() if symbol is None]
            if unknown:
                skipped["unknown"] = unknown
            if not tickers:
                detail = f"no listed symbol among {len(unknown)}: {', '.join(unknown[:20])}"
                return self._dead_letter(entry, PoisonInput("unknown_tickers", detail))
        else:
            tickers = list(self._extractor.extract(post.text))
        if len(tickers) > self._config.max_tickers:
            tickers, skipped["over_limit"] = (
                tickers[: self._config.max_tickers],
                tickers[self._config.max_tickers :],
            )
        if not tickers:
            return Commit(entry_id=entry.id)
        for reason, symbols in skipped.items():
            self._skipped(reason).inc(len(symbols))
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
        self.stats.error(f"{analyzer.name}: {exc}")
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

    def _dead_letter(self, entry: Entry, exc: PoisonInput) -> Commit:
        log.warning("dead-lettering entry", entry_id=entry.id, reason=exc.reason, detail=exc.detail)
        self.metrics.dead_lettered.labels(exc.reason).inc()
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
        outcomes: Counter[str] = Counter()
        for commit, done in zip(commits, applied, strict=True):
            self._last_errors.pop(commit.entry_id, None)
            outcomes[self._count(commit, done)] += 1
        for retry in retries:
            self.stats.retried += 1
            self.stats.error(retry.error)
            self._remember_error(retry.entry_id, retry.error)
        outcomes["retry"] += len(retries)
        for outcome, count in outcomes.items():
            self._out(outcome).inc(count)

    def _count(self, commit: Commit, done: bool) -> str:
        """Count one commit in the stats; what became of it, for the metrics."""
        if not done:
            self.stats.skipped += 1
            return "skipped"
        self.stats.acknowledged += 1
        dead = sum(1 for r in commit.records if r.stream == self._config.dlq_stream)
        self.stats.published += len(commit.records) - dead
        if dead:
            self.stats.dead_lettered += 1
            return "dead_lettered"
        return "published" if commit.records else "acknowledged"


class _CommitQueue:
    """Commits in the background, one script call at a time: outcomes handed over while a call is
    in flight go together in the next, so reading and analysis never wait on Redis. ``limit``
    outcomes waiting make ``submit`` wait (backpressure).

    A failed commit raises from the next ``submit`` or ``flush``; its entries, and those waiting,
    stay pending and are read again (after a Redis error the worker settles what is in flight,
    then rewinds to its pending history).
    """

    def __init__(self, commit: Callable[[Sequence[Outcome]], Awaitable[None]], limit: int) -> None:
        self._commit = commit
        self._limit = limit
        self._waiting: list[Outcome] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, outcomes: Sequence[Outcome]) -> None:
        if self._task is not None and self._task.done():
            task, self._task = self._task, None
            task.result()  # a failed commit's error
        self._waiting += outcomes
        if self._waiting and self._task is None:
            self._task = asyncio.ensure_future(self._run())
        if len(self._waiting) >= self._limit:
            await self.flush()

    async def flush(self) -> None:
        """Until everything handed over is committed."""
        while self._task is not None:
            task = self._task
            try:
                await task
            finally:
                if self._task is task:
                    self._task = None
            if self._waiting:
                self._task = asyncio.ensure_future(self._run())

    async def settle(self) -> None:
        """After a Redis error: drop what waits and let the call in flight finish or fail; either
        way every entry is acknowledged exactly once or stays pending."""
        self._waiting = []
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(RedisError, TransientError):
                await task

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            await self._commit(batch)


class _Window:
    """The posts in analysis: at most ``limit`` tasks; finished ones are collected together."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._tasks: dict[asyncio.Task[Outcome], str] = {}
        self._ready: list[Outcome] = []  # handled inline, not yet collected

    def __len__(self) -> int:
        return len(self._tasks) + len(self._ready)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._tasks.values()

    @property
    def room(self) -> int:
        return self._limit - len(self)

    @property
    def full(self) -> bool:
        return self.room <= 0

    def start(self, entry_id: str, work: Coroutine[None, None, Outcome]) -> None:
        self._tasks[asyncio.ensure_future(work)] = entry_id

    def finish(self, outcome: Outcome) -> None:
        """An outcome reached without a task."""
        self._ready.append(outcome)

    async def finished(self, wait_s: float) -> list[Outcome]:
        """Outcomes ready now, waiting up to ``wait_s`` for at least one."""
        ready, self._ready = self._ready, []
        if not self._tasks:
            return ready
        done, _ = await asyncio.wait(
            self._tasks, timeout=0 if ready else wait_s, return_when=asyncio.FIRST_COMPLETED
        )
        return ready + [self._outcome(task) for task in done]

    async def drain(self, timeout_s: float) -> list[Outcome]:
        """Wait for everything up to ``timeout_s``; cancel the rest (it stays pending)."""
        ready, self._ready = self._ready, []
        if not self._tasks:
            return ready
        done, late = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in late:
            task.cancel()
            self._tasks.pop(task)
        await asyncio.gather(*late, return_exceptions=True)
        return ready + [self._outcome(task) for task in done]

    def _outcome(self, task: asyncio.Task[Outcome]) -> Outcome:
        entry_id = self._tasks.pop(task)
        error = task.exception()
        if error is not None:  # handle() turns everything into an outcome; belt and braces
            log.error("post handling crashed", entry_id=entry_id, error=repr(error))
            return Retry(entry_id, f"crashed: {error!r}")
        return task.result()


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
