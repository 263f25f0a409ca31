"""The LLM analyzer (prompt -> chain -> parse -> votes) and the tiered router that decides,
per post, whether the LLM is asked at all (LLM_POLICY never / uncertain / always).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from signalsmith.analyze.llm.cache import CachedReply, ReplyCache
from signalsmith.analyze.llm.chain import ChainAnswer, LLMChain
from signalsmith.analyze.llm.limits import estimate_tokens
from signalsmith.analyze.llm.prompt import PromptTemplate, StructuredOutput, response_format
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.analyze.llm.reply import ParsedReply, UnparseableReply, parse_reply
from signalsmith.analyze.offline import OfflineAnalyzer
from signalsmith.domain import Analysis, ModelCall, Opinion, Post, Status, Verdict, Vote
from signalsmith.errors import ProvidersFailed
from signalsmith.observe.metrics import Metrics

Policy = Literal["uncertain", "always"]  # with LLM_POLICY=never no tiered analyzer is built
DOMAIN = "sentiment"
_RAW_LIMIT = 500
_SIGN = {Verdict.BUY: 1.0, Verdict.SELL: -1.0, Verdict.HOLD: 0.0}


@dataclass(frozen=True, slots=True)
class LLMOptions:
    failure: Literal["retry", "degrade"]
    max_tokens: int
    temperature: float


class LLMAnalyzer:
    """Asks the provider chain about a post's tickers; never turns a failure into a verdict."""

    name = "llm"
    description = "LLM via the provider chain"

    def __init__(
        self,
        chain: LLMChain,
        template: PromptTemplate,
        *,
        is_known: Callable[[str], bool],
        cache: ReplyCache | None,
        options: LLMOptions,
        metrics: Metrics,
    ) -> None:
        self.chain = chain
        self._template = template
        self._is_known = is_known
        self._cache = cache
        self._options = options
        self._metrics = metrics

    def _format_for(self, provider: ProviderConfig) -> Mapping[str, object] | None:
        if self._template.seed_style:
            return None  # a seed-style prompt asks for its own answer format
        return response_format(StructuredOutput(provider.structured))

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis:
        messages = self._template.messages(post, tickers)
        params = {"max_tokens": self._options.max_tokens, "temperature": self._options.temperature}
        keys = (
            {p.name: self._cache.key(p, messages, params) for p in self.chain.providers}
            if self._cache
            else {}
        )
        cached = await self._cache.first_hit(list(keys.values())) if self._cache else None
        if cached is not None:
            self._metrics.llm_cache.labels("hit").inc()
            return self._votes(
                post, tickers, cached, latency_ms=0.0, cached=True, attempts=0, errors=()
            )
        if self._cache is not None:
            self._metrics.llm_cache.labels("miss").inc()
            if self._cache.mode == "readonly":
                return _abstain(tickers, "not in the reply cache (LLM_CACHE=readonly)")
        started = time.perf_counter()
        try:
            answer = await self.chain.complete(
                messages, self._format_for, estimate_tokens(messages, self._options.max_tokens)
            )
        except ProvidersFailed as exc:
            if self._options.failure == "retry":
                raise
            return _failed(tickers, str(exc), exc.reasons)
        reply = _reply_of(answer)
        if self._cache is not None:
            await self._cache.put(keys[answer.provider.name], reply)
        latency = (time.perf_counter() - started) * 1000
        return self._votes(
            post,
            tickers,
            reply,
            latency_ms=latency,
            cached=False,
            attempts=answer.attempts,
            errors=answer.errors,
        )

    def _votes(
        self,
        post: Post,
        tickers: Sequence[str],
        reply: CachedReply,
        *,
        latency_ms: float,
        cached: bool,
        attempts: int,
        errors: tuple[str, ...],
    ) -> Analysis:
        provider = next((p for p in self.chain.providers if p.name == reply.provider), None)
        cost = (
            0.0 if cached or provider is None else provider.cost(reply.tokens_in, reply.tokens_out)
        )
        model = f"{reply.provider}/{reply.model}"
        if not cached:  # paid for whether or not the reply turns out to be usable
            self._record_usage(reply, cost)
        try:
            parsed: ParsedReply | UnparseableReply = parse_reply(
                reply.content, tickers, post.text, self._is_known
            )
        except UnparseableReply as exc:
            parsed = exc
        method = parsed.method.value if isinstance(parsed, ParsedReply) else "unparseable"
        self._metrics.llm_parse.labels(method).inc()
        call = ModelCall(
            provider=reply.provider,
            model=reply.model,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            cost_usd=cost,
            latency_ms=latency_ms,
            parse_method=method,
            cached=cached,
            attempts=attempts,
            errors=errors,
        )
        if isinstance(parsed, UnparseableReply):
            error = f"unparseable reply ({parsed.reason}): {parsed.raw[:_RAW_LIMIT]}"
            return _failed(tickers, error, (), call, model)
        return Analysis(votes=_from_parsed(parsed, tickers, model, latency_ms), calls=(call,))

    def _record_usage(self, reply: CachedReply, cost: float) -> None:
        self._metrics.llm_tokens.labels(reply.provider, reply.model, "input").inc(reply.tokens_in)
        self._metrics.llm_tokens.labels(reply.provider, reply.model, "output").inc(reply.tokens_out)
        self._metrics.llm_cost.labels(reply.provider, reply.model).inc(cost)


