"""Operating signalsmith: dead-letter inspection and replay, the heartbeat check, and several
worker processes in one group — through the command line, against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis as sync_redis

from tests.contracts import v1

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "-m", "signalsmith", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _write_posts(path: Path, count: int, broken_every: int = 0) -> None:
    with path.open("w") as handle:
        for i in range(count):
            if broken_every and i % broken_every == 0:
                handle.write("{not json at all\n")
            else:
                handle.write(
                    json.dumps({"title": f"$AMD post {i}", "body": "buying calls 🚀"}) + "\n"
                )


def test_dead_letters_can_be_listed_and_replayed(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    """dlq list shows each dead letter with its reason and original fields; dlq replay puts them
    back on the input stream exactly as they were and removes them from the DLQ."""
    posts = tmp_path / "posts.jsonl"
    _write_posts(posts, 20, broken_every=5)
    assert _cli(["replay", str(posts)], stream_env).returncode == 0
    assert _cli(["run", "--until-idle", "0.5"], stream_env).returncode == 0
    listed = _cli(["dlq", "list"], stream_env)
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(letters) == 4
    assert {letter["reason"] for letter in letters} == {"bad_json"}
    assert letters[0]["fields"] == {"data": "{not json at all"}
    replayed = _cli(["dlq", "replay", "--reason", "bad_json"], stream_env)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 4 dead letters" in replayed.stdout
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        assert client.xlen(stream_env["STREAM"] + ":dlq") == 0
        newest = client.xrevrange(stream_env["STREAM"], count=4)
        assert all(fields == {b"data": b"{not json at all"} for _id, fields in newest)
    finally:
        client.close()


def test_check_fails_without_a_live_worker(stream_env: dict[str, str]) -> None:
    """signalsmith check exits 1 with a reason when no worker of the group has a heartbeat."""
    result = _cli(["check"], stream_env)
    assert result.returncode == 1
    assert "no live, healthy worker" in result.stderr


def test_two_worker_processes_share_a_group_without_duplicates(
    stream_env: dict[str, str], tmp_path: Path
) -> None:
    """run --workers 2: both processes consume the same group; every post is decided exactly
    once and nothing is left pending."""
    posts = tmp_path / "posts.jsonl"
    _write_posts(posts, 3000)
    assert _cli(["replay", str(posts)], stream_env).returncode == 0
    env = {**stream_env, "READ_COUNT": "20", "MAX_IN_FLIGHT": "20"}
    ran = _cli(["run", "--workers", "2", "--until-idle", "1"], env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        assert client.xpending(stream_env["STREAM"], stream_env["GROUP"])["pending"] == 0
        consumers = {
            c["name"] for c in client.xinfo_consumers(stream_env["STREAM"], stream_env["GROUP"])
        }
        rows = client.xrange(stream_env["SIGNAL_STREAM"])
    finally:
        client.close()
    assert consumers == {
        f"{stream_env['CONSUMER']}-0".encode(),
        f"{stream_env['CONSUMER']}-1".encode(),
    }
    decided = Counter()
    for _id, fields in rows:
        assert v1.decode(fields[b"data"]) is not None
        if v1.is_post(raw := json.loads(fields[b"data"])):
            decided[raw["decision"]["source"]["entry_id"]] += 1
    assert len(decided) == 3000
    assert max(decided.values()) == 1
