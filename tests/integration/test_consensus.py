"""The per-ticker rolling view and mention spikes, end to end: posts go in on the input stream,
a real ``signalsmith run`` process decides them, and the commit script keeps the view."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import redis as sync_redis

from tests.contracts import v1

pytestmark = [pytest.mark.redis, pytest.mark.slow]

BULL = "loading up on calls, this is going to the moon 🚀"
BEAR = "buying puts, this is going to zero"


def _env(stream_env: dict[str, str], **extra: str) -> dict[str, str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**base, **stream_env, "PUBLISH": "all", **extra}


@contextmanager
def _worker(env: dict[str, str]) -> Iterator[sync_redis.Redis]:
    """A running worker, and a client to feed it and read what it wrote."""
    process = subprocess.Popen(
        [sys.executable, "-m", "signalsmith", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = sync_redis.Redis.from_url(env["REDIS_URL"])
    try:
        yield client
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0
        client.close()


def _post(client: sync_redis.Redis, env: dict[str, str], n: int, author: str, body: str) -> None:
    fields = {"title": f"$SOFI thought {n}", "body": body, "author": author}
    client.xadd(env["STREAM"], fields)


def _settle(client: sync_redis.Redis, env: dict[str, str], posts: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        groups = client.xinfo_groups(env["STREAM"]) if client.exists(env["STREAM"]) else []
        if groups and groups[0]["lag"] == 0 and groups[0]["pending"] == 0:
            decided = _posts_decided(client, env)
            if decided >= posts:
                return
        assert time.monotonic() < deadline, "the worker did not decide every post"
        time.sleep(0.05)


def _posts_decided(client: sync_redis.Redis, env: dict[str, str]) -> int:
    rows = client.xrange(env["SIGNAL_STREAM"])
    return sum(1 for _id, fields in rows if v1.is_post(json.loads(fields[b"data"])))


def _synthesis(client: sync_redis.Redis, env: dict[str, str], body: str) -> dict[str, Any]:
    """The synthesis of the first published post whose body is ``body``."""
    bodies = {
        entry_id: fields[b"body"].decode() for entry_id, fields in client.xrange(env["STREAM"])
    }
    for _id, fields in client.xrange(env["SIGNAL_STREAM"]):
        raw = json.loads(fields[b"data"])
        entry_id = raw["decision"]["source"]["entry_id"].encode()
        if bodies.get(entry_id) == body:
            return dict(raw["decision"]["synthesis"])
    raise AssertionError(f"no decision for {body!r}")


def _day_hash(client: sync_redis.Redis, env: dict[str, str]) -> dict[str, str]:
    day = datetime.now(UTC).date().isoformat()
    raw = client.hgetall(f"{env['DECISION_HASH_PREFIX']}:SOFI:{day}")
    return {k.decode(): v.decode() for k, v in raw.items()}


def _spikes(client: sync_redis.Redis, env: dict[str, str]) -> list[dict[str, Any]]:
    found = []
    for _id, fields in client.xrange(env["SIGNAL_STREAM"]):
        assert v1.decode(fields[b"data"]) is not None
        raw = json.loads(fields[b"data"])
        if raw["decision"]["kind"] == "spike":
            found.append(raw)
    return found


def test_rolling_view_discounts_reposts_and_loud_authors(stream_env: dict[str, str]) -> None:
    """Four bullish posts by one author and a bearish story reposted three times count less
    than as many independent voices: 1/sqrt(k) for an author's k-th post, 1/k for a story's
    k-th copy. The view is kept in the day's decision hash."""
    env = _env(stream_env)
    with _worker(env) as client:
        for n in range(4):
            _post(client, env, n, "loud", BULL)
        for n in range(3):
            _post(client, env, 9, f"reposter-{n}", BEAR)  # the same text three times
        _post(client, env, 20, "quiet", BEAR)
        _settle(client, env, 8)
        view = _day_hash(client, env)
        bull, bear = _synthesis(client, env, BULL), _synthesis(client, env, BEAR)
    loud = sum(1 / math.sqrt(k) for k in range(1, 5))
    reposted = 1 + 1 / 2 + 1 / 3
    assert int(view["window_posts"]) == 8
    assert float(view["window_buy"]) == pytest.approx(loud, abs=1e-3)
    assert float(view["window_sell"]) == pytest.approx(reposted + 1, abs=1e-3)
    assert float(view["window_mentions"]) == pytest.approx(loud + reposted + 1, abs=1e-3)
    # The confidence-weighted score, each post's weight discounted as above...
    weights = [(bull, loud), (bear, reposted + 1)]
    total = sum(s["confidence"] * d for s, d in weights)
    expected = sum(s["confidence"] * d * s["ensemble_score"] for s, d in weights) / total
    assert float(view["window_score"]) == pytest.approx(expected, abs=1e-3)
    # ...where the day's plain consensus weighs all eight alike.
    plain = sum(s["confidence"] * s["ensemble_score"] for s in (bull, bear))
    plain /= bull["confidence"] + bear["confidence"]
    assert float(view["ensemble_score"]) == pytest.approx(plain, abs=1e-3)
    assert int(view["posts"]) == 8
    assert int(view["window_s"]) == 3600


