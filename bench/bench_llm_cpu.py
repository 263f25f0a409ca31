"""CPU per LLM call on realistic posts: signalsmith against a bare aiohttp client, same fake,
same run.

    python bench/bench_llm_cpu.py [--posts 12000] [--rounds 3] [--latency-ms 100]

Both keep 64 chat-completion calls in flight against one `signalsmith fake-llm` in its own
process, answering after --latency-ms:
  bare         one aiohttp session, 64 workers posting the prompt signalsmith would send for
               each post (the shipped system prompt, the Tickers line, the post) and decoding
               the JSON reply; nothing else
  signalsmith  `signalsmith run --only posts --until-idle 1` over the same posts in a stream
               (LLM_POLICY=always, MAX_IN_FLIGHT=64, OPENAI_MAX_IN_FLIGHT=64, LLM_CACHE=off)
Posts come from bench/realistic_posts.py: Reddit-like lengths (median ~300 characters, a tail
to 1,500), about half chatter with no ticker, which signalsmith decides without the LLM (its
cost still counts: it is work the process does between calls). LLM calls/s is measured on the
fake's own counter between the first and the last call of each run, and signalsmith's CPU per
call from the point where a tenth of the calls are made to the end (every worker's start-up,
loading the lexicon and the symbol book, is over by then and is not per call). Each side's
``fake_held_calls`` is how many calls the fake held on average (sampled every 50 ms while the
middle 80% of the calls were made): calls/s is that over one call's latency, so it says how many
of the 64 call slots a client keeps at the provider.
Rounds alternate bare and signalsmith; the line per round and the median ratio are printed.
The bare client (and, below, the SDK's) runs on the event loop signalsmith's commands run on
(``signalsmith.eventloop``: uvloop where it is installed).

    python bench/bench_llm_cpu.py --sdk-only [--posts 12000] [--rounds 3]

times, in this process against the same fake, the LLM client alone (signalsmith's
OpenAICompatClient, through the openai SDK) against the bare aiohttp client, 64 in flight
each, rounds alternating: CPU microseconds per call and calls/s. What the SDK costs is the
floor under signalsmith's CPU per call.

    python bench/bench_llm_cpu.py --text-only [--posts 12000]

times, in this process and without Redis or the fake, the text work each post costs on the same
posts (ticker extraction, the copy fingerprint, the chatter check, and for each post that is
asked about the offline lexicon and the prompt), in microseconds per post.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
from redis import Redis

from benchkeys import fresh_keys
from fakeproc import FakeProcess
from realistic_posts import describe, realistic_posts
from signalsmith import eventloop
from signalsmith.tickers import TickerExtractor, load_symbol_book

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
IN_FLIGHT = 64


@functools.cache
def _extractor() -> TickerExtractor:
    return TickerExtractor(load_symbol_book())


def _prompts(posts: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """The messages signalsmith sends, byte for byte, for each post it asks the LLM about: the
    post shaped from its fields as the worker shapes it (the source line included), its
    subjects, and no chatter."""
    from signalsmith.analyze.llm.prompt import load_prompt
    from signalsmith.analyze.route import is_chatter
    from signalsmith.normalize import to_post

    template = load_prompt(None)
    asked = []
    for n, fields in enumerate(posts):
        post = to_post(fields, f"0-{n}")
        tickers, _ = _extractor().subjects(post.text)
        if tickers and not is_chatter(post.text, tickers):
            asked.append(template.messages(post, tickers))
    return asked


async def _bare(
    url: str, prompts: list[list[dict[str, str]]], fake: FakeProcess, *, held: bool = False
) -> tuple[int, float, dict[str, float]]:
    """Calls answered and seconds, 64 in flight through one aiohttp session; with ``held``, the
    calls the fake held too (sampled from a thread of this process, whose CPU then counts as
    the bare client's: only the rounds that report it pay for it)."""
    queue = list(reversed(prompts))
    headers = {"authorization": "Bearer bench-key", "content-type": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker() -> int:
            done = 0
            while queue:
                body = {"model": "fake-1", "messages": queue.pop(), "max_tokens": 400}
                async with session.post(f"{url}/chat/completions", json=body) as reply:
                    content = json.loads(await reply.read())["choices"][0]["message"]["content"]
                    json.loads(content)
                done += 1
            return done

        with _watching(fake) if held else contextlib.nullcontext() as watch:
            cpu = _Cpu(fake)
            started = time.perf_counter()
            counts = await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
            elapsed = time.perf_counter() - started
            used = cpu.per_call_ms(sum(counts))
        if watch is not None:
            used["fake_held_calls"] = watch.mean_held(len(prompts))
        return sum(counts), elapsed, used


def _stat(pid: int | str) -> list[str]:
    """A process's /proc stat fields after its name (the state is the first, the parent second)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _TreeCpu:
    """CPU seconds of a process and its children (the workers under --workers), each read from
    /proc while it lives: a child's last reading is what it used."""

    def __init__(self, pid: int) -> None:
        self._root = pid
        self._used: dict[int, float] = {}
        self._known: list[int] = []
        self._next_scan = 0.0

    def sample(self, *, rescan: bool = False) -> None:
        if rescan or time.monotonic() >= self._next_scan:  # a scan of /proc costs: once a second
            self._known, self._next_scan = self._children(), time.monotonic() + 1.0
        for pid in (self._root, *self._known):
            with contextlib.suppress(OSError, ValueError, IndexError):
                self._used[pid] = _cpu_s(pid)

    def _children(self) -> list[int]:
        found = []
        for process in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(_stat(process.name)[1]) == self._root:
                    found.append(int(process.name))
        return found

    def seconds(self) -> float:
        return sum(self._used.values())


def _redis_pid() -> int | None:
    info = Redis.from_url(URL).info("server")
    pid = info.get("process_id")
    return int(pid) if isinstance(pid, int) and Path(f"/proc/{pid}").exists() else None


class _Cpu:
    """CPU seconds used by this process, the fake and Redis (when local) over a measured run."""

    def __init__(self, fake: FakeProcess) -> None:
        self._pids = {"fake": fake.pid, "redis": _redis_pid()}
        self._start = self._now()

    def _now(self) -> dict[str, float]:
        used = {"client": time.process_time()}
        for name, pid in self._pids.items():
            if pid is not None:
                used[name] = _cpu_s(pid)
        return used

    def per_call_ms(self, calls: int) -> dict[str, float]:
        now = self._now()
        return {
            f"cpu_ms_per_call_{k}": round((now[k] - self._start[k]) / calls * 1000, 3) for k in now
        }


def _signalsmith(
    url: str,
    posts: list[dict[str, str]],
    fake: FakeProcess,
    only: str,
    workers: int,
    *,
    expected: int,
) -> tuple[int, float, dict[str, float]]:
    with fresh_keys(URL, "bench-cpu") as names:
        client = Redis.from_url(URL)
        for first in range(0, len(posts), 5000):
            pipe = client.pipeline(transaction=False)
            for post in posts[first : first + 5000]:
                pipe.xadd(names["STREAM"], post)
            pipe.execute()
        client.close()
        base = {k: v for k, v in os.environ.items() if k not in ("REDIS_ADDR", "LLM_PROVIDER")}
        env = {
            **base,
            **names,
            "REDIS_URL": URL,
            "HTTP_PORT": "0",
            "LOG_LEVEL": "ERROR",
            "LLM_POLICY": "always",
            "LLM_PROVIDERS": "openai",
            "OPENAI_BASE_URL": url,
            "OPENAI_API_KEY": "bench-key",
            "OPENAI_MAX_IN_FLIGHT": str(IN_FLIGHT),
            "MAX_IN_FLIGHT": str(IN_FLIGHT // workers),
            "LLM_CACHE": "off",
        }
        before = fake.stats()["calls"]
        watch = _CallClock(fake, before)
        command = [sys.executable, "-m", "signalsmith", "run", "--until-idle", "1"]
        command += ["--only", only] if only else []
        command += ["--workers", str(workers)] if workers > 1 else []
        cpu = _Cpu(fake)
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        tree = _TreeCpu(process.pid)
        # CPU per call is counted from the sample where a tenth of the calls are made, every
        # worker's start-up (imports, the lexicon, the symbol book) being over by then.
        mark: tuple[float, int] | None = None
        while process.poll() is None:
            tree.sample()
            made = watch.sample()
            if mark is None and made >= expected // 10:
                tree.sample(rescan=True)
                mark = (tree.seconds(), made)
            time.sleep(0.05)
        made = watch.sample()
        if process.returncode != 0:
            raise RuntimeError(f"signalsmith exited {process.returncode}")
    calls, seconds = watch.result()
    cpu_use = cpu.per_call_ms(max(1, calls))
    cpu_use.pop("cpu_ms_per_call_client", None)
    used, counted = (tree.seconds() - mark[0], made - mark[1]) if mark else (0.0, 0)
    cpu_use["cpu_ms_per_call_signalsmith"] = round(used / max(1, counted) * 1000, 3)
    cpu_use["fake_held_calls"] = watch.mean_held(expected)
    return calls, seconds, cpu_use


class _CallClock:
    """The fake's call counter sampled over time: calls and seconds from first to last call,
    and how many calls the fake held at each sample."""

    def __init__(self, fake: FakeProcess, before: int) -> None:
        self._fake = fake
        self._before = before
        self._first: float | None = None
        self._last = (0.0, before)
        self._held: list[tuple[int, int]] = []  # (calls made so far, calls at the fake)

    def sample(self) -> int:
        """Read the counter; the calls made so far in this run."""
        stats = self._fake.stats()
        calls = int(stats["calls"])
        now = time.perf_counter()
        if calls > self._before and self._first is None:
            self._first = now
            self._first_calls = calls
        if calls != self._last[1]:
            self._last = (now, calls)
        self._held.append((calls - self._before, int(stats["in_flight"])))
        return calls - self._before

    def result(self) -> tuple[int, float]:
        if self._first is None:
            return 0, 1.0
        return self._last[1] - self._first_calls, self._last[0] - self._first

    def mean_held(self, expected: int) -> float:
        """Calls the fake held, on average, while the middle 80% of ``expected`` were made
        (the ramps at either end left out): calls/s is this over the latency of one call."""
        middle = [held for made, held in self._held if expected // 10 <= made <= expected * 9 // 10]
        return round(statistics.mean(middle), 1) if middle else 0.0


@contextlib.contextmanager
def _watching(fake: FakeProcess) -> Iterator[_CallClock]:
    """A clock on the fake, sampled every 50 ms from a thread while the bare client runs."""
    watch = _CallClock(fake, int(fake.stats()["calls"]))
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.05):
            watch.sample()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        done.set()
        thread.join()


async def _sdk(url: str, prompts: list[list[dict[str, str]]]) -> tuple[int, float, float]:
    """Calls, seconds and CPU microseconds per call of the SDK client alone, 64 in flight."""
    from signalsmith.analyze.llm.openai_compat import OpenAICompatClient, shared_pool
    from signalsmith.analyze.llm.providers import ProviderConfig

    config = ProviderConfig(
        name="openai",
        base_url=url,
        model="fake-1",
        api_key="bench-key",
        structured="json_object",
        timeout=30.0,
        max_in_flight=IN_FLIGHT,
        rpm=None,
        tpm=None,
        daily_tokens=None,
        price_in=0.0,
        price_out=0.0,
        price_cached=0.0,
    )
    pool = shared_pool()
    client = OpenAICompatClient(config, pool)
    queue = list(reversed(prompts))

    async def worker() -> int:
        done = 0
        while queue:
            reply = await client.complete(
                queue.pop(), response_format=None, max_tokens=400, temperature=0.0
            )
            json.loads(reply.content)
            done += 1
        return done

    try:
        cpu, started = time.process_time(), time.perf_counter()
        calls = sum(await asyncio.gather(*(worker() for _ in range(IN_FLIGHT))))
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await pool.aclose()
    return calls, elapsed, used / max(1, calls) * 1e6


def _sdk_only(
    url: str, prompts: list[list[dict[str, str]]], fake: FakeProcess, rounds: int
) -> None:
    """Rounds of bare, then the SDK client, on the same prompts and fake."""
    eventloop.run(_sdk(url, prompts[:IN_FLIGHT]))
    for round_number in range(1, rounds + 1):
        bare_calls, bare_s, bare_cpu = eventloop.run(_bare(url, prompts, fake))
        sdk_calls, sdk_s, sdk_us = eventloop.run(_sdk(url, prompts))
        bare_us = bare_cpu["cpu_ms_per_call_client"] * 1000
        line = {
            "round": round_number,
            "bare_calls_per_s": round(bare_calls / bare_s, 1),
            "sdk_calls_per_s": round(sdk_calls / sdk_s, 1),
            "bare_cpu_us_per_call": round(bare_us),
            "sdk_cpu_us_per_call": round(sdk_us),
            "sdk_over_bare_cpu": round(sdk_us / bare_us, 2),
        }
        print(json.dumps(line), flush=True)


def _per_post_us(work: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    work()
    return round((time.perf_counter() - started) / max(1, count) * 1e6, 1)


def _text_work(posts: list[dict[str, str]]) -> dict[str, float]:
    """Microseconds per post of the text work, each part timed on its own."""
    from signalsmith.analyze.llm.prompt import load_prompt
    from signalsmith.analyze.offline import OfflineAnalyzer
    from signalsmith.analyze.route import is_chatter
    from signalsmith.dedup import quick_fingerprint
    from signalsmith.domain import Post

    extractor, offline, template = (
        TickerExtractor(load_symbol_book()),
        OfflineAnalyzer(),
        load_prompt(None),
    )
    shaped = [Post(id=p["id"], title=p["title"], body=p["body"]) for p in posts]
    found = [extractor.extract(post.text) for post in shaped]
    asked = [(p, t) for p, t in zip(shaped, found, strict=True) if t and not is_chatter(p.text, t)]
    n = len(shaped)
    return {
        "tickers_us_per_post": _per_post_us(lambda: [extractor.extract(p.text) for p in shaped], n),
        "fingerprint_us_per_post": _per_post_us(
            lambda: [quick_fingerprint(p.text) for p in shaped], n
        ),
        "chatter_check_us_per_post": _per_post_us(
            lambda: [is_chatter(p.text, t) for p, t in zip(shaped, found, strict=True)], n
        ),
        "asked_posts": len(asked),
        "lexicon_us_per_asked_post": _per_post_us(
            lambda: [offline.analyze_now(p, t) for p, t in asked], len(asked)
        ),
        "prompt_us_per_asked_post": _per_post_us(
            lambda: [template.messages(p, t) for p, t in asked], len(asked)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=12_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="signalsmith worker processes, 64 in flight shared among them (CPU: all of them)",
    )
    parser.add_argument(
        "--only",
        default="posts",
        help="signalsmith run --only: the posts pipeline by default (its fan-out consumers, "
        "the SQL store among them, run as their own processes in production); '' for all",
    )
    parser.add_argument(
        "--text-only", action="store_true", help="time the per-post text work alone, in-process"
    )
    parser.add_argument(
        "--sdk-only", action="store_true", help="time the LLM client alone against the bare one"
    )
    args = parser.parse_args()
    posts = realistic_posts(args.posts, seed=5)
    if args.text_only:
        print(json.dumps({"posts": len(posts), **_text_work(posts)}), flush=True)
        return
    prompts = _prompts(posts)
    print(json.dumps({"posts": len(posts), "asking": len(prompts), **describe(posts)}), flush=True)
    fake = FakeProcess(4, args.latency_ms, {})
    url = fake.start()
    ratios = []
    try:
        if args.sdk_only:
            eventloop.run(_bare(url, prompts, fake))  # the fake warmed up, as below
            _sdk_only(url, prompts, fake, args.rounds)
            return
        # The fake warmed up over every prompt: it answers a prompt it has seen from its cache,
        # so neither client's round pays for the fake's own analysis on this shared machine.
        eventloop.run(_bare(url, prompts, fake))
        for round_number in range(1, args.rounds + 1):
            bare_calls, bare_s, bare_cpu = eventloop.run(_bare(url, prompts, fake, held=True))
            ours_calls, ours_s, ours_cpu = _signalsmith(
                url, posts, fake, args.only, args.workers, expected=len(prompts)
            )
            bare_rate, ours_rate = bare_calls / bare_s, ours_calls / ours_s
            ratios.append(ours_rate / bare_rate)
            line = {
                "round": round_number,
                "bare_calls_per_s": round(bare_rate, 1),
                "signalsmith_calls_per_s": round(ours_rate, 1),
                "ratio": round(ratios[-1], 3),
                "ideal_calls_per_s": round(IN_FLIGHT * 1000 / args.latency_ms, 1),
                "bare": bare_cpu,
                "signalsmith": ours_cpu,
            }
            print(json.dumps(line), flush=True)
    finally:
        fake.stop()
    print(json.dumps({"median_ratio": round(statistics.median(ratios), 3)}), flush=True)


if __name__ == "__main__":
    main()
