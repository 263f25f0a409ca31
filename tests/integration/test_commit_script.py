"""The commit script folds a batch in memory and writes each hash once: committing posts as one
batch must leave exactly the state that committing them one call at a time leaves."""

from __future__ import annotations

import json
import random
import re
import time

import pytest
from redis.asyncio import Redis

from signalsmith.engine.outcome import Commit, Record
from signalsmith.sink.consensus import ConsensusPart, HashUpdate, RollingConfig
from signalsmith.sink.redis_publish import RedisCommitter
from signalsmith.source.redis_streams import GroupRef

pytestmark = pytest.mark.redis

BUCKET_S = 86_400  # one bucket a day: a run crossing midnight UTC is repeated
TICKERS = ("NVDA", "AMD")
DATES = ("2026-11-20", "2026-11-21")
_NOW_ISO = re.compile(r'"published_at":"[^"]*"')


def _config(spikes: str) -> RollingConfig:
    return RollingConfig(
        dead_zone=0.1,
        hash_ttl_s=3_600,
        window_s=BUCKET_S,
        bucket_s=BUCKET_S,
        baseline_buckets=7,
        spike_factor=2.0,
        spike_min_mentions=4.0,
        spike_stream=spikes,
        spike_maxlen=0,
    )


def _posts(seed: int, count: int) -> list[dict[str, object]]:
    """Posts over two tickers and two trade dates, with repeated stories and authors."""
    rng = random.Random(seed)
    return [
        {
            "ticker": rng.choice(TICKERS),
            "date": rng.choice(DATES),
            "confidence": round(rng.uniform(0.2, 0.95), 3),
            "score": round(rng.uniform(-1, 1), 3),
            "verdict": rng.choice(("BUY", "SELL", "HOLD")),
            "story": f"s{rng.randrange(count // 2)}",
            "author": rng.choice(("", "a1", "a2", "a3")),
            "n": n,
        }
        for n in range(count)
    ]


def _commit(prefix: str, entry_id: str, post: dict[str, object]) -> Commit:
    ticker, n = post["ticker"], post["n"]
    rolling = f"{prefix}:r:{ticker}"
    envelope = f'{{"post":{n},"synthesis":{{"own":1}},"kind":"post"}}'.encode()
    update = HashUpdate(
        key=f"{prefix}:d:{ticker}:{post['date']}",
        ticker=str(ticker),
        trade_date=str(post["date"]),
        confidence=float(post["confidence"]),  # type: ignore[arg-type]
        score=float(post["score"]),  # type: ignore[arg-type]
        verdict=str(post["verdict"]),
        published_at=f"2026-11-21T00:00:{n:02}Z",
        correlation_id=f"c{n}",
        arena_id="arena",
        envelope=envelope,
        synthesis_at=envelope.index(b"{", 1),
        synthesis_len=len(b'{"own":1}'),
        kind="post",
        rolling_key=rolling,
        story_key=f"{rolling}:story:{post['story']}",
        author_key=f"{rolling}:author:{post['author']}" if post["author"] else "",
        asset_class="equity",
    )
    record = Record(f"{prefix}:out", {"data": envelope})
    return Commit(entry_id, (record,), (update,))


async def _apply(redis: Redis, prefix: str, posts: list[dict[str, object]], batch: int) -> None:
    stream = f"{prefix}:in"
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    ids = [(await redis.xadd(stream, {"n": str(p["n"])})).decode() for p in posts]
    await redis.xreadgroup("g", "c", {stream: ">"})
    committer = RedisCommitter(
        redis, GroupRef(stream, "g", "c"), ConsensusPart(_config(f"{prefix}:out"))
    )
    commits = [_commit(prefix, entry_id, post) for entry_id, post in zip(ids, posts, strict=True)]
    for start in range(0, len(commits), batch):
        assert all(await committer.commit(commits[start : start + batch]))
    assert (await redis.xpending(stream, "g"))["pending"] == 0


def _rounded(value: bytes) -> str:
    """Running totals kept in memory for a batch skip the rounding that storing them after every
    post applies (14 significant digits): compare them to 9."""
    text = value.decode()
    try:
        return f"{float(text):.9g}"
    except ValueError:
        return text


