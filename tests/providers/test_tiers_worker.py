"""The cost tiers end to end through the real worker, a real Redis and the fake LLM over HTTP:
reposts of one story cost one call, chatter costs none, and with LLM_POLICY=uncertain confident
posts are settled offline, while every post still gets its decisions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from signalsmith.domain import Post
from signalsmith.engine.stats import EngineStats
from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.lifecycle import build_analyzers, build_posts
from signalsmith.observe.metrics import Metrics
from signalsmith.oneshot import WHOLE_TEXT, OneShot
from signalsmith.settings import Settings, load_settings

pytestmark = [pytest.mark.redis, pytest.mark.slow]
STORY = (
    "Loading up on $NVDA calls before earnings. Grabbed 10x Dec 20 160c this morning. Data "
    "center numbers are going to be stupid again and guidance will shut the bears up."
)
REPOSTS = [
    STORY,
    f"RT @wsb_daily: {STORY}",
    f"{STORY} https://t.co/Ab12Cd",
    f"{STORY}\n\nEDIT: bought 5 more contracts at the close.",
    STORY.replace("Loading up", "LOADING UP").replace(".", "!!"),
    f"> {STORY}\n\nthis 👆",
]


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    """Answers after 200 ms, so copies read in one batch are in flight together."""
    with FakeLLMServer(FakeConfig(seed=3, latency_ms=200)) as server:
        yield server


def _settings(
    stream_env: dict[str, str],
    fake: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    **extra: str,
) -> Settings:
    env = {
        **stream_env,
        "PUBLISH": "all",
        "LLM_PROVIDERS": "openai",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-tiers",
        "LLM_CACHE": "readwrite",
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


async def _run(settings: Settings, redis: Redis, texts: list[str]) -> EngineStats:
    """One worker with the configured LLM stack over ``texts`` until idle."""
    for text in texts:
        await redis.xadd(settings.stream, {"text": text})
    metrics = Metrics()
    stack = build_analyzers(settings, metrics, redis)
    worker = build_posts(settings, redis, metrics, stack.analyzers)
    try:
        return await asyncio.wait_for(worker.run(asyncio.Event(), until_idle=0.3), timeout=60)
    finally:
        await stack.aclose()


async def _published(redis: Redis, stream: str) -> list[dict[str, Any]]:
    return [json.loads(fields[b"data"]) for _id, fields in await redis.xrange(stream)]


async def test_reposts_of_one_story_cost_one_call_and_each_gets_its_decision(
    redis: Redis, stream_env: dict[str, str], fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six copies (retweet, link, comment, shouting, quote) read together: one LLM call;
    every copy still gets its own decision, with the LLM's vote marked as reused."""
    settings = _settings(stream_env, fake, monkeypatch, LLM_POLICY="always")
    stats = await _run(settings, redis, REPOSTS)
    assert stats.acknowledged == len(REPOSTS)
    assert fake.stats.calls == 1
    published = await _published(redis, settings.signal_stream)
    assert len(published) == len(REPOSTS)
    calls = [c for p in published for c in p["meta"]["llm_calls"]]
    assert len(calls) == len(REPOSTS)
    assert sum(not c["cached"] for c in calls) == 1
    assert {p["decision"]["target"]["ticker"] for p in published} == {"NVDA"}
    assert {p["decision"]["status"] for p in published} == {"ok"}


async def test_a_repost_in_another_worker_reuses_the_answer_through_redis(
    redis: Redis, stream_env: dict[str, str], fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second worker (its own process state) meets a near copy later: the shared story index
    and reply cache in Redis answer it, with no new call."""
    settings = _settings(stream_env, fake, monkeypatch, LLM_POLICY="always")
    await _run(settings, redis, [STORY])
    await _run(settings, redis, [f"{STORY}\n\nEDIT: typo"])
    assert fake.stats.calls == 1
    assert len(await _published(redis, settings.signal_stream)) == 2


async def test_dedup_disabled_asks_again_for_a_near_copy(
    redis: Redis, stream_env: dict[str, str], fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEDUP_ENABLED=false: only the exact prompt is reused, so a copy with a comment is asked."""
    settings = _settings(stream_env, fake, monkeypatch, LLM_POLICY="always", DEDUP_ENABLED="false")
    await _run(settings, redis, [STORY, f"{STORY}\n\nEDIT: typo"])
    assert fake.stats.calls == 2


async def test_chatter_never_reaches_the_llm(
    redis: Redis, stream_env: dict[str, str], fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A post with no ticker is acknowledged by the worker without analysis; as a text analyzed
    on its own (``analyze``/``eval``) it is HOLD, status ok, saying why, with no LLM call."""
    settings = _settings(stream_env, fake, monkeypatch, LLM_POLICY="always")
    stats = await _run(settings, redis, ["what a nice weekend at the lake, finally some sun"])
    assert stats.acknowledged == 1
    assert await redis.xlen(settings.signal_stream) == 0
    stack = build_analyzers(settings, Metrics(), redis)
    try:
        outcome = await OneShot(stack.analyzers).outcome(Post(id="c", body="what a nice weekend"))
    finally:
        await stack.aclose()
    decision = outcome.decisions[WHOLE_TEXT]
    assert (decision.verdict.value, decision.status.value) == ("HOLD", "ok")
    assert "no market vocabulary" in decision.reasoning
    assert outcome.calls == ()
    assert fake.stats.calls == 0


async def test_uncertain_settles_confident_posts_offline(
    redis: Redis, stream_env: dict[str, str], fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLM_POLICY=uncertain: clear posts make no call; the hedged post with cues both ways does.
    Every post is published with its decision either way."""
    settings = _settings(stream_env, fake, monkeypatch, LLM_POLICY="uncertain")
    confident = [
        "Sold all my $TSLA this morning. Deliveries missed badly and margins keep shrinking.",
        "Loading up on $AMD calls, they beat estimates and raised guidance.",
    ]
    contested = "Not sure about $MSFT, great cloud numbers but the capex is ugly"
    stats = await _run(settings, redis, [*confident, contested])
    assert stats.acknowledged == 3
    assert fake.stats.calls == 1
    published = await _published(redis, settings.signal_stream)
    by_ticker = {p["decision"]["target"]["ticker"]: p for p in published}
    assert set(by_ticker) == {"TSLA", "AMD", "MSFT"}
    assert by_ticker["TSLA"]["meta"]["llm_calls"] == []
    assert by_ticker["AMD"]["meta"]["llm_calls"] == []
    assert len(by_ticker["MSFT"]["meta"]["llm_calls"]) == 1
