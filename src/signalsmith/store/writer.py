"""Write decision rows to SQL, each correlation id once, and the store consumer's committer:
a batch's rows, what the new ones add to the summary tables, and the new insights' and
strategy signals' own rows (``insights``; ``llm_enhancement_tasks`` and
``llm_analysis_results``), in one transaction; once it is committed, the batch's dead letters
and acknowledgements in one MULTI/EXEC. A redelivered entry's row is already there: nothing
changes. The same writer and committer store the ``pending`` task rows of signals just queued
(``store.strategy_intake``); a decided signal's row replaces its pending one, never the other
way round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert, ReturningInsert, Update

from signalsmith.engine.outcome import Commit
from signalsmith.redisclient import RedisClient
from signalsmith.sink.redis_publish import publish_and_ack
from signalsmith.source.redis_streams import GroupRef
from signalsmith.store.database import DatabaseTarget, create_engine, database_errors
from signalsmith.store.insight_rows import insight_row
from signalsmith.store.rows import DecisionValues
from signalsmith.store.schema import AnalysisResultRow, DecisionRow, EnhancementTaskRow, InsightRow
from signalsmith.store.strategy_rows import FailedTask, TaskValues, strategy_rows
from signalsmith.store.summary import HOURS, SUMMARIES, add_sums, summed

SQLITE_MAX_PARAMETERS = 32_766  # bound parameters in one statement (PostgreSQL's is 32,767)
_TABLE = cast(Table, DecisionRow.__table__)
CHUNK_ROWS = SQLITE_MAX_PARAMETERS // len(_TABLE.columns)
CHUNK_SUMS = SQLITE_MAX_PARAMETERS // len(HOURS.columns)
_INSIGHTS = cast(Table, InsightRow.__table__)
CHUNK_INSIGHTS = SQLITE_MAX_PARAMETERS // len(_INSIGHTS.columns)
_TASKS = cast(Table, EnhancementTaskRow.__table__)
_RESULTS = cast(Table, AnalysisResultRow.__table__)
CHUNK_TASKS = SQLITE_MAX_PARAMETERS // len(_TASKS.columns)
CHUNK_RESULTS = SQLITE_MAX_PARAMETERS // len(_RESULTS.columns)


class RowWriter:
    """Inserts rows into ``decisions``, skipping any whose correlation id is stored already,
    adds the new ones to the summary tables (``store.summary``), and gives each new insight
    its row in ``insights`` and each new strategy signal its rows in ``llm_enhancement_tasks``
    and ``llm_analysis_results``."""

    def __init__(self, engine: AsyncEngine, target: DatabaseTarget) -> None:
        self._engine = engine
        self._target = target
        self._insert = _insert_new(engine.dialect.name)
        self._insert_insights = _insert_derived(engine.dialect.name, _INSIGHTS, "correlation_id")
        self._insert_tasks = _replace_pending(engine.dialect.name)
        self._insert_pending = _insert_derived(engine.dialect.name, _TASKS, "signal_id")
        self._insert_results = _insert_derived(
            engine.dialect.name, _RESULTS, "signal_id", "analyst"
        )
        self._summaries = [(s, add_sums(engine.dialect.name, s)) for s in SUMMARIES]

    @classmethod
    def open(cls, target: DatabaseTarget) -> RowWriter:
        return cls(create_engine(target), target)

    async def aclose(self) -> None:
        await self._engine.dispose()

    async def write_rows(self, rows: Sequence[DecisionValues]) -> int:
        """Insert ``rows`` in one transaction; returns how many were new. Raises
        ``TransientError`` when the database cannot take them now (nothing is written)."""
        if not rows:
            return 0
        # In key order: two writers inserting the same keys wait for each other, not deadlock.
        # One row per key (a stream may carry an envelope twice): the first of each is kept,
        # so a batch never adds a row to the summaries twice.
        unique = {row["correlation_id"]: row for row in reversed(rows)}
        ordered = sorted(unique.values(), key=lambda row: row["correlation_id"])
        with database_errors(self._target):
            async with self._engine.begin() as connection:
                new = await self._insert_rows(connection, ordered)
                for summary, add in self._summaries:
                    await _execute_chunked(connection, add, summed(summary, new), CHUNK_SUMS)
                await self._add_derived(connection, new)
        return len(new)

    async def write_pending(self, tasks: Sequence[TaskValues]) -> int:
        """Insert the ``pending`` rows of signals just queued, in one transaction, leaving any
        row already there (pending, or decided already) as it is; returns how many were given.
        Raises ``TransientError`` when the database cannot take them now."""
        unique = {task["signal_id"]: task for task in reversed(tasks)}
        ordered = sorted(unique.values(), key=lambda task: task["signal_id"])
        if ordered:
            with database_errors(self._target):
                async with self._engine.begin() as connection:
                    await _execute_chunked(connection, self._insert_pending, ordered, CHUNK_TASKS)
        return len(ordered)

    async def write_failed(self, failures: Sequence[FailedTask]) -> int:
        """Mark the pending rows of signals dead-lettered after they were queued ``failed``, in
        one transaction; a row decided already, or none, is left as it is."""
        values = [
            {"b_id": f["signal_id"], "b_error": f["last_error"], "b_at": f["failed_at"]}
            for f in sorted(failures, key=lambda failure: failure["signal_id"])
        ]
        if values:
            with database_errors(self._target):
                async with self._engine.begin() as connection:
                    await _execute_chunked(connection, _FAIL_PENDING, values, CHUNK_TASKS)
        return len(values)

    async def _add_derived(
        self, connection: AsyncConnection, new: Sequence[DecisionValues]
    ) -> None:
        """The rows derived from new decisions: an insight's, a strategy signal's."""
        insights = [insight_row(row) for row in new if row["kind"] == "insight"]
        await _execute_chunked(connection, self._insert_insights, insights, CHUNK_INSIGHTS)
        strategy = [strategy_rows(row) for row in new if row["kind"] == "strategy"]
        tasks = [rows.task for rows in strategy]
        await _execute_chunked(connection, self._insert_tasks, tasks, CHUNK_TASKS)
        results = [result for rows in strategy for result in rows.results]
        await _execute_chunked(connection, self._insert_results, results, CHUNK_RESULTS)

    async def _insert_rows(
        self, connection: AsyncConnection, ordered: Sequence[DecisionValues]
    ) -> list[DecisionValues]:
        """The rows of ``ordered`` that were not stored yet, now inserted."""
        new: set[str] = set()
        for first in range(0, len(ordered), CHUNK_ROWS):
            chunk = ordered[first : first + CHUNK_ROWS]
            result = await connection.execute(self._insert, chunk)
            new.update(row[0] for row in result.all())
        return [row for row in ordered if row["correlation_id"] in new]


async def _execute_chunked(
    connection: AsyncConnection,
    statement: Insert | Update,
    values: Sequence[Mapping[str, object]],
    size: int,
) -> None:
    for first in range(0, len(values), size):
        await connection.execute(statement, values[first : first + size])


def _insert_new(dialect: str) -> ReturningInsert[str]:
    """INSERT ... ON CONFLICT (correlation_id) DO NOTHING RETURNING correlation_id: the keys
    say which rows were new, whichever way the driver batches them."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(_TABLE).on_conflict_do_nothing(index_elements=[_TABLE.c.correlation_id])
    return statement.returning(_TABLE.c.correlation_id)


