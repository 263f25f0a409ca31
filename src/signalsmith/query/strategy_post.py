"""``POST /api/strategy-signals``: a trading system's signal, checked and queued on
STRATEGY_STREAM, answered 202 at once with its signal id; the rating never holds it up.
The GET routes on the same path (``strategy_routes``) read the rated signals back."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from signalsmith.intake import StreamIntake
from signalsmith.query.access import ApiAccess
from signalsmith.query.models import Problem, QueuedSignal
from signalsmith.query.posting import json_response, queue_posted
from signalsmith.query.routes import api_router


def strategy_post_router(intake: StreamIntake, access: ApiAccess) -> APIRouter:
    router = api_router(access, "strategy")

    async def submit(request: Request) -> Response:
        """Queue a strategy signal (seed 002's fields: ``symbol``, ``side``, ``price``,
        ``timestamp``, and optional ``signal_id``, ``strategy``, ``indicators``, ``bars``,
        ``stop_loss``). A signal id already queued is not queued again."""
        queued = await queue_posted(request, intake)
        location = "/api/strategy-signals/" + quote(queued.key, safe="")
        body = {
            "signal_id": queued.key,
            "symbol": queued.subject,
            "state": "pending",
            "queued": queued.entry_id is not None,
            "entry_id": queued.entry_id,
            "result": location,
        }
        return json_response(body, 202, {"Location": location})

    router.add_api_route(
        "/strategy-signals",
        submit,
        methods=["POST"],
        status_code=202,
        response_model=QueuedSignal,
        responses={413: {"model": Problem}, 422: {"model": Problem}},
    )
    return router
