"""The model's insight on one product: asked through the shared provider chain, checked
(``market.check``), asked once more with the reasons when it fails, and reported ``degraded``
with the rejected texts kept when it fails again. Never a silent fallback.

The model is asked for prose only, not for a verdict: the published verdict stays the
deterministic trend read's, so a reply can never move it, and an unusable reply costs the
text alone. Every provider failing (``ProvidersFailed``, a ``TransientError``) propagates:
the request stays pending and is retried, as the posts pipeline does under LLM_FAILURE=retry.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from pydantic import JsonValue

from signalsmith.analyze.llm.cache import CachedReply, question_key
from signalsmith.analyze.llm.limits import estimate_tokens
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.analyze.llm.reuse import Answered
from signalsmith.market.check import check_reply
from signalsmith.market.indicators import Indicators
from signalsmith.market.insight import ModelText
from signalsmith.market.prompt import build_prompt, follow_up, prompt_values

if TYPE_CHECKING:
    from signalsmith.analyze.llm.chain import LLMChain
    from signalsmith.analyze.llm.reuse import Reuse
    from signalsmith.observe.metrics import Metrics

InsightStatus = Literal["ok", "degraded"]
Messages = list[dict[str, str]]

FAILED_TWICE: Final = "the reply failed the check twice"
NOT_CACHED: Final = "not in the reply cache (LLM_CACHE=readonly)"
KEPT_CHARS: Final = 2_000  # of a rejected text, so one bad reply cannot bloat the envelope
# A reasoning model's scratchpad before its answer; never part of the insight.
_THINKING: Final = re.compile(r"^\s*<think>.*?</think>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reply that failed the check, and why (kept for inspection, never published)."""

    text: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LLMInsight:
    """What asking the model gave: the accepted text (``ok``) or none (``degraded``, with
    ``reason``), the rejected replies, and what the asking cost.

    ``calls`` counts answers paid for; ``reused`` counts answers taken from the reply cache
    or shared with an identical request in flight (free). ``models`` are ``provider/model``
    of every answer used, in order. ``errors`` are the provider failures the chain fell back
    over on the way.
    """

    status: InsightStatus
    text: str | None
    reason: str
    rejected: tuple[Rejected, ...]
    models: tuple[str, ...]
    tokens_in: int
    tokens_out: int
    cost_usd: float
    calls: int
    reused: int
    latency_ms: float
    errors: tuple[str, ...]

    def meta(self) -> dict[str, JsonValue]:
        """The envelope's record of the asking, rejected texts included."""
        return {
            "status": self.status,
            "text": self.text,
            "reason": self.reason or None,
            "rejected": [
                {"text": rejected.text, "problems": list(rejected.problems)}
                for rejected in self.rejected
            ],
            "models": list(self.models),
            "tokens": {"input": self.tokens_in, "output": self.tokens_out},
            "cost_usd": round(self.cost_usd, 6),
            "calls": self.calls,
            "reused": self.reused,
            "latency_ms": round(self.latency_ms, 1),
            "errors": list(self.errors),
        }


async def ask_insight(
    chain: LLMChain,
    prompt: str,
    product_id: str,
    values: Mapping[str, float],
    *,
    max_tokens: int,
    temperature: float,
    reuse: Reuse | None = None,
    metrics: Metrics | None = None,
) -> LLMInsight:
    """The insight ``prompt`` asks for, checked against ``values`` (``prompt_values``).

    A reply that fails the check is asked for once more, the problems stated in a follow-up
    message; a second failure gives ``degraded`` with both replies in ``rejected``.
    ``max_tokens`` and ``temperature`` are the chain's own (LLM_MAX_OUTPUT_TOKENS,
    LLM_TEMPERATURE, which it applies to every call): they size the rate-limit estimate and
    key the reply cache. With ``reuse``, an identical question (the same prompt, or the same
    follow-up) is answered from the cache; ``metrics`` count tokens, cost and cache lookups
    as the posts analyzer does. Raises ``ProvidersFailed`` when no provider answers.
    """
    asker = _Asker(chain, _Options(max_tokens, temperature), reuse, metrics)
    messages: Messages = [{"role": "user", "content": prompt}]
    for attempt in range(2):
        text = await asker.reply(messages)
        if text is None:
            return asker.result(None, NOT_CACHED)
        problems = check_reply(text, product_id, values)
        if not problems:
            return asker.result(text, "")
        asker.reject(text, problems)
        if attempt == 0:
            messages += [
                {"role": "assistant", "content": text},
                {"role": "user", "content": follow_up(problems)},
            ]
    return asker.result(None, FAILED_TWICE)


