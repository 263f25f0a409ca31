"""Market requests per second through the market pipeline, with no provider and with a model.

    python bench/bench_market.py [--requests N] [--llm-requests N] [--latency-ms L]
                                 [--in-flight K] [--redis-url URL]

Each request carries its own 300 one-minute candles (a random walk per request, so no two
prompts are alike and no answer is reused), as a market-data producer would send them. One
market engine, in this process and with the memory settings `signalsmith run` applies before
its engines start (``settle_memory``), handles exactly those requests and returns once the last
is committed:
  offline   no provider: candles -> indicators -> trend read -> insight -> commit
  llm       a fake OpenAI-compatible provider in its own process answering after L ms with a
            text that passes the check; MARKET_MAX_IN_FLIGHT=K. The ideal is K / L requests/s.
Two rates, with K = MARKET_MAX_IN_FLIGHT (64 offline):
  requests_per_s   steady state, timed by Redis (an insight's entry id is the millisecond its
                   commit wrote it): answers K+1 to N-K over the time from answer K to answer
                   N-K. The first K start together (opening K connections to the provider) and
                   the last K leave slots empty as they finish; a service does each once.
  whole_run_per_s  all N over the time from the engine's start to its return after the last
                   commit, ramp-up and drain included
Prints one JSON object per scenario; for llm, both rates as a share of the ideal too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import time
import uuid

import httpx
from redis.asyncio import Redis

from fakeproc import FakeProcess
from outputs import statuses, steady_rate
from signalsmith.lifecycle import (
    AnalyzerStack,
    build_candle_finder,
    build_market,
    market_writer,
)
from signalsmith.observe.logging import configure_logging
from signalsmith.observe.metrics import Metrics
from signalsmith.service import settle_memory
from signalsmith.settings import load_settings

CANDLES = 300
PRODUCT = "BTC-USD"
REPLY = f"{PRODUCT} holds its trend: buyers lead, price rides above its averages, momentum firm."


def _candles(rng: random.Random) -> list[list[float]]:
    end = int(time.time()) // 60 * 60 - 60
    price, rows = 60_000 * rng.uniform(0.5, 1.5), []
    for n in range(CANDLES):
        close = price * math.exp(rng.gauss(0, 0.001))
        high, low = max(price, close) * 1.0005, min(price, close) * 0.9995
        rows.append([end - (CANDLES - n) * 60, price, high, low, close, rng.uniform(1, 9)])
        price = close
    return rows


async def _scenario(name: str, requests: int, url: str, env: dict[str, str]) -> dict[str, object]:
    prefix = f"bench-market-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        {
            "REDIS_URL": url,
            "MARKET_STREAM": f"{prefix}:requests",
            "MARKET_GROUP": "g",
            "CONSUMER": "c",
            "INSIGHT_STREAM": f"{prefix}:insights",
            "DECISION_STREAM": f"{prefix}:decisions",
            "DECISION_HASH_PREFIX": f"{prefix}:d",
            "MARKET_EXCHANGE": "",
            "LLM_CACHE": "off",
            **env,
        }
    )
    settings = load_settings()
    redis = Redis.from_url(url)
    metrics = Metrics()
    model, stack = market_writer(settings, metrics, redis, AnalyzerStack((), None, None))
    finder = build_candle_finder(settings, None)
    try:
        await _add_requests(redis, settings.market_stream, requests)
        engine = build_market(settings, redis, metrics, finder, model)
        settle_memory()
        started = time.perf_counter()
        stats = await engine.run(asyncio.Event(), max_messages=requests)
        elapsed = time.perf_counter() - started
        entries = await redis.xrange(settings.insight_stream)
    finally:
        await finder.aclose()
        await stack.aclose()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    return {
        "scenario": name,
        "requests": requests,
        "acknowledged": stats.acknowledged,
        "dead_lettered": stats.dead_lettered,
        "statuses": statuses(entries),
        "requests_per_s": steady_rate(entries, settings.market_max_in_flight),
        "whole_run_per_s": round(stats.acknowledged / elapsed, 1),
    }


async def _add_requests(redis: Redis, stream: str, requests: int) -> None:
    rng = random.Random(5)
    for first in range(0, requests, 100):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(first, min(requests, first + 100)):
                fields = {"correlation_id": f"r{n}", "product_id": PRODUCT}
                pipe.xadd(stream, {**fields, "candles": json.dumps(_candles(rng))})
            await pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--llm-requests", type=int, default=1280)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    configure_logging("ERROR", "console")
    offline = asyncio.run(_scenario("offline", args.requests, args.redis_url, {}))
    print(json.dumps(offline), flush=True)
    fake = FakeProcess(1, args.latency_ms, {})
    try:
        replies = [REPLY] * (args.llm_requests + 64)
        httpx.post(f"{fake.admin}/config", json={"replies": replies}).raise_for_status()
        env = {
            "LLM_PROVIDERS": "custom",
            "CUSTOM_BASE_URL": fake.start(),
            "CUSTOM_API_KEY": "bench",
            "CUSTOM_MODEL": "fake-1",
            "CUSTOM_MAX_IN_FLIGHT": str(args.in_flight),
            "MARKET_MAX_IN_FLIGHT": str(args.in_flight),
        }
        llm = asyncio.run(_scenario("llm", args.llm_requests, args.redis_url, env))
    finally:
        fake.stop()
    ideal = args.in_flight / (args.latency_ms / 1000)
    steady = llm["requests_per_s"]
    llm |= {
        "latency_ms": args.latency_ms,
        "in_flight": args.in_flight,
        "ideal_per_s": round(ideal, 1),
        "share_of_ideal": round(steady / ideal, 3) if isinstance(steady, float) else None,
        "whole_run_share": round(float(str(llm["whole_run_per_s"])) / ideal, 3),
    }
    print(json.dumps(llm), flush=True)


if __name__ == "__main__":
    main()
