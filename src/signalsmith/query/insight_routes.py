"""/api/insights: market insights from the store (a page, or one by correlation id), and
``POST`` to ask for one (queued on MARKET_STREAM, answered 202 at once).

``GET /api/insights/{correlation_id}``: 200 with the insight once stored; before that, for a
request queued over HTTP, 202 ``{"state": "pending"}`` while it waits or is computed, and 200
``{"state": "failed", "reason", "detail"}`` once it was dead-lettered; 404 for an id unknown.
"""

from __future__ import annotations

import json
from typing import Annotated, Final
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response

from signalsmith.intake import Queued, StreamIntake
from signalsmith.query import render
from signalsmith.query.access import ApiAccess
from signalsmith.query.cursor import decode_cursor
from signalsmith.query.database import QueryDatabase
from signalsmith.query.insight_statements import (
    INSIGHT_NAMES,
    InsightFilter,
    insight,
    insights,
)
from signalsmith.query.models import InsightDetail, InsightPage, Problem, QueuedInsight
from signalsmith.query.params import STATUSES, VERDICTS, choice_param, text_param, window_param
from signalsmith.query.posting import json_response, queue_posted, state_response
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

_JSON: Final = "application/json"
_CSV: Final = "text/csv; charset=utf-8"
_ROW_NAMES: Final = tuple(name for name in INSIGHT_NAMES if name != "indicators")


def insight_router(
    database: QueryDatabase | None, intake: StreamIntake | None, access: ApiAccess
) -> APIRouter:
    """The /api/insights routes: reading them needs the store (``database``), asking for one
    needs the market pipeline's stream (``intake``)."""
    router = api_router(access, "insights")
    api = _Insights(database, intake)
    if database is not None:
        router.add_api_route(
            "/insights",
            api.page,
            methods=["GET"],
            response_model=InsightPage,
            responses={200: {"content": {"text/csv": {}}}},
        )
    if database is not None or intake is not None:
        router.add_api_route(
            "/insights/{correlation_id:path}",
            api.one,
            methods=["GET"],
            response_model=InsightDetail,
            responses={202: {"model": QueuedInsight}, 404: {"model": Problem}},
        )
    if intake is not None:
        router.add_api_route(
            "/insights",
            api.ask,
            methods=["POST"],
            status_code=202,
            response_model=QueuedInsight,
            responses={413: {"model": Problem}, 422: {"model": Problem}},
        )
    return router


class _Insights:
    def __init__(self, database: QueryDatabase | None, intake: StreamIntake | None) -> None:
        self._database = database
        self._intake = intake

    async def page(
        self,
        *,
        product: TickerQuery = None,
        status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
        verdict: Annotated[str | None, Query(description="BUY | SELL | HOLD")] = None,
        since: Since = None,
        until: Until = None,
        limit: PageSize = 100,
        cursor: Cursor = None,
        format: Format = "json",
    ) -> Response:
        """Insights newest first (published_at, then id), filtered, a page at a time."""
        assert self._database is not None  # routed only with a store
        window = window_param(since, until)
        filters = InsightFilter(
            product_id=None if product is None else product.upper().replace("/", "-"),
            status=choice_param(status, "status", STATUSES),
            verdict=choice_param(verdict, "verdict", VERDICTS),
            since=window.since,
            until=window.until,
        )
        after = None if cursor is None else decode_cursor(cursor)
        async with reading(self._database) as connection:
            rows = await fetch_rows(connection, insights(filters, after, limit + 1))
        return page_response(
            rows, limit, form=format, name="insights", names=INSIGHT_NAMES, item=_item
        )

    async def one(self, correlation_id: Annotated[str, Path()]) -> Response:
        """One insight with its indicators and envelope; for a request queued over HTTP and not
        stored yet, 202 with its state (``pending``, ``processing``, ``decided``), or 200 with
        the reason once it ``failed``."""
        key = text_param(correlation_id, "correlation_id", MAX_CORRELATION_ID)
        if self._database is not None:
            async with reading(self._database) as connection:
                row = (await connection.execute(insight(key))).first()
            if row is not None:
                body = _item(row)
                body["envelope"] = render.envelope(row._mapping["envelope"])
                return Response(render.json_body(body), media_type=_JSON)
        return await state_response(
            self._intake,
            "correlation_id",
            key,
            "no insight and no pending request has this correlation_id",
        )

    async def ask(self, request: Request) -> Response:
        """Queue a market request (seed 001's payload: ``product_id``, optional
        ``correlation_id``, ``prompt``, ``granularity``, ``lookback``, ``candles``) and answer
        at once with its correlation id; the insight is at ``/api/insights/{correlation_id}``
        when ready. A correlation id already queued is not queued again."""
        assert self._intake is not None  # routed only with the market pipeline
        queued = await queue_posted(request, self._intake)
        location = "/api/insights/" + quote(queued.key, safe="")
        return json_response(_queued(queued, location), 202, {"Location": location})


def _item(row: AnyRow) -> render.Item:
    item = render.item(row, _ROW_NAMES)
    item["indicators"] = json.loads(row._mapping["indicators"])
    return item


def _queued(queued: Queued, location: str) -> dict[str, object]:
    return {
        "correlation_id": queued.key,
        "product_id": queued.subject,
        "state": "pending",
        "queued": queued.entry_id is not None,
        "entry_id": queued.entry_id,
        "result": location,
    }
