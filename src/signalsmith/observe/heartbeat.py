"""A heartbeat key with a TTL per running worker, and the check that process supervisors run.

The key disappears by itself when a worker dies or loses Redis, so ``signalsmith check`` is a
liveness probe that needs no HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from typing import cast

from redis.exceptions import RedisError

from signalsmith.engine.stats import EngineStats
from signalsmith.normalize import utc_now
from signalsmith.redisclient import RedisClient


def heartbeat_key(prefix: str, stream: str, group: str, consumer: str) -> str:
    return f"{prefix}:{stream}:{group}:{consumer}"


def _beat(stats: EngineStats, consumer: str) -> str:
    return json.dumps(
        {
            "consumer": consumer,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "at": utc_now().isoformat(),
            "healthy": stats.redis_ok and stats.group_ready,
            "read": stats.read,
            "acknowledged": stats.acknowledged,
            "dead_lettered": stats.dead_lettered,
            "retried": stats.retried,
        }
    )


async def beat_until(
    redis: RedisClient,
    stop: asyncio.Event,
    *,
    key: str,
    ttl_s: float,
    stats: EngineStats,
    consumer: str,
) -> None:
    """Refresh the key every second (at most a third of its TTL) until stopped; remove it on a
    clean exit. A beat is one SET: cheap enough to keep ``check`` current."""
    interval = min(1.0, ttl_s / 3)
    while not stop.is_set():
        with contextlib.suppress(RedisError):  # no Redis, no beat: the key expires, as it should
            await redis.set(key, _beat(stats, consumer), px=int(ttl_s * 1000))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    with contextlib.suppress(RedisError):
        await redis.delete(key)


async def live_workers(redis: RedisClient, pattern: str) -> list[dict[str, object]]:
    """Every live heartbeat matching ``pattern`` (on a cluster, found on every node and read
    key by key in one pipeline: the keys need not share a slot)."""
    keys = [key async for key in redis.scan_iter(match=pattern, count=1000)]
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
        values = cast(list[bytes | None], await pipe.execute()) if keys else []
    return [json.loads(value) for value in values if value is not None]
