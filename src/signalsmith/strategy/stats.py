"""The strategy pipeline's processing statistics (seed 002's): counts, timings, the rating
distribution, agreements and the model's tokens and cost, summed in SQL over
``llm_enhancement_tasks`` and ``llm_analysis_results``, overall and per strategy; and how many
signals are still pending, which only Redis knows (``pending_signals``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, cast

from sqlalchemy import ColumnElement, Row, Select, Table, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from signalsmith.redisclient import RedisClient, redis_errors
from signalsmith.source.redis_streams import group_backlogs
from signalsmith.store.database import DatabaseTarget, create_engine, database_errors
from signalsmith.store.schema import AnalysisResultRow, EnhancementTaskRow
from signalsmith.store.strategy_rows import DECIDED
from signalsmith.strategy.contract import AGREEMENTS

RATINGS: Final = tuple(range(1, 11))
_TASKS: Final = cast(Table, EnhancementTaskRow.__table__)
_RESULTS: Final = cast(Table, AnalysisResultRow.__table__)
_T = _TASKS.c
_R = _RESULTS.c


@dataclass(frozen=True, slots=True)
class StrategyCounts:
    """What the store holds of a set of decided signals (all, or one strategy's)."""

    processed: int  # done: rated
    failed: int  # a model gave no valid rating (the rules' rating stands)
    expired: int  # too old when their turn came: not rated
    total: int
    avg_processing_ms: float | None  # of the processed ones; None when there is none
    ratings: Mapping[int, int]  # final rating 1..10 -> signals, every rating present
    agreements: Mapping[str, int]  # final agreement -> signals, every agreement present
    llm_rated: int  # ratings by a model
    tokens_in: int  # the model's, over llm_analysis_results
    tokens_out: int
    cost_usd: float

    def as_json(self) -> dict[str, object]:
        return {
            "processed": self.processed,
            "failed": self.failed,
            "expired": self.expired,
            "total": self.total,
            "avg_processing_ms": self.avg_processing_ms,
            "rating_distribution": {str(rating): n for rating, n in self.ratings.items()},
            "agreements": dict(self.agreements),
            "llm_rated": self.llm_rated,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
        }


@dataclass(frozen=True, slots=True)
class StrategyStats:
    """The statistics: ``pending`` from Redis (None: unknown), the rest from the store."""

    pending: int | None
    totals: StrategyCounts
    # Per strategy (None: a signal without one), when asked for; the most signals first.
    strategies: Sequence[tuple[str | None, StrategyCounts]] | None = None

    def as_json(self) -> dict[str, object]:
        """``{"pending", "processed", ..., "strategies": [{"strategy", ...}] | null}``."""
        strategies = None
        if self.strategies is not None:
            strategies = [
                {"strategy": name, **counts.as_json()} for name, counts in self.strategies
            ]
        return {"pending": self.pending, **self.totals.as_json(), "strategies": strategies}


def describe(stats: StrategyStats) -> list[str]:
    """The statistics as lines of text, for the command line."""
    pending = "unknown (no strategy group, or Redis not reachable)"
    lines = [f"pending      {pending if stats.pending is None else stats.pending}"]
    lines += _describe(stats.totals)
    for name, counts in stats.strategies or ():
        lines.append(f"strategy {name if name is not None else '(none)'}:")
        lines += [f"  {line}" for line in _describe(counts)]
    return lines


def _describe(counts: StrategyCounts) -> list[str]:
    average = counts.avg_processing_ms
    return [
        f"processed    {counts.processed}",
        f"failed       {counts.failed}",
        f"expired      {counts.expired}",
        f"total        {counts.total}",
        f"avg time     {'-' if average is None else f'{average:.1f} ms'} (processed signals)",
        "ratings      " + "  ".join(f"{r}:{n}" for r, n in counts.ratings.items()),
        "agreements   " + "  ".join(f"{a} {n}" for a, n in counts.agreements.items()),
        f"model        {counts.llm_rated} ratings, tokens in {counts.tokens_in}, "
        f"out {counts.tokens_out}, cost ${counts.cost_usd:.6f}",
    ]


async def stored_stats(
    target: DatabaseTarget, pending: int | None, *, per_strategy: bool = False
) -> StrategyStats:
    """``read_stats`` on the database ``target``, on a connection of its own. Raises
    ``TransientError`` when it cannot answer (unreachable, or not migrated yet)."""
    engine = create_engine(target)
    try:
        with database_errors(target):
            async with engine.connect() as connection:
                return await read_stats(connection, pending, per_strategy=per_strategy)
    finally:
        await engine.dispose()


async def read_stats(
    connection: AsyncConnection, pending: int | None, *, per_strategy: bool = False
) -> StrategyStats:
    """The statistics of the signals stored, with ``pending`` as the caller found it."""
    totals = _counts(
        (await connection.execute(_task_sums(False))).one(),
        (await connection.execute(_result_sums(False))).one(),
    )
    if not per_strategy:
        return StrategyStats(pending, totals)
    tasks = (await connection.execute(_task_sums(True))).all()
    results = {row.strategy: row for row in (await connection.execute(_result_sums(True))).all()}
    strategies = [(row.strategy, _counts(row, results.get(row.strategy))) for row in tasks]
    strategies.sort(key=lambda pair: (-pair[1].total, pair[0] or ""))
    return StrategyStats(pending, totals, strategies)


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((condition, 1)))


