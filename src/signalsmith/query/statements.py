"""The query API's SQL as SQLAlchemy Core statements, one text for SQLite and PostgreSQL,
written for the indexes of ``store.schema``: every page is a range of (ticker, published_at,
id), (kind, published_at, id) or (published_at, id) read newest first, and every consensus is
summed in the database (GROUP BY), never by loading rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, Final, TypeAlias, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Select,
    Subquery,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    union_all,
)

from signalsmith.consensus import DayTotals
from signalsmith.query.cursor import Position
from signalsmith.store.schema import FOLDED, DecisionRow
from signalsmith.store.summary import (
    DAYS,
    HOURS,
    SUMMED,
    folded_sums,
    hour_after,
    hour_of,
    hour_start,
)

TABLE: Final = cast(Table, DecisionRow.__table__)
ROW_COLUMNS: Final = tuple(column for column in TABLE.columns if column.name != "envelope")
ROW_NAMES: Final = tuple(column.name for column in ROW_COLUMNS)
_TOTAL_NAMES: Final = SUMMED
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
    conditions += page_bounds(TABLE, filters.since, filters.until, after)
    if filters.min_confidence is not None:
        conditions.append(_C.confidence >= filters.min_confidence)
    statement = select(*ROW_COLUMNS).where(*conditions)
    return statement.order_by(_C.published_at.desc(), _C.id.desc()).limit(limit)


def decision(correlation_id: str) -> Statement:
    """The row of one decision, its envelope included."""
    return select(*ROW_COLUMNS, _C.envelope).where(_C.correlation_id == correlation_id)


def page_bounds(
    table: Table, since: datetime | None, until: datetime | None, after: Position | None
) -> list[ColumnElement[bool]]:
    """A page's range on ``table``'s (published_at, id): ``since`` inclusive, ``until``
    exclusive, and after the cursor ``after``."""
    published, row_id = table.c.published_at, table.c.id
    bounds = _published(since, until, published)
    if after is not None:
        # (published_at, id) < (p, i), spelt so that both databases see a range on the index:
        # the first bound alone is what the index seeks to, the OR only trims its first rows.
        at = after.published_at
        bounds.append(published <= at)
        bounds.append(or_(published < at, and_(published == at, row_id < after.row_id)))
    return bounds


def _published(
    since: datetime | None, until: datetime | None, published: ColumnElement[Any] = _C.published_at
) -> list[ColumnElement[bool]]:
    bounds: list[ColumnElement[bool]] = []
    if since is not None:
        bounds.append(published >= since)
    if until is not None:
        bounds.append(published < until)
    return bounds


def _totals(posts_only: bool) -> list[ColumnElement[Any]]:
    """A group's mentions (its post rows) and its consensus totals (``DayTotals``) over the
    post rows the live pipeline folds in: status ok or degraded. ``posts_only``: the WHERE
    clause keeps post rows only already."""
    post = _C.kind == "post"
    folded = _C.status.in_(FOLDED) if posts_only else and_(post, _C.status.in_(FOLDED))
    mentions = func.count() if posts_only else func.sum(case((post, 1), else_=0))
    return [mentions, *folded_sums(folded)]


def _labelled(totals: list[ColumnElement[Any]]) -> list[ColumnElement[Any]]:
    """Named as ``totals_of`` reads them (the first ones only, when fewer)."""
    return [column.label(name) for column, name in zip(totals, _TOTAL_NAMES, strict=False)]


Params: TypeAlias = dict[str, Any]
_NEVER: Final = 2**62  # an hour no window reaches: "no upper bound"


def top_tickers(
    since: datetime, until: datetime | None, limit: int, *, with_totals: bool
) -> tuple[Statement, Params]:
    """The tickers with the most post rows published in [since, until), when each was last
    mentioned and their consensus totals (not ``with_totals``: their mentions only). The
    window's whole hours are summed from ``ticker_hours`` (a few thousand rows a day), its
    partial first and last hours from ``decisions`` through the (kind, published_at) index.
    Without the totals, ``ticker_totals`` sums them for the tickers ranked: SQLite groups by
    sorting, and the sorter's cost grows with every column it carries (measured: the totals and
    last mention of every ticker of a day cost twice the ranking); PostgreSQL sums them all in
    its hash aggregate for less than a second statement costs. The statement is built once
    (building it cost more than running it, measured) and takes the window as parameters."""
    return _ranking(with_totals), {**window_params(since, until), "limit": limit}


def ticker_totals(
    tickers: Sequence[str], since: datetime, until: datetime | None
) -> tuple[Statement, Params]:
    """The totals of these tickers' post rows over [since, until), and when each was last
    mentioned, as ``top_tickers``."""
    return _totals_of_tickers(), {**window_params(since, until), "tickers": list(tickers)}


@cache
def _ranking(with_totals: bool) -> Statement:
    names = _TOTAL_NAMES if with_totals else _TOTAL_NAMES[:1]
    both = _window_sums(names, tickers=False, last_seen=with_totals)
    mentions = func.sum(both.c.mentions).label("mentions")
    shown = [func.max(both.c.last_seen).label("last_seen")] if with_totals else []
    ranked = select(
        both.c.ticker,
        *shown,
        mentions,
        *(func.sum(both.c[name]).label(name) for name in names[1:]),
    ).group_by(both.c.ticker)
    return ranked.order_by(mentions.desc(), both.c.ticker).limit(bindparam("limit"))


@cache
def _totals_of_tickers() -> Statement:
    both = _window_sums(_TOTAL_NAMES, tickers=True, last_seen=True)
    return select(
        both.c.ticker,
        func.max(both.c.last_seen).label("last_seen"),
        *(func.sum(both.c[name]).label(name) for name in _TOTAL_NAMES),
    ).group_by(both.c.ticker)


def _window_sums(names: Sequence[str], *, tickers: bool, last_seen: bool) -> Subquery:
    """Per ticker, the ``names`` sums (and ``last_seen``) over the whole hours
    [``hour_from``, ``hour_to``) of ``ticker_hours`` and, as further rows, over each partial
    span [``a_from``, ``a_to``) and [``b_from``, ``b_to``) of ``decisions``."""
    hours = HOURS.c
    # The hours' rows as they are: the outer GROUP BY sums them (grouping them here too makes
    # SQLite sort every row twice).
    shown: list[ColumnElement[Any]] = [hours.last_seen] if last_seen else []
    whole = select(hours.ticker, *shown, *(hours[name] for name in names))
    whole = whole.where(hours.hour >= bindparam("hour_from"), hours.hour < bindparam("hour_to"))
    latest = [func.max(_C.published_at).label("last_seen")] if last_seen else []
    sums = _labelled(_totals(posts_only=True))[: len(names)]
    # One select per span: an OR of two ranges is no range to an index (measured: a scan of
    # every post row, 190 ms).
    partials = [
        select(_C.ticker, *latest, *sums).where(
            _C.kind == "post",
            _C.published_at >= _at(f"{span}_from"),
            _C.published_at < _at(f"{span}_to"),
        )
        for span in "ab"
    ]
    if tickers:
        whole = whole.where(hours.ticker.in_(bindparam("tickers", expanding=True)))
        partials = [p.where(_C.ticker.in_(bindparam("tickers", expanding=True))) for p in partials]
    parts = [whole, *(p.group_by(_C.ticker) for p in partials)]
    return union_all(*parts).subquery()


def _at(name: str) -> BindParameter[datetime]:
    return bindparam(name, type_=_C.published_at.type)


def window_params(since: datetime, until: datetime | None) -> Params:
    """[since, until) as ``_window_sums`` takes it: the whole hours, and the partial spans
    before and after them (empty ones where there is none)."""
    first, end, edges = split_hours(since, until)
    (a_from, a_to), (b_from, b_to) = (*edges, (since, since))[:2]
    return {
        "hour_from": first,
        "hour_to": _NEVER if end is None else end,
        "a_from": a_from,
        "a_to": a_to if a_to is not None else hour_start(first),
        "b_from": b_from,
        "b_to": b_to if b_to is not None else b_from,
    }


def split_hours(
    since: datetime, until: datetime | None
) -> tuple[int, int | None, list[tuple[datetime, datetime | None]]]:
    """[since, until) as the whole hours [first, end) (end None: open) and the partial spans
    around them; a window inside one hour is one partial span and no whole hour."""
    first = hour_after(since)
    if until is None:
        return first, None, [(since, hour_start(first))]
    end = hour_of(until)
    if end <= first:
        return first, first, [(since, until)]
    return first, end, [(since, hour_start(first)), (hour_start(end), until)]


def daily(ticker: str, first_day: date) -> Statement:
    """A ticker's totals per trade date from ``first_day`` on, newest first, days with posts
    only: rows of ``ticker_days``, one per day."""
    days = DAYS.c
    statement = select(days.trade_date, *(days[name].label(name) for name in _TOTAL_NAMES))
    statement = statement.where(days.ticker == ticker, days.trade_date >= first_day)
    return statement.order_by(days.trade_date.desc())


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


def spend(since: datetime) -> Statement:
    """Decisions published since ``since`` with the tokens and dollars they cost (one row)."""
    return select(
        func.count().label("decisions"),
        func.coalesce(func.sum(_C.tokens_in), 0).label("tokens_in"),
        func.coalesce(func.sum(_C.tokens_out), 0).label("tokens_out"),
        func.coalesce(func.sum(_C.cost_usd), 0.0).label("cost_usd"),
    ).where(_C.published_at >= since)
