"""The trading system's helper: one call queues a signal on the real Redis and gives its id;
a signal that is not JSON, a Redis that refuses connections, and one that accepts them and
never answers all give None within the timeout, never an exception."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis as sync_redis

from signalsmith.strategy.submit import AsyncSignalSubmitter, SignalSubmitter
from tests.conftest import free_port

pytestmark = pytest.mark.redis
SIGNAL = {
    "symbol": "AAPL",
    "side": "buy",
    "price": 189.5,
    "timestamp": datetime(2026, 12, 4, 14, 30, tzinfo=UTC),
    "strategy": "sma_cross",
    "indicators": {"rsi": 58.2, "atr": Decimal("2.1")},
}
TIMEOUT_S = 0.2


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a Redis that hangs)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_signal_is_queued_with_its_id(stream_env: dict[str, str]) -> None:
    stream = stream_env["STREAM"] + ":strategy"
    submitter = SignalSubmitter(stream_env["REDIS_URL"], stream=stream, timeout_s=TIMEOUT_S)
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        made = submitter.submit(SIGNAL)
        kept = submitter.submit({**SIGNAL, "signal_id": "sig-42"})
        entries = client.xrange(stream)
    finally:
        submitter.close()
        client.close()
    assert made is not None
    assert len(made) == 32
    assert kept == "sig-42"
    sent = [json.loads(fields[b"data"]) for _id, fields in entries]
    assert [item["signal_id"] for item in sent] == [made, "sig-42"]
    assert sent[0]["timestamp"] == "2026-12-04T14:30:00+00:00"
    assert sent[0]["indicators"] == {"rsi": 58.2, "atr": 2.1}


@pytest.mark.parametrize("bad", [{"price": float("nan")}, {"indicators": object()}])
def test_a_signal_that_is_not_json_is_refused_quietly(
    stream_env: dict[str, str], bad: dict[str, object]
) -> None:
    stream = stream_env["STREAM"] + ":strategy"
    submitter = SignalSubmitter(stream_env["REDIS_URL"], stream=stream, timeout_s=TIMEOUT_S)
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        assert submitter.submit({**SIGNAL, **bad}) is None
        assert client.xlen(stream) == 0
    finally:
        submitter.close()
        client.close()


def test_a_redis_that_refuses_or_hangs_costs_the_timeout_not_an_exception(
    silent_server: int,
) -> None:
    for port in (free_port(), silent_server):
        submitter = SignalSubmitter(f"redis://127.0.0.1:{port}/0", timeout_s=TIMEOUT_S)
        started = time.monotonic()
        try:
            assert submitter.submit(SIGNAL) is None
        finally:
            submitter.close()
        assert time.monotonic() - started < 10 * TIMEOUT_S  # bounded, whatever the server does


async def test_the_async_helper_queues_and_survives_a_hanging_redis(
    stream_env: dict[str, str], silent_server: int
) -> None:
    stream = stream_env["STREAM"] + ":strategy"
    submitter = AsyncSignalSubmitter(stream_env["REDIS_URL"], stream=stream, timeout_s=TIMEOUT_S)
    hanging = AsyncSignalSubmitter(f"redis://127.0.0.1:{silent_server}/0", timeout_s=TIMEOUT_S)
    try:
        assert await submitter.submit({**SIGNAL, "signal_id": "a-1"}) == "a-1"
        assert await hanging.submit(SIGNAL) is None
    finally:
        await submitter.aclose()
        await hanging.aclose()
