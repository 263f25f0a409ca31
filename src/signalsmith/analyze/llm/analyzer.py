"""The LLM analyzer (prompt -> story -> reuse or chain -> parse -> votes) and the tiered router
that decides, per post and ticker, whether the LLM is asked at all (LLM_POLICY uncertain / always).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Literal

from signalsmith.analyze.llm.batching import Batcher, BatchOptions, Question
from signalsmith.analyze.llm.cache import CachedReply, question_key
from signalsmith.analyze.llm.chain import LLMChain
from signalsmith.analyze.llm.prompt import PromptTemplate, StructuredOutput, response_format
from signalsmith.analyze.llm.providers import ProviderConfig
from signalsmith.analyze.llm.reply import ParsedReply, UnparseableReply, parse_reply
from signalsmith.analyze.llm.reuse import Answered, Reuse, reply_of
from signalsmith.analyze.offline import OfflineAnalyzer
from signalsmith.analyze.route import IRRELEVANT, Reason, Thresholds, is_chatter, uncertain
from signalsmith.dedup import StoryIndex
from signalsmith.domain import Analysis, ModelCall, Opinion, Post, Status, Verdict, Vote
from signalsmith.errors import ProvidersFailed
from signalsmith.observe.metrics import Metrics

Policy = Literal["uncertain", "always"]  # with LLM_POLICY=never no tiered analyzer is built
DOMAIN = "sentiment"
_RAW_LIMIT = 500
_SIGN = {Verdict.BUY: 1.0, Verdict.SELL: -1.0, Verdict.HOLD: 0.0}
_IRRELEVANT_CONFIDENCE = 0.9
# Reply room per ticker in a batched request: one JSON item with a one-sentence reasoning.
_REPLY_TOKENS_BASE = 40
_REPLY_TOKENS_PER_TICKER = 80
ALONE = BatchOptions(size=1, tokens=8_000, wait_s=0.0)


@dataclass(frozen=True, slots=True)
class LLMOptions:
    failure: Literal["retry", "degrade"]
    max_tokens: int
    temperature: float
    batching: BatchOptions = ALONE


class LLMAnalyzer:
    """Asks the provider chain about a post's tickers; never turns a failure into a verdict.

    Every copy of one story (``stories``) asks the same question, so a repost reuses the first
    copy's answer (``reuse``: memory, single flight, Redis) instead of paying for a new call.
    """

    name = "llm"
    description = "LLM via the provider chain"

    def __init__(
        self,
        chain: LLMChain,
        template: PromptTemplate,
        *,
        is_known: Callable[[str], bool],
        reuse: Reuse,
        stories: StoryIndex | None,
        options: LLMOptions,
        metrics: Metrics,
    ) -> None:
        self.chain = chain
        self._template = template
        self._is_known = is_known
        self._reuse = reuse
        self._stories = stories
        self._options = options
        self._metrics = metrics
        self._parsed = cache(metrics.llm_parse.labels)  # a series' lookup, once per label set
        # A prompt file in the replaced worker's style asks for its own answer format, which
        # has no room for ids: its questions always go alone.
        batching = options.batching
        if template.seed_style:
            batching = replace(batching, size=1)
        self._batcher = Batcher(chain, batching)

    def _format_for(self, provider: ProviderConfig) -> Mapping[str, object] | None:
        if self._template.seed_style:
            return None  # a seed-style prompt asks for its own answer format
        return response_format(StructuredOutput(provider.structured))

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis:
        messages = self._template.messages(post, tickers)
        question = await self._question(post, tickers, messages)
        cached = await self._reuse.cached(question, self.chain.providers)
        if cached is not None:
            self._metrics.llm_cache.labels("hit").inc()
            return self._votes(post, tickers, cached, _REUSED)
        if self._reuse.mode != "off":
            self._metrics.llm_cache.labels("miss").inc()
        if self._reuse.readonly:
            return _abstain(tickers, "not in the reply cache (LLM_CACHE=readonly)")
        try:
            asked, shared = await self._reuse.once(
                question, lambda: self._ask(self._question_of(post, tickers, messages))
            )
        except ProvidersFailed as exc:
            spent = exc.take_spent()
            if spent is not None:  # paid for before it failed: on the bill all the same
                self._metrics.count_llm_usage(spent)
                spent = replace(spent, errors=exc.reasons)
            if self._options.failure == "retry":
                raise
            return _failed(tickers, str(exc), exc.reasons, spent)
        reply = reply_of(asked.answer)
        if shared:  # another copy of the story was being asked at the same time
            self._metrics.llm_cache.labels("shared").inc()
            return self._votes(post, tickers, reply, _REUSED)
        await self._reuse.keep(question, asked.answer.provider, reply)
        return self._votes(post, tickers, reply, _paid(asked), asked.answer.errors)

    async def _question(
        self, post: Post, tickers: Sequence[str], messages: Sequence[Mapping[str, str]]
    ) -> str:
        """The question's key: the story with DEDUP_ENABLED, else the exact prompt; none with
        LLM_CACHE=off, which reuses nothing (hashing the prompt costs a call's worth of CPU)."""
        if self._reuse.mode == "off":
            return ""
        params = {"max_tokens": self._options.max_tokens, "temperature": self._options.temperature}
        story = None
        if self._stories is not None:
            story = (await self._stories.story_of(post.text)).key
        return question_key(story, tickers, messages, self._template.text, params)

    def _question_of(
        self, post: Post, tickers: Sequence[str], messages: Sequence[Mapping[str, str]]
    ) -> Question:
        room = _REPLY_TOKENS_BASE + _REPLY_TOKENS_PER_TICKER * len(tickers)

        def answers_every_ticker(content: str) -> bool:
            try:
                parsed = parse_reply(content, tickers, post.text, self._is_known)
            except UnparseableReply:
                return False
            return not parsed.missing

        return Question(
            messages, self._format_for, min(room, self._options.max_tokens), answers_every_ticker
        )

    async def _ask(self, question: Question) -> Answered:
        started = time.perf_counter()
        answer = await self._batcher.ask(question)
        return Answered(answer, (time.perf_counter() - started) * 1000)

    def _votes(
        self,
        post: Post,
        tickers: Sequence[str],
        reply: CachedReply,
        paid: _Paid,
        errors: tuple[str, ...] = (),
    ) -> Analysis:
        latency_ms, cached, attempts = paid.latency_ms, paid.cached, paid.attempts
        cost = 0.0 if cached else paid.cost_usd
        model = f"{reply.provider}/{reply.model}"
        try:
            parsed: ParsedReply | UnparseableReply = parse_reply(
                reply.content, tickers, post.text, self._is_known
            )
        except UnparseableReply as exc:
            parsed = exc
        method = parsed.method.value if isinstance(parsed, ParsedReply) else "unparseable"
        if paid.batch_size > 1:  # how the batched reply was read; its entry is plain JSON
            method = f"batch_{paid.batch_method}"
        self._parsed(method).inc()
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
            tokens_cached=0 if cached else reply.tokens_cached,
            batch_size=paid.batch_size,
        )
        if not cached:  # paid for whether or not the reply turns out to be usable
            self._metrics.count_llm_usage(call)
        if isinstance(parsed, UnparseableReply):
            error = f"unparseable reply ({parsed.reason}): {parsed.raw[:_RAW_LIMIT]}"
            return _failed(tickers, error, (), call, model)
        return Analysis(votes=_from_parsed(parsed, tickers, model, latency_ms), calls=(call,))