def _task_sums(per_strategy: bool) -> Select[tuple[object, ...]]:
    """One row of counts, or one per strategy."""
    columns = [
        func.count().label("total"),
        *(_count_where(_T.status == status).label(status) for status in DECIDED),
        func.avg(case((_T.status == "done", _T.processing_ms))).label("avg_processing_ms"),
        *(_count_where(_T.rating == rating).label(f"rating_{rating}") for rating in RATINGS),
        *(_count_where(_T.agreement == name).label(f"agreement_{name}") for name in AGREEMENTS),
    ]
    decided = _T.status.in_(DECIDED)  # a pending row counts in Redis' pending, not here
    if not per_strategy:
        return select(*columns).where(decided)
    return select(_T.strategy, *columns).where(decided).group_by(_T.strategy)


def _result_sums(per_strategy: bool) -> Select[tuple[object, ...]]:
    """The model's ratings, tokens and cost: in total, or per strategy of the signal rated."""
    columns = [
        _count_where(_R.analyst == "llm").label("llm_rated"),
        func.coalesce(func.sum(_R.tokens_in), 0).label("tokens_in"),
        func.coalesce(func.sum(_R.tokens_out), 0).label("tokens_out"),
        func.coalesce(func.sum(_R.cost_usd), 0.0).label("cost_usd"),
    ]
    if not per_strategy:
        return select(*columns)
    joined = _RESULTS.join(_TASKS, _T.signal_id == _R.signal_id)
    return select(_T.strategy, *columns).select_from(joined).group_by(_T.strategy)


def _counts(
    tasks: Row[tuple[object, ...]], results: Row[tuple[object, ...]] | None
) -> StrategyCounts:
    t, r = tasks._mapping, (results._mapping if results is not None else {})
    average = t["avg_processing_ms"]
    return StrategyCounts(
        processed=int(t["done"]),
        failed=int(t["failed"]),
        expired=int(t["expired"]),
        total=int(t["total"]),
        avg_processing_ms=None if average is None else float(average),
        ratings={rating: int(t[f"rating_{rating}"]) for rating in RATINGS},
        agreements={name: int(t[f"agreement_{name}"]) for name in AGREEMENTS},
        llm_rated=int(r.get("llm_rated", 0)),
        tokens_in=int(r.get("tokens_in", 0)),
        tokens_out=int(r.get("tokens_out", 0)),
        cost_usd=float(r.get("cost_usd", 0.0)),
    )


UNREAD_COUNTED = 10_000  # on a server before 7.0, the unread entries are counted up to this


async def pending_signals(redis: RedisClient, stream: str, group: str) -> int | None:
    """Signals on ``stream`` that ``group`` has not finished: entries it has not read yet (its
    lag) plus entries read and not acknowledged yet (its pending entries). None when the stream
    or the group does not exist yet, or when Redis cannot tell the lag (entries deleted inside
    the part not read yet; on a server before 7.0, which does not report it, more than
    UNREAD_COUNTED entries unread). Raises ``TransientError`` when Redis fails."""
    with redis_errors("reading the strategy group's backlog"):
        found = await group_backlogs(redis, stream, UNREAD_COUNTED, only=(group,))
    pending, lag = found.get(group, (None, None))
    if lag is None or pending is None:
        return None
    return lag + pending
