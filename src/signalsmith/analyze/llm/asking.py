"""Asking the shared provider chain one question (and its follow-ups), through the reply cache
when there is one, and keeping the tally of what it cost: the market insight's and the
strategy rating's asking. A reply is returned as text; judging it is the caller's."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from signalsmith.analyze.llm.batching import Batcher, Question
from signalsmith.analyze.llm.cache import CachedReply, question_key
from signalsmith.analyze.llm.chain import FormatFor
from signalsmith.analyze.llm.limits import estimate_tokens
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.analyze.llm.reuse import Answered, reply_of
from signalsmith.errors import ProvidersFailed

if TYPE_CHECKING:
    from signalsmith.analyze.llm.chain import LLMChain
    from signalsmith.analyze.llm.reuse import Reuse
    from signalsmith.domain import ModelCall
    from signalsmith.observe.metrics import Metrics

Messages = list[dict[str, str]]
KEPT_CHARS: Final = 2_000  # of a rejected text, so one bad reply cannot bloat the envelope
# A reasoning model's scratchpad before its answer; never part of the reply.
_THINKING: Final = re.compile(r"^\s*<think>.*?</think>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reply that failed its check, and why (kept for inspection, never published)."""

    text: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AskOptions:
    max_tokens: int
    temperature: float


@dataclass(frozen=True, slots=True)
class Batching:
    """Questions that may share a request with others: the batcher, the reply room one answer
    needs and the check an answer must pass (else it is asked again alone)."""

    batcher: Batcher
    reply_tokens: int
    accept: Callable[[str], bool]


@dataclass
class Tally:
    """What the asking has cost so far, and the replies it turned down."""

    models: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    reused: int = 0
    latency_ms: float = 0.0
    batch_size: int = 1  # questions in the request that gave the latest answer
    errors: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class Asker:
    """One request's questions to the chain, through the reply cache when there is one."""

    def __init__(
        self,
        chain: LLMChain,
        options: AskOptions,
        reuse: Reuse | None,
        metrics: Metrics | None,
        *,
        format_for: FormatFor | None = None,
        batching: Batching | None = None,
    ) -> None:
        self._chain = chain
        self._options = options
        self._reuse = reuse
        self._metrics = metrics
        self._format_for = format_for or free_text
        self._batching = batching
        self.tally = Tally()

    async def reply(self, messages: Messages) -> str | None:
        """The reply's text (a reasoning block removed), or None when LLM_CACHE=readonly has
        no answer and no provider may be asked."""
        if self._reuse is None:
            return self._paid(await self._call(messages))
        params = {"max_tokens": self._options.max_tokens, "temperature": self._options.temperature}
        question = question_key(None, (), messages, "", params)
        cached = await self._reuse.cached(question, self._chain.providers)
        if cached is not None:
            self._count_cache("hit")
            return self._free(cached)
        if self._reuse.mode != "off":
            self._count_cache("miss")
        if self._reuse.readonly:
            return None
        asked, shared = await self._reuse.once(question, lambda: self._call(messages))
        if shared:  # an identical request was asking the same question at the same time
            self._count_cache("shared")
            return self._free(reply_of(asked.answer))
        await self._reuse.keep(question, asked.answer.provider, reply_of(asked.answer))
        return self._paid(asked)

    def reject(self, text: str, problems: Sequence[str]) -> None:
        self.tally.rejected.append(Rejected(text[:KEPT_CHARS], tuple(problems)))

    async def _call(self, messages: Messages) -> Answered:
        started = time.perf_counter()
        batching = self._batching
        if batching is None:
            answer = await self._chain.complete(
                messages,
                self._format_for,
                estimate_tokens(messages, min(self._options.max_tokens, self._chain.max_tokens)),
            )
        else:
            question = Question(
                messages, self._format_for, batching.reply_tokens, _readable(batching.accept)
            )
            try:
                answer = await batching.batcher.ask(question)
            except ProvidersFailed as exc:  # a share of a batch may have been paid for
                self._spent(exc)
                raise
        return Answered(answer, (time.perf_counter() - started) * 1000)

    def _paid(self, asked: Answered) -> str:
        answer, completion, tally = asked.answer, asked.answer.completion, self.tally
        tally.calls += 1
        tally.latency_ms += asked.latency_ms
        tally.batch_size = answer.batch_size
        tally.errors += answer.errors
        self._bill(answer.as_call())
        return reply_text(completion.content)

    def _spent(self, failed: ProvidersFailed) -> None:
        """A question that failed after its share of a batch was paid for: billed all the
        same (once, whoever else shared the failure)."""
        spent = failed.take_spent()
        if spent is not None:
            self._bill(spent)

    def _bill(self, call: ModelCall) -> None:
        tally = self.tally
        tally.models.append(f"{call.provider}/{call.model}")
        tally.tokens_in += call.tokens_in
        tally.tokens_out += call.tokens_out
        tally.cost_usd += call.cost_usd
        if self._metrics is not None:
            self._metrics.count_llm_usage(call)

    def _free(self, reply: CachedReply) -> str:
        self.tally.reused += 1
        self.tally.models.append(f"{reply.provider}/{reply.model}")
        return reply_text(reply.content)

    def _count_cache(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.llm_cache.labels(result).inc()


def _readable(accept: Callable[[str], bool]) -> Callable[[str], bool]:
    """``accept`` applied to the reply's text as the caller will read it."""
    return lambda content: accept(reply_text(content))


def free_text(_provider: ProviderConfig) -> Mapping[str, object] | None:
    """No structured output: the reply is prose."""
    return None


def reply_text(content: str) -> str:
    return _THINKING.sub("", content, count=1).strip()
