"""What fallback and rate limiting cost: per-post LLM latency over the fake provider's own.

    python bench/bench_llm.py [--posts N] [--latency-ms L] [--redis-url URL]

Runs one worker (offline lexicon + LLM, LLM_POLICY=always, MAX_IN_FLIGHT=64 and 64 per
provider, LLM_MAX_WAIT_S=1) over N posts per scenario against fake OpenAI-compatible servers
on loopback, each answering after L ms:
  healthy    one provider, no faults
  wait       first provider answers 429 with Retry-After 0.2 s (within the bound: wait, retry)
             to 30% of calls; second healthy
  fallback   first answers 429 with Retry-After 5 s (beyond the bound: next provider at once) to
             30% of calls; the second times out (client timeout 1 s) on 10% of calls
and prints one JSON object per scenario: posts/s, and p50/p99 of each post's LLM time minus L
(the overhead of retries, waits and fallbacks, plus the client and HTTP themselves).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid

from redis.asyncio import Redis

from fakeproc import FakeProcess
from signalsmith.lifecycle import build_analyzers, build_posts
from signalsmith.observe.logging import configure_logging
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import load_settings

SCENARIOS: dict[str, tuple[dict[str, float], dict[str, float] | None]] = {
    "healthy": ({}, None),
    "wait": ({"rate_429": 0.3, "retry_after_s": 0.2}, {}),
    "fallback": ({"rate_429": 0.3, "retry_after_s": 5.0}, {"rate_timeout": 0.1, "timeout_s": 3}),
}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _scenario(name: str, posts: int, latency_ms: float, url: str) -> dict[str, object]:
    first_faults, second_faults = SCENARIOS[name]
    first = FakeProcess(1, latency_ms, first_faults)
    second = FakeProcess(2, latency_ms, second_faults or {})
    prefix = f"bench-llm-{uuid.uuid4().hex[:8]}"
    env = {
        "REDIS_URL": url,
        "STREAM": f"{prefix}:in",
        "GROUP": "g",
        "CONSUMER": "c",
        "SIGNAL_STREAM": f"{prefix}:out",
        "DECISION_HASH_PREFIX": f"{prefix}:d",
        "LLM_PROVIDERS": "openai" if second_faults is None else "openai,custom",
        "OPENAI_BASE_URL": first.start(),
        "OPENAI_API_KEY": "bench",
        "CUSTOM_BASE_URL": second.start(),
        "CUSTOM_API_KEY": "bench",
        "CUSTOM_MODEL": "fake-1",
        "CUSTOM_TIMEOUT": "1",
        "LLM_MAX_WAIT_S": "1",
        "LLM_ATTEMPTS": "2",
        "LLM_CACHE": "off",
        "MAX_IN_FLIGHT": "64",
        "OPENAI_MAX_IN_FLIGHT": "64",
        "CUSTOM_MAX_IN_FLIGHT": "64",
        "CLAIM_IDLE_MS": "1000",
        "PUBLISH": "all",
    }
    os.environ.update(env)
    settings = load_settings()
    redis = Redis.from_url(url)
    metrics = Metrics()
    stack = build_analyzers(settings, metrics, redis)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(posts):
                pipe.xadd(settings.stream, {"text": f"Post {i}: $NVDA calls, beat estimates"})
            await pipe.execute()
        worker = build_posts(settings, redis, metrics, stack.analyzers)
        started = time.perf_counter()
        stats = await worker.run(asyncio.Event(), until_idle=0.3)
        elapsed = time.perf_counter() - started - 0.3
        rows = await redis.xrange(settings.signal_stream)
        published = [json.loads(fields[b"data"]) for _id, fields in rows]
        overhead = [
            call["latency_ms"] - latency_ms
            for envelope in published
            if envelope["decision"]["kind"] == "post"  # not the mention spikes
            for call in envelope["meta"]["llm_calls"]
        ]
    finally:
        await stack.aclose()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    result = {
        "scenario": name,
        "posts": posts,
        "fake_latency_ms": latency_ms,
        "acknowledged": stats.acknowledged,
        "retried_posts": stats.retried,
        "posts_per_s": round(stats.acknowledged / elapsed, 1),
        "overhead_ms_p50": round(_percentile(overhead, 0.50), 1),
        "overhead_ms_p99": round(_percentile(overhead, 0.99), 1),
        "overhead_ms_mean": round(statistics.fmean(overhead), 1),
        "first_provider": first.outcomes,
        "second_provider": second.outcomes,
    }
    first.stop()
    second.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    configure_logging("ERROR", "console")
    for name in SCENARIOS:
        result = asyncio.run(_scenario(name, args.posts, args.latency_ms, args.redis_url))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
