"""HTTP in the worker's process: liveness, readiness, health (JSON) and Prometheus metrics, all
answered from the worker's own state (never a Redis call) and from bodies rendered at most once
per short period, so that a flood of requests costs the pipeline next to nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from fastapi import FastAPI, Response
from pydantic import SecretStr

from signalsmith import __version__
from signalsmith.engine.stats import EngineStats
from signalsmith.observe.logging import SecretScrubber
from signalsmith.observe.metrics import Metrics
from signalsmith.source.redis_streams import GroupRef

if TYPE_CHECKING:
    from signalsmith.analyze.llm.chain import LLMChain
    from signalsmith.intake import StreamIntake
    from signalsmith.live.hub import LiveHub
    from signalsmith.query.candle_routes import FindCandles, Granularity
    from signalsmith.redisclient import RedisClient
    from signalsmith.store.database import DatabaseTarget

_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
_JSON = "application/json"
# Scrapers poll every 10-60 s and probes every few seconds: bodies this old are still fresh.
_HEALTH_TTL_S = 0.5
_METRICS_TTL_S = 1.0
# Probes that only want the status send HEAD; GET and HEAD of one route share an operation id,
# which OpenAPI cannot hold, so the probes stay out of /docs.
_GET = ["GET", "HEAD"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PipelineView:
    """One running pipeline or fan-out consumer: where it reads, and its counts."""

    ref: GroupRef
    stats: EngineStats


@dataclass(frozen=True, slots=True)
class ServiceView:
    """What the endpoints may show: nothing here holds a secret. ``ref`` and ``stats`` are the
    first pipeline's (posts, when it runs); ``pipelines`` holds every one by name."""

    redis_where: str  # already redacted
    embedded: bool
    ref: GroupRef
    signal_stream: str
    analyzers: tuple[str, ...]
    llm: LLMChain | None
    stats: EngineStats
    metrics: Metrics
    scrubber: SecretScrubber
    pipelines: Mapping[str, PipelineView] = field(default_factory=dict)
    # The query API under /api, served only with a database (else those paths are 404).
    database: DatabaseTarget | None = None
    api_token: SecretStr | None = None  # API_TOKEN: masked in any repr, never shown
    require_token: bool = False  # HTTP_HOST is not loopback: /api needs the token
    # POST /api/insights, when the market pipeline runs here (its client made on first use).
    insight_intake: StreamIntake | None = None
    # POST /api/strategy-signals, when the strategy pipeline runs here.
    strategy_intake: StreamIntake | None = None
    # GET /api/strategy-signals/stats: the signals pending in Redis (the strategy group's lag
    # plus its pending entries), called on the HTTP thread's loop; None: shown as unknown.
    strategy_pending: Callable[[], Awaitable[int | None]] | None = None
    # GET /api/live, when there is a decision log to follow (its reader made on first use).
    live: LiveHub | None = None
    live_send_timeout_s: float = 10.0
    # GET /api/operations: a Redis client on the HTTP thread's loop (pending, lag, dead
    # letters) and the dead-letter streams to count.
    http_redis: Callable[[], RedisClient] | None = None
    dead_letter_streams: tuple[str, ...] = ()
    # GET /api/candles/{product}, when the market pipeline runs here.
    candles: FindCandles | None = None
    candle_granularity: Granularity = "1m"


class Cached(Generic[T]):
    """A value rebuilt at most once per ``ttl_s``; used from one event loop only."""

    def __init__(self, build: Callable[[], T], ttl_s: float) -> None:
        self._build = build
        self._ttl_s = ttl_s
        self._expires = float("-inf")
        self._value: T | None = None

    def get(self) -> T:
        now = time.monotonic()
        if self._value is None or now >= self._expires:
            self._value = self._build()
            self._expires = now + self._ttl_s
        return self._value


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    body: bytes


