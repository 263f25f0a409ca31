"""The engine: one consumer of one stream's group, driving a pipeline's handler.

read (batched, read ahead) → handler → commit in the background (publish + ack, atomic)

It owns the consumer-group mechanics and nothing else: the bounded in-flight window, background
commits, reclaim of stale entries, delivery counts and dead-lettering after MAX_DELIVERIES, drain
on SIGTERM, and waiting out Redis (or whatever the committer writes to).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import structlog
from redis.exceptions import RedisError

from signalsmith.engine.outcome import Commit, Committer, Handler, Outcome, Retry
from signalsmith.engine.stats import EngineStats
from signalsmith.engine.window import CommitQueue, Window
from signalsmith.errors import CommitRefused, PoisonInput, TransientError
from signalsmith.normalize import utc_now
from signalsmith.observe.metrics import PipelineMetrics
from signalsmith.sink.outputs import dead_letter_commit
from signalsmith.source.redis_streams import Entry, StreamSource

log = structlog.get_logger("signalsmith.engine")

_MAX_REMEMBERED_ERRORS = 10_000
_MAX_BACKOFF_S = 5.0
_YIELD_EVERY = 8  # entries handled inline between two turns of the event loop


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The settings the engine itself reads."""

    stream: str
    dlq_stream: str
    dlq_maxlen: int
    read_count: int
    max_in_flight: int = 64
    max_deliveries: int = 5
    drain_timeout_s: float = 8.0
    block_s: float = 1.0
    log_stream: str = ""  # a record log (every decision, for the store): not counted as published


