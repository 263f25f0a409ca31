"""The SQL store against a real SQLite file and the real PostgreSQL (each test in a schema of its
own), fed from a real Redis: migrations, the committer (rows in one transaction, then dead
letters and acknowledgements), the engine driving it, and ``signalsmith db`` as users run it.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from redis.asyncio import Redis
from sqlalchemy import select, text

from signalsmith.engine.engine import Engine, EngineConfig
from signalsmith.engine.outcome import Commit
from signalsmith.errors import ConfigError, PoisonInput, TransientError
from signalsmith.observe.metrics import Metrics
from signalsmith.query.render import utc as render_utc
from signalsmith.settings import Settings
from signalsmith.sink.outputs import dead_letter_commit
from signalsmith.source.redis_streams import Entry, GroupRef, StreamSource
from signalsmith.store.consumer import StoreHandler
from signalsmith.store.database import (
    POSTGRES,
    SQLITE,
    create_engine,
    database_target,
    parse_database_url,
)
from signalsmith.store.migrate import alembic_config, upgrade, upgrade_database
from signalsmith.store.rows import DecisionValues, row_from_envelope
from signalsmith.store.schema import Base, DecisionRow
from signalsmith.store.summary import SUMMARIES, Summary, recompute
from signalsmith.store.writer import CHUNK_ROWS, RowWriter, SqlCommitter
from tests.conftest import count_decisions, free_port, in_thread
from tests.unit.test_store_rows import envelope_bytes, spike_envelope

pytestmark = pytest.mark.redis
CANARY = "pw-canary-5d8e1f"
STORED = datetime(2025, 11, 21, tzinfo=UTC)
GROUP = "signalsmith-store"


async def _schema_drift(url: str) -> list[Any]:
    engine = create_engine(parse_database_url(url))

    def here(item: Any, _name: Any, kind: str, _reflected: bool, _other: Any) -> bool:
        """Not an index the model creates on another database only (``ddl_if``)."""
        only = getattr(item, "_ddl_if", None) if kind == "index" else None
        return only is None or only.dialect in (None, engine.dialect.name)

    def drift(sync: Any) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"include_object": here})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(drift)
    finally:
        await engine.dispose()


async def test_migrations_apply_once_and_build_the_models_schema(database_url: str) -> None:
    """Upgrading twice is fine (the second does nothing); the migrated schema is exactly the
    one the models declare (no drift between the table and its migration)."""
    target = parse_database_url(database_url)
    assert await upgrade_database(target) == "0005"
    await upgrade(database_url)
    assert await upgrade_database(target) == "0005"
    assert await _schema_drift(database_url) == []
    assert await count_decisions(database_url) == 0


async def test_sqlite_runs_in_wal_mode_in_a_private_state_dir(tmp_path: Path) -> None:
    """With no DATABASE_URL: a SQLite file in STATE_DIR (made 0700), in WAL mode."""
    settings = Settings(state_dir=tmp_path / "state")
    target = database_target(settings)
    assert target.url.drivername == SQLITE
    await upgrade_database(target)
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    with sqlite3.connect(tmp_path / "state" / "signalsmith.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_database_urls_are_normalised_and_shown_without_the_password() -> None:
    """postgres:// and postgresql:// mean asyncpg; libpq's options become server settings;
    what is shown masks the password; a wrong URL names the setting but never quotes it."""
    target = parse_database_url(
        f"postgres://app:{CANARY}@db:5432/signals?options=-c%20search_path%3Dstore&sslmode=require"
    )
    assert target.url.drivername == POSTGRES
    assert dict(target.server_settings) == {"search_path": "store"}
    assert dict(target.url.query) == {"ssl": "require"}
    assert CANARY not in target.shown
    assert target.shown.startswith("postgresql+asyncpg://app:***@db:5432/signals")
    assert parse_database_url("sqlite:///x.db").url.drivername == SQLITE
    for wrong in (f"mysql://u:{CANARY}@h/db", f"postgresql://u:{CANARY}@h/db?options=-x", "::"):
        with pytest.raises(ConfigError, match="DATABASE_URL") as caught:
            parse_database_url(wrong)
        assert CANARY not in str(caught.value)


async def _feed(redis: Redis, stream: str, raws: Sequence[bytes]) -> list[Entry]:
    """XADD each envelope, create the store's group, and read them as its consumer."""
    for raw in raws:
        await redis.xadd(stream, {"data": raw})
    source = StreamSource(redis, GroupRef(stream, GROUP, "c1"), block_ms=10, claim_idle_ms=60_000)
    await source.ensure_group()
    return await source.read(len(raws), wait=False)


