"""The /api endpoints. Each one checks its parameters, runs its statements on one pooled
connection and renders the rows; nothing here writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncConnection

from signalsmith.consensus import DayTotals, day_consensus
from signalsmith.decide import DEAD_ZONE
from signalsmith.normalize import utc_now
from signalsmith.query import render, statements
from signalsmith.query.access import SESSION_COOKIE, ApiAccess, Credentials
from signalsmith.query.cursor import Position, decode_cursor, encode_cursor
from signalsmith.query.database import QueryDatabase, StoreUnavailable
from signalsmith.query.models import DecisionDetail, DecisionPage, Problem, TickerDetail, TickerList
from signalsmith.query.params import (
    KINDS,
    STATUSES,
    VERDICTS,
    choice_param,
    only_known,
    text_param,
    window_param,
)
from signalsmith.query.statements import AnyRow, DecisionFilter, Statement

_JSON: Final = "application/json"
_CSV: Final = "text/csv; charset=utf-8"
_RETRY_AFTER_S: Final = "5"
TICKER_PATTERN: Final = r"^[A-Za-z0-9.\-^=/]{1,32}$"
DEFAULT_TICKER_WINDOW: Final = timedelta(hours=24)
RECENT: Final = 20  # decisions and spikes on the ticker page
MAX_CORRELATION_ID: Final = 64  # the column's width

Rows = Sequence[AnyRow]
TickerQuery = Annotated[
    str | None,
    Query(pattern=TICKER_PATTERN, description="case-insensitive; 1-32 of A-Z 0-9 . - ^ = /"),
]
Since = Annotated[
    str | None,
    Query(
        max_length=64,
        description="published at or after: an ISO 8601 date-time (UTC unless it says) or a "
        "date (its first instant)",
    ),
]
Until = Annotated[
    str | None,
    Query(
        max_length=64,
        description="published before: an ISO 8601 date-time, or a date (that whole day included)",
    ),
]
Cursor = Annotated[
    str | None, Query(max_length=256, description="the next_cursor of the previous page")
]
Format = Annotated[
    Literal["json", "csv"],
    Query(description="csv: the same rows as a spreadsheet-safe CSV; next cursor in X-Next-Cursor"),
]
PageSize = Annotated[int, Query(ge=1, le=1000, description="rows per page")]

_ERRORS: Final[dict[int | str, dict[str, object]]] = {
    401: {"model": Problem, "description": "API_TOKEN required (server not on loopback)"},
    503: {"model": Problem, "description": "the store cannot answer now, or API_TOKEN unset"},
}
_NONE: Final[dict[int | str, dict[str, object]]] = {}
_MISSING: Final[dict[int | str, dict[str, object]]] = {404: {"model": Problem}}
_PAGE: Final[dict[int | str, dict[str, object]]] = {
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}
}


def query_router(
    database: QueryDatabase, access: ApiAccess, *, clock: Callable[[], datetime] = utc_now
) -> APIRouter:
    """The /api routes over the store ``database`` reads."""
    router = api_router(access, "query")
    api = _Endpoints(database, clock)
    routes = (
        ("/decisions", api.decisions, DecisionPage, _PAGE),
        ("/decisions/{correlation_id:path}", api.decision, DecisionDetail, _MISSING),
        ("/tickers", api.tickers, TickerList, _NONE),
        ("/tickers/{ticker:path}", api.ticker, TickerDetail, _MISSING),
        ("/spikes", api.spikes, DecisionPage, _PAGE),
    )
    for path, endpoint, model, responses in routes:
        router.add_api_route(
            path, endpoint, methods=["GET"], response_model=model, responses=responses
        )
    return router


class _Endpoints:
    """The handlers; FastAPI reads each one's parameters from its signature."""

    def __init__(self, database: QueryDatabase, clock: Callable[[], datetime]) -> None:
        self._database = database
        self._clock = clock

    async def decisions(
        self,
        *,
        ticker: TickerQuery = None,
        kind: Annotated[str | None, Query(description=" | ".join(KINDS))] = None,
        verdict: Annotated[str | None, Query(description="BUY | SELL | HOLD")] = None,
        status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
        since: Since = None,
        until: Until = None,
        min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
        limit: PageSize = 100,
        cursor: Cursor = None,
        format: Format = "json",
    ) -> Response:
        """Decisions newest first (published_at, then id), filtered, a page at a time."""
        window = window_param(since, until)
        filters = DecisionFilter(
            ticker=None if ticker is None else ticker.upper(),
            kind=choice_param(kind, "kind", KINDS),
            verdict=choice_param(verdict, "verdict", VERDICTS),
            status=choice_param(status, "status", STATUSES),
            since=window.since,
            until=window.until,
            min_confidence=min_confidence,
        )
        return await self._page(filters, cursor, limit, form=format, name="decisions")

    async def decision(self, correlation_id: Annotated[str, Path()]) -> Response:
        """One decision: its row and its envelope as published."""
        key = text_param(correlation_id, "correlation_id", MAX_CORRELATION_ID)
        async with reading(self._database) as connection:
            row = (await connection.execute(statements.decision(key))).first()
        if row is None:
            raise HTTPException(404, "no decision has this correlation_id")
        body = render.item(row)
        body["envelope"] = render.envelope(row._mapping["envelope"])
        return Response(render.json_body(body), media_type=_JSON)

    async def tickers(
        self,
        *,
        since: Since = None,
        until: Until = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> Response:
        """The most mentioned tickers (post rows) in a window, by default the last 24 hours,
        each with its consensus over the window."""
        window = window_param(since, until)
        start = window.since or (window.until or self._clock()) - DEFAULT_TICKER_WINDOW
        async with reading(self._database) as connection:
            items = await _top_tickers(connection, start, window.until, limit)
        until_shown = None if window.until is None else window.until.isoformat()
        body = {"since": start.isoformat(), "until": until_shown, "items": items}
        return Response(render.json_body(body), media_type=_JSON)

    async def ticker(
        self,
        *,
        ticker: Annotated[str, Path(pattern=TICKER_PATTERN)],
        days: Annotated[int, Query(ge=1, le=366, description="trade dates shown")] = 30,
        window_s: Annotated[int, Query(ge=1, le=30 * 86_400)] = 3_600,
    ) -> Response:
        """A ticker's daily consensus (per trade date), its consensus over the last
        ``window_s`` seconds, its latest decisions and spikes. The window is computed from the
        stored rows, each post counting once; the live per-ticker view in Redis also discounts
        reposts of one story and authors who post often, so its numbers can differ."""
        name, now = ticker.upper(), self._clock()
        first_day = now.astimezone(UTC).date() - timedelta(days=days - 1)
        day_start = datetime.combine(first_day, time(), UTC)
        since = now - timedelta(seconds=window_s)
        recent_filter = DecisionFilter(name)
        spike_filter = DecisionFilter(name, kind="spike", since=day_start)
        async with reading(self._database) as connection:
            recent = await fetch_rows(connection, statements.decisions(recent_filter, None, RECENT))
            if not recent:
                raise HTTPException(404, "no decision on this ticker")
            daily = await fetch_rows(connection, statements.daily(name, first_day))
            (totals,) = await fetch_rows(connection, statements.window(name, since))
            spikes = await fetch_rows(connection, statements.decisions(spike_filter, None, RECENT))
        mentions, window_totals = statements.totals_of(totals)
        body = {
            "ticker": name,
            "days": [_day(row) for row in daily],
            "window": {
                "window_s": window_s,
                "since": since.astimezone(UTC).isoformat(),
                "mentions": mentions,
                "consensus": _consensus(window_totals),
            },
            "recent": [render.item(row) for row in recent],
            "spikes": [render.item(row) for row in spikes],
        }
        return Response(render.json_body(body), media_type=_JSON)

    async def spikes(
        self,
        *,
        ticker: TickerQuery = None,
        since: Since = None,
        until: Until = None,
        limit: PageSize = 100,
        cursor: Cursor = None,
        format: Format = "json",
    ) -> Response:
        """Mention spikes (kind=spike rows) newest first, a page at a time."""
        window = window_param(since, until)
        name = None if ticker is None else ticker.upper()
        filters = DecisionFilter(name, kind="spike", since=window.since, until=window.until)
        return await self._page(filters, cursor, limit, form=format, name="spikes")

    async def _page(
        self,
        filters: DecisionFilter,
        cursor: str | None,
        limit: int,
        *,
        form: Literal["json", "csv"],
        name: str,
    ) -> Response:
        after = None if cursor is None else decode_cursor(cursor)
        async with reading(self._database) as connection:
            rows = await fetch_rows(connection, statements.decisions(filters, after, limit + 1))
        return page_response(rows, limit, form=form, name=name)


def page_response(
    rows: Rows,
    limit: int,
    *,
    form: Literal["json", "csv"],
    name: str,
    names: Sequence[str] = statements.ROW_NAMES,
    item: Callable[[AnyRow], render.Item] = render.item,
) -> Response:
    """A page of at most ``limit`` of ``rows`` (read one more, to know whether another page
    follows) as JSON items or as CSV columns ``names``, with the next page's cursor."""
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]._mapping
        following = encode_cursor(Position(render.utc(last["published_at"]), last["id"]))
    if form == "csv":
        headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
        if following is not None:
            headers["X-Next-Cursor"] = following
        return StreamingResponse(render.csv_chunks(rows, names), media_type=_CSV, headers=headers)
    body = {"items": [item(row) for row in rows], "next_cursor": following}
    return Response(render.json_body(body), media_type=_JSON)