class Engine:
    """Consumes one stream through its group until stopped, idle, or a message budget is spent."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        source: StreamSource,
        committer: Committer,
        handler: Handler,
        metrics: PipelineMetrics,
        stats: EngineStats | None = None,
    ) -> None:
        self._config = config
        self._source = source
        self._committer = committer
        self.handler = handler
        self.metrics = metrics
        self.stats = stats if stats is not None else EngineStats()
        self._last_errors: dict[str, str] = {}  # entry id -> why it was left pending
        self._immediate = handler.immediate
        self._out = cache(metrics.messages_out.labels)
        self._dead = cache(metrics.dead_lettered.labels)
        self._ahead: asyncio.Future[list[Entry]] | None = None  # the next entries, being read
        self._buffer: deque[Entry] = deque()  # read ahead, not started yet
        # Entries in hand at once. Handled inline, an entry never waits, so a batch is bounded
        # by READ_COUNT alone.
        self._limit = config.max_in_flight
        if self._immediate:
            self._limit = max(config.max_in_flight, config.read_count)
        # Entries read ahead: inline, the next batch; with a waiting handler, half the window.
        # An eighth (8 of 64) was too few: at 500 LLM calls/s the slots freed faster than reads
        # of 8 came back, so slots waited on Redis and each post paid a sixth of a read
        # (bench_llm_cpu: 6-8% fewer calls/s, paired runs).
        self._ahead_size = self._limit if self._immediate else max(1, self._limit // 2)

    async def run(
        self,
        stop: asyncio.Event,
        *,
        until_idle: float | None = None,
        max_messages: int | None = None,
        upstream_done: asyncio.Event | None = None,
    ) -> EngineStats:
        """Keep up to MAX_IN_FLIGHT entries in hand; commit what finishes in the background
        while the next entries are handled (one commit in flight); wait out outages.
        ``until_idle`` counts only once ``upstream_done`` is set (a fan-out consumer outlives
        the pipelines that feed it)."""
        window = Window(self._limit)
        commits = CommitQueue(self._commit, 2 * max(self._limit, self._config.read_count))
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
                    if upstream_done is not None and not upstream_done.is_set():
                        idle_since = time.monotonic()
                    elif await self._idle(idle_since, until_idle):
                        break
            except (RedisError, TransientError) as exc:  # Redis, or a store that cannot write
                failures += 1
                # Whatever was still on the wire finishes (or fails) before the rewind, so a
                # late read cannot hand us entries that the history read has already passed.
                await commits.settle()
                await self._settle_read_ahead()
                await self._outage(exc, failures, stop)
        await self._drain(window, commits)
        return self.stats

    async def _fill(self, window: Window, max_messages: int | None) -> int:
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
        without a round trip to Redis (and, inline, the read reaches Redis ahead of this
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

    async def _start(self, window: Window, entries: Sequence[Entry]) -> None:
        self.stats.read += len(entries)
        self.metrics.messages_in.inc(len(entries))
        for n, entry in enumerate(entries, start=1):
            if not self._immediate:
                window.start(entry.id, self._handle(entry))
                continue
            window.finish(self._handle_now(entry))
            if n % _YIELD_EVERY == 0:
                # Let the event loop run: the previous batch's commit is still being written to
                # Redis (a batch is hundreds of KB), and it would wait for this whole batch.
                await asyncio.sleep(0)
        self.metrics.in_flight.set(len(window))

    async def _handle(self, entry: Entry) -> Outcome:
        """One entry through the handler; never raises: a world that is briefly unavailable
        leaves it pending, anything else becomes a dead letter with the reason."""
        try:
            if (refused := self._refuse(entry)) is not None:
                return refused
            return await self.handler.handle(entry)
        except Exception as exc:  # never raises: see _failed
            return self._failed(entry, exc)

    def _handle_now(self, entry: Entry) -> Outcome:
        """``_handle`` without a task or an await, for a handler that answers inline."""
        try:
            if (refused := self._refuse(entry)) is not None:
                return refused
            return self.handler.handle_now(entry)
        except Exception as exc:  # never raises: see _failed
            return self._failed(entry, exc)

    def _failed(self, entry: Entry, exc: Exception) -> Outcome:
        """What a handler's exception makes of the entry: poison is dead-lettered with its
        reason, an outage leaves it pending (retried), and anything else is a bug met on this
        entry, which must cost the entry, not the engine."""
        if isinstance(exc, PoisonInput):
            return self._dead_letter(entry, exc)
        if isinstance(exc, TransientError | RedisError):
            self._remember_error(entry.id, str(exc))
            return Retry(entry.id, str(exc))
        return self._internal_error(entry, exc)

    def _refuse(self, entry: Entry) -> Commit | None:
        """An entry delivered too often, or deleted since it was added: a dead letter."""
        if entry.deliveries > self._config.max_deliveries:
            last = self._last_errors.pop(entry.id, "unknown (failed in another consumer)")
            detail = f"delivered {entry.deliveries} times; last error: {last}"
            return self._dead_letter(entry, PoisonInput("max_deliveries", detail))
        if entry.fields is None:
            return self._dead_letter(entry, PoisonInput("deleted", "entry no longer in stream"))
        return None

    def _internal_error(self, entry: Entry, exc: Exception) -> Commit:
        """Handling raised where nothing should: the same entry would raise again, so it goes to
        the dead letters with the error (``dlq replay`` re-drives it once the cause is fixed)."""
        log.exception("handling an entry failed", entry_id=entry.id)
        self.stats.error(f"entry {entry.id}: {type(exc).__name__}: {exc}")
        return self._dead_letter(
            entry, PoisonInput("internal_error", f"{type(exc).__name__}: {str(exc)[:300]}")
        )

    def _dead_letter(self, entry: Entry, exc: PoisonInput) -> Commit:
        log.warning("dead-lettering entry", entry_id=entry.id, reason=exc.reason, detail=exc.detail)
        self._dead(exc.reason).inc()
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

    def _remember_error(self, entry_id: str, error: str) -> None:
        if len(self._last_errors) >= _MAX_REMEMBERED_ERRORS:
            self._last_errors.pop(next(iter(self._last_errors)))
        self._last_errors[entry_id] = error[:500]

    async def _commit(self, outcomes: Sequence[Outcome]) -> None:
        commits = [outcome for outcome in outcomes if isinstance(outcome, Commit)]
        try:
            applied = await self._committer.commit(commits)
            self.stats.commits_ok = True
        except (RedisError, TransientError):
            self.stats.commits_ok = False
            raise
        except CommitRefused as exc:
            self.metrics.commits_refused.inc()
            log.warning("commit refused; committing entry by entry", error=str(exc))
            commits, applied = await self._commit_apart(commits)
        self._account(commits, applied, [o for o in outcomes if isinstance(o, Retry)])

    async def _commit_apart(self, commits: Sequence[Commit]) -> tuple[list[Commit], list[bool]]:
        """Each commit on its own: the one refused becomes a dead letter with the reason (the
        committer refuses before writing, so nothing is written twice). A dead letter refused
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

    async def _drain(self, window: Window, commits: CommitQueue) -> None:
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
            log.warning("could not acknowledge on shutdown", error=str(exc), entries=len(window))
        self.metrics.in_flight.set(0)

    async def _collect_ahead(self) -> None:
        """The read ahead's entries, once it is done, into the buffer."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._buffer.extend(await ahead)

    async def _settle_read_ahead(self) -> None:
        """After an outage: wait out the read ahead and forget what was read ahead; it stays
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

    async def _outage(
        self, exc: RedisError | TransientError, failures: int, stop: asyncio.Event
    ) -> None:
        where = "redis" if isinstance(exc, RedisError) else "commit"
        if isinstance(exc, RedisError):
            self.stats.redis_ok = self.stats.group_ready = False
        self.stats.error(f"{where}: {exc}")
        self.metrics.redis_errors.inc()
        self._source.rewind()
        delay = min(_MAX_BACKOFF_S, 0.1 * 2**failures)
        log.warning(f"{where} unavailable, retrying", error=str(exc), retry_in_s=delay)
        await _sleep_unless(stop, delay)

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
        dead = logged = 0
        for record in commit.records:
            dead += record.stream == self._config.dlq_stream
            logged += record.stream == self._config.log_stream
        self.stats.published += len(commit.records) - dead - logged
        if dead:
            self.stats.dead_lettered += 1
            return "dead_lettered"
        return "published" if commit.records or commit.parts else "acknowledged"


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
