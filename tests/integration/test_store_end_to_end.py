"""The SQL store end to end, through the real CLI: 20,000 posts, the process SIGKILLed while
posts and rows flow, a survivor that finishes the run, and a backfill afterwards. The rows equal
the decisions made (HOLD and spikes included), each exactly once, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis as sync_redis
from sqlalchemy import func, select

from signalsmith.store.database import create_engine, parse_database_url
from signalsmith.store.schema import DecisionRow
from signalsmith.store.summary import SUMMARIES
from tests.conftest import in_thread

pytestmark = [pytest.mark.redis, pytest.mark.slow]
POSTS = 20_000
TEXTS = (
    "${t} buying calls before earnings 🚀",
    "${t} is done, selling everything and buying puts",
    "${t} reports on Tuesday",  # no direction: HOLD
    "${t} beat estimates, raised guidance",
)
TICKERS = ("NVDA", "AMD", "TSLA", "AAPL", "MSFT", "INTC", "META")


def _env(extra: dict[str, str]) -> dict[str, str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "GROQ_API_KEY", "LLM_PROVIDERS", "SIGNALSMITH_CONFIG"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **extra}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signalsmith", *args],
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _write_posts(path: Path) -> None:
    with path.open("w") as handle:
        for i in range(POSTS):
            text = TEXTS[i % len(TEXTS)].replace("{t}", TICKERS[i % len(TICKERS)])
            handle.write(json.dumps({"title": f"{text} #{i}", "author": f"u{i % 97}"}) + "\n")


async def _rows(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            columns = (DecisionRow.correlation_id, DecisionRow.kind, DecisionRow.verdict)
            return [tuple(row) for row in await connection.execute(select(*columns))]
    finally:
        await engine.dispose()


async def _mentions(url: str) -> list[dict[str, int]]:
    """Post rows per ticker: counted in ``decisions``, and summed in each summary table."""
    engine = create_engine(parse_database_url(url))
    c = DecisionRow.__table__.c
    counted = select(c.ticker, func.count()).where(c.kind == "post").group_by(c.ticker)
    summed = [
        select(s.table.c.ticker, func.sum(s.table.c.mentions)).group_by(s.table.c.ticker)
        for s in SUMMARIES
    ]
    try:
        async with engine.connect() as connection:
            return [
                {ticker: int(n) for ticker, n in await connection.execute(statement)}
                for statement in (counted, *summed)
            ]
    finally:
        await engine.dispose()


def _published(client: sync_redis.Redis, stream: str) -> Counter[str]:
    """Correlation ids on a stream of envelopes, counted."""
    return Counter(json.loads(f[b"data"])["correlation_id"] for _id, f in client.xrange(stream))


def _wait_for_rows(client: sync_redis.Redis, env: dict[str, str], rows: int) -> None:
    """Until the store has acknowledged ``rows`` entries: the kill lands mid-stream, with rows
    committed and more in flight."""
    deadline = time.monotonic() + 60
    while True:
        groups = (
            client.xinfo_groups(env["DECISION_STREAM"])
            if client.exists(env["DECISION_STREAM"])
            else []
        )
        stored = [g for g in groups if g["name"].decode() == "signalsmith-store"]
        if stored and stored[0]["entries-read"] and stored[0]["entries-read"] >= rows:
            return
        assert time.monotonic() < deadline, "the store never got going"
        time.sleep(0.02)


def test_every_decision_is_stored_once_through_a_kill_and_a_backfill(
    stream_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    _write_posts(posts)
    env = {
        **stream_env,
        "DATABASE_URL": database_url,
        "PUBLISH": "all",
        "CLAIM_IDLE_MS": "500",
        "SPIKE_MIN_MENTIONS": "50",
    }
    assert _cli(["replay", str(posts)], env).returncode == 0
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        first = subprocess.Popen(
            [sys.executable, "-m", "signalsmith", "run"],
            env=_env({**env, "CONSUMER": "first"}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_rows(client, env, 3_000)
        finally:
            first.kill()
            first.wait()
        survivor = _cli(["run", "--until-idle", "1.5"], {**env, "CONSUMER": "survivor"})
        assert survivor.returncode == 0, survivor.stderr[-2000:]
        backfill = _cli(["db", "backfill"], env)
        assert backfill.returncode == 0, backfill.stderr[-2000:]

        signals = _published(client, env["SIGNAL_STREAM"])
        logged = _published(client, env["DECISION_STREAM"])
        assert client.xpending(env["STREAM"], env["GROUP"])["pending"] == 0
        assert client.xpending(env["DECISION_STREAM"], "signalsmith-store")["pending"] == 0
    finally:
        client.close()
    rows = in_thread(_rows(database_url))
    stored = Counter(correlation_id for correlation_id, _kind, _verdict in rows)
    assert max(signals.values()) == 1, "a decision was published twice"
    assert max(logged.values()) == 1, "a decision was logged twice"
    assert set(stored) == set(signals) == set(logged), "the rows differ from the decisions"
    assert len(rows) == len(signals) >= POSTS
    verdicts = Counter(verdict for _id, kind, verdict in rows if kind == "post")
    assert verdicts["HOLD"] > 0
    assert verdicts["BUY"] > 0
    assert verdicts["SELL"] > 0
    assert any(kind == "spike" for _id, kind, _verdict in rows)
    assert f"read {len(logged)}, inserted 0, already stored {len(logged)}" in backfill.stdout
    counted, *summed = in_thread(_mentions(database_url))
    assert all(sums == counted for sums in summed), "a summary counts a post twice or not at all"
