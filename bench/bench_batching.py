"""What adaptive batching buys under a provider's quotas, and what it costs when nothing waits.

    python bench/bench_batching.py quota [--rpm 14] [--tpm 950000] [--minutes 2]
    python bench/bench_batching.py idle [--posts 400] [--rate 20] [--rpm 0]

quota   The posts worker (LLM_POLICY=always, MAX_IN_FLIGHT=64, LLM_CACHE=off) runs for
        --minutes whole minutes against `signalsmith fake-llm` in its own process, the fake
        enforcing --rpm and --tpm per key (429 with Retry-After past them) and the provider
        configured with the same OPENAI_RPM/OPENAI_TPM, LLM_MAX_WAIT_S=65 (a full window's wait
        is waited, not failed). Once with LLM_BATCH_SIZE=1 (batching off), once with the
        default batching. Prints per mode: posts analyzed by the LLM per minute, requests,
        prompt tokens per post (the provider's own count), 429s, and the ratios on/off.
idle    Posts offered at --rate per second (the provider far from any limit; --rpm sets an
        OPENAI_RPM that the rate stays under, 0 for none), batching off then on, fake latency
        100 ms: each post's LLM time minus the fake's latency, p50/p99, and the difference.

Posts are realistic (bench/realistic_posts.py): Reddit-like lengths, about half chatter with no
ticker, which the worker answers without the LLM. Uses REDIS_URL (default 127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

from redis.asyncio import Redis

from benchkeys import fresh_keys
from fakeproc import FakeProcess
from realistic_posts import realistic_posts
from signalsmith.lifecycle import build_analyzers, build_posts
from signalsmith.observe.logging import configure_logging
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import Settings, load_settings

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LATENCY_MS = 100.0
DEFAULT_BATCH_SIZE = int(Settings.model_fields["llm_batch_size"].default)


def _environment(names: dict[str, str], base_url: str, extra: dict[str, str]) -> None:
    for name in ("LLM_PROVIDERS", "LLM_PROVIDER", "REDIS_ADDR"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            **names,
            "REDIS_URL": URL,
            "LLM_PROVIDERS": "openai",
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "bench-key",
            "LLM_POLICY": "always",
            "LLM_CACHE": "off",
            "MAX_IN_FLIGHT": "64",
            "PUBLISH": "all",
            **extra,
        }
    )


async def _load(redis: Redis, stream: str, posts: list[dict[str, str]]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for post in posts:
            pipe.xadd(stream, post)
        await pipe.execute()


async def _llm_posts(
    redis: Redis, stream: str, before_ms: int | None = None
) -> dict[str, dict[str, object]]:
    """Each analyzed post's meta (one per post, whatever its tickers), for posts that asked and
    were published before ``before_ms`` (Redis time: the drain after the window is not counted)."""
    found: dict[str, dict[str, object]] = {}
    last = "+" if before_ms is None else str(before_ms - 1)
    for _id, fields in await redis.xrange(stream, max=last):
        envelope = json.loads(fields[b"data"])
        if envelope["decision"]["kind"] != "post" or not envelope["meta"].get("llm_calls"):
            continue
        found[envelope["decision"]["source"]["entry_id"]] = envelope["meta"]
    return found


async def _quota_mode(
    fake: FakeProcess, batch_size: int, args: argparse.Namespace
) -> dict[str, object]:
    fake.reset()
    with fresh_keys(URL, "bench-batch") as names:
        extra = {
            "OPENAI_RPM": str(args.rpm),
            "OPENAI_TPM": str(args.tpm),
            "LLM_MAX_WAIT_S": "65",
            "LLM_BATCH_SIZE": str(batch_size),
        }
        _environment(names, fake.start(), extra)
        settings = load_settings()
        redis = Redis.from_url(URL)
        metrics = Metrics()
        stack = build_analyzers(settings, metrics, redis)
        try:
            await _load(redis, settings.stream, realistic_posts(args.posts, seed=7))
            worker = build_posts(settings, redis, metrics, stack.analyzers)
            stop = asyncio.Event()
            seconds = args.minutes * 60 - 1  # whole windows: a burst at minute N is not counted
            started_s, _micros = await redis.time()
            asyncio.get_running_loop().call_later(seconds, stop.set)
            await worker.run(stop)
            deadline_ms = (int(started_s) + seconds) * 1000
            analyzed = await _llm_posts(redis, settings.signal_stream, deadline_ms)
            first_minute = await _llm_posts(
                redis, settings.signal_stream, deadline_ms - seconds * 1000 + 60_000
            )
        finally:
            await stack.aclose()
            await redis.aclose()
    stats = fake.stats()
    # Each decision's share of what its request billed: the shares add up to the provider's
    # usage, and only the posts decided within the window are counted.
    prompt = sum(
        int(call["tokens_in"])
        for meta in analyzed.values()
        for call in meta["llm_calls"]  # type: ignore[attr-defined]
    )
    return {
        "batch_size": batch_size,
        "posts_analyzed": len(analyzed),
        "posts_per_minute": round(len(analyzed) / args.minutes, 1),
        # After the first minute, which a cold start spends filling its first requests.
        "posts_per_minute_after_the_first": round(
            (len(analyzed) - len(first_minute)) / max(1, args.minutes - 1), 1
        ),
        "requests_answered": stats["outcomes"].get("ok", 0),
        "requests_429": stats["outcomes"].get("quota", 0) + stats["outcomes"].get("429", 0),
        "prompt_tokens": prompt,
        "prompt_tokens_per_post": round(prompt / max(1, len(analyzed)), 1),
        "provider_prompt_tokens_whole_run": stats["prompt_tokens"],
        "provider_cached_tokens_whole_run": stats["cached_tokens"],
    }


async def quota(args: argparse.Namespace) -> None:
    fake = FakeProcess(1, LATENCY_MS, {"rpm": args.rpm, "tpm": args.tpm})
    try:
        runs = {}
        for mode in args.modes.split(","):
            size = 1 if mode == "off" else args.size or DEFAULT_BATCH_SIZE
            runs[mode] = await _quota_mode(fake, size, args)
            head = {"case": "quota", "mode": mode, "rpm": args.rpm, "tpm": args.tpm}
            print(json.dumps({**head, **runs[mode]}), flush=True)
    finally:
        fake.stop()
    if set(runs) != {"off", "on"}:
        return
    off, on = runs["off"], runs["on"]
    posts = float(on["posts_per_minute"]) / max(1e-9, float(off["posts_per_minute"]))
    steady = float(on["posts_per_minute_after_the_first"]) / max(
        1e-9, float(off["posts_per_minute_after_the_first"])
    )
    tokens = float(off["prompt_tokens_per_post"]) / max(1e-9, float(on["prompt_tokens_per_post"]))
    summary = {
        "case": "quota",
        "rpm": args.rpm,
        "tpm": args.tpm,
        "posts_per_minute_on_vs_off": round(posts, 2),
        "after_the_first_minute_on_vs_off": round(steady, 2),
        "prompt_tokens_per_post_off_vs_on": round(tokens, 2),
    }
    print(json.dumps(summary), flush=True)


async def _idle_mode(fake: FakeProcess, batch_size: int, args: argparse.Namespace) -> list[float]:
    fake.reset()
    with fresh_keys(URL, "bench-idle") as names:
        extra = {"LLM_BATCH_SIZE": str(batch_size)}
        if args.rpm:
            extra["OPENAI_RPM"] = str(args.rpm)
        _environment(names, fake.start(), extra)
        settings = load_settings()
        redis = Redis.from_url(URL)
        metrics = Metrics()
        stack = build_analyzers(settings, metrics, redis)
        posts = realistic_posts(args.posts, seed=11)
        try:
            worker = build_posts(settings, redis, metrics, stack.analyzers)
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop))
            for post in posts:
                await redis.xadd(settings.stream, post)
                await asyncio.sleep(1 / args.rate)
            await asyncio.sleep(1.0)
            stop.set()
            await running
            analyzed = await _llm_posts(redis, settings.signal_stream)
        finally:
            await stack.aclose()
            await redis.aclose()
    return [
        float(call["latency_ms"]) - LATENCY_MS
        for meta in analyzed.values()
        for call in meta["llm_calls"]  # type: ignore[attr-defined]
    ]


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "calls": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2], 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


async def idle(args: argparse.Namespace) -> None:
    fake = FakeProcess(2, LATENCY_MS, {})
    try:
        off = _summary(await _idle_mode(fake, 1, args))
        on = _summary(await _idle_mode(fake, DEFAULT_BATCH_SIZE, args))
        batched = fake.stats()["batched"]
    finally:
        fake.stop()
    print(
        json.dumps(
            {
                "case": "idle",
                "rate_per_s": args.rate,
                "rpm": args.rpm,
                "off": off,
                "on": on,
                "batched_requests_with_batching_on": batched,
                "added_p99_ms": round(on["p99_ms"] - off["p99_ms"], 2),
                "added_p50_ms": round(on["p50_ms"] - off["p50_ms"], 2),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=["quota", "idle"])
    parser.add_argument("--rpm", type=int, default=None, help="quota: 14; idle: 0 (none)")
    parser.add_argument("--tpm", type=int, default=950_000)
    parser.add_argument("--minutes", type=int, default=2)
    parser.add_argument("--posts", type=int, default=0, help="posts loaded (quota) or offered")
    parser.add_argument("--size", type=int, default=0, help="LLM_BATCH_SIZE when on (0: default)")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--modes", default="off,on", help="quota: off,on | off | on")
    args = parser.parse_args()
    configure_logging("ERROR", "console")
    started = time.perf_counter()
    if args.case == "quota":
        args.posts = args.posts or 6_000
        args.rpm = 14 if args.rpm is None else args.rpm
        asyncio.run(quota(args))
    else:
        args.posts = args.posts or 400
        args.rpm = args.rpm or 0
        asyncio.run(idle(args))
    print(json.dumps({"elapsed_s": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
