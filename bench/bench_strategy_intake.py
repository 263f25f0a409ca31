"""What submitting a strategy signal costs the trading system while the model is slow.

    python bench/bench_strategy_intake.py [--rate R] [--seconds S] [--warmup-s W]
                                          [--latency-ms L] [--redis-url URL]

A real ``signalsmith run --only strategy`` process (no store: the cost measured is the
intake's) rates signals through a fake provider in its own process answering after L ms
(2,000 by default), while this process submits R signals per second (500) for S seconds, open
loop (each at its scheduled time, whether or not earlier ones were answered):
  http    POST /api/strategy-signals, each on a pooled keep-alive connection
  helper  SignalSubmitter.submit: one XADD, from a thread pool
Prints, per way, the latency p50 / p99 / max in ms (from the scheduled time, so a queue in
front of the server counts), how many were accepted, and the rate achieved. The first W seconds
(1 by default) are the client's connections being opened and the server's first requests; their
figures are printed apart (``"phase": "warm-up"``), so that the steady state is what a trading
system holding its connections sees.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import aiohttp

from fakeproc import FakeProcess
from serving import start_service
from signalsmith.strategy.submit import SignalSubmitter

INDICATORS = {"rsi": 58.2, "atr": 2.1, "sma_20": 186.4, "sma_50": 181.9, "volume_ratio": 1.6}


def _signal(number: int) -> dict[str, object]:
    return {
        "signal_id": f"b{number}-{uuid.uuid4().hex[:6]}",
        "symbol": "AAPL",
        "side": "buy",
        "price": 189.5,
        "timestamp": datetime.now(UTC).isoformat(),
        "strategy": "bench",
        "indicators": INDICATORS,
    }


def _percentiles(latencies: list[float], sent: int, seconds: float) -> dict[str, object]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else None
    return {
        "accepted": len(ordered),
        "sent": sent,
        "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "max_ms": round(ordered[-1], 2) if ordered else None,
        "rate_per_s": round(len(ordered) / seconds, 1) if seconds > 0 else None,
    }


def _phases(
    way: str, timed: list[tuple[int, float]], total: int, rate: float, warmup_s: float
) -> list[dict[str, object]]:
    """The figures of the warm-up and of the steady state after it."""
    first = int(rate * warmup_s)
    warm = [latency for number, latency in timed if number < first]
    steady = [latency for number, latency in timed if number >= first]
    return [
        {"way": way, "phase": "warm-up", **_percentiles(warm, first, warmup_s)},
        {
            "way": way,
            "phase": "steady",
            **_percentiles(steady, total - first, total / rate - warmup_s),
        },
    ]


async def _http(url: str, rate: float, seconds: float, warmup_s: float) -> list[dict[str, object]]:
    """aiohttp, not httpx: on this 2-core machine the load generator shares the cores with the
    service, and aiohttp costs a fraction of httpx's CPU per request."""
    total = int(rate * (seconds + warmup_s))
    timed: list[tuple[int, float]] = []
    bodies = [json.dumps(_signal(n)).encode() for n in range(total)]
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(url, connector=connector) as session:
        start = time.perf_counter()

        async def one(number: int) -> None:
            due = start + number / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            async with session.post(
                "/api/strategy-signals", data=bodies[number], headers=headers
            ) as answer:
                await answer.read()
                if answer.status == 202:
                    timed.append((number, (time.perf_counter() - due) * 1000))

        await asyncio.gather(*(one(n) for n in range(total)))
    return _phases("http", timed, total, rate, warmup_s)


def _helper(
    redis_url: str, stream: str, rate: float, seconds: float, warmup_s: float
) -> list[dict[str, object]]:
    total = int(rate * (seconds + warmup_s))
    submitter = SignalSubmitter(redis_url, stream=stream, timeout_s=1.0)
    timed: list[tuple[int, float]] = []
    start = time.perf_counter()

    def one(number: int) -> None:
        due = start + number / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        if submitter.submit(_signal(number)) is not None:
            timed.append((number, (time.perf_counter() - due) * 1000))

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(total)))
    submitter.close()
    return _phases("helper", timed, total, rate, warmup_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=2000.0)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    prefix = f"bench-intake-{uuid.uuid4().hex[:8]}"
    fake = FakeProcess(1, args.latency_ms, {})
    env = {
        "REDIS_URL": args.redis_url,
        "STRATEGY_STREAM": f"{prefix}:signals",
        "ENHANCED_STREAM": f"{prefix}:enhanced",
        "DECISION_STREAM": f"{prefix}:decisions",
        "STRATEGY_REQUEST_PREFIX": f"{prefix}:requests",
        "HTTP_PORT": "0",
        "LOG_LEVEL": "ERROR",
        "LLM_PROVIDERS": "custom",
        "CUSTOM_BASE_URL": fake.start(),
        "CUSTOM_API_KEY": "bench",
        "CUSTOM_MODEL": "fake-1",
        "CUSTOM_MAX_IN_FLIGHT": "64",
        "LLM_CACHE": "off",
    }
    process, url = start_service(env, "--only", "strategy")
    try:
        time.sleep(1.0)
        for figures in asyncio.run(_http(url, args.rate, args.seconds, args.warmup_s)):
            print(json.dumps(figures), flush=True)
        stream = env["STRATEGY_STREAM"]
        for figures in _helper(args.redis_url, stream, args.rate, args.seconds, args.warmup_s):
            print(json.dumps(figures), flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
        fake.stop()
        import redis

        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


if __name__ == "__main__":
    main()
