"""The query API's SQL as SQLAlchemy Core statements, one text for SQLite and PostgreSQL,
written for the indexes of ``store.schema``: every page is a range of (ticker, published_at,
id), (kind, published_at, id) or (published_at, id) read newest first, and every consensus is
summed in the database (GROUP BY), never by loading rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, TypeAlias, cast

from sqlalchemy import ColumnElement, Row, Select, Table, and_, case, func, literal, or_, select

from signalsmith.consensus import MIN_WEIGHT, DayTotals
from signalsmith.query.cursor import Position
from signalsmith.store.schema import DecisionRow

TABLE: Final = cast(Table, DecisionRow.__table__)
ROW_COLUMNS: Final = tuple(column for column in TABLE.columns if column.name != "envelope")
ROW_NAMES: Final = tuple(column.name for column in ROW_COLUMNS)
FOLDED: Final = ("ok", "degraded")  # the statuses the live consensus folds in
_TOTAL_NAMES: Final = (
    "mentions",
    "posts",
    "buy",
    "sell",
    "weight_sum",
    "weighted_score",
    "confidence_sum",
)
_C = TABLE.c
# Rows of any columns (SQLAlchemy 2.1 types a row by each of its columns).
Statement: TypeAlias = Select[*tuple[Any, ...]]
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """What a page of decisions is narrowed to; None leaves a column alone."""

    ticker: str | None = None
    kind: str | None = None
    verdict: str | None = None
    status: str | None = None
    since: datetime | None = None  # published_at, inclusive
    until: datetime | None = None  # published_at, exclusive
    min_confidence: float | None = None


def decisions(filters: DecisionFilter, after: Position | None, limit: int) -> Statement:
    """Up to ``limit`` rows newest first, ordered by (published_at, id), after ``after``."""
    conditions: list[ColumnElement[bool]] = []
    for column, value in (
        (_C.ticker, filters.ticker),
        (_C.kind, filters.kind),
        (_C.verdict, filters.verdict),
        (_C.status, filters.status),
    ):
        if value is not None:
            conditions.append(column == value)
    conditions += _published(filters.since, filters.until)
    if filters.min_confidence is not None:
        conditions.append(_C.confidence >= filters.min_confidence)
    if after is not None:
        # (published_at, id) < (p, i), spelt so that both databases see a range on the index:
        # the first bound alone is what the index seeks to, the OR only trims its first rows.
        at = after.published_at
        conditions.append(_C.published_at <= at)
        conditions.append(
            or_(_C.published_at < at, and_(_C.published_at == at, _C.id < after.row_id))
        )
    statement = select(*ROW_COLUMNS).where(*conditions)
    return statement.order_by(_C.published_at.desc(), _C.id.desc()).limit(limit)


def decision(correlation_id: str) -> Statement:
    """The row of one decision, its envelope included."""
    return select(*ROW_COLUMNS, _C.envelope).where(_C.correlation_id == correlation_id)


def _published(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    bounds: list[ColumnElement[bool]] = []
    if since is not None:
        bounds.append(_C.published_at >= since)
    if until is not None:
        bounds.append(_C.published_at < until)
    return bounds


def _totals(posts_only: bool) -> list[ColumnElement[Any]]:
    """A group's mentions (its post rows) and its consensus totals (``DayTotals``) over the
    post rows the live pipeline folds in: status ok or degraded. ``posts_only``: the WHERE
    clause keeps post rows only already."""
    post = _C.kind == "post"
    folded = _C.status.in_(FOLDED) if posts_only else and_(post, _C.status.in_(FOLDED))
    weight = case((_C.confidence > MIN_WEIGHT, _C.confidence), else_=literal(MIN_WEIGHT))
    zero = literal(0.0)
    return [
        func.count() if posts_only else func.sum(case((post, 1), else_=0)),
        func.sum(case((folded, 1), else_=0)),
        func.sum(case((and_(folded, _C.verdict == "BUY"), 1), else_=0)),
        func.sum(case((and_(folded, _C.verdict == "SELL"), 1), else_=0)),
        func.sum(case((folded, weight), else_=zero)),
        func.sum(case((folded, weight * _C.score), else_=zero)),
        func.sum(case((folded, _C.confidence), else_=zero)),
    ]


def _labelled(totals: list[ColumnElement[Any]]) -> list[ColumnElement[Any]]:
    """Named as ``totals_of`` reads them (the first ones only, when fewer)."""
    return [column.label(name) for column, name in zip(totals, _TOTAL_NAMES, strict=False)]


def top_tickers(
    since: datetime, until: datetime | None, limit: int, *, with_totals: bool
) -> Statement:
    """The tickers with the most post rows published in [since, until), when each was last
    mentioned and, ``with_totals``, their consensus totals: a range of the (kind,
    published_at) index, grouped by ticker. Without the totals, ``ticker_totals`` sums them
    for the tickers ranked: SQLite groups by sorting, and summing every ticker of the window
    there costs as much again as counting them (measured); PostgreSQL sums them all in its
    hash aggregate for less than a second statement costs."""
    totals = _labelled(_totals(posts_only=True) if with_totals else [func.count()])
    mentions = totals[0]
    last_seen = func.max(_C.published_at).label("last_seen")
    statement = select(_C.ticker, last_seen, *totals)
    statement = statement.where(_C.kind == "post", *_published(since, until))
    return statement.group_by(_C.ticker).order_by(mentions.desc(), _C.ticker).limit(limit)


def ticker_totals(tickers: Sequence[str], since: datetime, until: datetime | None) -> Statement:
    """The totals of these tickers over [since, until): one range of the (ticker,
    published_at) index per ticker (the kind is left to the sums, as in ``daily``)."""
    totals = _labelled(_totals(posts_only=False))
    statement = select(_C.ticker, *totals)
    statement = statement.where(_C.ticker.in_(tickers), *_published(since, until))
    return statement.group_by(_C.ticker)


def daily(ticker: str, first_day: date, published_from: datetime) -> Statement:
    """A ticker's totals per trade date from ``first_day`` on, newest first, days with posts
    only. ``published_from`` bounds the range of the (ticker, published_at) index: a post is
    published after the day it speaks for begins. The kind is left to the sums so that no
    database is tempted by the (kind, published_at) index, which every ticker shares."""
    totals = _totals(posts_only=False)
    statement = select(_C.trade_date, *_labelled(totals)).where(
        _C.ticker == ticker, _C.published_at >= published_from, _C.trade_date >= first_day
    )
    statement = statement.group_by(_C.trade_date).having(totals[0] > 0)
    return statement.order_by(_C.trade_date.desc())


def window(ticker: str, since: datetime) -> Statement:
    """A ticker's totals over the post rows published since ``since`` (one row)."""
    totals = _labelled(_totals(posts_only=False))
    return select(*totals).where(_C.ticker == ticker, _C.published_at >= since)


def totals_of(row: AnyRow) -> tuple[int, DayTotals]:
    """A row of ``_totals()`` columns as (mentions, the consensus totals)."""
    values = row._mapping
    posts, buy, sell = (_int(values[name]) for name in ("posts", "buy", "sell"))
    return _int(values["mentions"]), DayTotals(
        posts=posts,
        buy=buy,
        sell=sell,
        hold=posts - buy - sell,
        weight_sum=_float(values["weight_sum"]),
        weighted_score=_float(values["weighted_score"]),
        confidence_sum=_float(values["confidence_sum"]),
    )


def _int(value: object) -> int:
    return 0 if value is None else int(cast(int, value))


def _float(value: object) -> float:
    return 0.0 if value is None else float(cast(float, value))
