"""Each provider's output cap (<NAME>_MAX_OUTPUT_TOKENS), through the real openai client over
real HTTP against the fake provider refusing a larger max_tokens with 400 as real models do:
no request asks a provider for more, no batch's reply room passes the smallest cap, and a batch
a provider refuses anyway is asked again question by question without a cooldown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

from signalsmith.domain import Analysis, Post, Status
from signalsmith.errors import ProvidersFailed
from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.lifecycle import AnalyzerStack, build_analyzers, strategy_rater
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import load_settings
from signalsmith.strategy.llm_rating import REPLY_TOKENS, ModelAnswer, StrategyRater
from tests.providers.batching_env import batching_env, strategy_signal

pytestmark = pytest.mark.slow

CAP = 1_000  # what the fake model allows: three ratings' reply room (300 each), not four
Build = Callable[[dict[str, str]], Coroutine[Any, Any, AnalyzerStack]]


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(latency_ms=300, seed=3, max_output_tokens=CAP)) as server:
        yield server


@pytest.fixture
async def build(fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Build]:
    """The analyzers' stack on one provider, the fake: one call at a time, so questions that
    arrive while it answers wait and go together (as in test_llm_batching)."""
    built: list[AnalyzerStack] = []

    async def make(extra: dict[str, str]) -> AnalyzerStack:
        for name, value in batching_env(fake.base_url, LLM_ATTEMPTS="1", **extra).items():
            monkeypatch.setenv(name, value)
        stack = build_analyzers(load_settings(), Metrics(), None)
        built.append(stack)
        return stack

    yield make
    for stack in built:
        await stack.aclose()


def _rater(stack: AnalyzerStack) -> StrategyRater:
    rater, _ = strategy_rater(load_settings(), Metrics(), None, stack)
    assert rater is not None
    return rater


async def _rate_all(rater: StrategyRater, rsis: list[float]) -> list[ModelAnswer]:
    async def rate(index: int, rsi: float) -> ModelAnswer:
        await asyncio.sleep(0.02 * index)  # the first goes alone, the others wait behind it
        return await rater.rate(strategy_signal(index, rsi), [])

    return await asyncio.gather(*(rate(i, rsi) for i, rsi in enumerate(rsis)))


def _check_ratings(answers: list[ModelAnswer], rsis: list[float]) -> None:
    """The fake confirms a buy under RSI 70 (7) and rejects one past it (3): each signal's own."""
    for index, (answer, rsi) in enumerate(zip(answers, rsis, strict=True)):
        assert answer.rating is not None, answer.error
        assert answer.rating["reasoning"].startswith(f"SYM{index}:")
        assert answer.rating["rating"] == (7 if rsi < 70 else 3)


async def test_a_batch_of_ratings_is_split_so_its_reply_room_stays_under_the_providers_cap(
    fake: FakeLLMServer, build: Build
) -> None:
    """Six ratings wait (1,800 tokens of reply room together) for a provider whose model takes
    at most 1,000: they go as batches of three, and the model never refuses one."""
    assert 3 * REPLY_TOKENS <= CAP < 4 * REPLY_TOKENS
    stack = await build({"OPENAI_MAX_OUTPUT_TOKENS": str(CAP)})
    rsis = [40.0, 85.0, 55.0, 90.0, 20.0, 75.0, 60.0]
    answers = await _rate_all(_rater(stack), rsis)
    _check_ratings(answers, rsis)
    sizes = [answer.rating["batch_size"] for answer in answers if answer.rating]
    assert sizes[0] == 1
    assert sorted(sizes[1:]) == [3] * 6
    assert fake.stats.outcomes["max_tokens"] == 0
    assert fake.stats.calls == 3


