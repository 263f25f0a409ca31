"""The model's rating of one strategy signal, asked through the shared provider chain (its
fallback, rate limits, budget, reply cache and cost accounting).

A reply that is not a valid rating is asked for once more with the problems stated; a second
one gives no rating and says why. Every provider failing or refusing for now (a rate limit
that would make the signal wait past LLM_MAX_WAIT_S, a circuit open) also gives no rating,
with the reason: a trading signal cannot wait for a retry minutes later, so the rules' rating
stands and the signal is published ``degraded`` at once. Never a made-up rating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from signalsmith.analyze.llm.asking import Asker, AskOptions, Batching, Messages, Tally
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.errors import ProvidersFailed
from signalsmith.strategy.contract import Bar, ModelRating, SignalFacts
from signalsmith.strategy.rating_prompt import build_prompt, follow_up, response_format
from signalsmith.strategy.rating_reply import ReadRating, read_rating

if TYPE_CHECKING:
    from signalsmith.analyze.llm.batching import Batcher
    from signalsmith.analyze.llm.chain import LLMChain
    from signalsmith.analyze.llm.reuse import Reuse
    from signalsmith.observe.metrics import Metrics

NOT_CACHED: Final = "not in the reply cache (LLM_CACHE=readonly)"
MAX_ERROR_CHARS: Final = 300
REPLY_TOKENS: Final = 300  # a rating's room in a batched reply: three sentences and two lists


@dataclass(frozen=True, slots=True)
class ModelAnswer:
    """The model's rating, or None and why; and what asking cost (``tally``)."""

    rating: ModelRating | None
    error: str | None
    tally: Tally


@dataclass(frozen=True, slots=True)
class StrategyRater:
    """The strategy handler's model: one prompt template and the shared chain."""

    chain: LLMChain
    template: str
    max_tokens: int
    temperature: float
    reuse: Reuse | None = None
    metrics: Metrics | None = None
    batcher: Batcher | None = None  # signals waiting for the provider share a request

    async def rate(self, signal: SignalFacts, bars: Sequence[Bar]) -> ModelAnswer:
        options = AskOptions(self.max_tokens, self.temperature)
        batching = None
        if self.batcher is not None:
            room = min(REPLY_TOKENS, self.max_tokens)
            batching = Batching(self.batcher, room, _is_rating)
        asker = Asker(
            self.chain,
            options,
            self.reuse,
            self.metrics,
            format_for=_structured,
            batching=batching,
        )
        messages: Messages = [
            {"role": "user", "content": build_prompt(self.template, signal, bars)}
        ]
        try:
            return await _ask(asker, messages)
        except ProvidersFailed as exc:
            return ModelAnswer(None, _failed(exc), asker.tally)


async def _ask(asker: Asker, messages: Messages) -> ModelAnswer:
    problems: list[str] = []
    for attempt in range(2):
        text = await asker.reply(messages)
        if text is None:
            return ModelAnswer(None, NOT_CACHED, asker.tally)
        read = read_rating(text)
        if isinstance(read, ReadRating):
            return ModelAnswer(_model_rating(read, asker.tally), None, asker.tally)
        problems = read
        asker.reject(text, problems)
        if attempt == 0:
            messages = [
                *messages,
                {"role": "assistant", "content": text},
                {"role": "user", "content": follow_up(problems)},
            ]
    error = "no valid rating in two replies: " + "; ".join(problems)
    return ModelAnswer(None, error[:MAX_ERROR_CHARS], asker.tally)


def _is_rating(text: str) -> bool:
    return isinstance(read_rating(text), ReadRating)


def _structured(provider: ProviderConfig) -> Mapping[str, object] | None:
    return response_format(provider.structured)


def _model_rating(read: ReadRating, tally: Tally) -> ModelRating:
    return {
        "rating": read.rating,
        "agreement": read.agreement,
        "confidence": round(read.confidence, 4),
        "reasoning": read.reasoning,
        "risks": read.risks,
        "key_factors": read.key_factors,
        "model": tally.models[-1] if tally.models else "",
        "tokens_in": tally.tokens_in,
        "tokens_out": tally.tokens_out,
        "cost_usd": round(tally.cost_usd, 6),
        "latency_ms": round(tally.latency_ms, 1),
        "batch_size": tally.batch_size,
    }


def _failed(exc: ProvidersFailed) -> str:
    """Which provider failed how (``name: kind``), never a provider's own message: it could
    quote a URL, and this text is published."""
    kinds = [":".join(reason.split(":", 2)[:2]).strip() for reason in exc.reasons]
    return ("no provider could rate it now: " + "; ".join(kinds))[:MAX_ERROR_CHARS]
