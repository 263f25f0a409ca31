"""A database outage under a running `signalsmith run`: the pipeline goes on, the store waits
the database out (and /readyz says so), and once it is back every decision is stored, once.

The outage is real network loss: PostgreSQL is reached through a TCP relay on loopback that the
test cuts (every connection dropped, new ones refused) and restores.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis as sync_redis

from tests.conftest import count_decisions, free_port, in_thread

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
POSTS = 3_000


class Relay:
    """Forwards 127.0.0.1:<port> to PostgreSQL until cut; restored on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.port = free_port()
        self._upstream = upstream
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            every, self._sockets = self._sockets, []
            if self._listener is not None:
                every.append(self._listener)
                self._listener = None
        for sock in every:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65_536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def relay() -> Iterator[Relay]:
    running = Relay(("127.0.0.1", 5432))
    running.start()
    try:
        yield running
    finally:
        running.cut()


def _ready(url: str) -> dict[str, object] | None:
    with contextlib.suppress(httpx.HTTPError):
        return dict(httpx.get(f"{url}/readyz", timeout=2).json())
    return None


def _wait(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _store_commits(url: str) -> object:
    pipelines = (_ready(url) or {}).get("pipelines")
    return pipelines.get("store", {}).get("commits") if isinstance(pipelines, dict) else None


def test_a_database_outage_is_waited_out_and_nothing_is_lost(
    stream_env: dict[str, str], postgres_url: str, relay: Relay
) -> None:
    relayed = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    port = free_port()
    env = {**stream_env, "DATABASE_URL": relayed, "HTTP_PORT": str(port), "STORE_BATCH": "50"}
    dropped = {"REDIS_URL", "REDIS_ADDR", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    env = {**{k: v for k, v in os.environ.items() if k not in dropped}, **env}
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "signalsmith", "run", "--until-idle", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(lambda: (_ready(url) or {}).get("ready") is True, "never ready")
        relay.cut()
        with client.pipeline(transaction=False) as pipe:
            for i in range(POSTS):
                pipe.xadd(env["STREAM"], {"title": f"$NVDA calls #{i}", "body": "🚀"})
            pipe.execute()
        # The pipeline goes on without the database; the store says it cannot commit.
        _wait(lambda: client.xlen(env["DECISION_STREAM"]) >= POSTS, "the pipeline stalled")
        _wait(lambda: _store_commits(url) is False, "readyz never said the store cannot commit")
        down = _ready(url) or {}
        assert down["ready"] is False
        relay.start()
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
        client.close()
    assert process.returncode == 0, err[-2000:]
    assert b"stored: read" in out
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        ids = [
            json.loads(f[b"data"])["correlation_id"]
            for _i, f in client.xrange(env["DECISION_STREAM"])
        ]
        assert client.xpending(env["DECISION_STREAM"], "signalsmith-store")["pending"] == 0
    finally:
        client.close()
    assert len(ids) == len(set(ids)) >= POSTS
    assert in_thread(count_decisions(postgres_url)) == len(ids)
