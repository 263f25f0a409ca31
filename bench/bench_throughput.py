"""Throughput, latency and memory of signalsmith against a sequential reference loop, measured
in the same run. Prints one JSON object per case.

    python bench/bench_throughput.py [--posts N] [--latencies 0,100,300] [--soak N] [--only CASE]
                                     [--rounds R]

Cases:
  reference   a one-post-at-a-time consumer-group loop in the style of the replaced worker
              (XREADGROUP COUNT 1, one LLM call through the openai SDK, XADD, XACK)
  sdk         the openai SDK alone, 64 calls in flight, nothing else: the ceiling for one process
              that makes its calls through the SDK (posts/s and client CPU per call)
  llm         signalsmith (lexicon + LLM, MAX_IN_FLIGHT=64) with 1 and 2 worker processes
  offline     signalsmith with the offline analyzer only, 1 and 2 worker processes, in
              --rounds interleaved rounds (1, 2, 1, 2, ...): each round's figures, then the
              median of each and the ratio of the medians
  latency     pipeline-added latency (post XADDed -> decision published) with posts offered at
              1,000/s, offline analyzer
  soak        N posts (default 1,000,000) fed as they are consumed; peak RSS and RSS over time
The LLM is `signalsmith fake-llm` in its own process, answering after L ms. Throughput is
measured on the output stream (first to last decision), so start-up and idle time do not count;
the first second (64 new HTTP connections) still weighs on short runs, so the LLM cases default
to 20,000 posts.
Uses REDIS_URL, else redis://127.0.0.1:6379/0; cleans up its keys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import openai
from redis import Redis

from benchkeys import fresh_keys
from fakeproc import FakeProcess

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TEXT = "Post {i}: loading up on $NVDA calls, they beat estimates and raised guidance"


def _keys() -> AbstractContextManager[dict[str, str]]:
    return fresh_keys(URL, "bench")


def _load(stream: str, posts: int) -> None:
    client = Redis.from_url(URL)
    for start in range(0, posts, 5000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(posts, start + 5000)):
            pipe.xadd(stream, {"text": TEXT.format(i=i)})
        pipe.execute()
    client.close()


def _output_rate(signal_stream: str) -> tuple[int, float]:
    """Decisions on the stream and their rate from the first to the last (by entry id time)."""
    client = Redis.from_url(URL)
    first = client.xrange(signal_stream, count=1)
    last = client.xrevrange(signal_stream, count=1)
    count = client.xlen(signal_stream)
    client.close()
    if count < 2:
        return count, 0.0
    span_ms = int(last[0][0].split(b"-")[0]) - int(first[0][0].split(b"-")[0])
    return count, round(count / max(span_ms / 1000, 1e-3), 1)


def _worker_env(names: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment for a signalsmith process of this run: its keys, quiet, offline."""
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_ADDR", "LLM_PROVIDERS")}
    quiet = {"REDIS_URL": URL, "HTTP_PORT": "0", "LOG_LEVEL": "ERROR", "LLM_POLICY": "never"}
    return {**base, **names, **quiet, **extra}


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "signalsmith", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _run_signalsmith(env: dict[str, str], workers: int) -> None:
    command = [sys.executable, "-m", "signalsmith", "run", "--until-idle", "1"]
    subprocess.run([*command, "--workers", str(workers)], env=env, check=True, capture_output=True)


