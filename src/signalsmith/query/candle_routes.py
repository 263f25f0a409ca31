"""``GET /api/candles/{product}``: the candles the market pipeline would read for a product
(its file, candle stream or exchange, the first that has them; the exchange's answers are
cached for MARKET_CANDLE_CACHE_S), validated as an insight validates them. The dashboard's
ticker page draws them beside the sentiment."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Final, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response

from signalsmith.errors import PoisonInput, TransientError
from signalsmith.market.candles import validate_candles
from signalsmith.market.insight import Candles
from signalsmith.query import render
from signalsmith.query.access import ApiAccess
from signalsmith.query.routes import TICKER_PATTERN, api_router

MAX_LOOKBACK: Final = 1_000
_JSON: Final = "application/json"
Granularity = Literal["1m", "5m", "15m", "1h", "6h", "1d"]
FindCandles = Callable[[str, str, int], Awaitable[Candles]]


def candle_router(find: FindCandles, access: ApiAccess, default: Granularity) -> APIRouter:
    router = api_router(access, "market")

    @router.get("/candles/{product:path}")
    async def candles(
        product: Annotated[str, Path(pattern=TICKER_PATTERN)],
        granularity: Granularity = default,
        lookback: Annotated[int, Query(ge=2, le=MAX_LOOKBACK)] = 200,
    ) -> Response:
        """Closed candles oldest first as columns (``time`` in epoch seconds, ``open``,
        ``high``, ``low``, ``close``, ``volume``), with their source; 404 when no source has
        the product, 503 when a source cannot answer now."""
        product_id = product.upper().replace("/", "-")
        try:
            found = await find(product_id, granularity, lookback)
            series = validate_candles(found.rows, found.granularity_s, time.time())
        except PoisonInput as exc:
            raise HTTPException(404, f"no usable candles for this product ({exc.reason})") from None
        except TransientError:
            raise HTTPException(
                503, "the candle source cannot answer now", {"Retry-After": "5"}
            ) from None
        names = ("time", "open", "high", "low", "close", "volume")
        body: dict[str, object] = {
            "product_id": product_id,
            "granularity": granularity,
            "source": found.source,
            "notes": list(series.notes),
        }
        columns = zip(names, series.columns(), strict=True)
        body |= {name: column.tolist() for name, column in columns}
        return Response(render.json_body(body), media_type=_JSON)

    return router
