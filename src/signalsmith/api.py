"""HTTP in the worker's process: liveness, readiness, health (JSON) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from signalsmith import __version__
from signalsmith.observe.logging import SecretScrubber
from signalsmith.observe.metrics import Metrics
from signalsmith.source.redis_streams import GroupRef
from signalsmith.worker import WorkerStats

if TYPE_CHECKING:
    from signalsmith.analyze.llm.chain import LLMChain

_PING_TIMEOUT_S = 1.0
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ServiceView:
    """What the endpoints may show: nothing here holds a secret."""

    redis: Redis
    redis_where: str  # already redacted
    embedded: bool
    ref: GroupRef
    signal_stream: str
    analyzers: tuple[str, ...]
    llm: LLMChain | None
    stats: WorkerStats
    metrics: Metrics
    scrubber: SecretScrubber


async def _redis_reachable(redis: Redis) -> bool:
    try:
        return bool(await asyncio.wait_for(redis.ping(), _PING_TIMEOUT_S))
    except (RedisError, OSError, TimeoutError):
        return False


def create_app(view: ServiceView) -> FastAPI:
    """The FastAPI app over one running worker."""
    app = FastAPI(title="signalsmith", version=__version__, docs_url=None, redoc_url=None)

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        reachable = await _redis_reachable(view.redis)
        ready = reachable and view.stats.group_ready
        body = {"ready": ready, "redis": reachable, "group": view.stats.group_ready}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/health")
    async def health() -> JSONResponse:
        reachable = await _redis_reachable(view.redis)
        return JSONResponse(_health_body(view, reachable), status_code=200 if reachable else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(view.metrics.render(), media_type=_PROMETHEUS)

    return app


def _providers(view: ServiceView) -> list[dict[str, object]]:
    if view.llm is None:
        return []
    from signalsmith.analyze.llm.chain import slot_health

    now = time.monotonic()
    return [slot_health(slot, view.llm, now) for slot in view.llm.slots]


def _health_body(view: ServiceView, reachable: bool) -> dict[str, object]:
    stats = view.stats
    return {
        "status": "ok" if reachable and stats.group_ready else "degraded",
        "version": __version__,
        "redis": {"reachable": reachable, "where": view.redis_where, "embedded": view.embedded},
        "stream": view.ref.stream,
        "group": view.ref.group,
        "consumer": view.ref.consumer,
        "signal_stream": view.signal_stream,
        "analyzers": [{"name": name, "state": "ok"} for name in view.analyzers],
        "providers": _providers(view),
        "counts": {
            "read": stats.read,
            "processed": stats.acknowledged,
            "published": stats.published,
            "dead_lettered": stats.dead_lettered,
            "retried": stats.retried,
            "skipped": stats.skipped,
        },
        "last_error": view.scrubber.scrub(stats.last_error) or None,
        "last_error_at": stats.last_error_at.isoformat() if stats.last_error_at else None,
        "started_at": stats.started_at.isoformat(),
    }