async def _state(redis: Redis, prefix: str) -> dict[str, object]:
    """Every key the commits wrote, by name without the prefix, the run's clock masked."""
    state: dict[str, object] = {}
    async for key in redis.scan_iter(match=f"{prefix}:*", count=10_000):
        name = key.decode().removeprefix(prefix)
        kind = await redis.type(key)
        if kind == b"hash":
            fields = {k.decode(): _rounded(v) for k, v in (await redis.hgetall(key)).items()}
            fields.pop("spike_at", None)
            if "spike_json" in fields:
                fields["spike_json"] = _NOW_ISO.sub("", fields["spike_json"])
            state[name] = fields
        elif kind == b"stream" and name == ":out":
            rows = await redis.xrange(key)
            state[name] = [_NOW_ISO.sub("", f[b"data"].decode()) for _id, f in rows]
        elif kind == b"string":
            state[name] = (await redis.get(key)).decode()
    return state


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_one_batch_leaves_the_state_of_one_post_at_a_time(
    redis: Redis, prefix: str, seed: int
) -> None:
    posts = _posts(seed, 120)
    for _attempt in range(3):
        day = int(time.time() // BUCKET_S)
        await _apply(redis, f"{prefix}:one", posts, batch=1)
        await _apply(redis, f"{prefix}:all", posts, batch=len(posts))
        if int(time.time() // BUCKET_S) == day:
            break
        for key in [k async for k in redis.scan_iter(match=f"{prefix}:*", count=10_000)]:
            await redis.delete(key)
    one, batched = await _state(redis, f"{prefix}:one"), await _state(redis, f"{prefix}:all")
    assert one == batched
    outputs = one[":out"]
    assert isinstance(outputs, list)
    assert sum('"kind":"spike"' in data for data in outputs) >= 2  # spikes were exercised
    assert any(":story:" in name for name in one)
    last = posts[-1]
    daily = one[f":d:{last['ticker']}:{last['date']}"]
    assert isinstance(daily, dict)
    assert daily["published_at"].endswith(f"{last['n']:02}Z")
    consensus = json.loads(daily["json"])  # the newest post's envelope, its synthesis replaced
    assert (consensus["post"], consensus["kind"]) == (last["n"], "consensus")
    assert consensus["synthesis"]["verdict"] == daily["verdict"]


async def test_an_entry_twice_in_one_batch_is_applied_once(redis: Redis, prefix: str) -> None:
    posts = _posts(4, 2)
    stream = f"{prefix}:in"
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    entry_id = (await redis.xadd(stream, {"n": "0"})).decode()
    await redis.xreadgroup("g", "c", {stream: ">"})
    committer = RedisCommitter(
        redis, GroupRef(stream, "g", "c"), ConsensusPart(_config(f"{prefix}:out"))
    )
    commit = _commit(prefix, entry_id, posts[0])
    assert await committer.commit([commit, commit]) == [True, False]
    daily = await redis.hgetall(f"{prefix}:d:{posts[0]['ticker']}:{posts[0]['date']}")
    assert daily[b"posts"] == b"1"
    assert await redis.xlen(f"{prefix}:out") == 1


async def test_ownership_is_checked_per_entry_across_the_batch_range(
    redis: Redis, prefix: str
) -> None:
    """The script finds a batch's pending entries with one XPENDING over its id range: entries of
    ours between them (not in the batch) do not hide the batch's last entry, and an entry another
    consumer claimed meanwhile is skipped while the rest are applied."""
    stream = f"{prefix}:in"
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    ids = [(await redis.xadd(stream, {"n": str(n)})).decode() for n in range(10)]
    await redis.xreadgroup("g", "c", {stream: ">"})
    await redis.xclaim(stream, "g", "other", 0, [ids[5]])
    committer = RedisCommitter(
        redis, GroupRef(stream, "g", "c"), ConsensusPart(_config(f"{prefix}:out"))
    )
    posts = _posts(5, 10)
    batch = [_commit(prefix, ids[n], posts[n]) for n in (9, 0, 5)]
    assert await committer.commit(batch) == [True, True, False]
    pending = await redis.xpending_range(stream, "g", "-", "+", 20)
    assert sorted(row["message_id"].decode() for row in pending) == sorted(
        ids[n] for n in range(1, 9)
    )
    assert await redis.xlen(f"{prefix}:out") == 2