def _handler() -> StoreHandler:
    return StoreHandler(clock=lambda: STORED)


def _commit(stream: str, entry: Entry) -> Commit:
    """The handler's commit, or the dead letter the engine makes of what it refuses."""
    try:
        return _handler().handle_now(entry)
    except PoisonInput as exc:
        return dead_letter_commit(
            entry.id,
            entry.fields,
            stream=stream,
            dlq_stream=f"{stream}:store:dlq",
            reason=exc.reason,
            detail=exc.detail,
            now=STORED,
            maxlen=1000,
        )


def _envelopes(count: int) -> list[bytes]:
    return [envelope_bytes("NVDA", entry_id=f"{n}-0") for n in range(count)]


async def _pending(redis: Redis, stream: str) -> int:
    return int((await redis.xpending(stream, GROUP))["pending"])


async def test_committer_stores_rows_then_dead_letters_and_acknowledges(
    redis: Redis, prefix: str, database_url: str
) -> None:
    """One batch: valid entries become rows, a malformed one a dead letter on the store's DLQ;
    all are acknowledged. The same batch again (a redelivery) adds no row."""
    stream = f"{prefix}:decisions"
    await upgrade(database_url)
    entries = await _feed(redis, stream, [*_envelopes(20), spike_envelope(), b"{broken"])
    commits = [_commit(stream, entry) for entry in entries]
    writer = RowWriter.open(parse_database_url(database_url))
    committer = SqlCommitter(writer.write_rows, redis, GroupRef(stream, GROUP, "c1"))
    try:
        assert await committer.commit(commits) == [True] * 22
        assert await count_decisions(database_url) == 21
        assert await _pending(redis, stream) == 0
        dead = await redis.xrange(f"{stream}:store:dlq")
        assert [fields[b"reason"] for _id, fields in dead] == [b"bad_envelope"]
        assert dead[0][1][b"orig.data"] == b"{broken"
        assert await committer.commit(commits[:21]) == [True] * 21
        assert await count_decisions(database_url) == 21
    finally:
        await writer.aclose()


async def test_rows_are_written_in_chunks_and_each_key_once(database_url: str) -> None:
    """More rows than one statement may bind: all inserted in one call; written again, none is
    new; a batch of old and new rows inserts only the new ones."""
    await upgrade(database_url)
    rows = [row_from_envelope(raw, STORED) for raw in _envelopes(CHUNK_ROWS * 2 + 5)]
    writer = RowWriter.open(parse_database_url(database_url))
    try:
        assert await writer.write_rows(rows) == len(rows)
        assert await writer.write_rows(rows) == 0
        extra = [row_from_envelope(raw, STORED) for raw in _envelopes(len(rows) + 10)]
        assert await writer.write_rows(extra) == 10
        assert await writer.write_rows([]) == 0
    finally:
        await writer.aclose()
    assert await count_decisions(database_url) == len(rows) + 10


