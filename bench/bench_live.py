"""What the live feed costs the posts pipeline, and how late its clients see each decision.

    python bench/bench_live.py [--posts N] [--clients C] [--rounds R] [--redis-url URL]
        [--feed-process]

Per round, twice (without clients, then with C): a fresh `signalsmith run` (posts pipeline,
offline analyzer, no store) starts on an empty input stream; with clients, C connect to
`GET /api/live` first (aiohttp; one of them parses every event, the others read the bytes);
then N demo posts (the bundled mix, malformed ones included, cycled) are XADDed in pipelined
batches, faster than the pipeline takes them. Prints per case the decisions logged per second
(steady state, by the decision log's entry ids) and, with clients, the delay from a decision's
``published_at`` to the parsing client receiving it (p50 / p99 / max, ms) and how many
decisions each client received; then the median ratio of the two rates over the rounds.
With --feed-process the clients follow the feed of a second process, `signalsmith run --only
store` (the store on a SQLite file, its API, feed and dashboard), as README's Performance
suggests for the highest rates; it runs in both cases, so the ratio is the clients' cost.
Uses REDIS_URL, else redis://127.0.0.1:6379/0; cleans up its keys.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import tempfile
import time
from datetime import datetime

import aiohttp
from redis import Redis

from benchkeys import fresh_keys
from outputs import steady_rate
from serving import start_service
from signalsmith.demo import demo_posts


def _load(url: str, stream: str, posts: int) -> None:
    client = Redis.from_url(url)
    source = itertools.cycle(list(demo_posts()))
    for start in range(0, posts, 2_000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(2_000, posts - start)):
            pipe.xadd(stream, next(source))  # type: ignore[arg-type]
        pipe.execute()
    client.close()


def _drained(
    url: str, env: dict[str, str], timeout_s: float = 600
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The decision log once the pipeline has nothing pending or unread."""
    client = Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            groups = {g["name"].decode(): g for g in client.xinfo_groups(env["STREAM"])}
            group = groups.get(env["GROUP"])
            if group and group["pending"] == 0 and group.get("lag") == 0:
                return client.xrange(env["DECISION_STREAM"])  # type: ignore[return-value]
            time.sleep(0.2)
        raise RuntimeError("the pipeline never drained")
    finally:
        client.close()


class _Clients:
    """C feed clients: the first parses every event (delays), the rest read bytes."""

    def __init__(self, base: str, count: int) -> None:
        self._base, self._count = base, count
        self.delays_ms: list[float] = []
        self.received = [0] * count
        self._connected = 0
        self._all_connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        connector = aiohttp.TCPConnector(limit=0)
        self._session = aiohttp.ClientSession(self._base, timeout=timeout, connector=connector)
        self._tasks = [asyncio.create_task(self._one(n)) for n in range(self._count)]
        await asyncio.wait_for(self._all_connected.wait(), timeout=60)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _one(self, number: int) -> None:
        assert self._session is not None
        async with self._session.get("/api/live", params={"kind": "post,spike"}) as answer:
            answer.raise_for_status()
            self._connected += 1
            if self._connected == self._count:
                self._all_connected.set()
            if number == 0:
                async for line in answer.content:
                    if line.startswith(b"data: "):
                        data = json.loads(line[6:])
                        published = datetime.fromisoformat(data["published_at"]).timestamp()
                        self.delays_ms.append((time.time() - published) * 1000)
                        self.received[0] += 1
            else:
                async for chunk in answer.content.iter_any():
                    self.received[number] += chunk.count(b"\nevent: decision\n")


async def _case(url: str, posts: int, clients: int, feed_process: bool) -> dict[str, object]:
    with fresh_keys(url, "bench-live") as names, tempfile.TemporaryDirectory() as state:
        env = {
            **{k: v for k, v in names.items()},
            "REDIS_URL": url,
            "HTTP_PORT": "0",
            "LOG_LEVEL": "ERROR",
            "LLM_POLICY": "never",
            "MARKET_ENABLED": "false",
            "STRATEGY_ENABLED": "false",
            "STORE_ENABLED": "false",
            "LIVE_MAX_CLIENTS": str(max(clients, 1) + 5),
        }
        Redis.from_url(url).xgroup_create(env["STREAM"], env["GROUP"], id="$", mkstream=True)
        process, base = start_service(env)
        reader = None
        if feed_process:  # the store, its API and the feed in a process of their own
            store_env = {**env, "STORE_ENABLED": "true", "STATE_DIR": state}
            reader, base = start_service(store_env, "--only", "store")
        feed = _Clients(base, clients)
        try:
            if clients:
                await feed.start()
            await asyncio.to_thread(_load, url, env["STREAM"], posts)
            log = await asyncio.to_thread(_drained, url, env)
            await asyncio.sleep(1.0 if clients else 0)  # the last events on their way
        finally:
            await feed.stop()
            for running in (process, reader):
                if running is not None:
                    running.terminate()
                    running.wait(timeout=30)
    figures: dict[str, object] = {
        "clients": clients,
        "decisions": len(log),
        "decisions_per_s": steady_rate(log, 64),
    }
    if clients:
        delays = sorted(feed.delays_ms)
        figures |= {
            "delay_p50_ms": round(statistics.median(delays), 1) if delays else None,
            "delay_p99_ms": round(delays[int(len(delays) * 0.99)], 1) if delays else None,
            "delay_max_ms": round(delays[-1], 1) if delays else None,
            "received_min": min(feed.received),
            "received_max": max(feed.received),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--feed-process", action="store_true")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    ratios = []
    for round_number in range(args.rounds):
        alone = asyncio.run(_case(args.redis_url, args.posts, 0, args.feed_process))
        watched = asyncio.run(_case(args.redis_url, args.posts, args.clients, args.feed_process))
        ratio = None
        if alone["decisions_per_s"] and watched["decisions_per_s"]:
            ratio = round(float(watched["decisions_per_s"]) / float(alone["decisions_per_s"]), 3)  # type: ignore[arg-type]
            ratios.append(ratio)
        print(
            json.dumps(
                {"round": round_number + 1, "alone": alone, "watched": watched, "ratio": ratio}
            ),
            flush=True,
        )
    if ratios:
        print(
            json.dumps({"median_ratio": statistics.median(ratios), "rounds": len(ratios)}),
            flush=True,
        )


if __name__ == "__main__":
    main()
