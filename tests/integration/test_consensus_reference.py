"""The commit script's consensus arithmetic equals its Python reference (``signalsmith.consensus``):
random batches go through the real script on the real Redis and through the reference, and the
daily hashes and the spike signals must agree at the precision the script prints them."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pytest
from redis.asyncio import Redis

from signalsmith.consensus import (
    DayTotals,
    Mention,
    RollingView,
    Spike,
    ViewConfig,
    Window,
    day_consensus,
)
from signalsmith.engine.outcome import Commit, Record
from signalsmith.sink.consensus import ConsensusPart, HashUpdate, RollingConfig
from signalsmith.sink.redis_publish import RedisCommitter
from signalsmith.source.redis_streams import GroupRef

pytestmark = pytest.mark.redis

TICKERS = ("NVDA", "AMD", "TSLA")
DATES = ("2026-11-20", "2026-11-21")
VERDICTS = ("BUY", "SELL", "HOLD")


class Straddled(Exception):
    """A batch was committed across a bucket boundary: which bucket the script used is unknown."""


@dataclass(frozen=True)
class Post:
    ticker: str
    date: str
    confidence: float
    score: float
    verdict: str
    story: str
    author: str  # "" for none

    @property
    def mention(self) -> Mention:
        return Mention(
            self.ticker, self.confidence, self.score, self.verdict, self.story, self.author
        )


def _config(prefix: str, *, window_s: int, bucket_s: int, baseline_buckets: int) -> RollingConfig:
    return RollingConfig(
        dead_zone=0.1,
        hash_ttl_s=3_600,
        window_s=window_s,
        bucket_s=bucket_s,
        baseline_buckets=baseline_buckets,
        spike_factor=1.5,
        spike_min_mentions=2.0,
        spike_stream=f"{prefix}:spikes",
        spike_maxlen=0,
    )


def _post(rng: random.Random, tag: str, ticker: str | None = None) -> Post:
    """A post with a story and an author out of small pools (``tag`` keeps the pools apart)."""
    return Post(
        ticker=ticker or rng.choice(TICKERS),
        date=rng.choice(DATES),
        confidence=round(rng.choice((0.0, 0.03, rng.uniform(0, 1))), 3),
        score=round(rng.uniform(-1, 1), 3),
        verdict=rng.choice(VERDICTS),
        story=f"{tag}s{rng.randrange(6)}",
        author=rng.choice(("", f"{tag}a1", f"{tag}a2", f"{tag}a3")),
    )


@dataclass
class Reference:
    """What the script should have left: the reference fed the same posts in the same order."""

    config: RollingConfig
    view: RollingView = field(init=False)
    days: dict[tuple[str, str], DayTotals] = field(default_factory=dict)
    windows: dict[tuple[str, str], Window] = field(default_factory=dict)
    day_spikes: dict[tuple[str, str], Spike] = field(default_factory=dict)
    spikes: list[tuple[Post, Spike]] = field(default_factory=list)

    def __post_init__(self) -> None:
        config = self.config
        self.view = RollingView(
            ViewConfig(
                window_s=config.window_s,
                bucket_s=config.bucket_s,
                baseline_buckets=config.baseline_buckets,
                spike_factor=config.spike_factor,
                spike_min=config.spike_min_mentions,
                dead_zone=config.dead_zone,
            )
        )

    def batch(self, posts: list[Post], now: float) -> None:
        for post in posts:
            day = (post.ticker, post.date)
            self.days.setdefault(day, DayTotals()).fold(post.confidence, post.score, post.verdict)
            spike = self.view.add(post.mention, now)
            self.windows[day] = self.view.window(post.ticker)
            if spike is not None:
                self.day_spikes[day] = spike
                self.spikes.append((post, spike))
        self.view.store()
        for totals in self.days.values():
            totals.store()

    def day_fields(self, day: tuple[str, str]) -> dict[str, str]:
        totals, window = self.days[day], self.windows[day]
        consensus = day_consensus(totals, self.config.dead_zone)
        fields = {
            "verdict": consensus.verdict.value,
            "confidence": f"{consensus.confidence:.4f}",
            "ensemble_score": f"{consensus.score:.4f}",
            "posts": str(consensus.posts),
            "buy": str(consensus.buy),
            "sell": str(consensus.sell),
            "hold": str(consensus.hold),
            "weight_sum": f"{totals.weight_sum:.14g}",
            "weighted_score": f"{totals.weighted_score:.14g}",
            "confidence_sum": f"{totals.confidence_sum:.14g}",
            "reasoning": consensus.reasoning,
            "window_s": str(self.config.window_s),
            "window_posts": str(window.posts),
            "window_mentions": f"{window.mentions:.3f}",
            "window_buy": f"{window.buy:.3f}",
            "window_sell": f"{window.sell:.3f}",
            "window_hold": f"{window.hold:.3f}",
            "window_score": f"{window.score:.4f}",
            "window_verdict": window.verdict.value,
        }
        spike = self.day_spikes.get(day)
        if spike is not None:
            fields["spike_mentions"] = f"{spike.mentions:.3f}"
            fields["spike_ratio"] = f"{spike.ratio:.2f}"
        return fields


class Run:
    """Commits batches of posts through the real script and the reference alike."""

    def __init__(self, redis: Redis, prefix: str, config: RollingConfig) -> None:
        self.redis, self.prefix, self.config = redis, prefix, config
        self.reference = Reference(config)
        self.stream = f"{prefix}:in"
        self._committer = RedisCommitter(
            redis, GroupRef(self.stream, "g", "c"), ConsensusPart(config)
        )
        self._count = 0

    async def commit(self, posts: list[Post]) -> None:
        if self._count == 0:
            await self.redis.xgroup_create(self.stream, "g", id="0", mkstream=True)
        ids = [(await self.redis.xadd(self.stream, {"n": "1"})).decode() for _ in posts]
        await self.redis.xreadgroup("g", "c", {self.stream: ">"})
        commits = [self._commit(entry_id, post) for entry_id, post in zip(ids, posts, strict=True)]
        before = time.time()
        applied = await self._committer.commit(commits)
        bucket_s = self.config.bucket_s
        if math.floor(time.time() / bucket_s) != math.floor(before / bucket_s):
            raise Straddled
        assert all(applied)
        self.reference.batch(posts, before)  # the script's clock is read within the same bucket

    def _commit(self, entry_id: str, post: Post) -> Commit:
        self._count += 1
        rolling = f"{self.prefix}:r:{post.ticker}"
        envelope = f'{{"n":{self._count},"synthesis":{{"own":1}},"kind":"post"}}'.encode()
        update = HashUpdate(
            key=self.day_key((post.ticker, post.date)),
            ticker=post.ticker,
            trade_date=post.date,
            confidence=post.confidence,
            score=post.score,
            verdict=post.verdict,
            published_at="2026-11-21T00:00:00Z",
            correlation_id=f"c{self._count}",
            arena_id="arena",
            envelope=envelope,
            synthesis_at=envelope.index(b"{", 1),
            synthesis_len=len(b'{"own":1}'),
            kind="post",
            rolling_key=rolling,
            story_key=f"{rolling}:story:{post.story}",
            author_key=f"{rolling}:author:{post.author}" if post.author else "",
            asset_class="equity",
        )
        return Commit(entry_id, (Record(f"{self.prefix}:out", {"data": envelope}),), (update,))

    def day_key(self, day: tuple[str, str]) -> str:
        return f"{self.prefix}:d:{day[0]}:{day[1]}"

    async def check(self) -> None:
        """Every daily hash and every spike signal equal the reference's."""
        for day in self.reference.days:
            raw = await self.redis.hgetall(self.day_key(day))
            stored = {name.decode(): value.decode() for name, value in raw.items()}
            stored["reasoning"] = json.loads(stored["json"])["synthesis"]["reasoning"]
            expected = self.reference.day_fields(day)
            assert {name: stored.get(name) for name in expected} == expected, day
            if day not in self.reference.day_spikes:
                assert "spike_json" not in stored, day
        rows = await self.redis.xrange(self.config.spike_stream)
        published = [json.loads(fields[b"data"]) for _id, fields in rows]
        assert [_spike_view(envelope) for envelope in published] == [
            _expected_spike(post, spike) for post, spike in self.reference.spikes
        ]