def reference(latency_ms: float, posts: int, llm_url: str) -> dict[str, object]:
    """The replaced worker's shape: one post at a time, await the LLM, XADD, XACK."""
    with _keys() as names:
        _load(names["STREAM"], posts)

        async def loop() -> float:
            from redis.asyncio import Redis as AsyncRedis

            redis = AsyncRedis.from_url(URL)
            llm = openai.AsyncOpenAI(base_url=llm_url, api_key="bench", max_retries=0)
            await redis.xgroup_create(names["STREAM"], "g", id="0")
            started = time.perf_counter()
            for _ in range(posts):
                reply = await redis.xreadgroup(
                    "g", "ref", {names["STREAM"]: ">"}, count=1, block=1000
                )
                entry_id, fields = reply[0][1][0]
                answer = await llm.chat.completions.create(
                    model="fake-1",
                    max_tokens=50,
                    messages=[
                        {"role": "user", "content": "Tickers: NVDA\n\n" + fields[b"text"].decode()}
                    ],
                )
                await redis.xadd(
                    names["SIGNAL_STREAM"], {"analysis": answer.choices[0].message.content or ""}
                )
                await redis.xack(names["STREAM"], "g", entry_id)
            elapsed = time.perf_counter() - started
            await redis.aclose()
            await llm.close()
            return elapsed

        elapsed = asyncio.run(loop())
    return {
        "case": "reference",
        "latency_ms": latency_ms,
        "posts": posts,
        "posts_per_s": round(posts / elapsed, 2),
    }


def sdk_only(latency_ms: float, calls: int, llm_url: str) -> dict[str, object]:
    """The SDK's own cost: ``calls`` chat completions, 64 at a time, as signalsmith sends them."""

    async def run() -> tuple[float, float]:
        client = openai.AsyncOpenAI(
            base_url=llm_url,
            api_key="bench",
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(),
        )
        gate = asyncio.Semaphore(64)
        body = {
            "model": "fake-1",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "Tickers: NVDA\n\n" + TEXT.format(i=0)}],
        }

        async def one() -> None:
            async with gate:
                await client.post("/chat/completions", body=body, cast_to=object)

        await one()  # connect first
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(calls)))
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
        await client.close()
        return elapsed, used

    elapsed, used = asyncio.run(run())
    return {
        "case": "sdk",
        "latency_ms": latency_ms,
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "cpu_ms_per_call": round(used / calls * 1000, 3),
        "share_of_ideal": round(calls / elapsed / (64_000 / latency_ms), 3) if latency_ms else None,
    }


def signalsmith_llm(latency_ms: float, posts: int, llm_url: str, workers: int) -> dict[str, object]:
    with _keys() as names:
        _load(names["STREAM"], posts)
        env = _worker_env(
            names,
            PUBLISH="all",
            LLM_POLICY="always",
            LLM_PROVIDERS="openai",
            OPENAI_BASE_URL=llm_url,
            OPENAI_API_KEY="bench",
            OPENAI_MAX_IN_FLIGHT="64",
            MAX_IN_FLIGHT="64",
            LLM_CACHE="off",
        )
        _run_signalsmith(env, workers)
        count, rate = _output_rate(names["SIGNAL_STREAM"])
    ideal = workers * 64 * 1000 / latency_ms if latency_ms else None
    return {
        "case": "llm",
        "latency_ms": latency_ms,
        "workers": workers,
        "posts": posts,
        "decisions": count,
        "posts_per_s": rate,
        "share_of_ideal": round(rate / ideal, 3) if ideal else None,
    }


def signalsmith_offline(posts: int, workers: int) -> dict[str, object]:
    with _keys() as names:
        _load(names["STREAM"], posts)
        _run_signalsmith(_worker_env(names, PUBLISH="all"), workers)
        count, rate = _output_rate(names["SIGNAL_STREAM"])
    return {
        "case": "offline",
        "workers": workers,
        "posts": posts,
        "decisions": count,
        "posts_per_s": rate,
    }