def _varied_rows(count: int, seed: int) -> list[DecisionValues]:
    """Rows of every kind, status and verdict over three days, some on an hour's first
    microsecond and some on its last, for a handful of tickers."""
    rng = random.Random(seed)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    rows: list[DecisionValues] = []
    for n, raw in enumerate(_envelopes(count)):
        row = row_from_envelope(raw, STORED)
        hour = base + timedelta(hours=rng.randrange(72))
        offset = rng.choice(
            [
                timedelta(0),
                timedelta(hours=1, microseconds=-1),
                timedelta(seconds=rng.random() * 3600),
            ]
        )
        row.update(
            correlation_id=f"varied-{n}",
            ticker=rng.choice(["NVDA", "TSLA", "BRK/B", "GME", "BTC-USD"]),
            kind=rng.choice(["post", "post", "post", "spike", "consensus"]),
            status=rng.choice(["ok", "ok", "degraded", "abstain", "error"]),
            verdict=rng.choice(["BUY", "SELL", "HOLD"]),
            confidence=rng.choice([0.0, 0.01, 0.05, 0.3, 0.99]),
            score=rng.uniform(-1, 1),
            published_at=hour + offset,
            trade_date=(hour + offset).date() - timedelta(days=rng.choice([0, 0, 1])),
        )
        rows.append(row)
    return rows


