"""End-to-end throughput of one worker process with the offline analyzer on a real Redis.

    python bench/bench_pipeline.py [--posts N] [--redis-url URL]

Loads N posts (the demo posts, cycled, malformed ones included) into a fresh stream, then times
the worker from start until the stream is drained and nothing is pending. Prints one JSON object.
Uses REDIS_URL, else redis://127.0.0.1:6379/0. Cleans up its keys.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import resource
import time
import uuid

from redis.asyncio import Redis

from signalsmith.demo import demo_posts
from signalsmith.lifecycle import build_posts
from signalsmith.observe.logging import configure_logging
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import load_settings


async def _load(redis: Redis, stream: str, posts: int) -> None:
    source = itertools.cycle(list(demo_posts()))
    for start in range(0, posts, 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(min(1000, posts - start)):
                pipe.xadd(stream, next(source))  # type: ignore[arg-type]
            await pipe.execute()


async def bench(posts: int, url: str) -> dict[str, object]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        redis_url=url,
        stream=f"{prefix}:in",
        group=f"{prefix}-g",
        consumer="bench",
        signal_stream=f"{prefix}:out",
        decision_stream=f"{prefix}:log",
        decision_hash_prefix=f"{prefix}:d",
        publish="all",
    )
    redis = Redis.from_url(url)
    try:
        await _load(redis, settings.stream, posts)
        worker = build_posts(settings, redis, Metrics())
        started = time.perf_counter()
        stats = await worker.run(asyncio.Event(), until_idle=0.2)
        elapsed = time.perf_counter() - started - 0.2  # the idle wait is not work
        published = await redis.xlen(settings.signal_stream)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    return {
        "benchmark": "pipeline_offline_one_process",
        "posts": posts,
        "read": stats.read,
        "acknowledged": stats.acknowledged,
        "dead_lettered": stats.dead_lettered,
        "decisions_published": published,
        "seconds": round(elapsed, 3),
        "posts_per_s": round(stats.read / elapsed, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    configure_logging("ERROR", "console")
    print(json.dumps(asyncio.run(bench(args.posts, args.redis_url))))


if __name__ == "__main__":
    main()
