"""The LLM analyzer through the real openai client over real HTTP, against two fake
OpenAI-compatible servers on loopback: every failure path ends in the right fallback and the
right status, never in a silent neutral verdict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from signalsmith.analyze.llm.chain import slot_health
from signalsmith.domain import Analysis, Post, Status, Verdict
from signalsmith.errors import ConfigError, ProvidersFailed
from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.lifecycle import AnalyzerStack, build_analyzers
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import load_settings

pytestmark = pytest.mark.slow
BULLISH = Post(
    id="p1", title="Loading up on $NVDA calls", body="Beat estimates, raised guidance 🚀"
)


@pytest.fixture
def first() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=1)) as server:
        yield server


@pytest.fixture
def second() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=2)) as server:
        yield server


@pytest.fixture
def two_providers(
    first: FakeLLMServer, second: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """openai -> the first fake, custom -> the second; short timeouts and waits for the tests."""
    env = {
        "LLM_PROVIDERS": "openai,custom",
        "OPENAI_BASE_URL": first.base_url,
        "OPENAI_API_KEY": "sk-first-key",
        "OPENAI_TIMEOUT": "1",
        "CUSTOM_BASE_URL": second.base_url,
        "CUSTOM_API_KEY": "sk-second-key",
        "CUSTOM_MODEL": "fake-1",
        "CUSTOM_STRUCTURED": "json_object",
        "CUSTOM_TIMEOUT": "1",
        "LLM_MAX_WAIT_S": "2",
        "LLM_ATTEMPTS": "2",
        "LLM_CACHE": "off",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
async def stack(two_providers: dict[str, str]) -> AsyncIterator[AnalyzerStack]:
    built = build_analyzers(load_settings(), Metrics(), None)
    try:
        yield built
    finally:
        await built.aclose()


async def _stop_429s_after_first_call(server: FakeLLMServer) -> None:
    # the fake runs in another thread and offers no event to wait on: poll its counter
    for _ in range(1000):
        if server.stats.calls >= 1:
            server.config.rate_429 = 0.0
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the first call never reached the fake")


def _llm_vote_status(analysis: Analysis, ticker: str = "NVDA") -> Status:
    return next(v for v in analysis.votes[ticker] if v.analyzer == "llm").status


async def test_a_healthy_first_provider_answers(
    stack: AnalyzerStack, first: FakeLLMServer, second: FakeLLMServer
) -> None:
    """The first provider answers; the vote is the LLM's with provider, model, tokens, cost and
    the parse method recorded; the second is never called."""
    analysis = await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    llm = next(v for v in analysis.votes["NVDA"] if v.analyzer == "llm")
    assert llm.status is Status.OK
    assert llm.opinion is not None
    assert llm.opinion.verdict is Verdict.BUY
    (call,) = analysis.calls
    assert (call.provider, call.parse_method, call.cached) == ("openai", "json", False)
    assert call.tokens_in > 0
    assert call.tokens_out > 0
    assert call.cost_usd > 0
    assert first.stats.calls == 1
    assert second.stats.calls == 0
    assert first.stats.response_formats == {"json_schema": 1}


async def test_429_within_the_bound_waits_and_retries_the_same_provider(
    stack: AnalyzerStack, first: FakeLLMServer, second: FakeLLMServer
) -> None:
    """A 429 whose Retry-After is under LLM_MAX_WAIT_S is waited out on the same provider."""
    first.config.rate_429 = 1.0
    first.config.retry_after_s = 0.3
    started = time.monotonic()
    analysis, _ = await asyncio.gather(
        stack.analyzers[0].analyze(BULLISH, ["NVDA"]), _stop_429s_after_first_call(first)
    )
    assert time.monotonic() - started >= 0.3  # Retry-After was honoured
    assert _llm_vote_status(analysis) is Status.OK
    assert analysis.calls[0].provider == "openai"
    assert analysis.calls[0].attempts == 2
    assert any("429" in error for error in analysis.calls[0].errors)
    assert second.stats.calls == 0


async def test_429_beyond_the_bound_falls_back_at_once(
    stack: AnalyzerStack, first: FakeLLMServer, second: FakeLLMServer
) -> None:
    """A Retry-After longer than LLM_MAX_WAIT_S sends the call to the next provider without
    waiting; /health shows the first as rate-limited."""
    first.config.rate_429 = 1.0
    first.config.retry_after_s = 60
    started = time.monotonic()
    analysis = await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    assert time.monotonic() - started < 2
    assert analysis.calls[0].provider == "custom"
    assert second.stats.response_formats == {"json_object": 1}
    chain = stack.chain
    assert chain is not None
    states = [slot_health(slot, chain, time.monotonic())["state"] for slot in chain.slots]
    assert states == ["rate_limited", "ok"]


async def test_5xx_and_timeouts_retry_then_fall_back(
    stack: AnalyzerStack, first: FakeLLMServer, second: FakeLLMServer
) -> None:
    """Server errors are retried with backoff up to LLM_ATTEMPTS, timeouts likewise, then the
    next provider answers."""
    first.config.rate_5xx = 1.0
    analysis = await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    assert analysis.calls[0].provider == "custom"
    assert first.stats.calls == 2  # LLM_ATTEMPTS
    first.config.rate_5xx = 0.0
    first.config.rate_timeout = 1.0
    first.config.timeout_s = 5
    analysis = await stack.analyzers[0].analyze(BULLISH, ["AMD"])
    assert analysis.calls[0].provider == "custom"
    assert sum("timeout" in error for error in analysis.calls[0].errors) == 2


async def test_bad_key_is_not_retried_and_shows_in_health(
    stack: AnalyzerStack, first: FakeLLMServer, second: FakeLLMServer
) -> None:
    """401 is not retried: the provider is marked failing with 'bad API key' and skipped for the
    next posts; 404 says 'unknown model'."""
    first.config.status_override = 401
    analysis = await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    assert analysis.calls[0].provider == "custom"
    assert first.stats.calls == 1
    await stack.analyzers[0].analyze(BULLISH, ["AMD"])
    assert first.stats.calls == 1  # skipped while failing
    chain = stack.chain
    assert chain is not None
    health = slot_health(chain.slots[0], chain, time.monotonic())
    assert health["state"] == "failing"
    assert "bad API key" in str(health["reason"])
    assert "sk-first-key" not in str(health)


async def test_unknown_model_reason(
    stack: AnalyzerStack, first: FakeLLMServer, second: FakeLLMServer
) -> None:
    """404 from a provider is reported as an unknown model or endpoint."""
    first.config.status_override = 404
    analysis = await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    assert any("unknown model" in error for error in analysis.calls[0].errors)


async def test_every_provider_failing_leaves_the_post_for_retry(
    stack: AnalyzerStack, first: FakeLLMServer, second: FakeLLMServer
) -> None:
    """When no provider answers, the analyzer raises ProvidersFailed (a TransientError), naming
    each provider's reason; nothing is decided."""
    first.config.rate_5xx = 1.0
    second.config.status_override = 503
    with pytest.raises(ProvidersFailed) as caught:
        await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    assert any(r.startswith("openai:") for r in caught.value.reasons)
    assert any(r.startswith("custom:") for r in caught.value.reasons)