def _spike_view(envelope: Any) -> dict[str, object]:
    """The parts of a spike signal the reference decides (the envelope as parsed JSON)."""
    decision, meta = envelope["decision"], envelope["meta"]
    synthesis = decision["synthesis"]
    return {
        "kind": decision["kind"],
        "ticker": decision["target"]["ticker"],
        "trade_date": decision["target"]["trade_date"],
        "verdict": synthesis["verdict"],
        "confidence": synthesis["confidence"],
        "score": synthesis["ensemble_score"],
        "reasoning": synthesis["reasoning"],
        **meta["spike"],
    }


def _expected_spike(post: Post, spike: Spike) -> dict[str, object]:
    return {
        "kind": "spike",
        "ticker": spike.ticker,
        "trade_date": post.date,
        "verdict": spike.verdict.value,
        "confidence": float(f"{spike.confidence:.4f}"),
        "score": float(f"{spike.score:.4f}"),
        "reasoning": spike.reasoning,
        "bucket_start": spike.bucket_start,
        "bucket_s": spike.bucket_s,
        "mentions": float(f"{spike.mentions:.3f}"),
        "posts": spike.posts,
        "baseline": float(f"{spike.baseline:.4f}"),
        "ratio": float(f"{spike.ratio:.2f}"),
    }


