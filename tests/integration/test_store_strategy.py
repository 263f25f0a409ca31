"""The strategy tables on a real SQLite file and the real PostgreSQL: the writer gives each new
strategy decision its ``llm_enhancement_tasks`` row and its ratings in the same transaction,
once however often the decision is written, and none to other kinds; a store upgraded from
revision 0004 gets rows for the strategy decisions it holds; the statistics equal counts worked
out by hand; pending comes from the strategy group in the real Redis; and
``signalsmith strategy stats`` prints them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import redis as sync_redis
from alembic import command
from redis.asyncio import Redis
from sqlalchemy import Table, select

from signalsmith.store.database import create_engine, parse_database_url
from signalsmith.store.migrate import alembic_config, upgrade
from signalsmith.store.rows import DecisionValues, row_from_envelope
from signalsmith.store.schema import AnalysisResultRow, DecisionRow, EnhancementTaskRow
from signalsmith.store.strategy_rows import TaskValues, failed_task, pending_task
from signalsmith.store.writer import RowWriter
from signalsmith.strategy.contract import SignalFacts, StrategyMeta
from signalsmith.strategy.stats import pending_signals, stored_stats
from tests.conftest import RedisTarget, free_port, in_thread
from tests.unit.test_store_rows import envelope_bytes
from tests.unit.test_store_strategy_rows import (
    PUBLISHED_AT,
    SIGNAL_TIME,
    STORED,
    strategy_envelope,
    strategy_meta,
)

TASKS = cast(Table, EnhancementTaskRow.__table__)
RESULTS = cast(Table, AnalysisResultRow.__table__)


def decision(meta: StrategyMeta, seconds: int = 0) -> DecisionValues:
    """The decisions row of ``meta``'s envelope, published ``seconds`` after the first."""
    published = PUBLISHED_AT + timedelta(seconds=seconds)
    return row_from_envelope(strategy_envelope(meta, published), STORED)


def hand_set() -> list[DecisionValues]:
    """Seven signals whose statistics are worked out by hand in ``test_stats_...``."""
    metas = [
        strategy_meta("s1", strategy="ema_cross", rating=8, agreement="confirm",
                      processing_ms=800.0, tokens=(900, 60), cost_usd=0.0012),
        strategy_meta("s2", strategy="ema_cross", rating=6, agreement="caution",
                      processing_ms=1200.0, tokens=(1000, 40), cost_usd=0.0010),
        strategy_meta("s3", strategy="rsi_revert", rating=3, agreement="reject",
                      processing_ms=20.0, model=False),
        strategy_meta("s4", "degraded", strategy="rsi_revert", rating=5, agreement="caution",
                      processing_ms=3000.0),
        strategy_meta("s5", "expired", strategy="ema_cross"),
        strategy_meta("s6", "expired", strategy="rsi_revert"),
        strategy_meta("s7", strategy="rsi_revert", rating=8, agreement="confirm",
                      processing_ms=400.0, tokens=(500, 50), cost_usd=0.0006),
    ]  # fmt: skip
    return [decision(meta, n) for n, meta in enumerate(metas)]


async def write(url: str, *batches: Sequence[DecisionValues]) -> list[int]:
    """Each batch through the store's writer; how many rows each one added."""
    await upgrade(url)
    writer = RowWriter.open(parse_database_url(url))
    try:
        return [await writer.write_rows(batch) for batch in batches]
    finally:
        await writer.aclose()


async def _stored(url: str, table: Table) -> list[dict[str, Any]]:
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.connect() as connection:
            statement = select(table).order_by(table.c.signal_id, table.c.id)
            return [dict(row) for row in (await connection.execute(statement)).mappings()]
    finally:
        await engine.dispose()