async def test_a_batch_the_provider_refuses_is_asked_again_alone_without_a_cooldown(
    fake: FakeLLMServer, build: Build
) -> None:
    """The provider's cap is left at its default (8,192) but the model takes 1,000: the batch
    of five ratings (1,500) is refused with 400. Each rating is then asked alone and answered,
    saying so, and the provider is not put aside: the next question goes to it at once."""
    stack = await build({})
    rater = _rater(stack)
    rsis = [40.0, 85.0, 55.0, 90.0, 20.0, 75.0]
    answers = await _rate_all(rater, rsis)
    _check_ratings(answers, rsis)
    for answer in answers[1:]:
        assert answer.rating is not None
        assert answer.rating["batch_size"] == 1
        notes = [error for error in answer.tally.errors if "batch of 5 rejected" in error]
        assert len(notes) == 1, answer.tally.errors
        assert "max_tokens is too large" in notes[0]
        assert notes[0].endswith("asked again alone")
    assert fake.stats.outcomes["max_tokens"] == 1
    assert fake.stats.calls == 1 + 1 + 5
    chain = stack.chain
    assert chain is not None
    assert chain.unavailable(chain.slots[0]) == ""
    started = time.monotonic()
    later = await rater.rate(strategy_signal(9, 30.0), [])
    assert later.rating is not None, later.error
    assert later.tally.errors == []
    assert time.monotonic() - started < 2
    assert fake.stats.calls == 1 + 1 + 5 + 1


async def test_a_batch_that_fails_for_other_reasons_is_not_asked_again(
    fake: FakeLLMServer, build: Build
) -> None:
    """A provider down (503) fails the batch's questions with its error, as before: asking each
    again would only add to the load of a provider that is struggling."""
    stack = await build({})
    fake.config.status_override = 503
    answers = await _rate_all(_rater(stack), [40.0, 85.0, 55.0, 90.0, 20.0])
    for answer in answers:
        assert answer.rating is None
        assert answer.error is not None
        assert "server" in answer.error
        assert "rejected" not in answer.error
    assert fake.stats.calls == 2  # the first alone, the other four in one batch


async def test_a_batch_refused_for_a_bad_key_fails_without_asking_each_again(
    fake: FakeLLMServer, build: Build
) -> None:
    """A refusal that is the provider's (401, the key revoked while the first question was
    answered) is not the batch's: each question has that failure, none is asked again (a
    fallback provider would get them all), and the provider is put aside."""
    stack = await build({})
    analyzer = stack.analyzers[0]
    tickers = ["NVDA", "AMD", "TSLA", "AAPL"]
    posts = [Post(id=f"k{i}", title=f"Buying ${t} calls", body="") for i, t in enumerate(tickers)]

    async def revoke_the_key() -> None:
        for _ in range(1000):  # the fake runs in another thread: poll its counter
            if fake.stats.calls >= 1:
                await asyncio.sleep(0.1)  # the first call is past the fake's key check
                fake.config.status_override = 401
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the first call never reached the fake")

    outcomes = await asyncio.gather(
        *(analyzer.analyze(post, [ticker]) for post, ticker in zip(posts, tickers, strict=True)),
        revoke_the_key(),
        return_exceptions=True,
    )
    assert _llm_status(outcomes[0], tickers[0]) is Status.OK
    for outcome in outcomes[1:4]:
        assert isinstance(outcome, ProvidersFailed), outcome
        assert not outcome.batch_refused
        assert all("401" in reason for reason in outcome.reasons), outcome.reasons
        assert not any("asked again alone" in reason for reason in outcome.reasons)
    assert fake.stats.calls == 2  # the first alone and the batch: nothing asked again
    assert stack.chain is not None
    assert stack.chain.unavailable(stack.chain.slots[0]).startswith("failing")


def _llm_status(outcome: object, ticker: str) -> Status:
    assert isinstance(outcome, Analysis), outcome
    return next(v for v in outcome.votes[ticker] if v.analyzer == "llm").status


async def test_the_chain_never_asks_a_provider_for_more_than_its_cap(
    fake: FakeLLMServer, build: Build
) -> None:
    """LLM_MAX_OUTPUT_TOKENS (400) is more than OPENAI_MAX_OUTPUT_TOKENS (100) allows: the
    request asks for 100, which the model (capped at 100) takes."""
    fake.config.max_output_tokens = 100
    stack = await build({"OPENAI_MAX_OUTPUT_TOKENS": "100", "LLM_BATCH_SIZE": "1"})
    assert stack.chain is not None
    assert stack.chain.providers[0].max_output_tokens == 100
    assert stack.chain.max_tokens == 100  # what the rate-limit estimates reserve
    post = Post(id="p1", title="Loading up on $NVDA calls", body="Beat estimates")
    analysis = await stack.analyzers[0].analyze(post, ["NVDA"])
    vote = next(v for v in analysis.votes["NVDA"] if v.analyzer == "llm")
    assert vote.status is Status.OK, vote.error
    assert fake.stats.outcomes["max_tokens"] == 0
    assert fake.stats.outcomes["ok"] == 1
