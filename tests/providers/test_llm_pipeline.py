"""The worker with LLM providers end to end: through ``signalsmith run --until-idle`` against two
faulty fake providers, and the dead-lettering of posts that can never be analyzed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from signalsmith.analyze.fake import FunctionAnalyzer
from signalsmith.domain import Opinion, Post
from signalsmith.errors import TransientError
from signalsmith.fakellm import FakeConfig, FakeLLMServer
from signalsmith.lifecycle import build_posts
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import load_settings
from tests.contracts import v1

pytestmark = [pytest.mark.redis, pytest.mark.slow]
TICKERS = ["NVDA", "AMD", "TSLA", "AAPL", "MSFT", "BTC", "ETH", "PLTR"]
MOODS = [
    "loading up on calls, this beat estimates and guidance was raised",
    "buying puts, they missed estimates and cut the outlook",
    "holding for now, could go either way after earnings",
]


@pytest.fixture
def flaky_first() -> Iterator[FakeLLMServer]:
    """Answers 429 (Retry-After 0.2 s) to 30% of calls."""
    config = FakeConfig(seed=11, latency_ms=20, rate_429=0.3, retry_after_s=0.2)
    with FakeLLMServer(config) as server:
        yield server


@pytest.fixture
def slow_second() -> Iterator[FakeLLMServer]:
    """Sometimes (10%) hangs past the client's timeout."""
    config = FakeConfig(seed=12, latency_ms=20, rate_timeout=0.1, timeout_s=3)
    with FakeLLMServer(config) as server:
        yield server


def _posts(path: Path, count: int) -> list[list[str]]:
    """``count`` posts naming one or two tickers each; returns each post's tickers."""
    tickers: list[list[str]] = []
    with path.open("w") as handle:
        for i in range(count):
            named = [TICKERS[i % len(TICKERS)]]
            if i % 3 == 0:
                named.append(TICKERS[(i + 3) % len(TICKERS)])
            text = f"Post {i}: " + " and ".join(f"${t}" for t in named) + f", {MOODS[i % 3]}"
            handle.write(json.dumps({"id": f"p{i}", "text": text}) + "\n")
            tickers.append(named)
    return tickers


def _env(stream_env: dict[str, str], **extra: str) -> dict[str, str]:
    """A worker's environment: this test's streams, every decision published, no reply cache."""
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_ADDR")}
    return {**base, **stream_env, "PUBLISH": "all", "LLM_CACHE": "off", **extra}