async def test_each_new_strategy_signal_gets_its_rows_once(database_url: str) -> None:
    """Batches that overlap, a batch holding a signal twice, and other kinds beside them: one
    task per signal, its ratings once each, nothing for a post."""
    signals = hand_set()
    posts = [row_from_envelope(envelope_bytes("TSLA", entry_id=f"{n}-1"), STORED) for n in (1, 2)]
    added = await write(database_url, [*signals[:4], *posts], [*signals, *signals], signals)
    assert added == [6, 3, 0]
    tasks = await _stored(database_url, TASKS)
    assert [task["signal_id"] for task in tasks] == [f"s{n}" for n in range(1, 8)]
    assert [task["status"] for task in tasks] == [
        "done", "done", "done", "failed", "expired", "expired", "done",
    ]  # fmt: skip
    assert tasks[3]["last_error"] == "reply: rating 14 is outside 1..10"
    results = await _stored(database_url, RESULTS)
    assert [(r["signal_id"], r["analyst"]) for r in results] == [
        ("s1", "rules"), ("s1", "llm"), ("s2", "rules"), ("s2", "llm"), ("s3", "rules"),
        ("s4", "rules"), ("s7", "rules"), ("s7", "llm"),
    ]  # fmt: skip
    assert json.loads(results[1]["risks"]) == ["earnings next week"]


def queued(signal_id: str) -> TaskValues:
    """The pending row of a signal just queued (as the store's reader of STRATEGY_STREAM
    makes it)."""
    signal = SignalFacts(
        signal_id=signal_id,
        symbol="AAPL",
        side="buy",
        price=187.25,
        timestamp=SIGNAL_TIME.isoformat(),
        strategy="ema_cross",
        indicators={"rsi": 31.5},
    )
    return pending_task(signal, SIGNAL_TIME + timedelta(seconds=1), STORED)


async def test_a_queued_signal_is_pending_until_its_decision_replaces_the_row(
    database_url: str,
) -> None:
    """Pending rows come first, once each; a decision replaces its signal's pending row (one
    row per signal still); a pending row arriving after the decision changes nothing; the
    statistics count decided rows only."""
    await upgrade(database_url)
    writer = RowWriter.open(parse_database_url(database_url))
    signals = hand_set()
    try:
        await writer.write_pending([queued("s1"), queued("s2"), queued("s1"), queued("s9")])
        before = await _stored(database_url, TASKS)
        await writer.write_rows(signals[:1])
        await writer.write_pending([queued("s1"), queued("s5")])  # late, or redelivered
        await writer.write_rows(signals)
    finally:
        await writer.aclose()
    after = await _stored(database_url, TASKS)
    stats = await stored_stats(parse_database_url(database_url), None)
    assert [(task["signal_id"], task["status"]) for task in before] == [
        ("s1", "pending"), ("s2", "pending"), ("s9", "pending"),
    ]  # fmt: skip
    assert before[0]["published_at"] == before[0]["received_at"]
    assert before[0]["rating"] is None
    assert [(task["signal_id"], task["status"]) for task in after] == [
        ("s1", "done"), ("s2", "done"), ("s3", "done"), ("s4", "failed"), ("s5", "expired"),
        ("s6", "expired"), ("s7", "done"), ("s9", "pending"),
    ]  # fmt: skip
    assert after[0]["id"] == before[0]["id"]  # the same row, now decided
    assert (after[0]["rating"], after[0]["agreement"]) == (8, "confirm")
    assert after[0]["published_at"] != before[0]["published_at"]
    assert (stats.totals.total, stats.totals.processed) == (7, 4)


async def test_a_signal_dead_lettered_after_it_was_queued_is_failed_until_decided(
    database_url: str,
) -> None:
    """Its dead letter marks the pending row failed with the reason; a dead letter of a signal
    decided already, or never queued, changes nothing; once replayed and decided, the
    decision's row replaces the failed one."""
    await upgrade(database_url)
    writer = RowWriter.open(parse_database_url(database_url))
    signals = hand_set()  # s1 done, s4 failed by the model, s5 expired
    failed_at = SIGNAL_TIME + timedelta(seconds=9)
    try:
        await writer.write_pending([queued("s1"), queued("s2")])
        await writer.write_rows([signals[0]])
        await writer.write_failed(
            [
                failed_task(signal_id, "internal_error", "ValueError", failed_at)
                for signal_id in ("s1", "s2", "never-queued")
            ]
        )
        dead = await _stored(database_url, TASKS)
        await writer.write_rows(signals[1:2])  # s2 replayed, then decided
        after = await _stored(database_url, TASKS)
    finally:
        await writer.aclose()
    assert [(task["signal_id"], task["status"]) for task in dead] == [
        ("s1", "done"),
        ("s2", "failed"),
    ]
    assert dead[1]["last_error"] == "dead-lettered: internal_error: ValueError"
    assert dead[1]["rating"] is None
    assert dead[0]["last_error"] is None
    assert [(task["signal_id"], task["status"]) for task in after] == [
        ("s1", "done"),
        ("s2", "done"),
    ]
    assert after[1]["last_error"] is None
    assert after[1]["id"] == dead[1]["id"]


