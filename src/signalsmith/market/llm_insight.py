"""The model's insight on one product: asked through the shared provider chain, checked
(``market.check``), asked once more with the reasons when it fails, and reported ``degraded``
with the rejected texts kept when it fails again. Never a silent fallback.

The model is asked for prose only, not for a verdict: the published verdict stays the
deterministic trend read's, so a reply can never move it, and an unusable reply costs the
text alone. Every provider failing (``ProvidersFailed``, a ``TransientError``) propagates:
the request stays pending and is retried, as the posts pipeline does under LLM_FAILURE=retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from pydantic import JsonValue

from signalsmith.analyze.llm.asking import Asker, AskOptions, Messages, Rejected, Tally
from signalsmith.market.check import check_reply
from signalsmith.market.indicators import Indicators
from signalsmith.market.insight import ModelText
from signalsmith.market.prompt import build_prompt, follow_up, prompt_values

if TYPE_CHECKING:
    from signalsmith.analyze.llm.chain import LLMChain
    from signalsmith.analyze.llm.reuse import Reuse
    from signalsmith.observe.metrics import Metrics

InsightStatus = Literal["ok", "degraded"]

FAILED_TWICE: Final = "the reply failed the check twice"
NOT_CACHED: Final = "not in the reply cache (LLM_CACHE=readonly)"


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
    asker = Asker(chain, AskOptions(max_tokens, temperature), reuse, metrics)
    messages: Messages = [{"role": "user", "content": prompt}]
    for attempt in range(2):
        text = await asker.reply(messages)
        if text is None:
            return _result(asker.tally, None, NOT_CACHED)
        problems = check_reply(text, product_id, values)
        if not problems:
            return _result(asker.tally, text, "")
        asker.reject(text, problems)
        if attempt == 0:
            messages += [
                {"role": "assistant", "content": text},
                {"role": "user", "content": follow_up(problems)},
            ]
    return _result(asker.tally, None, FAILED_TWICE)


def _result(tally: Tally, text: str | None, reason: str) -> LLMInsight:
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