def api_router(access: ApiAccess, tag: str) -> APIRouter:
    """A router under /api that checks who asks (``access``) and refuses unknown parameters."""

    async def guard(request: Request, credentials: Credentials) -> None:
        access.check(credentials, request.cookies.get(SESSION_COOKIE), request.method)

    return APIRouter(
        prefix="/api",
        tags=[tag],
        dependencies=[Depends(guard), Depends(known_parameters_only)],
        responses=_ERRORS,
    )


async def known_parameters_only(request: Request) -> None:
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        known = (field.alias for field in route.dependant.query_params)
        only_known(request.query_params.keys(), known)


@contextlib.asynccontextmanager
async def reading(database: QueryDatabase) -> AsyncIterator[AsyncConnection]:
    try:
        async with database.connect() as connection:
            yield connection
    except StoreUnavailable:
        raise HTTPException(
            503,
            "the decision store cannot answer now (database unreachable or not migrated yet)",
            {"Retry-After": _RETRY_AFTER_S},
        ) from None


async def fetch_rows(
    connection: AsyncConnection, statement: Statement, params: statements.Params | None = None
) -> Rows:
    return (await connection.execute(statement, params)).all()


def _consensus(totals: DayTotals) -> render.Item:
    return render.consensus(day_consensus(totals, DEAD_ZONE))


