"""Hostile stream entries against the real worker and Redis: nothing crashes it, nothing stalls
it, and every entry ends acknowledged once, decided or dead-lettered with the reason."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from signalsmith.analyze.fake import FunctionAnalyzer
from signalsmith.api import render_ready
from signalsmith.deadletters import list_dead_letters, replay_dead_letters
from signalsmith.domain import Opinion, Post, Verdict
from signalsmith.embedded import EmbeddedRedis
from signalsmith.engine.engine import Engine
from signalsmith.engine.outcome import Commit, Record
from signalsmith.engine.stats import EngineStats
from signalsmith.errors import CommitRefused, TransientError
from signalsmith.lifecycle import build_posts, consensus_part, group_ref
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import Settings, load_settings
from signalsmith.sink.redis_publish import RedisCommitter
from tests.conftest import private_redis_server

pytestmark = pytest.mark.redis
CLI = [sys.executable, "-m", "signalsmith"]


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, **extra: str) -> Settings:
    for name, value in {**env, **extra}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


async def _run(worker: Engine) -> EngineStats:
    return await asyncio.wait_for(worker.run(asyncio.Event(), until_idle=0.3), timeout=60)


async def _reasons(redis: Redis, settings: Settings) -> dict[str, str]:
    """Dead letters: the entry id each one names -> its reason."""
    letters = await list_dead_letters(redis, settings.dead_letter_stream, 10_000)
    ids = [letter.entry_id for letter in letters]
    assert len(ids) == len(set(ids)), "an entry was dead-lettered twice"
    return {letter.entry_id: letter.reason for letter in letters}


async def _envelopes(redis: Redis, stream: str) -> list[dict[str, object]]:
    return [json.loads(fields[b"data"]) for _id, fields in await redis.xrange(stream)]


async def _pending(redis: Redis, settings: Settings) -> int:
    return int((await redis.xpending(settings.stream, settings.group))["pending"])


@pytest.mark.slow
def test_the_cli_survives_entries_that_used_to_crash_it(stream_env: dict[str, str]) -> None:
    """Deep nesting (RecursionError), a 400-digit ``created`` (OverflowError), a 5,000-digit
    integer (ValueError), 5,000 fields (the commit script's unpack limit) and dates in year 1
    and 9999: ``run --until-idle`` exits 0, each is dead-lettered with its reason, the valid post
    after them is decided, and nothing stays pending."""
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    stream = stream_env["STREAM"]
    killers = {
        "too_deep": {"data": "[" * 10_000 + "]" * 10_000},
        "overflow": {"data": '{"title": "Buy $NVDA", "created": ' + "9" * 400 + "}"},
        "digits": {"data": '{"title": "Buy $NVDA", "created": ' + "9" * 5_000 + "}"},
        "fields": {f"f{i}": "x" for i in range(5_000)},
        "year 1": {"title": "Buy $NVDA", "created": "0001-01-01T00:00:00Z"},
        "year 9999": {"title": "Buy $NVDA", "created": "9999-12-31T00:00:00Z"},
    }
    ids = {name: client.xadd(stream, fields).decode() for name, fields in killers.items()}
    valid = client.xadd(stream, {"title": "Loading up on $NVDA calls, to the moon"}).decode()
    env = {**stream_env, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [*CLI, "run", "--until-idle", "1"],
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    letters = {
        fields[b"entry_id"].decode(): fields[b"reason"].decode()
        for _id, fields in client.xrange(f"{stream}:dlq")
    }
    assert letters == {
        ids["too_deep"]: "too_deep",
        ids["overflow"]: "bad_timestamp",
        ids["digits"]: "bad_json",
        ids["fields"]: "too_many_fields",
        ids["year 1"]: "bad_timestamp",
        ids["year 9999"]: "bad_timestamp",
    }
    published = [json.loads(f[b"data"]) for _id, f in client.xrange(stream_env["SIGNAL_STREAM"])]
    assert [p["decision"]["source"]["entry_id"] for p in published] == [valid]
    assert client.xpending(stream, stream_env["GROUP"])["pending"] == 0
    client.close()


def _base_env() -> dict[str, str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "REDIS_PASSWORD", "SIGNALSMITH_CONFIG"}
    return {k: v for k, v in os.environ.items() if k not in dropped}


async def test_an_entry_with_thousands_of_fields_is_one_bounded_dead_letter(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 5,000-field entry that stalled the pipeline (and re-wrote the batch's earlier dead
    letters on every retry) is dead-lettered once, its fields packed into one ``orig`` field,
    beside an earlier dead letter of the same batch, also written once; ``dlq replay`` restores
    every field, bytes that are not UTF-8 included."""
    settings = _settings(stream_env, monkeypatch)
    await redis.xadd(settings.stream, {"title": ""})
    wide = {f"f{i}".encode(): b"x" for i in range(5_000)} | {b"\xff name": b"\xfe\x00value"}
    wide_id = (await redis.xadd(settings.stream, wide)).decode()  # type: ignore[arg-type]
    await redis.xadd(settings.stream, {"title": "Short $TSLA here, it is going to zero"})

    stats = await _run(build_posts(settings, redis, Metrics()))

    assert (stats.read, stats.acknowledged, stats.dead_lettered) == (3, 3, 2)
    assert await redis.xlen(settings.dead_letter_stream) == 2
    assert sorted((await _reasons(redis, settings)).values()) == ["no_text", "too_many_fields"]
    assert await _pending(redis, settings) == 0
    raw = await redis.xrange(settings.dead_letter_stream)
    packed = next(fields for _id, fields in raw if fields[b"entry_id"].decode() == wide_id)
    assert len(packed) < 10
    assert b"orig" in packed

    replayed = await replay_dead_letters(
        redis, settings.dead_letter_stream, f"{settings.stream}:again", reason="too_many_fields"
    )
    assert replayed == 1
    [(_id, restored)] = await redis.xrange(f"{settings.stream}:again")
    assert restored == wide


async def test_a_refused_batch_is_committed_entry_by_entry_without_writing_twice(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key of the wrong type (the legacy stream clobbered by a string) makes Redis refuse the
    commits that write to it. That is no outage: the worker does not stall or retry forever;
    the refused entries are dead-lettered with the reason, the others committed, and no envelope
    is published twice or published for an entry that was dead-lettered."""
    legacy = f"{stream_env['STREAM']}:legacy"
    settings = _settings(stream_env, monkeypatch, OUTPUT_FORMAT="both", LEGACY_STREAM=legacy)
    await redis.set(legacy, "not a stream")
    texts = [
        "Loading up on $NVDA calls, to the moon",
        "$AAPL earnings call is on Thursday.",
        "Dumping all my $TSLA, this is going to zero",
        "$MSFT announced a conference schedule.",
    ] * 5
    for text in texts:
        await redis.xadd(settings.stream, {"text": text})

    stats = await _run(build_posts(settings, redis, Metrics()))

    reasons = await _reasons(redis, settings)
    assert set(reasons.values()) == {"commit_refused"}
    assert len(reasons) == 10  # every BUY and SELL; the HOLDs write nothing to the legacy key
    assert stats.acknowledged == len(texts)
    assert await _pending(redis, settings) == 0
    published = await _envelopes(redis, settings.signal_stream)
    sources = [p["decision"]["source"]["entry_id"] for p in published]  # type: ignore[index]
    assert len(sources) == len(set(sources))
    assert not set(sources) & set(reasons)


async def test_the_commit_script_refuses_before_its_first_write(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch with one record too large for the script is refused whole, and nothing of it
    (not the valid commit before it) is written or acknowledged."""
    settings = _settings(stream_env, monkeypatch)
    await redis.xgroup_create(settings.stream, settings.group, id="0", mkstream=True)
    first = (await redis.xadd(settings.stream, {"text": "a"})).decode()
    second = (await redis.xadd(settings.stream, {"text": "b"})).decode()
    await redis.xreadgroup(settings.group, settings.consumer, {settings.stream: ">"})
    committer = RedisCommitter(redis, group_ref(settings), consensus_part(settings))
    ok = Record(settings.signal_stream, {"data": "{}"})
    huge = Record(settings.signal_stream, {f"f{i}": "x" for i in range(5_000)})

    with pytest.raises(CommitRefused, match=r"5000|10000"):
        await committer.commit([Commit(first, (ok,)), Commit(second, (huge,))])

    assert await redis.xlen(settings.signal_stream) == 0
    assert await _pending(redis, settings) == 2
    assert await committer.commit([Commit(first, (ok,))]) == [True]


async def test_producer_tickers_are_checked_and_capped_and_the_rest_recorded(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Producer-supplied tickers: unknown symbols are not decided (recorded in the envelope),
    decisions stop at MAX_TICKERS_PER_POST (the rest recorded), only unknown ones is a dead
    letter, and 5,000 symbols is a dead letter rather than 5,000 decisions."""
    settings = _settings(stream_env, monkeypatch, MAX_TICKERS_PER_POST="3", PUBLISH="all")
    await redis.xadd(
        settings.stream,
        {"text": "Buying all of these", "tickers": "NVDA,AMD,T0,AAPL,MSFT,TSLA,ZZZZQ"},
    )
    await redis.xadd(settings.stream, {"text": "Buying", "tickers": "T0,T1,T2"})
    many = ",".join(f"T{i}" for i in range(5_000))
    await redis.xadd(settings.stream, {"text": "Buying", "tickers": many})

    metrics = Metrics()
    await _run(build_posts(settings, redis, metrics))

    assert sorted((await _reasons(redis, settings)).values()) == [
        "too_many_tickers",
        "unknown_tickers",
    ]
    published = await _envelopes(redis, settings.signal_stream)
    assert [p["decision"]["target"]["ticker"] for p in published] == ["NVDA", "AMD", "AAPL"]  # type: ignore[index]
    skipped = published[0]["meta"]["tickers_skipped"]  # type: ignore[index]
    assert skipped == {
        "unknown": {"count": 2, "symbols": ["T0", "ZZZZQ"]},
        "over_limit": {"count": 2, "symbols": ["MSFT", "TSLA"]},
    }
    rendered = metrics.render().decode()
    assert 'signalsmith_tickers_skipped_total{reason="over_limit"} 2.0' in rendered
    assert 'signalsmith_tickers_skipped_total{reason="unknown"} 2.0' in rendered


async def test_a_rating_firm_gets_no_decision_and_is_recorded(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A post where a bank rates another stock decides the stock only, also when the producer
    listed the bank among its tickers: the bank is recorded in meta.tickers_skipped (reason
    "rater") and named in the stock's evidence."""
    settings = _settings(stream_env, monkeypatch, PUBLISH="all")
    await redis.xadd(settings.stream, {"text": "Tesla downgraded to sell at UBS"})
    await redis.xadd(settings.stream, {"text": "UBS cuts Tesla to sell", "tickers": "TSLA,UBS"})

    metrics = Metrics()
    await _run(build_posts(settings, redis, metrics))

    published = await _envelopes(redis, settings.signal_stream)
    assert [p["decision"]["target"]["ticker"] for p in published] == ["TSLA", "TSLA"]  # type: ignore[index]
    for envelope in published:
        decision = envelope["decision"]
        assert decision["synthesis"]["verdict"] == "SELL"  # type: ignore[index]
        assert "rated by UBS" in decision["agent_signals"][0]["key_factors"]  # type: ignore[index]
        skipped = envelope["meta"]["tickers_skipped"]  # type: ignore[index]
        assert skipped == {"rater": {"count": 1, "symbols": ["UBS"]}}
    assert 'signalsmith_tickers_skipped_total{reason="rater"} 2.0' in metrics.render().decode()


def test_the_embedded_state_directory_is_private(tmp_path: Path) -> None:
    """The embedded Redis keeps every post in its data file: its directory is 0700, also when
    it existed before with looser rights."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    server = EmbeddedRedis(state)
    server.start()
    try:
        assert state.stat().st_mode & 0o777 == 0o700
    finally:
        server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own (its memory limit is changed); its URL."""
    with private_redis_server(tmp_path) as port:
        yield f"redis://127.0.0.1:{port}/0"


async def _until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_a_server_that_cannot_write_is_waited_out_not_blamed_on_entries(
    private_redis: str, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis out of memory (OOM) refuses every commit: that is an outage, not bad input. The
    worker reports commits failing, dead-letters nothing and keeps the entries pending; once
    Redis can write again, every entry is committed exactly once."""
    settings = _settings(stream_env, monkeypatch, REDIS_URL=private_redis)
    redis = Redis.from_url(private_redis)
    texts = ["Loading up on $NVDA calls, to the moon", "Dumping all my $TSLA, going to zero"]
    for text in texts * 10:
        await redis.xadd(settings.stream, {"text": text})
    await redis.xgroup_create(settings.stream, settings.group, id="0")
    await redis.config_set("maxmemory", 1)
    worker = build_posts(settings, redis, Metrics())
    running = asyncio.create_task(worker.run(asyncio.Event(), until_idle=0.3))

    await _until(lambda: not worker.stats.commits_ok)
    assert render_ready({"posts": worker.stats}).status == 503
    assert worker.stats.dead_lettered == 0
    assert await redis.xlen(settings.signal_stream) == 0
    assert not running.done()

    await redis.config_set("maxmemory", 0)
    stats = await asyncio.wait_for(running, timeout=60)
    assert stats.commits_ok
    assert render_ready({"posts": stats}).status == 200
    assert (stats.acknowledged, stats.dead_lettered) == (20, 0)
    assert await redis.xlen(settings.signal_stream) == 20
    assert await _pending(redis, settings) == 0
    await redis.aclose()


def _buy(post: Post, ticker: str) -> Opinion:
    if "stall" in post.text:
        raise TransientError("provider busy: 503 from the provider")
    return Opinion(Verdict.BUY, 0.9, 0.8, ("test",))


async def test_with_waiting_analyzers_killers_are_dead_letters_at_once(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With analyzers that wait (an LLM), an entry that used to crash its task (deep JSON) is
    dead-lettered at its first delivery with its own reason, not retried until MAX_DELIVERIES
    as "unknown (failed in another consumer)"; an entry that keeps failing transiently is
    dead-lettered with the error this consumer saw."""
    settings = _settings(stream_env, monkeypatch, MAX_DELIVERIES="2", CLAIM_IDLE_MS="100")
    worker = build_posts(settings, redis, Metrics(), [FunctionAnalyzer(_buy)])
    deep = (await redis.xadd(settings.stream, {"data": "[" * 10_000 + "]" * 10_000})).decode()
    stuck = (await redis.xadd(settings.stream, {"text": "$AMD stall"})).decode()
    await redis.xadd(settings.stream, {"text": "$AMD fine"})

    stats = await asyncio.wait_for(worker.run(asyncio.Event(), until_idle=0.5), timeout=60)

    letters = {
        letter.entry_id: letter
        for letter in await list_dead_letters(redis, settings.dead_letter_stream, 10)
    }
    assert letters[deep].reason == "too_deep"
    assert letters[stuck].reason == "max_deliveries"
    assert "503 from the provider" in letters[stuck].detail
    assert "unknown" not in letters[stuck].detail
    assert (stats.dead_lettered, await _pending(redis, settings)) == (2, 0)
    assert await redis.xlen(settings.signal_stream) == 1


async def test_a_clobbered_signal_stream_dead_letters_the_posts_that_need_it_and_counts_true(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGNAL_STREAM overwritten by a string: every post with a ticker needs it (its envelope,
    or a spike its decision may raise) and is dead-lettered with ``commit_refused``; an entry
    with nothing to publish is still acknowledged, and the dead letters themselves go through
    (a batch of dead letters does not touch the signal stream). The counts match the stream."""
    settings = _settings(stream_env, monkeypatch, PUBLISH="all")
    await redis.set(settings.signal_stream, "not a stream")
    await redis.xadd(settings.stream, {"text": "Loading up on $NVDA calls, to the moon"})
    await redis.xadd(settings.stream, {"text": "$MSFT announced a conference schedule."})
    await redis.xadd(settings.stream, {"text": "nothing to see here, no ticker at all"})

    stats = await _run(build_posts(settings, redis, Metrics()))

    reasons = await _reasons(redis, settings)
    assert sorted(reasons.values()) == ["commit_refused", "commit_refused"]
    assert (stats.acknowledged, stats.dead_lettered) == (3, 2)
    assert await redis.xlen(settings.dead_letter_stream) == 2
    assert await _pending(redis, settings) == 0


async def test_a_clobbered_dead_letter_stream_is_waited_out_not_miscounted(
    redis: Redis, stream_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When even the dead letter is refused (DLQ_STREAM overwritten by a string), no entry is to
    blame: the poison entry stays pending, /readyz says the commits fail, nothing is counted as
    dead-lettered, and once the key is fixed the entry is dead-lettered exactly once."""
    settings = _settings(stream_env, monkeypatch)
    await redis.set(settings.dead_letter_stream, "not a stream")
    poison = (await redis.xadd(settings.stream, {"title": ""})).decode()
    worker = build_posts(settings, redis, Metrics())
    running = asyncio.create_task(worker.run(asyncio.Event(), until_idle=0.3))

    await _until(lambda: not worker.stats.commits_ok)
    assert render_ready({"posts": worker.stats}).status == 503
    assert worker.stats.dead_lettered == 0
    assert await _pending(redis, settings) == 1

    await redis.delete(settings.dead_letter_stream)
    stats = await asyncio.wait_for(running, timeout=60)
    assert await _reasons(redis, settings) == {poison: "no_text"}
    assert (stats.dead_lettered, await _pending(redis, settings)) == (1, 0)