async def test_degrade_publishes_the_offline_opinion_marked_degraded(
    two_providers: dict[str, str],
    first: FakeLLMServer,
    second: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LLM_FAILURE=degrade: the LLM vote is an error carrying the reasons; the lexicon's vote
    stands, so the decision comes out 'degraded', not a neutral default."""
    from signalsmith.decide import decide

    monkeypatch.setenv("LLM_FAILURE", "degrade")
    built = build_analyzers(load_settings(), Metrics(), None)
    first.config.status_override = 500
    second.config.status_override = 500
    try:
        analysis = await built.analyzers[0].analyze(BULLISH, ["NVDA"])
    finally:
        await built.aclose()
    decision = decide("NVDA", analysis.votes["NVDA"])
    assert decision.status is Status.DEGRADED
    assert decision.verdict is Verdict.BUY
    assert "every LLM provider failed" in decision.reasoning


@pytest.mark.parametrize(
    ("fault", "method"),
    [("prose", "embedded_json"), ("think", "embedded_json"), ("seed000", "seed_000")],
)
async def test_replies_in_other_shapes_are_parsed_and_the_method_recorded(
    stack: AnalyzerStack, first: FakeLLMServer, fault: str, method: str
) -> None:
    """Prose with fenced JSON, <think> blocks with a decoy, and the legacy ---TICKER---code form
    all parse; the envelope meta records how."""
    setattr(first.config, f"rate_{fault}", 1.0)
    analysis = await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    assert analysis.calls[0].parse_method == method
    assert _llm_vote_status(analysis) is Status.OK


async def test_malformed_reply_is_an_error_with_the_raw_reply_not_a_hold(
    stack: AnalyzerStack, first: FakeLLMServer
) -> None:
    """Broken JSON yields status error for the LLM vote, keeping the (truncated) raw reply."""
    first.config.rate_malformed = 1.0
    analysis = await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    llm = next(v for v in analysis.votes["NVDA"] if v.analyzer == "llm")
    assert llm.status is Status.ERROR
    assert llm.opinion is None
    assert "unparseable reply" in llm.error
    assert "signals" in llm.error
    assert analysis.calls[0].parse_method == "unparseable"


async def test_wrong_ticker_is_not_taken_for_the_requested_one(
    stack: AnalyzerStack, first: FakeLLMServer
) -> None:
    """A reply about a ticker nobody asked for leaves the requested ticker without an LLM
    opinion (status error), instead of borrowing the other's verdict."""
    first.config.rate_wrong_ticker = 1.0
    analysis = await stack.analyzers[0].analyze(BULLISH, ["NVDA"])
    assert _llm_vote_status(analysis) is Status.ERROR


async def test_cache_serves_a_repeat_for_free_and_readonly_never_calls(
    two_providers: dict[str, str],
    first: FakeLLMServer,
    redis: Redis,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same post twice costs one call (the second is a cache hit with zero cost);
    LLM_CACHE=readonly abstains on a miss instead of calling."""
    monkeypatch.setenv("LLM_CACHE", "readwrite")
    monkeypatch.setenv("LLM_CACHE_PREFIX", f"{prefix}:cache")
    built = build_analyzers(load_settings(), Metrics(), redis)
    try:
        once = await built.analyzers[0].analyze(BULLISH, ["NVDA"])
        again = await built.analyzers[0].analyze(BULLISH, ["NVDA"])
    finally:
        await built.aclose()
    assert first.stats.calls == 1
    assert not once.calls[0].cached
    assert again.calls[0].cached
    assert again.calls[0].cost_usd == 0
    monkeypatch.setenv("LLM_CACHE", "readonly")
    built = build_analyzers(load_settings(), Metrics(), redis)
    try:
        other = Post(id="p2", title="$AMD puts")
        missed = await built.analyzers[0].analyze(other, ["AMD"])
    finally:
        await built.aclose()
    assert first.stats.calls == 1
    assert _llm_vote_status(missed, "AMD") is Status.ABSTAIN


async def test_uncertain_policy_skips_the_llm_when_the_lexicon_is_sure(
    two_providers: dict[str, str], first: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLM_POLICY=uncertain: a clear post and a bare question with no cues are settled offline;
    a hedged post with cues both ways goes to the LLM."""
    monkeypatch.setenv("LLM_POLICY", "uncertain")
    built = build_analyzers(load_settings(), Metrics(), None)
    try:
        clear = await built.analyzers[0].analyze(BULLISH, ["NVDA"])
        bare = await built.analyzers[0].analyze(Post(id="p2", title="Thoughts on $AAPL?"), ["AAPL"])
        vague = await built.analyzers[0].analyze(
            Post(id="p3", title="Not sure about $MSFT, great cloud numbers but the capex is ugly"),
            ["MSFT"],
        )
    finally:
        await built.aclose()
    assert [v.analyzer for v in clear.votes["NVDA"]] == ["lexicon"]
    assert [v.analyzer for v in bare.votes["AAPL"]] == ["lexicon"]
    assert [v.analyzer for v in vague.votes["MSFT"]] == ["lexicon", "llm"]
    assert first.stats.calls == 1


def test_configuration_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown provider, or a listed provider without its key, stops start-up with a line
    naming the variable."""
    monkeypatch.setenv("LLM_PROVIDERS", "groq,nosuch")
    with pytest.raises(ConfigError, match="LLM_PROVIDERS"):
        build_analyzers(load_settings(), Metrics(), None)
    monkeypatch.setenv("LLM_PROVIDERS", "groq")
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="GROQ_API_KEY"):
        build_analyzers(load_settings(), Metrics(), None)


def test_groq_key_alone_selects_groq_with_seed_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """With only GROQ_API_KEY (and seed 000's GROQ_MODEL_NAME) set, Groq is the provider."""
    from signalsmith.analyze.llm.providers import resolve_providers

    for name in ("LLM_PROVIDERS", "LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test")
    monkeypatch.setenv("GROQ_MODEL_NAME", "llama-3.1-8b-instant")
    (groq,) = resolve_providers(load_settings())
    assert (groq.name, groq.model, groq.base_url) == (
        "groq",
        "llama-3.1-8b-instant",
        "https://api.groq.com/openai/v1",
    )


async def test_circuit_opens_after_repeated_failures_and_the_provider_is_skipped(
    two_providers: dict[str, str],
    first: FakeLLMServer,
    second: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LLM_BREAKER_THRESHOLD consecutive failures open the first provider's circuit; the next
    post goes straight to the second, and /health says circuit_open."""
    monkeypatch.setenv("LLM_BREAKER_THRESHOLD", "2")
    built = build_analyzers(load_settings(), Metrics(), None)
    first.config.rate_5xx = 1.0
    try:
        await built.analyzers[0].analyze(BULLISH, ["NVDA"])  # two attempts, two failures
        calls_before = first.stats.calls
        analysis = await built.analyzers[0].analyze(BULLISH, ["AMD"])
        chain = built.chain
        assert chain is not None
        health = slot_health(chain.slots[0], chain, time.monotonic())
    finally:
        await built.aclose()
    assert first.stats.calls == calls_before == 2
    assert analysis.calls[0].provider == "custom"
    assert any("circuit open" in error for error in analysis.calls[0].errors)
    assert health["state"] == "circuit_open"


async def test_daily_budget_and_own_rate_limit_send_calls_elsewhere(
    two_providers: dict[str, str],
    first: FakeLLMServer,
    second: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spent daily token budget takes the provider out of rotation; so does an RPM limit
    whose wait exceeds LLM_MAX_WAIT_S. Tokens and cost show per provider in /health."""
    monkeypatch.setenv("OPENAI_DAILY_TOKENS", "10")
    built = build_analyzers(load_settings(), Metrics(), None)
    try:
        spent = await built.analyzers[0].analyze(BULLISH, ["NVDA"])
        after = await built.analyzers[0].analyze(BULLISH, ["AMD"])
        chain = built.chain
        assert chain is not None
        health = slot_health(chain.slots[0], chain, time.monotonic())
    finally:
        await built.aclose()
    assert (spent.calls[0].provider, after.calls[0].provider) == ("openai", "custom")
    assert health["state"] == "budget_exhausted"
    assert health["tokens"] == {
        "input": spent.calls[0].tokens_in,
        "output": spent.calls[0].tokens_out,
        "cached": spent.calls[0].tokens_cached,
    }
    assert health["cost_usd"] == round(spent.calls[0].cost_usd, 6)

    monkeypatch.delenv("OPENAI_DAILY_TOKENS")
    monkeypatch.setenv("OPENAI_RPM", "1")
    built = build_analyzers(load_settings(), Metrics(), None)
    try:
        one = await built.analyzers[0].analyze(BULLISH, ["NVDA"])
        started = time.monotonic()
        two = await built.analyzers[0].analyze(BULLISH, ["AMD"])
    finally:
        await built.aclose()
    assert (one.calls[0].provider, two.calls[0].provider) == ("openai", "custom")
    assert time.monotonic() - started < 2  # did not sit out the 60 s window
    assert any("own rate limit" in error for error in two.calls[0].errors)


async def test_a_call_cancelled_in_flight_leaves_no_estimate_unsettled(
    first: FakeLLMServer, stack: AnalyzerStack
) -> None:
    """A call cancelled while the provider answers (a shutdown) keeps its estimate in the
    window, settled: nothing is left waiting for a usage report that never comes."""
    first.config.latency_ms = 2_000
    assert stack.chain is not None
    slot = stack.chain.slots[0]
    messages = [{"role": "user", "content": "Tickers: NVDA\n<post>$NVDA calls</post>"}]
    call = asyncio.create_task(stack.chain.complete(messages, lambda _config: None, 500))
    for _ in range(500):  # the fake runs in another thread: poll its counter
        if first.stats.calls:
            break
        await asyncio.sleep(0.01)
    assert slot.limiter.unsettled == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert slot.limiter.unsettled == 0
