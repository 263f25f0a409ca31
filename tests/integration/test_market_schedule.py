"""INSIGHT_SCHEDULE against the real Redis: a (product, tick) is queued once however many
schedulers race for it, each tick is fired as it comes, a Redis failure is logged and retried
without ever raising, and through ``signalsmith run`` the requests become insights."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import cast

import pytest
import redis as sync_redis
import structlog
from redis.asyncio import Redis

from signalsmith.market.requests import request_from_fields
from signalsmith.market.schedule import Schedule, next_tick, parse_schedules, tick_at, tick_text
from signalsmith.market.scheduler import InsightScheduler, lock_key
from signalsmith.observe.metrics import Metrics
from tests.conftest import RedisTarget, free_port

pytestmark = pytest.mark.redis
Entries = list[tuple[bytes, dict[bytes, bytes]]]
WEEK = 604_800


async def _requests(redis: Redis, stream: str) -> list[tuple[str, str]]:
    """(product, correlation id) of every request on ``stream``, read as the pipeline reads."""
    entries = cast(Entries, await redis.xrange(stream))
    read = [
        request_from_fields({k.decode(): v.decode() for k, v in fields.items()}, stream, "0-0")
        for _id, fields in entries
    ]
    return [(request.product_id, request.correlation_id) for request in read]


def _queued(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "signalsmith_scheduled_requests_total", {"outcome": outcome}
    )
    return value or 0.0


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_schedulers_racing_for_one_tick_queue_one_request_per_product(
    redis_target: RedisTarget, redis: Redis, prefix: str
) -> None:
    """Four schedulers (as four processes would, each with its own connection) fire the same
    tick three times each at once: each product is queued once, by one of them."""
    stream = f"{prefix}:market"
    (schedule,) = parse_schedules("BTC-USD,ETH-USD,SOL-USD@15m")
    tick = tick_at(time.time(), schedule.interval_s)
    clients = [Redis.from_url(redis_target.url) for _ in range(4)]
    try:
        schedulers = [InsightScheduler(client, stream, [schedule]) for client in clients]
        fired = await asyncio.gather(*(s.fire(schedule, tick) for s in schedulers * 3))
    finally:
        for client in clients:
            await client.aclose()
    queued = sorted(product for one in fired for product in one.queued)
    assert queued == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert all(sorted(one.queued + one.taken) == sorted(schedule.products) for one in fired)
    stamp = tick_text(tick)
    assert sorted(await _requests(redis, stream)) == [
        (product, f"sched-{product}-{stamp}") for product in ("BTC-USD", "ETH-USD", "SOL-USD")
    ]
    entries = cast(Entries, await redis.xrange(stream))
    lock = lock_key(stream, "ETH-USD", tick)
    assert await redis.get(lock) in {entry_id for entry_id, _ in entries}
    assert 0 < await redis.ttl(lock) <= 2 * schedule.interval_s


async def test_a_product_queued_by_another_schedule_is_not_queued_again(
    redis: Redis, prefix: str
) -> None:
    """During a rolling change of INSIGHT_SCHEDULE two processes may hold different schedules
    sharing a product: the lock is per (product, tick), so it is still queued once."""
    stream = f"{prefix}:market"
    old, new = Schedule(("BTC-USD",), 3_600), Schedule(("BTC-USD", "ETH-USD"), 900)
    tick = tick_at(time.time(), 3_600)  # a tick of both
    first = await InsightScheduler(redis, stream, [old]).fire(old, tick)
    second = await InsightScheduler(redis, stream, [new]).fire(new, tick)
    assert (first.queued, first.taken) == (("BTC-USD",), ())
    assert (second.queued, second.taken) == (("ETH-USD",), ("BTC-USD",))
    assert sorted(p for p, _ in await _requests(redis, stream)) == ["BTC-USD", "ETH-USD"]


async def test_each_tick_is_fired_as_it_comes_and_stop_ends_the_task(
    redis: Redis, prefix: str
) -> None:
    """A clock 0.5 s before a minute's boundary: the task fires the current tick at once, the
    next at the boundary, and nothing more until stopped."""
    stream = f"{prefix}:market"
    (schedule,) = parse_schedules("BTC-USD,ETH-USD@1m")
    boundary = next_tick(time.time(), 60) + 60  # at least a minute away on the real clock
    offset = boundary - 0.5 - time.time()
    metrics = Metrics()
    scheduler = InsightScheduler(
        redis, stream, [schedule], metrics=metrics, clock=lambda: time.time() + offset
    )
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        (task,) = await scheduler.start(stop, repeat=True)

        async def first_tick() -> bool:
            return len(await _requests(redis, stream)) >= 2

        async def both_ticks() -> bool:
            return len(await _requests(redis, stream)) >= 4

        await _until(first_tick)
        assert len(await _requests(redis, stream)) == 2, "the next tick before its time"
        await _until(both_ticks)
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 2)
    ids = sorted(correlation for _, correlation in await _requests(redis, stream))
    stamps = (tick_text(boundary - 60), tick_text(boundary))
    assert ids == sorted(f"sched-{p}-{s}" for p in ("BTC-USD", "ETH-USD") for s in stamps)
    assert _queued(metrics, "queued") == 4
    scheduled = [e for e in logs if e["event"] == "scheduled market requests"]
    assert [(e["tick"], e["queued"]) for e in scheduled] == [
        (stamp, ["BTC-USD", "ETH-USD"]) for stamp in stamps
    ]
    assert logs[-1]["event"] == "schedule stopped"
    assert logs[-1]["queued"] == 4


async def test_a_redis_error_on_a_tick_is_logged_and_the_tick_retried(
    redis: Redis, prefix: str
) -> None:
    """MARKET_STREAM holding a string makes Redis refuse the tick: it is logged and counted,
    nothing is written, and once the key is fixed the task queues the same tick."""
    stream = f"{prefix}:market"
    await redis.set(stream, "not a stream")
    (schedule,) = parse_schedules("SOL-USD@1w")
    metrics = Metrics()
    scheduler = InsightScheduler(redis, stream, [schedule], metrics=metrics)
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        (task,) = await scheduler.start(stop, repeat=True)

        async def failed() -> bool:
            return _queued(metrics, "failed") >= 1

        await _until(failed)
        assert not task.done()
        tick = tick_at(time.time(), WEEK)
        assert await redis.exists(lock_key(stream, "SOL-USD", tick)) == 0
        await redis.delete(stream)

        async def queued() -> bool:
            return await redis.exists(stream) == 1

        await _until(queued)
        stop.set()
        await asyncio.wait_for(task, 2)
    assert await _requests(redis, stream) == [("SOL-USD", f"sched-SOL-USD-{tick_text(tick)}")]
    failures = [e for e in logs if e["event"] == "could not queue scheduled requests"]
    assert failures
    assert failures[0]["schedule"] == "SOL-USD@1w"
    assert "ResponseError" in failures[0]["error"]


async def test_once_fires_the_current_tick_before_returning(redis: Redis, prefix: str) -> None:
    """What `run --until-idle` relies on: the requests are on the stream when start() returns,
    and no task is left to fire later ticks."""
    stream = f"{prefix}:market"
    (schedule,) = parse_schedules("BTC-USD,ETH-USD@1w")
    assert (
        await InsightScheduler(redis, stream, [schedule]).start(asyncio.Event(), repeat=False) == []
    )
    stamp = tick_text(tick_at(time.time(), WEEK))
    assert sorted(await _requests(redis, stream)) == [
        ("BTC-USD", f"sched-BTC-USD-{stamp}"),
        ("ETH-USD", f"sched-ETH-USD-{stamp}"),
    ]


@pytest.mark.parametrize("repeat", [False, True])
async def test_redis_unreachable_never_raises_and_stop_still_ends_the_task(repeat: bool) -> None:
    client = Redis(port=free_port(), socket_connect_timeout=0.5)
    metrics = Metrics()
    (schedule,) = parse_schedules("BTC-USD@1h")
    scheduler = InsightScheduler(client, "market-requests", [schedule], metrics=metrics)
    stop = asyncio.Event()
    try:
        tasks = await scheduler.start(stop, repeat=repeat)

        async def failed() -> bool:
            return _queued(metrics, "failed") >= 1

        await _until(failed)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
    finally:
        await client.aclose()
    assert scheduler.queued == 0


# Through `signalsmith run`: the scheduler beside the market pipeline, in real processes.

CANDLES = Path(str(files("signalsmith").joinpath("data", "candles")))


def _env(stream_env: dict[str, str], schedule: str) -> dict[str, str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    return {
        **environ,
        **stream_env,
        "MARKET_EXCHANGE": "",
        "MARKET_CANDLES": str(CANDLES),
        "STORE_ENABLED": "false",
        "LOG_FORMAT": "json",
        "INSIGHT_SCHEDULE": schedule,
    }


def _run(env: dict[str, str], consumer: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "signalsmith", "run", "--until-idle", "1"],
        env={**env, "CONSUMER": consumer},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> list[dict[str, object]]:
    """Waits for a run; returns its JSON log lines."""
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_two_runs_racing_make_one_insight_per_product_and_a_rerun_in_the_tick_none(
    stream_env: dict[str, str],
) -> None:
    """Two `run --until-idle` processes start together with the same schedule: each fires the
    current tick, one wins each product, and the market pipeline (either process) turns each
    request into one insight from the bundled candles. A third run within the tick queues
    nothing."""
    env = _env(stream_env, "BTC-USD,ETH-USD@1w;SOL-USD@1d")
    now = time.time()
    stamps = {"BTC-USD": tick_text(tick_at(now, WEEK)), "ETH-USD": tick_text(tick_at(now, WEEK))}
    stamps["SOL-USD"] = tick_text(tick_at(now, 86_400))
    expected = sorted(f"sched-{product}-{stamp}" for product, stamp in stamps.items())
    runs = [_run(env, f"{stream_env['CONSUMER']}-{n}") for n in range(2)]
    logs = [line for run in runs for line in _finish(run)]
    again = _finish(_run(env, f"{stream_env['CONSUMER']}-2"))
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        requests = client.xlen(env["MARKET_STREAM"])
        insights = [json.loads(f[b"data"]) for _id, f in client.xrange(env["INSIGHT_STREAM"])]
        pending = client.xpending(env["MARKET_STREAM"], env["MARKET_GROUP"])["pending"]
    finally:
        client.close()
    assert requests == 3
    assert pending == 0
    assert sorted(insight["correlation_id"] for insight in insights) == expected
    for insight in insights:
        decision = insight["decision"]
        assert decision["kind"] == "insight"
        assert decision["status"] == "ok"
        assert insight["meta"]["insight"]["candles"]["source"] == "file"
        assert insight["correlation_id"].startswith(f"sched-{decision['target']['ticker']}-")
    scheduled = [line for line in logs if line["event"] == "scheduled market requests"]
    assert sorted(p for line in scheduled for p in cast(list[str], line["queued"])) == sorted(
        stamps
    )
    assert not [line for line in again if line["event"] == "scheduled market requests"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("schedule", "named"),
    [
        ("BTC-USD@15x", "'BTC-USD@15x': '15x' is not an interval"),
        ("BTC-USD,not a product@1h", "'not a product' is not a product id"),
        ("BTC-USD@15m;BTC-USD@1h", "BTC-USD is scheduled twice"),
    ],
)
def test_a_malformed_schedule_stops_start_up_with_one_line(
    stream_env: dict[str, str], schedule: str, named: str
) -> None:
    process = _run(_env(stream_env, schedule), stream_env["CONSUMER"])
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 2, err[-2000:]
    first = err.strip().splitlines()[0]
    assert first.startswith("signalsmith: configuration error: INSIGHT_SCHEDULE: ")
    assert named in first
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        assert client.exists(stream_env["MARKET_STREAM"]) == 0
    finally:
        client.close()