async def test_upgrading_from_0004_fills_the_strategy_signals_already_stored(
    database_url: str,
) -> None:
    """More strategy decisions than one page of the migration's fill, among other kinds."""
    target = parse_database_url(database_url)
    engine = create_engine(target)

    def to_0004(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")

    kinds = ("ok", "degraded", "expired")
    signals = [decision(strategy_meta(f"old-{n}", kinds[n % 3]), n) for n in range(1_203)]
    posts = [row_from_envelope(envelope_bytes("NVDA", entry_id=f"{n}-1"), STORED) for n in (1, 2)]
    try:
        async with engine.begin() as connection:
            await connection.run_sync(to_0004)
            await connection.execute(DecisionRow.__table__.insert(), [*signals, *posts])
    finally:
        await engine.dispose()
    await upgrade(database_url)
    tasks = await _stored(database_url, TASKS)
    assert {task["signal_id"] for task in tasks} == {f"old-{n}" for n in range(1_203)}
    assert [sum(t["status"] == s for t in tasks) for s in ("done", "failed", "expired")] == [
        401,
        401,
        401,
    ]
    results = await _stored(database_url, RESULTS)
    assert len(results) == 401 * 2 + 401  # done: rules and model; failed: rules; expired: none
    stats = await stored_stats(target, None)
    assert (stats.totals.processed, stats.totals.total, stats.totals.llm_rated) == (401, 1203, 401)


async def test_stats_equal_the_counts_worked_out_by_hand(database_url: str) -> None:
    await write(database_url, hand_set(), hand_set())  # a redelivery counts nothing twice
    stats = await stored_stats(parse_database_url(database_url), 5, per_strategy=True)
    expected = {
        "pending": 5,
        "processed": 4,  # s1 s2 s3 s7
        "failed": 1,  # s4
        "expired": 2,  # s5 s6
        "total": 7,
        "avg_processing_ms": 605.0,  # (800 + 1200 + 20 + 400) / 4
        "rating_distribution": _ratings({3: 1, 5: 1, 6: 1, 8: 2}),
        "agreements": {"confirm": 2, "caution": 2, "reject": 1},
        "llm_rated": 3,
        "tokens_in": 2400,
        "tokens_out": 150,
        "cost_usd": pytest.approx(0.0028),
        "strategies": [
            {
                "strategy": "rsi_revert",  # s3 s4 s6 s7: the most signals first
                "processed": 2,
                "failed": 1,
                "expired": 1,
                "total": 4,
                "avg_processing_ms": 210.0,  # (20 + 400) / 2
                "rating_distribution": _ratings({3: 1, 5: 1, 8: 1}),
                "agreements": {"confirm": 1, "caution": 1, "reject": 1},
                "llm_rated": 1,
                "tokens_in": 500,
                "tokens_out": 50,
                "cost_usd": pytest.approx(0.0006),
            },
            {
                "strategy": "ema_cross",  # s1 s2 s5
                "processed": 2,
                "failed": 0,
                "expired": 1,
                "total": 3,
                "avg_processing_ms": 1000.0,
                "rating_distribution": _ratings({6: 1, 8: 1}),
                "agreements": {"confirm": 1, "caution": 1, "reject": 0},
                "llm_rated": 2,
                "tokens_in": 1900,
                "tokens_out": 100,
                "cost_usd": pytest.approx(0.0022),
            },
        ],
    }
    assert stats.as_json() == expected


async def test_an_empty_store_has_zero_counts_and_no_average(database_url: str) -> None:
    await upgrade(database_url)
    stats = await stored_stats(parse_database_url(database_url), None, per_strategy=True)
    assert (stats.pending, stats.strategies) == (None, [])
    shown = stats.as_json()
    assert (shown["total"], shown["avg_processing_ms"], shown["cost_usd"]) == (0, None, 0.0)
    assert shown["rating_distribution"] == _ratings({})


def _ratings(counts: dict[int, int]) -> dict[str, int]:
    return {str(rating): counts.get(rating, 0) for rating in range(1, 11)}


@pytest.mark.redis
async def test_pending_is_the_groups_lag_plus_its_unacknowledged_entries(
    redis: Redis, prefix: str
) -> None:
    stream, group = f"{prefix}:strategy", f"{prefix}-strategy"
    assert await pending_signals(redis, stream, group) is None  # no stream yet
    for n in range(5):
        await redis.xadd(stream, {"data": f"signal {n}"})
    assert await pending_signals(redis, stream, group) is None  # no group yet
    await redis.xgroup_create(stream, group, id="0")
    await redis.xgroup_create(stream, f"{group}-other", id="$")
    assert await pending_signals(redis, stream, group) == 5
    read = await redis.xreadgroup(group, "c1", {stream: ">"}, count=2)
    assert await pending_signals(redis, stream, group) == 5  # 3 unread, 2 pending
    await redis.xack(stream, group, read[0][1][0][0])
    assert await pending_signals(redis, stream, group) == 4
    assert await pending_signals(redis, stream, f"{group}-other") == 0


# --- signalsmith strategy stats -----------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "DATABASE_URL", "SIGNALSMITH_CONFIG", "REDIS_CLUSTER"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "-m", "signalsmith", "strategy", "stats", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.redis
def test_the_stats_command_prints_the_store_and_the_pending_signals(
    redis_target: RedisTarget, prefix: str, tmp_path: Path
) -> None:
    """``--json``: the statistics with pending from the strategy group; the text form says the
    same; with Redis unreachable, pending is unknown and the command still succeeds."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    in_thread(write(url, hand_set()))
    stream, group = f"{prefix}:strategy", f"{prefix}-strategy"
    client = sync_redis.Redis.from_url(redis_target.url)
    try:
        for n in range(3):
            client.xadd(stream, {"data": f"signal {n}"})
        client.xgroup_create(stream, group, id="0")
        env = {
            "REDIS_URL": redis_target.url,
            "DATABASE_URL": url,
            "STRATEGY_STREAM": stream,
            "STRATEGY_GROUP": group,
            "STATE_DIR": str(tmp_path / "state"),
            "LOG_LEVEL": "WARNING",
        }
        shown = _cli(["--json", "--per-strategy"], env)
        text = _cli([], env)
        down = _cli(["--json"], {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    finally:
        client.delete(stream)
        client.close()
    assert shown.returncode == 0, shown.stderr
    stats = json.loads(shown.stdout)
    assert (stats["pending"], stats["processed"], stats["failed"], stats["expired"]) == (3, 4, 1, 2)
    assert stats["rating_distribution"]["8"] == 2
    assert [each["strategy"] for each in stats["strategies"]] == ["rsi_revert", "ema_cross"]
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "pending      3" in lines
    assert "processed    4" in lines
    assert "avg time     605.0 ms (processed signals)" in lines
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["pending"] is None
    assert json.loads(down.stdout)["total"] == 7


@pytest.mark.slow
def test_the_stats_command_fails_in_one_line_on_a_store_not_migrated(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "STATE_DIR": str(tmp_path / "state"),
    }
    result = _cli([], env)
    assert result.returncode == 1
    assert "llm_enhancement_tasks" in result.stderr
    assert "Traceback" not in result.stderr


async def test_pending_is_counted_on_a_server_that_reports_no_lag(embedded_url: str) -> None:
    """The embedded Redis (6.2) has no ``lag`` in XINFO GROUPS: the unread are counted."""
    redis = Redis.from_url(embedded_url)
    stream, group = "strategy-lagless", "strategy-lagless-group"
    try:
        info = await redis.info("server")
        assert str(info["redis_version"]).startswith("6."), "not the server this is about"
        for n in range(6):
            await redis.xadd(stream, {"data": f"signal {n}"})
        await redis.xgroup_create(stream, group, id="0")
        assert await pending_signals(redis, stream, group) == 6
        await redis.xreadgroup(group, "c1", {stream: ">"}, count=4)
        assert await pending_signals(redis, stream, group) == 6  # 2 unread, 4 pending
    finally:
        await redis.delete(stream)
        await redis.aclose()
