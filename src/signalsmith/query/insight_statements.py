"""The SQL behind /api/insights: pages of ``insights`` newest first, as ranges of
(product_id, published_at, id) or (published_at, id), and one insight with its envelope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from sqlalchemy import ColumnElement, Table, select

from signalsmith.query.cursor import Position
from signalsmith.query.statements import Statement, page_bounds
from signalsmith.store.schema import DecisionRow, InsightRow

INSIGHTS: Final = cast(Table, InsightRow.__table__)
_DECISIONS: Final = cast(Table, DecisionRow.__table__)
INSIGHT_NAMES: Final = tuple(column.name for column in INSIGHTS.columns)
_C = INSIGHTS.c


@dataclass(frozen=True, slots=True)
class InsightFilter:
    """What a page of insights is narrowed to; None leaves a column alone."""

    product_id: str | None = None
    status: str | None = None
    verdict: str | None = None
    since: datetime | None = None  # published_at, inclusive
    until: datetime | None = None  # published_at, exclusive


def insights(filters: InsightFilter, after: Position | None, limit: int) -> Statement:
    """Up to ``limit`` insights newest first, ordered by (published_at, id), after ``after``."""
    conditions: list[ColumnElement[bool]] = [
        column == value
        for column, value in (
            (_C.product_id, filters.product_id),
            (_C.status, filters.status),
            (_C.verdict, filters.verdict),
        )
        if value is not None
    ]
    conditions += page_bounds(INSIGHTS, filters.since, filters.until, after)
    statement = select(INSIGHTS).where(*conditions)
    return statement.order_by(_C.published_at.desc(), _C.id.desc()).limit(limit)


def insight(correlation_id: str) -> Statement:
    """One insight and the envelope it was published in."""
    joined = INSIGHTS.outerjoin(_DECISIONS, _DECISIONS.c.correlation_id == _C.correlation_id)
    statement = select(INSIGHTS, _DECISIONS.c.envelope).select_from(joined)
    return statement.where(_C.correlation_id == correlation_id)
