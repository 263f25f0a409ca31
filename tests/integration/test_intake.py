"""``StreamIntake`` on a real Redis: a request is queued once per key, and its state follows
what the pipeline's consumer group and dead-letter stream say about its entry, read back
through the same Redis commands the pipeline's engine uses."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from signalsmith.errors import PoisonInput
from signalsmith.intake import IntakeConfig, RequestState, StreamIntake
from signalsmith.strategy.submission import strategy_submission
from tests.conftest import RedisTarget, free_port, private_redis_server
from tests.serving import serving

pytestmark = [pytest.mark.redis]
GROUP = "signalsmith-strategy"


def _body(signal_id: str) -> bytes:
    signal = {"signal_id": signal_id, "symbol": "AAPL", "side": "sell", "price": 10.5}
    return json.dumps({**signal, "timestamp": time.time()}).encode()


@pytest.fixture
def intake(redis_target: RedisTarget, prefix: str) -> StreamIntake:
    config = IntakeConfig(
        stream=f"{prefix}:strategy",
        group=GROUP,
        dead_letter_stream=f"{prefix}:strategy:dlq",
        max_body_bytes=65_536,
        key_prefix=f"{prefix}:requests",
        ttl_s=60,
    )
    return StreamIntake(config, lambda: Redis.from_url(redis_target.url), strategy_submission(50))


async def test_a_request_is_pending_processing_decided_as_the_group_moves(
    intake: StreamIntake, redis: Redis, prefix: str
) -> None:
    stream = f"{prefix}:strategy"
    queued = await intake.submit(_body("s-1"))
    assert queued.entry_id is not None
    assert await intake.state("s-1") == RequestState("pending")  # no group yet
    await redis.xgroup_create(stream, GROUP, id="0")
    assert await intake.state("s-1") == RequestState("pending")  # not read yet
    await redis.xreadgroup(GROUP, "worker-a", {stream: ">"}, count=1)
    assert await intake.state("s-1") == RequestState("processing", deliveries=1)
    await redis.xclaim(stream, GROUP, "worker-b", 0, [queued.entry_id])  # a takeover
    assert await intake.state("s-1") == RequestState("processing", deliveries=2)
    await redis.xack(stream, GROUP, queued.entry_id)
    assert await intake.state("s-1") == RequestState("decided")
    later = await intake.submit(_body("s-2"))
    assert later.entry_id is not None
    assert await intake.state("s-2") == RequestState("pending")  # queued after the last read
    assert await intake.state("never-queued") is None


async def test_a_dead_lettered_request_is_failed_with_the_reason(
    intake: StreamIntake, redis: Redis, prefix: str
) -> None:
    stream = f"{prefix}:strategy"
    queued = await intake.submit(_body("s-3"))
    assert queued.entry_id is not None
    await redis.xgroup_create(stream, GROUP, id="0")
    await redis.xreadgroup(GROUP, "worker-a", {stream: ">"}, count=1)
    await redis.xack(stream, GROUP, queued.entry_id)  # as the engine does with a dead letter
    for number in range(150):  # others' dead letters first: the search pages through them
        fields = {"entry_id": f"1-{number}", "reason": "other", "detail": "-"}
        await redis.xadd(f"{prefix}:strategy:dlq", fields)
    letter = {"entry_id": queued.entry_id, "reason": "bad_signal", "detail": "price: not a number"}
    await redis.xadd(f"{prefix}:strategy:dlq", letter)
    state = await intake.state("s-3")
    assert state == RequestState("failed", "bad_signal", "price: not a number")


async def test_a_key_repeated_is_queued_once_and_a_bad_body_never(
    intake: StreamIntake, redis: Redis, prefix: str
) -> None:
    first = await intake.submit(_body("s-4"))
    again = await intake.submit(_body("s-4"))
    assert first.entry_id is not None
    assert again.entry_id is None
    assert again.key == "s-4"
    assert await redis.get(f"{prefix}:requests:s-4") == first.entry_id.encode()
    assert await redis.ttl(f"{prefix}:requests:s-4") > 50
    with pytest.raises(PoisonInput, match="side"):
        await intake.submit(json.dumps({"symbol": "AAPL", "price": 1}).encode())
    assert await redis.xlen(f"{prefix}:strategy") == 1


def test_a_post_while_redis_is_down_is_a_503_and_the_service_takes_posts_again_after(
    tmp_path: Path,
) -> None:
    """Redis stops under a running service: a POST to either pipeline is answered 503 with
    Retry-After at once (no hang, no crash, no secret in the answer); once Redis is back on
    the same address, POSTs are queued again."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in DROPPED},
        "REDIS_URL": f"redis://:{SECRET}@127.0.0.1:{port}/0",
        "STATE_DIR": str(tmp_path / "state"),
        "HTTP_PORT": "0",
        "BLOCK_MS": "100",
        "LOG_LEVEL": "ERROR",
    }
    signal = json.loads(_body("down-1"))
    command = ["run", "--only", "strategy,market"]
    with contextlib.ExitStack() as back, contextlib.ExitStack() as first:
        first.enter_context(private_redis_server(tmp_path, SECRET, port))
        with serving(command, env) as url, httpx.Client(base_url=url, timeout=10) as client:
            assert client.post("/api/strategy-signals", json=signal).status_code == 202
            first.close()  # Redis stops
            refused = [
                client.post("/api/strategy-signals", json={**signal, "signal_id": "down-2"}),
                client.post("/api/insights", json={"product_id": "BTC-USD"}),
            ]
            assert client.get("/livez").status_code == 200
            back.enter_context(private_redis_server(tmp_path, SECRET, port))  # and is back
            deadline = time.monotonic() + 20
            while (again := client.post("/api/strategy-signals", json=signal)).status_code != 202:
                assert time.monotonic() < deadline, again.text
                time.sleep(0.2)
    for answer in refused:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        assert "Redis" in answer.json()["detail"]
        assert SECRET not in answer.text
    assert again.json()["signal_id"] == "down-1"  # queued again: that Redis kept nothing


SECRET = "s3cret-pass-4417"
DROPPED = {"REDIS_ADDR", "REDIS_URL", "SIGNALSMITH_CONFIG", "HTTP_HOST", "LLM_PROVIDERS"}
