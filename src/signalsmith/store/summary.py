"""The summary tables (``ticker_hours``, ``ticker_days``): what new decision rows add to
them, the upsert that adds it in the writer's transaction, and the statements that recompute
them from ``decisions`` (migration 0003, and after a bulk load that bypassed the writer).

An hour is ``published_at`` in whole hours since the Unix epoch (UTC), the same integer in
Python, SQLite and PostgreSQL, so that the query API can cut a window into whole hours read
here and two partial hours read from ``decisions``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Delete,
    Insert,
    Integer,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from signalsmith.consensus import MIN_WEIGHT, weight_of
from signalsmith.store.rows import DecisionValues
from signalsmith.store.schema import FOLDED, DecisionRow, TickerDayRow, TickerHourRow

HOUR_S: Final = 3_600
HOURS: Final = typing.cast(Table, TickerHourRow.__table__)
DAYS: Final = typing.cast(Table, TickerDayRow.__table__)
_ROWS: Final = typing.cast(Table, DecisionRow.__table__)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_HOUR: Final = timedelta(seconds=HOUR_S)
# Inline, not a parameter: GROUP BY must repeat the SELECT's expression exactly.
_HOUR_SQL: Final = literal_column(str(HOUR_S), Integer)
SUMMED: Final = (
    "mentions",
    "posts",
    "buy",
    "sell",
    "weight_sum",
    "weighted_score",
    "confidence_sum",
)


def hour_of(when: datetime) -> int:
    """Whole hours from the epoch to ``when``, rounded down (naive times are UTC); exact, in
    integer arithmetic."""
    return _since_epoch(when) // _ONE_HOUR


def hour_after(when: datetime) -> int:
    """The first hour that begins at or after ``when``."""
    return -(-_since_epoch(when) // _ONE_HOUR)


def hour_start(hour: int) -> datetime:
    """When ``hour`` begins; past the year 9999, the last time there is."""
    try:
        return _EPOCH + hour * _ONE_HOUR
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def _since_epoch(when: datetime) -> timedelta:
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)) - _EPOCH


@dataclass(frozen=True, slots=True)
class Summary:
    """A table of post-row sums and the key it groups rows by."""

    table: Table
    keys: tuple[str, str]
    key_of: Callable[[DecisionValues], tuple[Any, str]]


HOURLY: Final = Summary(
    HOURS, ("hour", "ticker"), lambda row: (hour_of(row["published_at"]), row["ticker"])
)
DAILY: Final = Summary(
    DAYS, ("trade_date", "ticker"), lambda row: (row["trade_date"], row["ticker"])
)
SUMMARIES: Final = (HOURLY, DAILY)


@dataclass(slots=True)
class Sums:
    """One group's share of a batch, as the summary tables' columns."""

    last_seen: datetime
    mentions: int = 0
    posts: int = 0
    buy: int = 0
    sell: int = 0
    weight_sum: float = 0.0
    weighted_score: float = 0.0
    confidence_sum: float = 0.0

    def add(self, row: DecisionValues) -> None:
        self.mentions += 1
        self.last_seen = max(self.last_seen, row["published_at"])
        if row["status"] not in FOLDED:
            return
        weight = weight_of(row["confidence"])
        self.posts += 1
        self.buy += row["verdict"] == "BUY"
        self.sell += row["verdict"] == "SELL"
        self.weight_sum += weight
        self.weighted_score += weight * row["score"]
        self.confidence_sum += row["confidence"]

    def values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in ("last_seen", *SUMMED)}


def summed(summary: Summary, rows: Iterable[DecisionValues]) -> list[dict[str, object]]:
    """What ``rows`` add to ``summary`` (post rows only), in key order: two writers updating
    the same sums wait for each other rather than deadlock."""
    groups: dict[tuple[Any, str], Sums] = {}
    for row in rows:
        if row["kind"] != "post":
            continue
        key = summary.key_of(row)
        if key not in groups:
            groups[key] = Sums(row["published_at"])
        groups[key].add(row)
    first, second = summary.keys
    return [{first: key[0], second: key[1], **groups[key].values()} for key in sorted(groups)]


def add_sums(dialect: str, summary: Summary) -> Insert:
    """INSERT ... ON CONFLICT (its key) DO UPDATE adding the new sums to the old."""
    table = summary.table
    statement: Any = (sqlite if dialect == "sqlite" else postgresql).insert(table)
    later: Any = func.max if dialect == "sqlite" else func.greatest  # the larger of two
    new = statement.excluded
    update = {name: table.c[name] + new[name] for name in SUMMED}
    update["last_seen"] = later(table.c.last_seen, new.last_seen)
    keys = [table.c[name] for name in summary.keys]
    return typing.cast(Insert, statement.on_conflict_do_update(index_elements=keys, set_=update))


def folded_sums(folded: ColumnElement[bool]) -> list[ColumnElement[Any]]:
    """In SQL over ``decisions``, the sums after ``mentions`` (``SUMMED[1:]``) of the rows
    where ``folded`` holds."""
    c = _ROWS.c
    weight = case((c.confidence > MIN_WEIGHT, c.confidence), else_=literal(MIN_WEIGHT))
    zero = literal(0.0)
    return [
        func.sum(case((folded, 1), else_=0)),
        func.sum(case((and_(folded, c.verdict == "BUY"), 1), else_=0)),
        func.sum(case((and_(folded, c.verdict == "SELL"), 1), else_=0)),
        func.sum(case((folded, weight), else_=zero)),
        func.sum(case((folded, weight * c.score), else_=zero)),
        func.sum(case((folded, c.confidence), else_=zero)),
    ]


def recompute(dialect: str) -> list[Delete | Insert]:
    """The statements that empty the summary tables and fill them again from ``decisions``."""
    c = _ROWS.c
    sums = [func.max(c.published_at), func.count(), *folded_sums(c.status.in_(FOLDED))]
    names = ["last_seen", *SUMMED]
    statements: list[Delete | Insert] = []
    for summary, group in ((HOURLY, _hour_column(dialect)), (DAILY, c.trade_date)):
        source = select(group, c.ticker, *sums).where(c.kind == "post")
        source = source.group_by(group, c.ticker)
        table = summary.table
        statements.append(delete(table))
        statements.append(table.insert().from_select([*summary.keys, *names], source))
    return statements


def _hour_column(dialect: str) -> ColumnElement[Any]:
    """``hour_of(published_at)`` in SQL. SQLite keeps UTC wall time as text."""
    published = _ROWS.c.published_at
    if dialect == "sqlite":
        # Whole seconds only: SQLite rounds a fraction to milliseconds, and 59.9999995 s
        # would round up into the next hour.
        seconds = cast(func.strftime("%s", func.substr(published, 1, 19)), Integer)
        return (seconds // _HOUR_SQL).label("hour")
    epoch = func.extract("epoch", published)
    return cast(func.floor(epoch / _HOUR_SQL), BigInteger).label("hour")
