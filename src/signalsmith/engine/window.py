"""The engine's two queues: the entries being handled (the in-flight window) and the outcomes
waiting to be committed (one commit call in flight, the rest batched behind it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence

import structlog
from redis.exceptions import RedisError

from signalsmith.engine.outcome import Outcome, Retry
from signalsmith.errors import TransientError

log = structlog.get_logger("signalsmith.engine")


class CommitQueue:
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


class Window:
    """The entries being handled: at most ``limit`` tasks; finished ones are collected together."""

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
            log.error("handling crashed", entry_id=entry_id, error=repr(error))
            return Retry(entry_id, f"crashed: {error!r}")
        return task.result()
