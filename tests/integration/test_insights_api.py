"""/api/insights on a real ``signalsmith run`` process (Redis, SQLite, the bundled candles):
seed 001's request POSTed is answered 202 at once, then read back from the store with its
indicators and envelope; a repeated correlation id is queued once; a request that fails says
so with the reason; bodies that are no request get a 4xx naming the problem, never a 5xx."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import httpx
import pytest
import redis as sync_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving import serving
from tests.unit.test_store_rows import JSON

pytestmark = [pytest.mark.redis, pytest.mark.slow]
SEED = {"correlation_id": "abc-123", "product_id": "BTC-USD", "prompt": "trend_analysis"}
WAIT_S = 30


@pytest.fixture
def service(stream_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A running ``signalsmith run`` with the store and the market pipeline: its base URL."""
    env = {
        **stream_env,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "MARKET_CANDLES": str(files("signalsmith").joinpath("data", "candles")),
        "MARKET_EXCHANGE": "",
        "LOG_LEVEL": "WARNING",
        "MAX_MESSAGE_BYTES": "4096",
    }
    dropped = {"REDIS_ADDR", "REDIS_PASSWORD", "SIGNALSMITH_CONFIG", "HTTP_HOST", "LLM_PROVIDERS"}
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    with serving(["run", "--only", "market,store"], {**environ, **env}) as url:
        yield url, env


def _until_done(client: httpx.Client, correlation_id: str) -> httpx.Response:
    deadline = time.monotonic() + WAIT_S
    while (answer := client.get(f"/api/insights/{correlation_id}")).status_code == 202:
        assert answer.json()["correlation_id"] == correlation_id
        assert answer.json()["state"] in ("pending", "processing", "decided")
        assert time.monotonic() < deadline, "still pending"
        time.sleep(0.05)
    return answer


def test_a_posted_request_is_answered_at_once_then_read_back(
    service: tuple[str, dict[str, str]],
) -> None:
    url, env = service
    with httpx.Client(base_url=url, timeout=10) as client:
        asked = client.post("/api/insights", json=SEED)
        assert asked.status_code == 202, asked.text
        assert asked.headers["location"] == "/api/insights/abc-123"
        queued = asked.json()
        assert (queued["correlation_id"], queued["state"], queued["queued"]) == (
            "abc-123",
            "pending",
            True,
        )
        done = _until_done(client, "abc-123")
        assert done.status_code == 200, done.text
        insight = done.json()
        assert insight["product_id"] == "BTC-USD"
        assert insight["text"].startswith("BTC-USD")
        assert insight["envelope"]["correlation_id"] == "abc-123"
        assert insight["envelope"]["decision"]["kind"] == "insight"
        meta = insight["envelope"]["meta"]["insight"]
        assert insight["indicators"] == meta["indicators"]
        assert insight["direction"] == meta["trend"]["direction"]
        assert insight["verdict"] == insight["envelope"]["decision"]["synthesis"]["verdict"]

        again = client.post("/api/insights", json=SEED)  # a client retrying its POST
        assert again.status_code == 202
        assert (again.json()["queued"], again.json()["entry_id"]) == (False, None)

        generated = client.post("/api/insights", json={"product_id": "eth-usd"}).json()
        assert _until_done(client, generated["correlation_id"]).status_code == 200
        page = client.get("/api/insights", params={"product": "btc-usd"}).json()
        assert [item["correlation_id"] for item in page["items"]] == ["abc-123"]
        both = client.get("/api/insights", params={"limit": 1})
        assert len(both.json()["items"]) == 1
        assert both.json()["next_cursor"]
        older = client.get(
            "/api/insights", params={"limit": 1, "cursor": both.json()["next_cursor"]}
        )
        ids = {
            both.json()["items"][0]["correlation_id"],
            older.json()["items"][0]["correlation_id"],
        }
        assert ids == {"abc-123", generated["correlation_id"]}
        table = client.get("/api/insights", params={"format": "csv"})
        assert table.text.splitlines()[0].startswith("id,correlation_id,product_id,")
        assert len(table.text.splitlines()) == 3
    redis = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        assert redis.xlen(env["MARKET_STREAM"]) == 2  # the repeated POST queued nothing
    finally:
        redis.close()


def test_a_request_that_fails_says_why_and_unknown_ids_are_404(
    service: tuple[str, dict[str, str]],
) -> None:
    url, _env = service
    with httpx.Client(base_url=url, timeout=10) as client:
        asked = client.post(
            "/api/insights", json={"product_id": "NOPE-USD", "correlation_id": "x1"}
        )
        assert asked.status_code == 202
        deadline = time.monotonic() + WAIT_S
        while (answer := client.get("/api/insights/x1")).status_code == 202:
            assert time.monotonic() < deadline, "never failed"
            time.sleep(0.05)
        failed = answer.json()
        assert answer.status_code == 200
        assert (failed["state"], failed["correlation_id"]) == ("failed", "x1")
        assert failed["reason"]
        assert "NOPE-USD" in failed["detail"]
        assert client.get("/api/insights/never-asked").status_code == 404


@pytest.fixture
def shared_client(service: tuple[str, dict[str, str]]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service[0], timeout=10) as client:
        yield client


def test_bodies_that_are_no_request_are_refused_with_the_reason(
    shared_client: httpx.Client,
) -> None:
    client = shared_client
    cases = {
        b"": 422,
        b"not json": 422,
        b"[1, 2]": 422,
        b'{"product_id": "BTC-USD", "prompt": "summarise"}': 422,
        b'{"product_id": "BTC USD"}': 422,
        b'{"product_id": "BTC-USD", "correlation_id": "has space"}': 422,
        b'{"product_id": "BTC-USD", "lookback": 1e309}': 422,
        b"[" * 5_000 + b"]" * 5_000: 413,
        b'{"product_id": "BTC-USD", "candles": [' + b"[1,2,3,4,5,6]," * 1_000 + b"[]]}": 413,
        b'{"a":' * 600 + b"1" + b"}" * 600: 422,
        b'{"product_id": "BTC-USD", "correlation_id": "sched-BTC-USD-2026-12-04T10:00"}': 422,
    }
    for body, status in cases.items():
        answer = client.post("/api/insights", content=body)
        assert answer.status_code == status, (body[:60], answer.text)
        assert answer.json()["detail"]
    _fuzz(client)


def test_the_link_given_back_finds_the_request_whatever_its_id(
    shared_client: httpx.Client,
) -> None:
    client = shared_client
    for key in ("a?b=1", "c#d", "e%41", "f/g"):
        asked = client.post("/api/insights", json={"product_id": "BTC-USD", "correlation_id": key})
        assert asked.status_code == 202, asked.text
        link = asked.headers["location"]
        assert link == asked.json()["result"]
        assert client.get(link).json()["correlation_id"] == key
    made = client.post("/api/insights", json={"product_id": "BTC-USD", "correlation_id": None})
    assert made.status_code == 202
    assert len(made.json()["correlation_id"]) == 32


def _fuzz(client: httpx.Client) -> None:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        body=st.binary(max_size=300)
        | JSON.map(lambda value: json.dumps(value).encode())
        | st.dictionaries(
            st.sampled_from(["product_id", "prompt", "candles", "lookback", "granularity"]), JSON
        ).map(lambda value: json.dumps(value).encode())
    )
    def post(body: bytes) -> None:
        answer = client.post("/api/insights", content=body)
        assert answer.status_code in (202, 413, 422), answer.text
        if answer.status_code == 202:
            assert answer.json()["state"] == "pending"

    post()
