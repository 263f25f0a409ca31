"""``signalsmith replay``: append a file's posts to the input stream in pipelined batches."""

from __future__ import annotations

from pathlib import Path

from signalsmith.lifecycle import open_redis
from signalsmith.redisclient import RedisClient
from signalsmith.settings import Settings
from signalsmith.source.files import Fields, read_posts

_BATCH = 500


async def replay_file(settings: Settings, path: Path, stream: str) -> int:
    """XADD every non-empty record of ``path`` to ``stream``; returns how many were added."""
    count = 0
    async with open_redis(settings) as handle:
        batch: list[Fields] = []
        for fields in read_posts(path):
            if fields:
                batch.append(fields)
            if len(batch) >= _BATCH:
                count += await _flush(handle.client, stream, batch)
                batch = []
        count += await _flush(handle.client, stream, batch)
    return count


async def _flush(redis: RedisClient, stream: str, batch: list[Fields]) -> int:
    if not batch:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for fields in batch:
            pipe.xadd(stream, fields)  # type: ignore[arg-type]
        await pipe.execute()
    return len(batch)