def _insert_derived(dialect: str, table: Table, *key: str) -> Insert:
    """Rows derived from new decision rows only: a conflict on ``key`` here would be a row
    inserted outside the writer, which is left as it is."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    return insert(table).on_conflict_do_nothing(index_elements=[table.c[name] for name in key])


_FAIL_PENDING = (
    update(_TASKS)
    .where(_TASKS.c.signal_id == bindparam("b_id"), _TASKS.c.status == "pending")
    .values(
        status="failed",
        last_error=bindparam("b_error"),
        processed_at=bindparam("b_at"),
        published_at=bindparam("b_at"),
    )
)


def _replace_pending(dialect: str) -> Insert:
    """A decided signal's task row: inserted, or written over the signal's ``pending`` row or
    the ``failed`` one its dead letter left (a dead letter replayed, then decided). A row from
    a decision is never written over: a signal id is decided once (``decisions`` keeps the
    first decision of a correlation id, and only a new one derives rows)."""
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(_TASKS)
    kept = ("id", "signal_id", "created_at")  # created_at: when the store first had it
    columns = [column.name for column in _TASKS.columns if column.name not in kept]
    return statement.on_conflict_do_update(
        index_elements=[_TASKS.c.signal_id],
        set_={name: statement.excluded[name] for name in columns},
        # Not IN (...): an expanding parameter cannot be used in executemany.
        where=or_(_TASKS.c.status == "pending", _TASKS.c.status == "failed"),
    )


Write = Callable[[list[Any]], Awaitable[int]]


class SqlCommitter:
    """The store consumer's ``Committer``: rows first (one transaction), then dead letters and
    acknowledgements (one MULTI/EXEC). When the database fails, nothing is acknowledged and the
    entries are redelivered; when Redis fails after the rows are in, they are written again,
    which changes nothing."""

    def __init__(self, write: Write, redis: RedisClient, ref: GroupRef) -> None:
        """``write``: the writer's method for the parts (``write_rows``, ``write_pending``)."""
        self._write = write
        self._redis = redis
        self._ref = ref

    async def commit(self, commits: Sequence[Commit]) -> list[bool]:
        if not commits:
            return []
        await self._write([_row(part) for c in commits for part in c.parts])
        await publish_and_ack(self._redis, self._ref, commits)
        return [True] * len(commits)


def _row(part: object) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise TypeError(f"a store commit's parts are rows, not {type(part).__name__}")
    return part
