"""``GET /api/live``: every decision as it is logged, as server-sent events (``live.hub``).

Filters are query parameters, each a comma list meaning "any of": ``kind``, ``ticker``,
``verdict``, and ``min_confidence``. A browser's EventSource resumes by itself: it sends the
id of the last event it had as ``Last-Event-ID`` (or, on a first connection, ``last_event_id``
in the query). At most LIVE_MAX_CLIENTS are connected (503 beyond); a client that does not
read for LIVE_SEND_TIMEOUT_S is disconnected, and resumes when it reconnects.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Final

from fastapi import APIRouter, HTTPException, Query, Request
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from signalsmith.live.events import KINDS, VERDICTS, LiveFilter, parse_filter
from signalsmith.live.hub import LiveHub, TooManyClients
from signalsmith.query.access import ApiAccess
from signalsmith.query.params import invalid
from signalsmith.query.routes import api_router

RETRY_AFTER_S: Final = "5"
MAX_LIST: Final = 512  # characters of one filter parameter
_ENTRY_ID: Final = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_TICKER: Final = re.compile(r"[A-Za-z0-9./-]{1,32}")

Listed = Annotated[str | None, Query(max_length=MAX_LIST)]


def live_router(hub: LiveHub, access: ApiAccess, *, send_timeout_s: float) -> APIRouter:
    router = api_router(access, "live")

    async def live(
        request: Request,
        *,
        kind: Listed = None,
        ticker: Listed = None,
        verdict: Listed = None,
        min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.0,
        last_event_id: Annotated[str | None, Query(max_length=48)] = None,
    ) -> EventSourceResponse:
        """Decisions as server-sent events (``event: decision``, ``id`` the decision log's
        entry id, ``data`` a JSON object: kind, ticker, verdict, confidence, status,
        analyzers, reasoning, link, ...); ``behind`` and ``gap`` when a client is caught up
        from the stream. A keep-alive comment every 15 s."""
        wanted = _filter(kind, ticker, verdict, min_confidence)
        resume = request.headers.get("last-event-id") or last_event_id
        if resume is not None and not _ENTRY_ID.fullmatch(resume):
            raise HTTPException(422, "Last-Event-ID: expected a stream entry id (1700000000000-0)")
        try:
            release = hub.admit()
        except TooManyClients:
            raise HTTPException(
                503, "too many live clients (LIVE_MAX_CLIENTS)", {"Retry-After": RETRY_AFTER_S}
            ) from None
        return EventSourceResponse(
            _frames(hub, wanted, resume, release),
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            ping=0,  # the hub writes its own keep-alive
            send_timeout=send_timeout_s,
            # Also when the stream never started (a client gone at once, a HEAD): the place
            # is given back once, whichever comes first.
            background=BackgroundTask(release),
        )

    router.add_api_route("/live", live, methods=["GET"], response_class=EventSourceResponse)
    return router


async def _frames(
    hub: LiveHub, wanted: LiveFilter, resume: str | None, release: Callable[[], None]
) -> AsyncIterator[bytes]:
    """The hub's frames for one client; its place is given back however the stream ends."""
    try:
        async for batch in hub.frames(wanted, resume):
            yield batch
    finally:
        release()


def _filter(kind: str | None, ticker: str | None, verdict: str | None, least: float) -> LiveFilter:
    kinds, tickers, verdicts = _listed(kind), _listed(ticker), _listed(verdict)
    unknown = [name for name in kinds if name.lower() not in KINDS]
    if unknown:
        raise invalid("query", "kind", f"expected any of {', '.join(sorted(KINDS))}", kind)
    if any(name.upper() not in VERDICTS for name in verdicts):
        raise invalid("query", "verdict", "expected any of BUY, SELL, HOLD", verdict)
    if any(not _TICKER.fullmatch(name) for name in tickers):
        raise invalid("query", "ticker", "expected tickers such as NVDA or BTC-USD", ticker)
    return parse_filter(kinds, tickers, verdicts, least)


def _listed(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]
