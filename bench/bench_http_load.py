"""Offline throughput of one ``signalsmith run`` process with and without a flood of HTTP
requests on its /health and /metrics endpoints. Prints one JSON object per round, then a summary.

    python bench/bench_http_load.py [--posts N] [--rounds R] [--clients C] [--seconds S]

Each round loads N posts (the demo posts, cycled, malformed ones included) into fresh streams and
runs the worker until the stream is drained (--until-idle 1): once quiet, once while C clients
(a separate process, keep-alive connections on loopback) ask for /health and /metrics in turn,
each as soon as its previous answer arrived, while a probe asks for /health on a fresh
connection once a second and times the answer. Rounds alternate quiet and loaded so drift on a
noisy machine hits both alike. Throughput is measured on the output stream (first to last
decision), so start-up and idle time do not count; "read" can exceed the posts when entries
were reclaimed and read again. The flood stops soon after the worker exits (its clients' failed
reconnections meanwhile are counted in "errors"), after --seconds, or after --max-requests.
Uses REDIS_URL, else redis://127.0.0.1:6379/0; cleans up its keys.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import AbstractContextManager

from redis import Redis

from benchkeys import fresh_keys
from signalsmith.demo import demo_posts

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PATHS = ("/health", "/metrics")


def _keys() -> AbstractContextManager[dict[str, str]]:
    return fresh_keys(URL, "bench-http")


def _load(stream: str, posts: int) -> None:
    source = itertools.cycle(list(demo_posts()))
    client = Redis.from_url(URL)
    for start in range(0, posts, 5000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(5000, posts - start)):
            pipe.xadd(stream, next(source))  # type: ignore[arg-type]
        pipe.execute()
    client.close()


def _span_s(signal_stream: str) -> float:
    """Seconds from the first decision to the last (by entry id time)."""
    client = Redis.from_url(URL)
    first = client.xrange(signal_stream, count=1)
    last = client.xrevrange(signal_stream, count=1)
    client.close()
    if not first:
        return 0.0
    span_ms = int(last[0][0].split(b"-")[0]) - int(first[0][0].split(b"-")[0])
    return max(span_ms / 1000, 1e-3)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_round(posts: int, loaded: bool, args: argparse.Namespace) -> dict[str, object]:
    port = _free_port()
    with _keys() as names:
        _load(names["STREAM"], posts)
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_ADDR", "LLM_PROVIDERS")},
            **names,
            "REDIS_URL": URL,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(port),
            "LOG_LEVEL": "ERROR",
            "LLM_POLICY": "never",
            "PUBLISH": "all",
        }
        flood = None
        if loaded:  # started first: it connects as soon as the worker listens
            flood = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--flood",
                    f"http://127.0.0.1:{port}",
                    "--clients",
                    str(args.clients),
                    "--seconds",
                    str(args.seconds),
                    "--max-requests",
                    str(args.max_requests),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
        cpu = _children_cpu_s()
        worker = subprocess.run(
            [sys.executable, "-m", "signalsmith", "run", "--until-idle", "1"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        worker_cpu = _children_cpu_s() - cpu
        served: dict[str, object] = {}
        if flood is not None:
            flood.send_signal(signal.SIGINT)
            served = json.loads(flood.communicate(timeout=60)[0])
        done = re.search(r"read (\d+)", worker.stdout)
        read = int(done.group(1)) if done else 0
        span = _span_s(names["SIGNAL_STREAM"])
    return {
        "case": "loaded" if loaded else "quiet",
        "posts": posts,
        "read": read,
        "posts_per_s": round(posts / span, 1) if span else 0.0,
        "worker_cpu_s": round(worker_cpu, 2),
        **({"http": served} if served else {}),
    }


async def _flood(base: str, clients: int, seconds: float, max_requests: int) -> dict[str, object]:
    """``clients`` closed loops on keep-alive connections until stopped, --seconds or
    --max-requests; counts answers by path and status. Meanwhile a probe asks for /health on a
    fresh connection once a second, as a monitoring system would, and times the answer."""
    import aiohttp

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(seconds, stop.set)
    statuses: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    answered: list[float] = []
    probes: list[float] = []
    timeout = aiohttp.ClientTimeout(total=60)

    async def client(session: aiohttp.ClientSession, index: int) -> None:
        for turn in itertools.count(index):
            if stop.is_set() or len(answered) >= max_requests:
                stop.set()
                return
            path = PATHS[turn % 2]
            try:
                async with session.get(base + path) as response:
                    await response.read()
                    statuses[f"{path} {response.status}"] += 1
                    answered.append(time.perf_counter())
            except (aiohttp.ClientError, TimeoutError) as exc:  # gone, or gave up waiting
                errors[type(exc).__name__] += 1
                await asyncio.sleep(0.02)

    async def probe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            async with aiohttp.ClientSession(timeout=timeout) as fresh:
                try:
                    async with fresh.get(base + "/health") as response:
                        await response.read()
                        statuses[f"probe {response.status}"] += 1
                        probes.append(time.perf_counter() - started)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[f"probe {type(exc).__name__}"] += 1
            await asyncio.sleep(1.0)

    await _listening(base, stop)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(client(session, i)) for i in range(clients)]
        tasks.append(asyncio.create_task(probe()))
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    span = answered[-1] - answered[0] if len(answered) > 1 else 0.0
    return {
        "clients": clients,
        "requests": len(answered),
        "requests_per_s": round(len(answered) / span, 1) if span else 0.0,
        "statuses": dict(sorted(statuses.items())),
        "errors": dict(sorted(errors.items())),
        "probe_s_median": round(statistics.median(probes), 3) if probes else None,
        "probe_s_max": round(max(probes), 3) if probes else None,
    }


async def _listening(base: str, stop: asyncio.Event) -> None:
    """Wait until the worker accepts connections, so the flood starts at once and whole."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    while not stop.is_set():
        try:
            _reader, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each (median taken)")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=120.0, help="longest a flood lasts")
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--flood", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood:
        result = asyncio.run(_flood(args.flood, args.clients, args.seconds, args.max_requests))
        print(json.dumps(result), flush=True)
        return
    rates: dict[str, list[float]] = {"quiet": [], "loaded": []}
    served: list[float] = []
    probed: list[float] = []
    for _round in range(args.rounds):
        for loaded in (False, True):
            result = one_round(args.posts, loaded, args)
            rates[str(result["case"])].append(float(str(result["posts_per_s"])))
            if loaded:
                http: dict[str, object] = result["http"]  # type: ignore[assignment]
                served.append(float(str(http["requests_per_s"])))
                if http["probe_s_median"] is not None:
                    probed.append(float(str(http["probe_s_median"])))
            print(json.dumps(result), flush=True)
    quiet, loaded_rate = statistics.median(rates["quiet"]), statistics.median(rates["loaded"])
    summary = {
        "case": "median",
        "rounds": args.rounds,
        "clients": args.clients,
        "posts_per_s_quiet": quiet,
        "posts_per_s_loaded": loaded_rate,
        "loaded_vs_quiet": round(loaded_rate / quiet, 3) if quiet else None,
        "http_requests_per_s": statistics.median(served),
        "probe_s": statistics.median(probed) if probed else None,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