@dataclass(frozen=True, slots=True)
class _Paid:
    """What an answer cost this post: a fresh call, or a reused answer (free, no attempts)."""

    latency_ms: float
    cached: bool
    attempts: int
    cost_usd: float = 0.0
    batch_size: int = 1
    batch_method: str = ""


_REUSED = _Paid(0.0, cached=True, attempts=0)


def _paid(asked: Answered) -> _Paid:
    answer = asked.answer
    return _Paid(
        asked.latency_ms,
        cached=False,
        attempts=answer.attempts,
        cost_usd=answer.cost_usd,
        batch_size=answer.batch_size,
        batch_method=answer.batch_method,
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
    """The offline lexicon always; the LLM as the policy says: ``always``, or ``uncertain`` (only
    for tickers the lexicon's opinion cannot settle, see ``analyze.route``). Under both, a text
    with no ticker and no market vocabulary is HOLD without asking the LLM."""

    def __init__(
        self, offline: OfflineAnalyzer, llm: LLMAnalyzer, policy: Policy, thresholds: Thresholds
    ) -> None:
        self._offline = offline
        self.llm = llm
        self._policy = policy
        self._thresholds = thresholds
        self.name = f"{offline.name}+{llm.name}"
        self.description = f"offline lexicon, then LLM ({policy})"

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis:
        if is_chatter(post.text, tickers):
            return Analysis(votes={t: (_irrelevant(),) for t in tickers})
        offline = self._offline.analyze_now(post, tickers)
        targets = [t for t in tickers if self.reason(offline[t], t, len(tickers) > 1)]
        if not targets:
            return Analysis(votes={t: (offline[t],) for t in tickers})
        asked = await self.llm.analyze(post, targets)
        votes = {t: (offline[t], *asked.votes.get(t, ())) for t in tickers}
        return Analysis(votes=votes, calls=asked.calls)

    def reason(self, vote: Vote, ticker: str, several_tickers: bool) -> Reason | None:
        """Why the LLM is asked about this ticker, or None when the lexicon settles it."""
        if self._policy == "always":
            return Reason.POLICY
        if vote.opinion is None:
            return Reason.LOW_CONFIDENCE
        return uncertain(vote.opinion, ticker, several_tickers, self._thresholds)


def _irrelevant() -> Vote:
    opinion = Opinion(Verdict.HOLD, _IRRELEVANT_CONFIDENCE, 0.0, (IRRELEVANT,))
    return Vote(analyzer="relevance", domain="relevance", status=Status.OK, opinion=opinion)