def test_mention_spike_is_published_once_and_kept(stream_env: dict[str, str]) -> None:
    """A quiet baseline, then many distinct voices at once: one spike signal (kind "spike") on
    the signal stream, valid v1, and kept in the day's hash. A single author spamming as many
    posts right after does not raise another."""
    env = _env(
        stream_env,
        CONSENSUS_WINDOW_S="60",
        SPIKE_BUCKET_S="2",
        SPIKE_BASELINE_S="20",
        SPIKE_FACTOR="3",
        SPIKE_MIN_MENTIONS="10",
    )
    with _worker(env) as client:
        for n in range(4):  # one post every bucket: the baseline
            _post(client, env, n, f"regular-{n}", BULL)
            time.sleep(2.0)
        _settle(client, env, 4)
        assert _spikes(client, env) == []
        for n in range(30):
            _post(client, env, 100 + n, f"voice-{n}", BULL)
        _settle(client, env, 34)
        spikes = _spikes(client, env)
        time.sleep(2.0)  # the next bucket: the spammer alone
        for n in range(30):
            _post(client, env, 200 + n, "spammer", BEAR)
        _settle(client, env, 64)
        after = _spikes(client, env)
        view = _day_hash(client, env)
    assert 1 <= len(spikes) <= 2  # the burst may straddle two buckets; each spikes at most once
    assert len({s["meta"]["spike"]["bucket_start"] for s in spikes}) == len(spikes)
    first = spikes[0]
    assert first["decision"]["target"]["ticker"] == "SOFI"
    assert first["decision"]["synthesis"]["verdict"] == "BUY"
    assert first["meta"]["spike"]["mentions"] >= 10
    assert first["meta"]["spike"]["ratio"] >= 3
    assert after == spikes  # 30 posts by one author count ~9.5 mentions: no new spike
    assert json.loads(view["spike_json"])["decision"]["kind"] == "spike"
    assert float(view["spike_ratio"]) >= 3


def _log(client: sync_redis.Redis, env: dict[str, str], kind: str) -> list[dict[str, Any]]:
    rows = client.xrange(env["DECISION_STREAM"])
    found = [json.loads(fields[b"data"]) for _id, fields in rows]
    return [raw for raw in found if raw["decision"]["kind"] == kind]


def test_a_consensus_that_turns_is_logged_once_per_turn(stream_env: dict[str, str]) -> None:
    """The day's consensus goes BUY (first post: no turn yet, nothing logged), then to SELL as
    bearish posts outweigh it, through HOLD on the way (a consensus envelope on the decision log
    per turn, valid v1, with an id of its own), then stays SELL (nothing more)."""
    env = _env(stream_env)
    with _worker(env) as client:
        _post(client, env, 1, "first", BULL)
        _settle(client, env, 1)
        assert _log(client, env, "consensus") == []
        for n in range(4):
            _post(client, env, 10 + n, f"bear-{n}", BEAR)
            _settle(client, env, 2 + n)
        turns = _log(client, env, "consensus")
        _post(client, env, 30, "bear-late", BEAR)
        _settle(client, env, 6)
        after = _log(client, env, "consensus")
        posts = {raw["correlation_id"] for raw in _log(client, env, "post")}
        view = _day_hash(client, env)
    verdicts = [turn["decision"]["synthesis"]["verdict"] for turn in turns]
    assert verdicts in (["SELL"], ["HOLD", "SELL"])
    for turn in turns:
        assert v1.decode(json.dumps(turn).encode()) is not None
        assert turn["decision"]["target"]["ticker"] == "SOFI"
        assert turn["correlation_id"].endswith(":consensus")
        assert turn["correlation_id"].removesuffix(":consensus") in posts
        assert "consensus of" in turn["decision"]["synthesis"]["reasoning"]
    assert len({turn["correlation_id"] for turn in turns}) == len(turns)
    assert after == turns  # still SELL: no new turn
    assert view["verdict"] == "SELL"
