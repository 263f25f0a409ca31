"""The market insight asked of a model through the real provider chain (as start-up wiring
builds it), the real openai client and real HTTP, against the fake OpenAI-compatible server on
loopback: a good reply is accepted at once, a bad one is asked for again with the reasons, two
bad ones give a degraded insight that keeps both texts, and providers that all fail raise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from redis.asyncio import Redis

from signalsmith.analyze.llm.cache import ReplyCache
from signalsmith.analyze.llm.chain import LLMChain
from signalsmith.analyze.llm.reuse import Reuse
from signalsmith.errors import ProvidersFailed, TransientError
from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.lifecycle import build_analyzers
from signalsmith.market.candles import CandleSeries
from signalsmith.market.indicators import compute_indicators, format_number
from signalsmith.market.llm_insight import FAILED_TWICE, NOT_CACHED, LLMInsight, ask_insight
from signalsmith.market.prompt import DEFAULT_PROMPT, build_prompt, prompt_values
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import load_settings

pytestmark = pytest.mark.slow
PRODUCT = "BTC-USD"
MAX_TOKENS = 300
ATTEMPTS = 2
MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _indicators() -> tuple[str, dict[str, float]]:
    steps = np.arange(60, dtype=np.float64)
    close = 50_000 + 37.3 * steps - np.where(steps % 3 == 0, 61.7, 0.0)
    open_ = np.concatenate([close[:1] - 5, close[:-1]])
    high, low = np.maximum(open_, close) + 12, np.minimum(open_, close) - 12
    series = CandleSeries(
        MIDNIGHT + 300 * steps, open_, high, low, close, 5 + steps % 7, granularity_s=300
    )
    found = compute_indicators(series)
    return build_prompt(DEFAULT_PROMPT, PRODUCT, found), prompt_values(found)


PROMPT, VALUES = _indicators()
GOOD = (
    f"{PRODUCT} keeps climbing: the last close of {format_number(VALUES['last_close'])} sits "
    f"above both moving averages and the RSI of {format_number(VALUES['rsi'])} is overbought. "
    f"Rising candles carried {format_number(VALUES['buy_share_pct'])}% of the volume."
)
INVENTED = f"{PRODUCT} is heading for 75,000 on strong buying."
INTRODUCED = f"Here is my analysis: {PRODUCT} is rising."


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=11)) as server:
        yield server


@pytest.fixture
async def chain(fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LLMChain]:
    """The chain the posts pipeline uses, pointed at the fake, priced so cost is visible."""
    env = {
        "LLM_PROVIDERS": "custom",
        "CUSTOM_BASE_URL": fake.base_url,
        "CUSTOM_API_KEY": "sk-market-test",
        "CUSTOM_MODEL": "fake-1",
        "CUSTOM_TIMEOUT": "2",
        "CUSTOM_PRICE_IN": "1.5",
        "CUSTOM_PRICE_OUT": "3",
        "LLM_ATTEMPTS": str(ATTEMPTS),
        "LLM_MAX_WAIT_S": "0.2",
        "LLM_CACHE": "off",
        "LLM_MAX_OUTPUT_TOKENS": str(MAX_TOKENS),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stack = build_analyzers(load_settings(), Metrics(), None)
    assert stack.chain is not None
    try:
        yield stack.chain
    finally:
        await stack.aclose()


async def _ask(
    chain: LLMChain, reuse: Reuse | None = None, metrics: Metrics | None = None
) -> LLMInsight:
    return await ask_insight(
        chain,
        PROMPT,
        PRODUCT,
        VALUES,
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        reuse=reuse,
        metrics=metrics,
    )


def _messages(fake: FakeLLMServer, call: int) -> list[dict[str, str]]:
    received = fake.received[call]
    assert isinstance(received, list)
    return received


async def test_a_good_reply_is_accepted_after_one_call(
    fake: FakeLLMServer, chain: LLMChain
) -> None:
    fake.config.replies = [GOOD]
    metrics = Metrics()
    insight = await _ask(chain, metrics=metrics)
    assert (insight.status, insight.text, insight.reason) == ("ok", GOOD, "")
    assert (insight.calls, insight.reused, insight.rejected) == (1, 0, ())
    assert insight.models == ("custom/fake-1",)
    assert insight.tokens_in > 0
    assert insight.tokens_out > 0
    expected = (insight.tokens_in * 1.5 + insight.tokens_out * 3) / 1_000_000
    assert insight.cost_usd == pytest.approx(expected)
    assert _messages(fake, 0) == [{"role": "user", "content": PROMPT}]
    assert fake.stats.response_formats == {"none": 1}  # prose: no structured output asked
    exposed = metrics.render().decode()
    assert f'direction="input",model="fake-1",provider="custom"}} {insight.tokens_in}' in exposed


async def test_an_invented_number_is_asked_for_again_with_the_reason(
    fake: FakeLLMServer, chain: LLMChain
) -> None:
    fake.config.replies = [INVENTED, GOOD]
    insight = await _ask(chain)
    assert (insight.status, insight.text, insight.calls) == ("ok", GOOD, 2)
    reason = "it quotes 75,000, which is none of the numbers given"
    assert [(r.text, r.problems) for r in insight.rejected] == [(INVENTED, (reason,))]
    second = _messages(fake, 1)
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[0]["content"] == PROMPT
    assert second[1]["content"] == INVENTED
    assert f"- {reason}" in second[2]["content"]


async def test_two_bad_replies_degrade_and_keep_both_texts(
    fake: FakeLLMServer, chain: LLMChain
) -> None:
    fake.config.replies = [INVENTED, INTRODUCED]
    insight = await _ask(chain)
    assert (insight.status, insight.text, insight.reason) == ("degraded", None, FAILED_TWICE)
    assert insight.calls == fake.stats.calls == 2
    assert [r.text for r in insight.rejected] == [INVENTED, INTRODUCED]
    assert insight.rejected[1].problems == (
        'it opens with an introduction ("Here is"); start with the substance',
    )
    meta = insight.meta()
    assert meta["status"] == "degraded"
    assert meta["rejected"] == [
        {"text": r.text, "problems": list(r.problems)} for r in insight.rejected
    ]
    assert meta["models"] == ["custom/fake-1"]
    json.dumps(meta)  # goes into the envelope as it is


async def test_a_reasoning_block_is_not_part_of_the_insight(
    fake: FakeLLMServer, chain: LLMChain
) -> None:
    fake.config.replies = [f"<think>\nMaybe 99,999? No, quote the given ones.\n</think>\n{GOOD}"]
    insight = await _ask(chain)
    assert (insight.status, insight.text) == ("ok", GOOD)


async def test_when_every_provider_fails_the_error_propagates(
    fake: FakeLLMServer, chain: LLMChain
) -> None:
    """The request stays pending and is retried: no insight, not even a degraded one."""
    fake.config.status_override = 500
    with pytest.raises(ProvidersFailed) as caught:
        await _ask(chain)
    assert isinstance(caught.value, TransientError)
    assert fake.stats.calls == ATTEMPTS


async def test_an_identical_question_is_answered_from_the_reply_cache(
    fake: FakeLLMServer, chain: LLMChain
) -> None:
    """A redelivered request (the same candles, so the same prompt) does not pay twice."""
    fake.config.replies = [INVENTED, GOOD]
    reuse = Reuse(None, "readwrite")
    first = await _ask(chain, reuse)
    again = await _ask(chain, reuse)
    assert fake.stats.calls == 2  # the first request's two calls, nothing for the second
    assert (first.calls, first.reused) == (2, 0)
    assert (again.status, again.text, again.calls, again.reused) == ("ok", GOOD, 0, 2)
    assert (again.tokens_in, again.cost_usd) == (0, 0.0)
    assert [r.text for r in again.rejected] == [INVENTED]


@pytest.mark.redis
async def test_a_readonly_cache_miss_degrades_without_asking(
    fake: FakeLLMServer, chain: LLMChain, redis: Redis, prefix: str
) -> None:
    cache = ReplyCache(redis, prefix=f"{prefix}:llmcache", ttl_seconds=60, mode="readonly")
    insight = await _ask(chain, Reuse(cache, "readonly"))
    assert (insight.status, insight.text, insight.reason) == ("degraded", None, NOT_CACHED)
    assert (insight.calls, fake.stats.calls) == (0, 0)