def create_app(view: ServiceView) -> FastAPI:
    """The FastAPI app over one running worker."""
    app = FastAPI(
        title="signalsmith",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    _docs(app)
    health = Cached(lambda: render_health(view), _HEALTH_TTL_S)
    metrics = Cached(view.metrics.render, _METRICS_TTL_S)

    @app.api_route("/livez", methods=_GET, include_in_schema=False)
    async def livez() -> Response:
        return Response(b'{"status":"ok"}', media_type=_JSON)

    @app.api_route("/readyz", methods=_GET, include_in_schema=False)
    async def readyz() -> Response:
        rendered = render_ready(
            {name: pipeline.stats for name, pipeline in view.pipelines.items()}
            or {"posts": view.stats}
        )
        return Response(rendered.body, status_code=rendered.status, media_type=_JSON)

    @app.api_route("/health", methods=_GET, include_in_schema=False)
    async def health_() -> Response:
        rendered = health.get()
        return Response(rendered.body, status_code=rendered.status, media_type=_JSON)

    @app.api_route("/metrics", methods=_GET, include_in_schema=False)
    async def metrics_() -> Response:
        return Response(metrics.get(), media_type=_PROMETHEUS)

    _api(app, view)
    if not view.require_token:  # no token stands between a page elsewhere and this one
        from signalsmith.query.access import LoopbackHosts

        app.add_middleware(LoopbackHosts)
    return app


def _api(app: FastAPI, view: ServiceView) -> None:
    """/api: the query API over the store (with the rated strategy signals and their
    statistics, /api/strategy-signals), /api/insights (the store's insights, and market
    requests queued over HTTP), the live feed (/api/live), the operations view's figures
    (/api/operations) and the candles the market pipeline reads (/api/candles); and the
    dashboard over them at /."""
    from signalsmith.query.access import ApiAccess
    from signalsmith.query.insight_routes import insight_router
    from signalsmith.query.operations import OperationsSources, operations_router
    from signalsmith.web.routes import web_router

    access = ApiAccess(view.api_token, view.require_token)
    app.include_router(web_router(access))
    database = None
    if view.database is not None:
        from signalsmith.query.database import QueryDatabase
        from signalsmith.query.routes import query_router
        from signalsmith.query.strategy_routes import strategy_router

        database = QueryDatabase(view.database)
        app.include_router(query_router(database, access))
        app.include_router(
            strategy_router(
                database, access, pending=view.strategy_pending, intake=view.strategy_intake
            )
        )
    app.include_router(insight_router(database, view.insight_intake, access))
    if view.strategy_intake is not None:
        from signalsmith.query.strategy_post import strategy_post_router

        app.include_router(strategy_post_router(view.strategy_intake, access))
    if view.live is not None:
        from signalsmith.query.live_routes import live_router

        app.include_router(live_router(view.live, access, send_timeout_s=view.live_send_timeout_s))
    if view.candles is not None:
        from signalsmith.query.candle_routes import candle_router

        app.include_router(candle_router(view.candles, access, view.candle_granularity))
    sources = OperationsSources(
        pipelines=view.pipelines or {"posts": PipelineView(view.ref, view.stats)},
        metrics=view.metrics,
        providers=lambda: _providers(view),
        dead_letter_streams=view.dead_letter_streams,
        redis=view.http_redis,
        database=database,
    )
    app.include_router(operations_router(sources, access))


def _docs(app: FastAPI) -> None:
    """/docs: Swagger UI over /openapi.json, its assets served from the installed package (no
    CDN: the page works on a machine without internet)."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount(
        "/docs-assets",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="docs-assets",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="signalsmith API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def render_ready(pipelines: Mapping[str, EngineStats]) -> Rendered:
    """Ready once every pipeline has reached Redis and its group, and until one loses them or
    its commits start failing (a Redis that answers reads but refuses writes, or a database that
    is down, stalls that pipeline). The top-level fields are the first pipeline's."""
    states = {name: _ready(stats) for name, stats in pipelines.items()}
    ready = all(state["ready"] for state in states.values())
    first = states[next(iter(states))]
    body = {**first, "ready": ready, "pipelines": states}
    return Rendered(200 if ready else 503, _json(body))


def _ready(stats: EngineStats) -> dict[str, bool]:
    reachable, group, commits = stats.redis_ok, stats.group_ready, stats.commits_ok
    ready = reachable and group and commits
    return {"ready": ready, "redis": reachable, "group": group, "commits": commits}


def render_health(view: ServiceView) -> Rendered:
    """/health as the worker last saw the world: Redis is reachable as long as the worker's own
    commands succeed, so a busy process never reads as a Redis outage."""
    reachable = view.stats.redis_ok
    return Rendered(200 if reachable else 503, _json(_health_body(view, reachable)))


def _json(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _providers(view: ServiceView) -> list[dict[str, object]]:
    if view.llm is None:
        return []
    from signalsmith.analyze.llm.chain import slot_health

    now = time.monotonic()
    return [slot_health(slot, view.llm, now) for slot in view.llm.slots]


def _health_body(view: ServiceView, reachable: bool) -> dict[str, object]:
    stats = view.stats
    return {
        "status": "ok" if reachable and stats.group_ready and stats.commits_ok else "degraded",
        "commits_ok": stats.commits_ok,
        "version": __version__,
        "redis": {"reachable": reachable, "where": view.redis_where, "embedded": view.embedded},
        "stream": view.ref.stream,
        "group": view.ref.group,
        "consumer": view.ref.consumer,
        "signal_stream": view.signal_stream,
        "analyzers": [{"name": name, "state": "ok"} for name in view.analyzers],
        "providers": _providers(view),
        "counts": _counts(stats),
        "last_error": view.scrubber.scrub(stats.last_error) or None,
        "last_error_at": stats.last_error_at.isoformat() if stats.last_error_at else None,
        "started_at": stats.started_at.isoformat(),
        "pipelines": {
            name: _pipeline_health(pipeline, view.scrubber)
            for name, pipeline in view.pipelines.items()
        },
    }


def _counts(stats: EngineStats) -> dict[str, int]:
    return {
        "read": stats.read,
        "processed": stats.acknowledged,
        "published": stats.published,
        "dead_lettered": stats.dead_lettered,
        "retried": stats.retried,
        "skipped": stats.skipped,
    }


def _pipeline_health(pipeline: PipelineView, scrubber: SecretScrubber) -> dict[str, object]:
    stats = pipeline.stats
    ok = stats.redis_ok and stats.group_ready and stats.commits_ok
    return {
        "status": "ok" if ok else "degraded",
        "stream": pipeline.ref.stream,
        "group": pipeline.ref.group,
        "commits_ok": stats.commits_ok,
        "counts": _counts(stats),
        "last_error": scrubber.scrub(stats.last_error) or None,
    }
