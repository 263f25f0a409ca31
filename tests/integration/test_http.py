"""The HTTP endpoints of a real ``signalsmith run`` process: probes' methods, start-up mistakes
about where to listen, and /health under a flood of requests while posts flow."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import aiohttp
import httpx
import pytest
from redis.asyncio import Redis

from tests.serving import CLI, serving

pytestmark = [pytest.mark.redis, pytest.mark.slow]
ENDPOINTS = ("/livez", "/readyz", "/health", "/metrics")
FLOOD_CLIENTS = 200
FLOOD_SECONDS = 4.0


def _env(extra: dict[str, str]) -> dict[str, str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "REDIS_PASSWORD", "SIGNALSMITH_CONFIG", "HTTP_HOST"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**base, "PYTHONUNBUFFERED": "1", **extra}


def _run_and_fail(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run"], env=_env(env), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def worker(stream_env: dict[str, str]) -> Iterator[str]:
    """A running ``signalsmith run``; its base URL once it is ready. Stopped with SIGTERM,
    which must end it with status 0."""
    with serving(["run"], _env({**stream_env, "LOG_LEVEL": "WARNING"})) as url:
        yield url


def test_head_answers_like_get_without_a_body_and_openapi_documents_the_api(worker: str) -> None:
    """Monitoring probes send HEAD: every endpoint answers it as GET, with no body. The OpenAPI
    schema and its page at /docs describe the query API (served from the package: no CDN)."""
    with httpx.Client(base_url=worker, timeout=30) as client:
        for path in ENDPOINTS:
            got = client.get(path)
            head = client.head(path)
            assert (got.status_code, head.status_code) == (200, 200), path
            assert got.content
            assert head.content == b""
            assert head.headers["content-type"] == got.headers["content-type"]
        schema = client.get("/openapi.json")
        assert schema.status_code == 200
        assert "/api/decisions" in schema.json()["paths"]
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        assert "/docs-assets/swagger-ui-bundle.js" in page.text
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
        assert client.get("/redoc").status_code == 404


def test_a_request_whose_body_never_comes_does_not_hold_up_the_others(worker: str) -> None:
    """A client that announces a body and never sends it gets 408 after a second; meanwhile and
    after, other requests are answered (a liveness probe must not time out behind it)."""
    host, port = worker.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as stalled:
        stalled.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        with httpx.Client(base_url=worker, timeout=5) as client:
            assert client.get("/livez").status_code == 200
        assert stalled.recv(100).startswith(b"HTTP/1.1 408")


def test_http_port_in_use_stops_with_one_line_and_exit_2(stream_env: dict[str, str]) -> None:
    """HTTP_PORT already taken by another socket: exit status 2, one line naming HTTP_PORT and
    where it tried to listen, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run_and_fail({**stream_env, "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "HTTP_PORT" in lines[0]
    assert f"127.0.0.1:{port}" in lines[0]


def test_http_host_not_an_address_stops_with_one_line_and_exit_2(
    stream_env: dict[str, str],
) -> None:
    """HTTP_HOST that is no address: exit status 2, one line naming HTTP_HOST, no traceback."""
    result = _run_and_fail({**stream_env, "HTTP_HOST": "999.1.1.1"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "HTTP_HOST" in lines[0]
    assert "999.1.1.1" in lines[0]


async def _flood(url: str, until: float, seen: collections.Counter[str]) -> None:
    """FLOOD_CLIENTS keep-alive clients, each asking for /health and /metrics in turn as soon
    as its previous answer came, until ``until``."""

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        while time.monotonic() < until:
            path = ("/health", "/metrics")[index % 2]
            index += 1
            try:
                async with session.get(url + path) as response:
                    await response.read()
                    seen[f"{path} {response.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                seen[f"{path} {type(exc).__name__}"] += 1

    connector = aiohttp.TCPConnector(limit=FLOOD_CLIENTS)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(one(session, i)) for i in range(FLOOD_CLIENTS)]
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _produce(redis: Redis, stream: str, until: float) -> int:
    """Posts into the input stream, a batch every 50 ms, until ``until``; how many."""
    sent = 0
    while time.monotonic() < until:
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(100):
                pipe.xadd(stream, {"text": f"$NVDA calls, loading up before earnings {sent + i}"})
            await pipe.execute()
        sent += 100
        await asyncio.sleep(0.05)
    return sent


async def _probe(url: str, until: float) -> list[tuple[int, dict[str, object]]]:
    """/health on a fresh connection, again and again, as a monitoring probe asks it."""
    answers = []
    while time.monotonic() < until:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.get(url + "/health")
        answers.append((response.status_code, json.loads(response.content)))
        await asyncio.sleep(0.3)
    return answers


async def test_health_stays_ok_under_a_flood_while_posts_flow(
    worker: str, redis: Redis, stream_env: dict[str, str]
) -> None:
    """200 clients hammer /health and /metrics while posts flow and the worker is busy: every
    /health answer (the flood's and a separate probe's) is 200 with Redis reachable, and the
    worker keeps processing posts meanwhile."""
    until = time.monotonic() + FLOOD_SECONDS
    seen: collections.Counter[str] = collections.Counter()
    _flooded, sent, probed = await asyncio.gather(
        _flood(worker, until, seen),
        _produce(redis, stream_env["STREAM"], until),
        _probe(worker, until),
    )
    assert probed
    for status, body in probed:
        assert status == 200, body
        assert body["redis"] == {
            "reachable": True,
            "where": stream_env["REDIS_URL"],
            "embedded": False,
        }
    assert seen["/health 200"] + seen["/metrics 200"] > 0
    assert {key for key in seen if not key.endswith(" 200")} == set(), seen
    processed = int(probed[-1][1]["counts"]["processed"])  # type: ignore[index]
    assert 0 < processed <= sent