@dataclass(frozen=True, slots=True)
class _Options:
    max_tokens: int
    temperature: float


@dataclass
class _Tally:
    """What the asking has cost so far, and the replies it turned down."""

    models: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    reused: int = 0
    latency_ms: float = 0.0
    errors: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class _Asker:
    """One request's questions to the chain, through the reply cache when there is one."""

    def __init__(
        self, chain: LLMChain, options: _Options, reuse: Reuse | None, metrics: Metrics | None
    ) -> None:
        self._chain = chain
        self._options = options
        self._reuse = reuse
        self._metrics = metrics
        self._tally = _Tally()

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
            return self._free(_reply_of(asked))
        await self._reuse.keep(question, asked.answer.provider, _reply_of(asked))
        return self._paid(asked)

    def reject(self, text: str, problems: Sequence[str]) -> None:
        self._tally.rejected.append(Rejected(text[:KEPT_CHARS], tuple(problems)))

    def result(self, text: str | None, reason: str) -> LLMInsight:
        tally = self._tally
        return LLMInsight(
            status="ok" if text is not None else "degraded",
            text=text,
            reason=reason,
            rejected=tuple(tally.rejected),
            models=tuple(dict.fromkeys(tally.models)),
            tokens_in=tally.tokens_in,
            tokens_out=tally.tokens_out,
            cost_usd=tally.cost_usd,
            calls=tally.calls,
            reused=tally.reused,
            latency_ms=tally.latency_ms,
            errors=tuple(tally.errors),
        )

    async def _call(self, messages: Messages) -> Answered:
        started = time.perf_counter()
        answer = await self._chain.complete(
            messages, _free_text, estimate_tokens(messages, self._options.max_tokens)
        )
        return Answered(answer, (time.perf_counter() - started) * 1000)

    def _paid(self, asked: Answered) -> str:
        answer, completion, tally = asked.answer, asked.answer.completion, self._tally
        cost = answer.provider.cost(completion.tokens_in, completion.tokens_out)
        tally.calls += 1
        tally.models.append(f"{answer.provider.name}/{completion.model}")
        tally.tokens_in += completion.tokens_in
        tally.tokens_out += completion.tokens_out
        tally.cost_usd += cost
        tally.latency_ms += asked.latency_ms
        tally.errors += answer.errors
        if self._metrics is not None:
            name, model = answer.provider.name, completion.model
            self._metrics.llm_tokens.labels(name, model, "input").inc(completion.tokens_in)
            self._metrics.llm_tokens.labels(name, model, "output").inc(completion.tokens_out)
            self._metrics.llm_cost.labels(name, model).inc(cost)
        return _text(completion.content)

    def _free(self, reply: CachedReply) -> str:
        self._tally.reused += 1
        self._tally.models.append(f"{reply.provider}/{reply.model}")
        return _text(reply.content)

    def _count_cache(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.llm_cache.labels(result).inc()


def _free_text(_provider: ProviderConfig) -> Mapping[str, object] | None:
    """No structured output: the insight is prose."""
    return None


def _text(content: str) -> str:
    return _THINKING.sub("", content, count=1).strip()


def _reply_of(asked: Answered) -> CachedReply:
    completion = asked.answer.completion
    return CachedReply(
        provider=asked.answer.provider.name,
        model=completion.model,
        content=completion.content,
        tokens_in=completion.tokens_in,
        tokens_out=completion.tokens_out,
    )


@dataclass(frozen=True, slots=True)
class InsightWriter:
    """The market handler's model: one prompt template, the shared chain, its reply reuse and
    metrics. ``write`` asks for the insight on one reading."""

    chain: LLMChain
    template: str
    max_tokens: int
    temperature: float
    reuse: Reuse | None = None
    metrics: Metrics | None = None

    async def write(self, product_id: str, indicators: Indicators) -> ModelText:
        asked = await ask_insight(
            self.chain,
            build_prompt(self.template, product_id, indicators),
            product_id,
            prompt_values(indicators),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            reuse=self.reuse,
            metrics=self.metrics,
        )
        return ModelText(
            status=asked.status,
            text=asked.text,
            problems=asked.rejected[-1].problems if asked.rejected else (),
            models=asked.models,
            tokens_in=asked.tokens_in,
            tokens_out=asked.tokens_out,
            cost_usd=asked.cost_usd,
            latency_ms=asked.latency_ms,
            record=asked.meta(),
        )
