"""The story index in a real Redis: every client (worker process) sees the same stories, one
round trip registers a post, and every key it writes expires."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from signalsmith.dedup import RedisStoryIndex, fingerprint
from tests.conftest import RedisTarget

pytestmark = pytest.mark.redis
STORY = (
    "Intel keeps missing on every roadmap promise. Sold all my INTC today and put it into AMD, "
    "which is actually taking share in data center."
)


def _index(client: Redis, prefix: str) -> RedisStoryIndex:
    return RedisStoryIndex(client, prefix=f"{prefix}:dedup", ttl_s=600, min_similarity=0.6)


async def test_two_clients_see_the_same_story(
    redis: Redis, redis_target: RedisTarget, prefix: str
) -> None:
    """A post registered through one connection is found, exactly and as a near copy, through
    another: the index lives in Redis, not in a process."""
    other = Redis.from_url(redis_target.url)
    try:
        first = await _index(redis, prefix).story_of(STORY)
        exact = await _index(other, prefix).story_of(f"RT @trader: {STORY} https://t.co/x")
        near = await _index(other, prefix).story_of(STORY + "\n\nEDIT: typo")
    finally:
        await other.aclose()
    assert (first.kind, first.key) == ("new", fingerprint(STORY))
    assert (exact.kind, exact.key) == ("exact", first.key)
    assert (near.kind, near.key) == ("near", first.key)
    assert near.similarity >= 0.6


async def test_copies_arriving_at_once_agree_on_the_first(
    redis: Redis, redis_target: RedisTarget, prefix: str
) -> None:
    """Ten clients registering copies concurrently: exactly one story is new, all share its key
    (the lookup and the registration are one atomic script)."""
    clients = [Redis.from_url(redis_target.url) for _ in range(10)]
    try:
        copies = [f"{STORY} (copy {i % 2})" if i % 3 else STORY for i in range(10)]
        stories = await asyncio.gather(
            *(_index(c, prefix).story_of(t) for c, t in zip(clients, copies, strict=True))
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert [s.kind for s in stories].count("new") == 1
    assert len({s.key for s in stories}) == 1


async def test_different_stories_stay_apart_and_every_key_expires(
    redis: Redis, prefix: str
) -> None:
    """An unrelated post is a new story; all keys are under DEDUP_PREFIX with a TTL."""
    index = _index(redis, prefix)
    first = await index.story_of(STORY)
    other = await index.story_of("Bought more $ETH this morning, staking ETF approval is huge.")
    assert other.kind == "new"
    assert other.key != first.key
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:dedup:*")]
    assert keys
    ttls = [await redis.ttl(key) for key in keys]
    assert all(0 < ttl <= 600 for ttl in ttls)