def _attempts(prefix: str) -> Iterator[str]:
    """Fresh key prefixes for up to three attempts: a run that straddles a bucket boundary is
    run again from scratch."""
    for attempt in range(3):
        yield f"{prefix}:{attempt}"


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_random_batches_in_one_bucket_match_the_reference(
    redis: Redis, prefix: str, seed: int
) -> None:
    """One bucket a day: the consensus, the story and author discounts, and a new ticker's
    spikes, over batches of every size."""
    rng = random.Random(seed)
    posts = [_post(rng, "") for _ in range(150)]
    for attempt in _attempts(prefix):
        config = _config(attempt, window_s=86_400, bucket_s=86_400, baseline_buckets=7)
        run = Run(redis, attempt, config)
        try:
            start = 0
            while start < len(posts):
                size = rng.choice((1, 2, 5, 17, 40))
                await run.commit(posts[start : start + size])
                start += size
        except Straddled:
            continue
        await run.check()
        assert len(run.reference.spikes) >= 2
        return
    pytest.fail("every attempt straddled a bucket boundary")


async def _at_bucket_start(bucket_s: int) -> None:
    """Wait for the next bucket to begin (and a little), so its batches fit inside it."""
    now = time.time()
    await asyncio.sleep((math.floor(now / bucket_s) + 1) * bucket_s + 0.05 - now)


async def _run_buckets(
    redis: Redis, prefix: str, make: Callable[[str], RollingConfig], plan: list[list[list[Post]]]
) -> Run:
    """Commits each bucket's batches (none: a bucket without posts) in a bucket of its own, one
    bucket after another."""
    for attempt in _attempts(prefix):
        config = make(attempt)
        run = Run(redis, attempt, config)
        try:
            for batches in plan:
                await _at_bucket_start(config.bucket_s)
                for batch in batches:
                    await run.commit(batch)
        except Straddled:
            continue
        return run
    pytest.fail("every attempt straddled a bucket boundary")


def _plan(seed: int, buckets: int) -> list[list[list[Post]]]:
    """Per bucket, one or two batches of 0 to 6 posts per ticker; stories and authors are the
    bucket's own, so no count outlives its bucket (the counters live window_s seconds by the
    server's clock, which the reference cannot see to the millisecond)."""
    rng = random.Random(seed)
    plan: list[list[list[Post]]] = []
    for bucket in range(buckets):
        posts = [
            _post(rng, f"b{bucket}", ticker)
            for ticker in TICKERS
            for _ in range(rng.choice((0, 1, 2, 3, 6)))
        ]
        rng.shuffle(posts)
        cut = rng.randrange(len(posts) + 1)
        plan.append([batch for batch in (posts[:cut], posts[cut:]) if batch])
    return plan


async def test_buckets_age_and_spikes_measure_against_the_baseline(
    redis: Redis, prefix: str
) -> None:
    """Buckets of a second: posts leave the window, the baseline spans the buckets before, and
    each bucket may spike once per ticker."""
    make = partial(_config, window_s=2, bucket_s=1, baseline_buckets=3)
    run = await _run_buckets(redis, prefix, make, _plan(7, 6))
    await run.check()
    spikes = [spike for _post, spike in run.reference.spikes]
    assert any(spike.baseline > 0 for spike in spikes)
    assert len({spike.bucket for spike in spikes}) >= 2
    assert any(w.posts < run.reference.days[day].posts for day, w in run.reference.windows.items())


async def test_a_baseline_shorter_than_the_window_keeps_the_mentions_the_window_needs(
    redis: Redis, prefix: str
) -> None:
    """A post in buckets 0, 2 and 3 of a three-bucket window with a one-bucket baseline: at
    bucket 3 the window holds the posts of buckets 2 and 3 only."""
    make = partial(_config, window_s=3, bucket_s=1, baseline_buckets=1)
    post = Post("NVDA", DATES[0], 0.5, 0.5, "BUY", "", "")
    plan = [[[replace(post, story=f"s{n}")]] if n != 1 else [] for n in range(4)]
    run = await _run_buckets(redis, prefix, make, plan)
    await run.check()