async def _top_tickers(
    connection: AsyncConnection, since: datetime, until: datetime | None, limit: int
) -> list[render.Item]:
    """The ranked tickers with their consensus: in one statement on PostgreSQL, in two on
    SQLite (see ``statements.top_tickers``)."""
    together = connection.dialect.name != "sqlite"
    ranked = await fetch_rows(
        connection, *statements.top_tickers(since, until, limit, with_totals=together)
    )
    if together:
        return [_mentions(row) for row in ranked]
    names = [row._mapping["ticker"] for row in ranked]
    sums = await fetch_rows(connection, *statements.ticker_totals(names, since, until))
    by_name = {row._mapping["ticker"]: row for row in sums}
    # Rows are never deleted: every ticker ranked has its sums (counted again, so that its
    # mentions agree with them even if rows arrived between the two statements).
    return [_mentions(by_name[name]) for name in names if name in by_name]


def _mentions(sums: AnyRow) -> render.Item:
    """A ticker's mentions, last mention and consensus."""
    values = sums._mapping
    mentions, totals = statements.totals_of(sums)
    return {
        "ticker": values["ticker"],
        "mentions": mentions,
        "last_seen": render.utc(values["last_seen"]).isoformat(),
        "consensus": _consensus(totals),
    }


def _day(row: AnyRow) -> render.Item:
    mentions, totals = statements.totals_of(row)
    day = row._mapping["trade_date"]
    return {"trade_date": day.isoformat(), "mentions": mentions, "consensus": _consensus(totals)}
