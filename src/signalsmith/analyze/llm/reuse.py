"""How the LLM analyzer avoids paying twice for one question: one call per question in flight in
this process (single flight), the recent answers in memory, then the Redis reply cache shared by
every worker. Which question a post asks comes from the story index (``signalsmith.dedup``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from signalsmith.analyze.llm.cache import CachedReply, CacheMode, ReplyCache
from signalsmith.analyze.llm.chain import ChainAnswer
from signalsmith.analyze.llm.providers import ProviderConfig

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answered:
    """One paid answer and how long it took."""

    answer: ChainAnswer
    latency_ms: float


def reply_of(answer: ChainAnswer) -> CachedReply:
    """A paid answer as the reply cache keeps it."""
    completion = answer.completion
    return CachedReply(
        provider=answer.provider.name,
        model=completion.model,
        content=completion.content,
        tokens_in=completion.tokens_in,
        tokens_out=completion.tokens_out,
        tokens_cached=completion.tokens_cached,
    )


class SingleFlight(Generic[T]):
    """Concurrent requests for one key share one call: the first makes it, the others await it.

    A failure reaches every waiter; if the caller making the call is cancelled, a waiter makes
    the call itself rather than inheriting the cancellation.
    """

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The call's value, and whether it was shared with (made by) another caller."""
        while (flight := self._flights.get(key)) is not None:
            try:
                return await asyncio.shield(flight), True
            except asyncio.CancelledError:
                if not flight.cancelled() or _being_cancelled():
                    raise
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            value = await call()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: nobody waiting is not an "unhandled" error
            raise
        else:
            flight.set_result(value)
            return value, False
        finally:
            del self._flights[key]


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Reuse:
    """Cached answers (memory, then Redis) and single-flight calls, per question key.

    With LLM_CACHE=off nothing is reused: every question is asked.
    """

    def __init__(self, cache: ReplyCache | None, mode: CacheMode, remember: int = 4096) -> None:
        self._cache = cache
        self.mode = mode
        self._remember = remember
        self._recent: OrderedDict[str, CachedReply] = OrderedDict()
        self._flights: SingleFlight[Answered] = SingleFlight()

    @property
    def readonly(self) -> bool:
        """A miss must not be asked: only LLM_CACHE=readonly with a Redis cache."""
        return self._cache is not None and self.mode == "readonly"

    async def cached(
        self, question: str, providers: Sequence[ProviderConfig]
    ) -> CachedReply | None:
        if self.mode == "off":
            return None
        recent = self._recent.get(question)
        if recent is not None:
            self._recent.move_to_end(question)
            return recent
        if self._cache is None:
            return None
        return await self._cache.first_hit([self._cache.key(p, question) for p in providers])

    async def keep(self, question: str, provider: ProviderConfig, reply: CachedReply) -> None:
        if self.mode != "readwrite":
            return
        self._recent[question] = reply
        if len(self._recent) > self._remember:
            self._recent.popitem(last=False)
        if self._cache is not None:
            await self._cache.put(self._cache.key(provider, question), reply)

    async def once(
        self, question: str, call: Callable[[], Awaitable[Answered]]
    ) -> tuple[Answered, bool]:
        """``call()``, shared with concurrent callers asking the same question."""
        if self.mode == "off":
            return await call(), False
        return await self._flights.run(question, call)