def _reply_of(answer: ChainAnswer) -> CachedReply:
    completion = answer.completion
    return CachedReply(
        provider=answer.provider.name,
        model=completion.model,
        content=completion.content,
        tokens_in=completion.tokens_in,
        tokens_out=completion.tokens_out,
    )


def _from_parsed(
    parsed: ParsedReply, tickers: Sequence[str], model: str, latency_ms: float
) -> dict[str, tuple[Vote, ...]]:
    votes: dict[str, tuple[Vote, ...]] = {}
    for ticker in tickers:
        call = parsed.calls.get(ticker)
        if call is None:
            votes[ticker] = (
                _vote(Status.ERROR, None, "the reply said nothing valid about it", model),
            )
            continue
        evidence = tuple(
            part
            for part in (call.reasoning[:200], f"parse: {parsed.method.value}", call.flag)
            if part
        )
        opinion = Opinion(
            call.verdict, call.confidence, _SIGN[call.verdict] * call.confidence, evidence
        )
        votes[ticker] = (_vote(Status.OK, opinion, "", model, latency_ms),)
    return votes


def _vote(
    status: Status, opinion: Opinion | None, error: str, model: str = "", latency_ms: float = 0.0
) -> Vote:
    return Vote(
        analyzer=LLMAnalyzer.name,
        domain=DOMAIN,
        status=status,
        opinion=opinion,
        error=error[:_RAW_LIMIT],
        model=model,
        latency_ms=latency_ms,
    )


def _failed(
    tickers: Sequence[str],
    error: str,
    reasons: Sequence[str],
    call: ModelCall | None = None,
    model: str = "",
) -> Analysis:
    calls = (call,) if call else (ModelCall("", "", errors=tuple(reasons)),)
    return Analysis(
        votes={ticker: (_vote(Status.ERROR, None, error, model),) for ticker in tickers},
        calls=calls,
    )


def _abstain(tickers: Sequence[str], why: str) -> Analysis:
    return Analysis(votes={t: (_vote(Status.ABSTAIN, None, why),) for t in tickers})


class TieredAnalyzer:
    """The offline lexicon always; the LLM as the policy says: ``always``, or ``uncertain``
    (only for tickers the lexicon is not confident about)."""

    def __init__(
        self, offline: OfflineAnalyzer, llm: LLMAnalyzer, policy: Policy, uncertain_below: float
    ) -> None:
        self._offline = offline
        self.llm = llm
        self._policy = policy
        self._below = uncertain_below
        self.name = f"{offline.name}+{llm.name}"
        self.description = f"offline lexicon, then LLM ({policy})"

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis:
        offline = self._offline.analyze_now(post, tickers)
        targets = [t for t in tickers if self._needs_llm(offline[t])]
        if not targets:
            return Analysis(votes={t: (offline[t],) for t in tickers})
        asked = await self.llm.analyze(post, targets)
        votes = {t: (offline[t], *asked.votes.get(t, ())) for t in tickers}
        return Analysis(votes=votes, calls=asked.calls)

    def _needs_llm(self, vote: Vote) -> bool:
        if self._policy == "always" or vote.opinion is None:
            return True
        # uncertain: not confident, or relevant (it names a ticker) but undecided
        return vote.opinion.confidence < self._below or vote.opinion.verdict is Verdict.HOLD