def offline_rounds(posts: int, rounds: int) -> None:
    """1 and 2 processes, interleaved, so drift on a noisy machine hits both alike."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _round in range(rounds):
        for workers in (1, 2):
            result = signalsmith_offline(posts, workers)
            rates[workers].append(float(str(result["posts_per_s"])))
            print(json.dumps(result), flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    summary = {
        "case": "offline-median",
        "rounds": rounds,
        "posts_per_s_1": one,
        "posts_per_s_2": two,
        "two_vs_one": round(two / one, 2) if one else None,
    }
    print(json.dumps(summary), flush=True)


def latency(rate: int, seconds: float) -> dict[str, object]:
    """Offer posts at ``rate``/s to a running worker; latency = published - XADDed."""
    with _keys() as names:
        worker = _start_worker(_worker_env(names, PUBLISH="all", BLOCK_MS="100"))
        client = Redis.from_url(URL)
        time.sleep(2)  # start-up
        sent, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * rate)
            pipe = client.pipeline(transaction=False)
            for i in range(sent, due):
                pipe.xadd(names["STREAM"], {"text": TEXT.format(i=i)})
            pipe.execute()
            sent = due
            time.sleep(0.001)
        time.sleep(1)
        worker.terminate()
        worker.wait()
        delays = []
        for _id, fields in client.xrange(names["SIGNAL_STREAM"]):
            envelope = json.loads(fields[b"data"])
            if envelope["decision"]["kind"] != "post":
                continue
            entry_ms = int(envelope["decision"]["source"]["entry_id"].split("-")[0])
            published = envelope["published_at"]
            from datetime import datetime

            published_ms = datetime.fromisoformat(published).timestamp() * 1000
            delays.append(published_ms - entry_ms)
        client.close()
    delays.sort()
    return {
        "case": "latency",
        "offered_per_s": rate,
        "posts": sent,
        "decided": len(delays),
        "p50_ms": round(delays[len(delays) // 2], 2),
        "p99_ms": round(delays[int(len(delays) * 0.99)], 2),
    }


def soak(posts: int) -> dict[str, object]:
    """Feed ``posts`` as they are consumed (the input kept short); sample the worker's RSS."""
    with _keys() as names:
        worker = _start_worker(_worker_env(names, SIGNAL_MAXLEN="10000"))
        client = Redis.from_url(URL)
        samples: list[tuple[int, float]] = []
        sent = 0
        while True:
            group = client.xinfo_groups(names["STREAM"]) if client.exists(names["STREAM"]) else []
            done = sent - (group[0]["lag"] or 0) - group[0]["pending"] if group else 0
            if sent < posts and sent - done < 20_000:
                pipe = client.pipeline(transaction=False)
                for i in range(sent, min(posts, sent + 5000)):
                    pipe.xadd(
                        names["STREAM"], {"text": TEXT.format(i=i)}, maxlen=50_000, approximate=True
                    )
                pipe.execute()
                sent = min(posts, sent + 5000)
            samples.append((done, _rss_mb(worker.pid)))
            if done >= posts:
                break
            time.sleep(0.2)
        worker.terminate()
        worker.wait()
        client.close()
    half = [rss for done, rss in samples if done >= posts / 2]
    return {
        "case": "soak",
        "posts": posts,
        "peak_rss_mb": max(rss for _d, rss in samples),
        "rss_mb_at_half": half[0] if half else None,
        "rss_mb_at_end": samples[-1][1],
        "second_half_growth_mb": round(samples[-1][1] - half[0], 1) if half else None,
    }


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000, help="posts (calls) per LLM case")
    parser.add_argument("--latencies", default="0,100,300")
    parser.add_argument("--reference-posts", type=int, default=100)
    parser.add_argument("--offline-posts", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3, help="offline rounds (median taken)")
    parser.add_argument("--soak", type=int, default=1_000_000)
    parser.add_argument("--only", default="reference,sdk,llm,offline,latency,soak")
    args = parser.parse_args()
    cases = set(args.only.split(","))
    for latency_ms in (float(x) for x in args.latencies.split(",")):
        fake = FakeProcess(seed=1, latency_ms=latency_ms, faults={})
        try:
            if "reference" in cases:
                print(
                    json.dumps(reference(latency_ms, args.reference_posts, fake.start())),
                    flush=True,
                )
            if "sdk" in cases:
                print(json.dumps(sdk_only(latency_ms, args.posts, fake.start())), flush=True)
            if "llm" in cases:
                for workers in (1, 2):
                    print(
                        json.dumps(signalsmith_llm(latency_ms, args.posts, fake.start(), workers)),
                        flush=True,
                    )
        finally:
            fake.stop()
    if "offline" in cases:
        offline_rounds(args.offline_posts, args.rounds)
    if "latency" in cases:
        print(json.dumps(latency(1000, 10)), flush=True)
    if "soak" in cases:
        print(json.dumps(soak(args.soak)), flush=True)


if __name__ == "__main__":
    main()
