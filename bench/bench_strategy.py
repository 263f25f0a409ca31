"""Strategy signals per second through the strategy pipeline, with no provider and with a model.

    python bench/bench_strategy.py [--signals N] [--llm-signals N] [--latency-ms L]
                                   [--in-flight K] [--redis-url URL]

Signals as a trading system sends them: seed 002's ten indicators with values drawn around a
price, a third of them with 20 recent bars, sides and symbols mixed, all fresh (none expires).
One strategy engine, in this process and with the memory settings `signalsmith run` applies
(``settle_memory``), handles exactly those signals and returns once the last is committed:
  offline   no provider: parse -> rules' rating -> envelope -> commit (the handler runs inline)
  llm       a fake OpenAI-compatible provider in its own process answering each rating after
            L ms; STRATEGY_MAX_IN_FLIGHT=K. The ideal is K / L signals/s.
Two rates, as in bench_market.py: ``signals_per_s`` is the steady state timed by Redis (answers
K+1 to N-K), ``whole_run_per_s`` all N from the engine's start to its return.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from fakeproc import FakeProcess
from outputs import statuses, steady_rate
from signalsmith.lifecycle import AnalyzerStack, build_strategy, strategy_rater
from signalsmith.observe.logging import configure_logging
from signalsmith.observe.metrics import Metrics
from signalsmith.service import settle_memory
from signalsmith.settings import load_settings

SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "BTC-USD", "ETH-USD", "SPY")


def _signal(rng: random.Random, number: int, now: datetime) -> dict[str, object]:
    price = rng.uniform(20, 900)
    sma_20 = price * rng.uniform(0.95, 1.05)
    atr = price * rng.uniform(0.005, 0.03)
    signal: dict[str, object] = {
        "signal_id": f"s{number}",
        "symbol": rng.choice(SYMBOLS),
        "side": rng.choice(("buy", "sell", "long", "short")),
        "price": round(price, 2),
        "timestamp": (now - timedelta(seconds=rng.uniform(0, 30))).isoformat(),
        "strategy": rng.choice(("sma_cross", "breakout", "mean_reversion")),
        "indicators": {
            "rsi": round(rng.uniform(15, 85), 2),
            "atr": round(atr, 4),
            "sma_20": round(sma_20, 2),
            "sma_50": round(sma_20 * rng.uniform(0.95, 1.05), 2),
            "volume_ratio": round(rng.uniform(0.3, 2.5), 2),
            "bb_upper": round(sma_20 + 2 * atr, 2),
            "bb_lower": round(sma_20 - 2 * atr, 2),
            "bb_middle": round(sma_20, 2),
            "stochastic_k": round(rng.uniform(5, 95), 2),
            "stochastic_d": round(rng.uniform(5, 95), 2),
        },
    }
    if number % 3 == 0:
        signal["bars"] = [
            {
                "time": (now - timedelta(minutes=20 - n)).isoformat(),
                "open": price,
                "high": price * 1.002,
                "low": price * 0.998,
                "close": price * rng.uniform(0.999, 1.001),
                "volume": rng.uniform(1e3, 1e5),
            }
            for n in range(20)
        ]
    return signal


async def _scenario(name: str, signals: int, url: str, env: dict[str, str]) -> dict[str, object]:
    prefix = f"bench-strategy-{uuid.uuid4().hex[:8]}"
    os.environ.update(
        {
            "REDIS_URL": url,
            "STRATEGY_STREAM": f"{prefix}:signals",
            "STRATEGY_GROUP": "g",
            "CONSUMER": "c",
            "ENHANCED_STREAM": f"{prefix}:enhanced",
            "DECISION_STREAM": f"{prefix}:decisions",
            "LLM_CACHE": "off",
            **env,
        }
    )
    settings = load_settings()
    redis = Redis.from_url(url)
    metrics = Metrics()
    rater, stack = strategy_rater(settings, metrics, redis, AnalyzerStack((), None, None))
    try:
        await _add_signals(redis, settings.strategy_stream, signals)
        engine = build_strategy(settings, redis, metrics, rater)
        settle_memory()
        started = time.perf_counter()
        stats = await engine.run(asyncio.Event(), max_messages=signals)
        elapsed = time.perf_counter() - started
        entries = await redis.xrange(settings.enhanced_stream)
    finally:
        await stack.aclose()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    return {
        "scenario": name,
        "signals": signals,
        "acknowledged": stats.acknowledged,
        "dead_lettered": stats.dead_lettered,
        "statuses": statuses(entries),
        "signals_per_s": steady_rate(entries, settings.strategy_max_in_flight),
        "whole_run_per_s": round(stats.acknowledged / elapsed, 1),
    }


async def _add_signals(redis: Redis, stream: str, signals: int) -> None:
    rng, now = random.Random(11), datetime.now(UTC)
    for first in range(0, signals, 200):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(first, min(signals, first + 200)):
                pipe.xadd(stream, {"data": json.dumps(_signal(rng, n, now))})
            await pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--llm-signals", type=int, default=1280)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    configure_logging("ERROR", "console")
    offline = asyncio.run(_scenario("offline", args.signals, args.redis_url, {}))
    print(json.dumps(offline), flush=True)
    fake = FakeProcess(1, args.latency_ms, {})
    try:
        env = {
            "LLM_PROVIDERS": "custom",
            "CUSTOM_BASE_URL": fake.start(),
            "CUSTOM_API_KEY": "bench",
            "CUSTOM_MODEL": "fake-1",
            "CUSTOM_MAX_IN_FLIGHT": str(args.in_flight),
            "STRATEGY_MAX_IN_FLIGHT": str(args.in_flight),
        }
        llm = asyncio.run(_scenario("llm", args.llm_signals, args.redis_url, env))
    finally:
        fake.stop()
    ideal = args.in_flight / (args.latency_ms / 1000)
    steady = llm["signals_per_s"]
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
