"""/api/strategy-signals (GET): rated strategy signals from the store, a page or one by signal
id, and the processing statistics. ``POST /api/strategy-signals`` (queueing a signal) is
another router's; the two share the path with distinct methods.

``/stats`` is registered before ``/{signal_id}``, so it is never read as a signal id (a
signal whose id is "stats" is found in a page).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Response

from signalsmith.errors import TransientError
from signalsmith.intake import StreamIntake
from signalsmith.query import render
from signalsmith.query.access import ApiAccess
from signalsmith.query.cursor import decode_cursor
from signalsmith.query.database import QueryDatabase
from signalsmith.query.models import (
    Problem,
    SignalState,
    StrategySignalDetail,
    StrategySignalPage,
)
from signalsmith.query.models import StrategyStats as StrategyStatsModel
from signalsmith.query.params import choice_param, text_param, window_param
from signalsmith.query.posting import state_response
from signalsmith.query.routes import (
    MAX_CORRELATION_ID,
    Cursor,
    Format,
    PageSize,
    Since,
    TickerQuery,
    Until,
    api_router,
    fetch_rows,
    page_response,
    reading,
)
from signalsmith.query.statements import AnyRow
from signalsmith.query.strategy_statements import (
    CSV_NAMES,
    RATING_NAMES,
    TASK_NAMES,
    StrategyFilter,
    strategy_signal,
    strategy_signals,
)
from signalsmith.store.strategy_rows import ANALYSTS, TASK_STATUSES
from signalsmith.strategy.stats import read_stats

_JSON: Final = "application/json"
MAX_STRATEGY: Final = 64  # the column's width
PENDING_TIMEOUT_S: Final = 2.0  # a slow Redis makes pending unknown, not the answer late
_LISTS: Final = ("risks", "key_factors")  # stored as JSON text

Pending = Callable[[], Awaitable[int | None]]


def strategy_router(
    database: QueryDatabase,
    access: ApiAccess,
    *,
    pending: Pending | None = None,
    intake: StreamIntake | None = None,
) -> APIRouter:
    """The GET /api/strategy-signals routes over the store ``database`` reads; ``pending``,
    when given, counts the signals not decided yet (from Redis) for the statistics, and
    ``intake`` says where a POSTed signal not stored yet stands."""
    router = api_router(access, "strategy")
    api = _Strategy(database, pending, intake)
    router.add_api_route(
        "/strategy-signals",
        api.page,
        methods=["GET"],
        response_model=StrategySignalPage,
        responses={200: {"content": {"text/csv": {}}}},
    )
    router.add_api_route(
        "/strategy-signals/stats",
        api.stats,
        methods=["GET"],
        response_model=StrategyStatsModel,
    )
    router.add_api_route(
        "/strategy-signals/{signal_id:path}",
        api.one,
        methods=["GET"],
        response_model=StrategySignalDetail,
        responses={202: {"model": SignalState}, 404: {"model": Problem}},
    )
    return router


class _Strategy:
    def __init__(
        self, database: QueryDatabase, pending: Pending | None, intake: StreamIntake | None
    ) -> None:
        self._database = database
        self._pending = pending
        self._intake = intake

    async def page(
        self,
        *,
        symbol: TickerQuery = None,
        strategy: Annotated[str | None, Query(max_length=MAX_STRATEGY)] = None,
        status: Annotated[str | None, Query(description=" | ".join(TASK_STATUSES))] = None,
        since: Since = None,
        until: Until = None,
        limit: PageSize = 100,
        cursor: Cursor = None,
        format: Format = "json",
    ) -> Response:
        """Signals newest first (published_at, then id), each with its ratings, filtered, a
        page at a time; ``since`` and ``until`` bound when they were decided (a ``pending``
        one's published_at is when it was queued, until it is decided)."""
        window = window_param(since, until)
        filters = StrategyFilter(
            symbol=None if symbol is None else symbol.upper(),
            strategy=None
            if strategy is None
            else text_param(strategy, "strategy", MAX_STRATEGY, "query"),
            status=choice_param(status, "status", TASK_STATUSES),
            since=window.since,
            until=window.until,
        )
        after = None if cursor is None else decode_cursor(cursor)
        async with reading(self._database) as connection:
            rows = await fetch_rows(connection, strategy_signals(filters, after, limit + 1))
        return page_response(
            rows, limit, form=format, name="strategy-signals", names=CSV_NAMES, item=_item
        )

    async def stats(
        self,
        per_strategy: Annotated[bool, Query(description="also count each strategy's")] = False,
    ) -> Response:
        """The processing statistics: counts by outcome, the average processing time, the
        final ratings and agreements, the model's tokens and cost, from the store; ``pending``
        from Redis (null when unknown)."""
        pending = await self._pending_now()
        async with reading(self._database) as connection:
            stats = await read_stats(connection, pending, per_strategy=per_strategy)
        return Response(render.json_body(stats.as_json()), media_type=_JSON)

    async def one(self, signal_id: Annotated[str, Path()]) -> Response:
        """One decided signal with its ratings and envelope; for a signal not decided yet, 202
        with its state (``pending``; for one POSTed, ``processing`` or ``decided`` as Redis
        says), or 200 with the reason once it ``failed``."""
        key = text_param(signal_id, "signal_id", MAX_CORRELATION_ID)
        async with reading(self._database) as connection:
            row = (await connection.execute(strategy_signal(key))).first()
        if row is None or row._mapping["status"] == "pending":
            return await state_response(
                self._intake,
                "signal_id",
                key,
                "no strategy signal has this signal_id",
                queued=row is not None,
            )
        body = _item(row)
        body["envelope"] = render.envelope(row._mapping["envelope"])
        return Response(render.json_body(body), media_type=_JSON)

    async def _pending_now(self) -> int | None:
        """The signals pending in Redis, or None: no way to ask, Redis failing or slow."""
        if self._pending is None:
            return None
        try:
            async with asyncio.timeout(PENDING_TIMEOUT_S):
                return await self._pending()
        except (TransientError, TimeoutError):
            return None


def _item(row: AnyRow) -> render.Item:
    """A signal's columns and, as ``ratings``, each analyst's that rated it."""
    item = render.item(row, TASK_NAMES)
    values = row._mapping
    ratings: list[render.Item] = []
    for analyst in ANALYSTS:
        if values[f"{analyst}_id"] is None:
            continue
        rating: render.Item = {"analyst": analyst}
        for name in RATING_NAMES:
            value = values[f"{analyst}_{name}"]
            rating[name] = json.loads(value) if name in _LISTS and value is not None else value
        ratings.append(rating)
    item["ratings"] = ratings
    return item