def test_thousand_posts_through_two_faulty_providers(
    stream_env: dict[str, str],
    tmp_path: Path,
    flaky_first: FakeLLMServer,
    slow_second: FakeLLMServer,
) -> None:
    """1,000 posts, the first provider answering 429 to 30% of calls, the second sometimes
    timing out: every (post, ticker) gets exactly one decision, nothing is lost or pending, and
    each envelope records its status, provider and parse method."""
    posts = tmp_path / "posts.jsonl"
    expected = _posts(posts, 1000)
    env = _env(
        stream_env,
        LLM_PROVIDERS="openai,custom",
        OPENAI_BASE_URL=flaky_first.base_url,
        OPENAI_API_KEY="sk-first",
        CUSTOM_BASE_URL=slow_second.base_url,
        CUSTOM_API_KEY="sk-second",
        CUSTOM_MODEL="fake-1",
        CUSTOM_TIMEOUT="1",
        LLM_MAX_WAIT_S="1",
        LLM_ATTEMPTS="2",
        CLAIM_IDLE_MS="1500",
        MAX_IN_FLIGHT="64",
    )
    cli = [sys.executable, "-m", "signalsmith"]
    replayed = subprocess.run(
        [*cli, "replay", str(posts)], env=env, capture_output=True, text=True, check=False
    )
    assert replayed.returncode == 0, replayed.stderr
    ran = subprocess.run(
        [*cli, "run", "--until-idle", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]

    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        assert client.xpending(stream_env["STREAM"], stream_env["GROUP"])["pending"] == 0
        ids = {f[b"id"].decode(): eid.decode() for eid, f in client.xrange(stream_env["STREAM"])}
        rows = client.xrange(stream_env["SIGNAL_STREAM"])
    finally:
        client.close()
    published = [p for _id, f in rows if v1.is_post(p := json.loads(f[b"data"]))]
    assert all(v1.decode(fields[b"data"]) is not None for _id, fields in rows)
    seen = Counter(
        (p["decision"]["source"]["entry_id"], p["decision"]["target"]["ticker"]) for p in published
    )
    want = Counter((ids[f"p{i}"], t) for i, named in enumerate(expected) for t in named)
    assert seen == want  # exactly one decision per (post, ticker): none lost, none twice

    statuses = Counter(p["decision"]["status"] for p in published)
    errors = [
        p["decision"]["synthesis"]["reasoning"]
        for p in published
        if p["decision"]["status"] == "error"
    ]
    assert set(statuses) <= {"ok", "degraded"}, errors[:3]
    methods = Counter(c["parse_method"] for p in published for c in p["meta"]["llm_calls"])
    providers = Counter(c["provider"] for p in published for c in p["meta"]["llm_calls"])
    assert methods["json"] > 0
    assert providers["openai"] > 0
    assert providers["custom"] > 0
    assert flaky_first.stats.outcomes["429"] > 0
    assert slow_second.stats.outcomes["timeout"] > 0


@pytest.fixture
def steady() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(FakeConfig(seed=13, latency_ms=50)) as server:
        yield server


def test_sigterm_with_llm_calls_in_flight_leaves_nothing_behind(
    stream_env: dict[str, str], tmp_path: Path, steady: FakeLLMServer
) -> None:
    """SIGTERM while LLM calls are in flight and entries are read ahead: the worker finishes the
    calls and the entries read ahead within DRAIN_TIMEOUT, exits 0, and leaves nothing pending;
    a second worker then decides the rest, each (post, ticker) exactly once."""
    posts = tmp_path / "posts.jsonl"
    expected = _posts(posts, 600)
    env = _env(
        stream_env,
        LLM_PROVIDERS="openai",
        OPENAI_BASE_URL=steady.base_url,
        OPENAI_API_KEY="sk-steady",
        MAX_IN_FLIGHT="32",
    )
    cli = [sys.executable, "-m", "signalsmith"]
    assert subprocess.run([*cli, "replay", str(posts)], env=env, check=False).returncode == 0
    worker = subprocess.Popen([*cli, "run"], env=env, stderr=subprocess.PIPE, text=True)
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        deadline = time.monotonic() + 30
        while client.xlen(stream_env["SIGNAL_STREAM"]) < 100:  # mid-stream, calls in flight
            assert time.monotonic() < deadline, "the worker never got going"
            time.sleep(0.01)
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=15)
        assert worker.returncode == 0, err[-2000:]
        assert client.xpending(stream_env["STREAM"], stream_env["GROUP"])["pending"] == 0
        assert client.xlen(stream_env["SIGNAL_STREAM"]) < 600, "SIGTERM came too late to test"
        rest = subprocess.run(
            [*cli, "run", "--until-idle", "1"],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert rest.returncode == 0, rest.stderr[-2000:]
        ids = {f[b"id"].decode(): eid.decode() for eid, f in client.xrange(stream_env["STREAM"])}
        rows = client.xrange(stream_env["SIGNAL_STREAM"])
    finally:
        worker.kill()
        client.close()
    published = [p for _id, f in rows if v1.is_post(p := json.loads(f[b"data"]))]
    seen = Counter(
        (p["decision"]["source"]["entry_id"], p["decision"]["target"]["ticker"]) for p in published
    )
    assert seen == Counter((ids[f"p{i}"], t) for i, named in enumerate(expected) for t in named)


async def test_a_post_that_always_fails_is_dead_lettered_after_max_deliveries(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A post whose analysis always fails transiently is redelivered (reclaimed after
    CLAIM_IDLE_MS) until MAX_DELIVERIES, then dead-lettered with its last error; the other
    posts flow meanwhile."""
    env = {**stream_env, "CLAIM_IDLE_MS": "100", "MAX_DELIVERIES": "3", "PUBLISH": "all"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()

    def behaviour(post: Post, ticker: str) -> Opinion:
        if "cursed" in post.text:
            raise TransientError("provider keeps failing")
        from signalsmith.domain import Verdict

        return Opinion(Verdict.BUY, 0.8, 0.6, ("ok",))

    worker = build_posts(settings, redis, Metrics(), [FunctionAnalyzer(behaviour)])
    await redis.xadd(settings.stream, {"text": "$AMD cursed post"})
    for i in range(5):
        await redis.xadd(settings.stream, {"text": f"$AMD fine post {i}"})
    stats = await asyncio.wait_for(worker.run(asyncio.Event(), until_idle=0.5), timeout=60)
    assert stats.dead_lettered == 1
    assert stats.retried == 3
    assert await redis.xlen(settings.signal_stream) == 5
    ((_id, dead),) = await redis.xrange(settings.dead_letter_stream)
    assert dead[b"reason"] == b"max_deliveries"
    assert b"provider keeps failing" in dead[b"detail"]
    assert dead[b"orig.text"] == b"$AMD cursed post"
    assert (await redis.xpending(settings.stream, settings.group))["pending"] == 0