async def _summary(
    url: str, summary: Summary, *, recomputed: bool
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """A summary table as the writer left it, or as ``recompute`` makes it from the rows."""
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.begin() as connection:
            if recomputed:
                for statement in recompute(engine.dialect.name):
                    await connection.execute(statement)
            rows = (await connection.execute(select(summary.table))).mappings().all()
            if recomputed:
                await connection.rollback()
    finally:
        await engine.dispose()
    return {
        tuple(row[key] for key in summary.keys): (
            *(row[name] for name in ("mentions", "posts", "buy", "sell")),
            *(
                pytest.approx(row[name])
                for name in ("weight_sum", "weighted_score", "confidence_sum")
            ),
            render_utc(row["last_seen"]),
        )
        for row in rows
    }


async def test_summaries_are_the_sums_of_the_rows_however_they_arrive(
    database_url: str,
) -> None:
    """Overlapping batches, redeliveries and two writers at once: every post row is counted in
    its hour exactly once, and what the writer kept equals what ``recompute`` sums from the
    rows in SQL (the hour computed the same in Python and in the database)."""
    await upgrade(database_url)
    rows = _varied_rows(3_000, seed=11)
    rng = random.Random(5)
    first, second = rows[:2_000], rows[1_000:]
    rng.shuffle(second)
    writers = [RowWriter.open(parse_database_url(database_url)) for _ in range(2)]
    try:
        for start in range(0, len(first), 250):
            await writers[0].write_rows(first[start : start + 250])
        together = await asyncio.gather(
            *(writers[0].write_rows(second[n : n + 400]) for n in range(0, len(second), 800)),
            *(writers[1].write_rows(second[n : n + 400]) for n in range(400, len(second), 800)),
        )
        assert sum(together) == 1_000
        assert await writers[1].write_rows(rows) == 0  # a backfill of everything: nothing new
    finally:
        for writer in writers:
            await writer.aclose()
    posts = [row for row in rows if row["kind"] == "post"]
    for summary in SUMMARIES:
        kept = await _summary(database_url, summary, recomputed=False)
        assert kept == await _summary(database_url, summary, recomputed=True)
        assert sum(value[0] for value in kept.values()) == len(posts)
        assert len(kept) == len({summary.key_of(row) for row in posts})


async def test_a_key_twice_in_one_batch_is_one_row_counted_once(database_url: str) -> None:
    """A stream may carry an envelope twice (a backfill of a replayed stream): one row, one
    mention in each summary, and one row reported new."""
    await upgrade(database_url)
    (row,) = _varied_rows(1, seed=9)
    row.update(kind="post", status="ok")
    writer = RowWriter.open(parse_database_url(database_url))
    try:
        assert await writer.write_rows([row, dict(row)]) == 1  # type: ignore[list-item]
    finally:
        await writer.aclose()
    for summary in SUMMARIES:
        kept = await _summary(database_url, summary, recomputed=False)
        assert [value[0] for value in kept.values()] == [1]


async def test_upgrading_a_filled_store_sums_its_rows_into_the_summaries(
    database_url: str,
) -> None:
    """A store written before ``ticker_hours`` existed (revision 0002) gets them from its
    rows when upgraded: the same sums the writer would have kept."""
    target = parse_database_url(database_url)
    engine = create_engine(target)

    def to_0002(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")

    rows = _varied_rows(500, seed=3)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(to_0002)
            await connection.execute(DecisionRow.__table__.insert(), rows)
    finally:
        await engine.dispose()
    await upgrade(database_url)
    posts = [row for row in rows if row["kind"] == "post"]
    for summary in SUMMARIES:
        kept = await _summary(database_url, summary, recomputed=False)
        by_key: dict[tuple[Any, ...], int] = {}
        for row in posts:
            key = summary.key_of(row)
            by_key[key] = by_key.get(key, 0) + 1
        assert {key: value[0] for key, value in kept.items()} == by_key


async def test_stored_row_reads_back_as_written(database_url: str) -> None:
    """Dates, aware times and text come back as stored (times in UTC)."""
    await upgrade(database_url)
    row: DecisionValues = row_from_envelope(envelope_bytes("TSLA", entry_id="9-1"), STORED)
    writer = RowWriter.open(parse_database_url(database_url))
    try:
        await writer.write_rows([row])
    finally:
        await writer.aclose()
    engine = create_engine(parse_database_url(database_url))
    try:
        async with engine.connect() as connection:
            stored = (await connection.execute(select(DecisionRow.__table__))).mappings().one()
    finally:
        await engine.dispose()
    for name, value in row.items():
        got = stored[name]
        if isinstance(value, datetime) and got.tzinfo is None:  # SQLite keeps UTC, naive
            got = got.replace(tzinfo=UTC)
        assert got == value, name


async def test_an_unreachable_database_leaves_every_entry_pending(
    redis: Redis, prefix: str
) -> None:
    """The database refuses connections: TransientError (without the password), no dead letter
    published, nothing acknowledged; the engine waits it out and the entries are redelivered."""
    stream = f"{prefix}:decisions"
    entries = await _feed(redis, stream, [*_envelopes(5), b"{broken"])
    commits = [_commit(stream, entry) for entry in entries]
    url = f"postgresql://postgres:{CANARY}@127.0.0.1:{free_port()}/test"
    writer = RowWriter.open(parse_database_url(url))
    committer = SqlCommitter(writer.write_rows, redis, GroupRef(stream, GROUP, "c1"))
    try:
        with pytest.raises(TransientError) as caught:
            await committer.commit(commits)
    finally:
        await writer.aclose()
    assert CANARY not in str(caught.value)
    assert "postgres:***@127.0.0.1" in str(caught.value)
    assert await _pending(redis, stream) == 6
    assert await redis.exists(f"{stream}:store:dlq") == 0


async def test_an_unmigrated_database_is_waited_out_too(tmp_path: Path) -> None:
    """No table yet (``db upgrade`` not run): a transient error naming the cause, not a crash."""
    writer = RowWriter.open(parse_database_url(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"))
    try:
        with pytest.raises(TransientError, match="decisions"):
            await writer.write_rows([row_from_envelope(envelope_bytes(), STORED)])
    finally:
        await writer.aclose()


async def test_the_engine_drives_the_store_until_idle(
    redis: Redis, prefix: str, database_url: str
) -> None:
    """The real engine with the store's handler and committer: every entry stored or
    dead-lettered to the store's DLQ, nothing left pending."""
    stream = f"{prefix}:decisions"
    await upgrade(database_url)
    for raw in [*_envelopes(300), b"not json", spike_envelope()]:
        await redis.xadd(stream, {"data": raw})
    ref = GroupRef(stream, GROUP, "c1")
    writer = RowWriter.open(parse_database_url(database_url))
    engine = Engine(
        EngineConfig(stream=stream, dlq_stream=f"{stream}:store:dlq", dlq_maxlen=0, read_count=64),
        source=StreamSource(redis, ref, block_ms=50, claim_idle_ms=60_000),
        committer=SqlCommitter(writer.write_rows, redis, ref),
        handler=_handler(),
        metrics=Metrics().pipeline("store"),
    )
    try:
        stats = await asyncio.wait_for(engine.run(asyncio.Event(), until_idle=0.3), timeout=60)
    finally:
        await writer.aclose()
    assert (stats.read, stats.acknowledged, stats.dead_lettered) == (302, 302, 1)
    assert await count_decisions(database_url) == 301
    assert await _pending(redis, stream) == 0


CLI = [sys.executable, "-m", "signalsmith"]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = {"REDIS_URL", "REDIS_ADDR", "DATABASE_URL", "DECISION_STREAM", "SIGNALSMITH_CONFIG"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [*CLI, *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_db_upgrade_command_shows_where_without_the_password(
    stream_env: dict[str, str], postgres_url: str
) -> None:
    """``signalsmith db upgrade`` migrates the configured database and says which, password
    masked; run again, it is still at the newest revision."""
    url = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{CANARY}@")
    for _ in range(2):
        result = _cli(["db", "upgrade"], {**stream_env, "DATABASE_URL": url})
        assert result.returncode == 0, result.stderr
        assert "postgresql+asyncpg://postgres:***@" in result.stdout
        assert "revision 0005" in result.stdout
        assert CANARY not in result.stdout + result.stderr


@pytest.mark.slow
def test_db_upgrade_command_fails_in_one_line_when_unreachable(
    stream_env: dict[str, str],
) -> None:
    """A database that refuses connections: exit 1, one line, no password, no traceback."""
    url = f"postgresql://postgres:{CANARY}@127.0.0.1:{free_port()}/test"
    result = _cli(["db", "upgrade"], {**stream_env, "DATABASE_URL": url})
    assert result.returncode == 1
    assert "unavailable" in result.stderr
    assert CANARY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_db_backfill_stores_the_stream_once(
    stream_env: dict[str, str], database_url: str, prefix: str
) -> None:
    """``signalsmith db backfill`` reads the decision stream from the start in pages and stores
    each decision; the second run finds every one stored already; invalid entries are counted."""
    stream = f"{prefix}:trade-decisions"
    client = sync_redis.Redis.from_url(stream_env["REDIS_URL"])
    try:
        for raw in [*_envelopes(23), spike_envelope(), b"[]", _envelopes(1)[0]]:
            client.xadd(stream, {"data": raw})
    finally:
        client.close()
    env = {**stream_env, "DECISION_STREAM": stream, "DATABASE_URL": database_url}
    first = _cli(["db", "backfill", "--batch", "7"], env)
    assert first.returncode == 0, first.stderr
    assert "backfilled: read 26, inserted 24, already stored 1, invalid 1" in first.stdout
    again = _cli(["db", "backfill"], env)
    assert again.returncode == 0, again.stderr
    assert "backfilled: read 26, inserted 0, already stored 25, invalid 1" in again.stdout
    assert in_thread(count_decisions(database_url)) == 24


@pytest.mark.postgres
async def test_postgres_sessions_use_the_urls_schema(postgres_url: str) -> None:
    """The schema in the URL's options is where the tables are made and looked for."""
    await upgrade(postgres_url)
    engine = create_engine(parse_database_url(postgres_url))
    try:
        async with engine.connect() as connection:
            schema = (await connection.execute(text("SELECT current_schema()"))).scalar_one()
    finally:
        await engine.dispose()
    assert postgres_url.endswith(f"%3D{schema}")
