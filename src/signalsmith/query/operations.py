"""``GET /api/operations``: what the operations view shows. Per pipeline what it read,
acknowledged and dead-lettered (this process' counts) and what waits for it in Redis (its
group's pending entries and lag); the dead-letter streams' lengths and this process'
dead letters by reason; each LLM provider's state; and the tokens and dollars spent today
(UTC), summed from the store.

Redis and the store are asked at most once per ``TTL_S`` however many pages poll."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

import structlog
from fastapi import APIRouter, Response
from redis.exceptions import RedisError, ResponseError

from signalsmith.engine.stats import EngineStats
from signalsmith.observe.metrics import Metrics
from signalsmith.query import render, statements
from signalsmith.query.access import ApiAccess
from signalsmith.query.database import QueryDatabase, StoreUnavailable
from signalsmith.query.routes import api_router, fetch_rows
from signalsmith.redisclient import RedisClient
from signalsmith.source.redis_streams import Backlog, GroupRef, group_backlogs

TTL_S: Final = 1.0
WAIT_S: Final = 2.0  # what Redis or the store may take to answer; beyond, shown as unknown
log = structlog.get_logger("signalsmith.operations")
UNREAD: Final = 1_000  # on a server before 7.0, a lag is counted up to this (more: unknown)
_JSON: Final = "application/json"


class Watched(Protocol):
    """One pipeline as the view sees it: where it reads and its counts."""

    @property
    def ref(self) -> GroupRef: ...

    @property
    def stats(self) -> EngineStats: ...


@dataclass(frozen=True, slots=True)
class OperationsSources:
    pipelines: Mapping[str, Watched]
    metrics: Metrics
    providers: Callable[[], list[dict[str, object]]]
    dead_letter_streams: Sequence[str]
    redis: Callable[[], RedisClient] | None  # a client on the HTTP thread's loop
    database: QueryDatabase | None


def operations_router(sources: OperationsSources, access: ApiAccess) -> APIRouter:
    router = api_router(access, "operations")
    cache = _Cache(lambda: operations_body(sources), TTL_S)

    @router.get("/operations")
    async def operations() -> Response:
        """Pipelines (counts, pending, lag), dead letters (by stream and reason), providers,
        and today's tokens and cost. Redis or the store being down shows as null fields."""
        return Response(await cache.get(), media_type=_JSON)

    return router


async def operations_body(sources: OperationsSources) -> bytes:
    lengths: dict[str, int | None] = dict.fromkeys(sources.dead_letter_streams)
    backlog: Backlogs = {}
    try:
        async with asyncio.timeout(WAIT_S):
            await _redis_view(sources, backlog, lengths)
    except (TimeoutError, RedisError, OSError) as exc:
        log.warning("the operations view cannot read Redis now", error=type(exc).__name__)
    today = None
    try:
        async with asyncio.timeout(WAIT_S):
            today = await _today(sources.database)
    except TimeoutError:
        log.warning("the operations view cannot read the store now", error="TimeoutError")
    body = {
        "at": datetime.now(UTC).isoformat(),
        "pipelines": [
            _pipeline(name, watched, backlog.get((watched.ref.stream, watched.ref.group)))
            for name, watched in sources.pipelines.items()
        ],
        "dead_letters": {
            "streams": [{"stream": name, "length": lengths.get(name)} for name in lengths],
            "by_reason": dead_letter_reasons(sources.metrics),
        },
        "providers": [_provider(found) for found in sources.providers()],
        "today": today,
    }
    return render.json_body(body)


def dead_letter_reasons(metrics: Metrics) -> list[dict[str, object]]:
    """This process' dead letters since it started, by pipeline and reason, most first."""
    counted: list[dict[str, object]] = []
    for family in metrics.dead_lettered.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value > 0:
                labels = sample.labels
                counted.append(
                    {
                        "pipeline": labels.get("pipeline"),
                        "reason": labels.get("reason"),
                        "count": int(sample.value),
                    }
                )
    return sorted(counted, key=lambda item: -int(str(item["count"])))


def _pipeline(name: str, watched: Watched, backlog: Backlog | None) -> dict[str, object]:
    stats = watched.stats
    ok = stats.redis_ok and stats.group_ready and stats.commits_ok
    pending, lag = backlog or (None, None)
    return {
        "name": name,
        "status": "ok" if ok else "degraded",
        "stream": watched.ref.stream,
        "group": watched.ref.group,
        "read": stats.read,
        "acknowledged": stats.acknowledged,
        "dead_lettered": stats.dead_lettered,
        "retried": stats.retried,
        "pending": pending,
        "lag": lag,
    }


Backlogs = dict[tuple[str, str], Backlog]


async def _redis_view(
    sources: OperationsSources, backlog: Backlogs, lengths: dict[str, int | None]
) -> None:
    """Fills (pending, lag) per (stream, group) and each dead-letter stream's length, as far
    as Redis answers; what it could not say stays unknown."""
    if sources.redis is None:
        return
    redis = sources.redis()
    for stream in {watched.ref.stream for watched in sources.pipelines.values()}:
        with contextlib.suppress(ResponseError):  # a key of another type: unknown
            for group, counts in (await group_backlogs(redis, stream, UNREAD)).items():
                backlog[(stream, group)] = counts
    for stream in lengths:
        with contextlib.suppress(ResponseError):  # a key of another type: unknown
            lengths[stream] = int(await redis.xlen(stream))


def _provider(health: dict[str, object]) -> dict[str, object]:
    """A provider as the view shows it: its state and spend, not where it is reached."""
    return {key: value for key, value in health.items() if key != "base_url"}


async def _today(database: QueryDatabase | None) -> dict[str, object] | None:
    """Decisions, tokens and dollars since midnight UTC, from the store; None without one or
    when it cannot answer."""
    if database is None:
        return None
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        async with database.connect() as connection:
            (row,) = await fetch_rows(connection, statements.spend(midnight))
    except StoreUnavailable:
        return None  # shown as unknown
    values = row._mapping
    return {
        "since": midnight.isoformat(),
        "decisions": int(values["decisions"]),
        "tokens_in": int(values["tokens_in"]),
        "tokens_out": int(values["tokens_out"]),
        "cost_usd": round(float(values["cost_usd"]), 6),
    }


class _Cache:
    """One body per ``ttl_s``; concurrent requests wait for the one being built."""

    def __init__(self, build: Callable[[], Awaitable[bytes]], ttl_s: float) -> None:
        self._build = build
        self._ttl_s = ttl_s
        self._expires = float("-inf")
        self._body = b""
        self._lock: asyncio.Lock | None = None

    async def get(self) -> bytes:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            if now >= self._expires:
                self._body = await self._build()
                self._expires = time.monotonic() + self._ttl_s
            return self._body
