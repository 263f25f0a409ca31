"""The SQL behind /api/strategy-signals: pages of ``llm_enhancement_tasks`` newest first, as
ranges of (symbol | strategy | status, published_at, id) or (published_at, id), each signal with
its ratings (``llm_analysis_results``, one per analyst, joined by their unique key), and one
signal with its envelope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from sqlalchemy import ColumnElement, Label, Table, and_, select
from sqlalchemy.sql.expression import FromClause

from signalsmith.query.cursor import Position
from signalsmith.query.statements import Statement, page_bounds
from signalsmith.store.schema import AnalysisResultRow, DecisionRow, EnhancementTaskRow
from signalsmith.store.strategy_rows import ANALYSTS

TASKS: Final = cast(Table, EnhancementTaskRow.__table__)
_RESULTS: Final = cast(Table, AnalysisResultRow.__table__)
_DECISIONS: Final = cast(Table, DecisionRow.__table__)
TASK_NAMES: Final = tuple(column.name for column in TASKS.columns)
# A rating's columns; a page's row holds them once per analyst, as "<analyst>_<name>".
RATING_NAMES: Final = (
    "model",
    "rating",
    "agreement",
    "confidence",
    "reasoning",
    "risks",
    "key_factors",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_ms",
)
# The CSV's columns: the signal's, then each analyst's rating.
CSV_NAMES: Final = (
    *TASK_NAMES,
    *(f"{analyst}_{name}" for analyst in ANALYSTS for name in RATING_NAMES),
)
_C = TASKS.c


@dataclass(frozen=True, slots=True)
class StrategyFilter:
    """What a page of signals is narrowed to; None leaves a column alone."""

    symbol: str | None = None
    strategy: str | None = None
    status: str | None = None
    since: datetime | None = None  # published_at, inclusive
    until: datetime | None = None  # published_at, exclusive


def strategy_signals(filters: StrategyFilter, after: Position | None, limit: int) -> Statement:
    """Up to ``limit`` signals with their ratings, newest first, ordered by
    (published_at, id), after ``after``."""
    conditions: list[ColumnElement[bool]] = [
        column == value
        for column, value in (
            (_C.symbol, filters.symbol),
            (_C.strategy, filters.strategy),
            (_C.status, filters.status),
        )
        if value is not None
    ]
    conditions += page_bounds(TASKS, filters.since, filters.until, after)
    joined, ratings = _with_ratings(TASKS)
    statement = select(TASKS, *ratings).select_from(joined).where(*conditions)
    return statement.order_by(_C.published_at.desc(), _C.id.desc()).limit(limit)


def strategy_signal(signal_id: str) -> Statement:
    """One signal, its ratings, and the envelope it was published in."""
    joined, ratings = _with_ratings(
        TASKS.outerjoin(_DECISIONS, _DECISIONS.c.correlation_id == _C.signal_id)
    )
    statement = select(TASKS, *ratings, _DECISIONS.c.envelope).select_from(joined)
    return statement.where(_C.signal_id == signal_id)


def _with_ratings(base: FromClause) -> tuple[FromClause, list[Label[object]]]:
    """``base`` joined to each analyst's rating, and the rating columns, labelled
    ``<analyst>_<name>`` (``<analyst>_id`` is NULL when that analyst did not rate)."""
    joined, columns = base, []
    for analyst in ANALYSTS:
        rated = _RESULTS.alias(f"rated_{analyst}")
        on = and_(rated.c.signal_id == _C.signal_id, rated.c.analyst == analyst)
        joined = joined.outerjoin(rated, on)
        columns += [rated.c[name].label(f"{analyst}_{name}") for name in ("id", *RATING_NAMES)]
    return joined, columns
