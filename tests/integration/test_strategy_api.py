"""GET /api/strategy-signals on the service's real FastAPI app, over real HTTP (uvicorn in a
thread of its own, as in the service), on a SQLite file and on the real PostgreSQL filled by
the store's writer: pages newest first with each signal's ratings, following the cursor without
repeats; every filter; CSV; one signal with its envelope; the statistics, with pending from the
given counter (null without one, or when it fails) and from the real Redis; a POST route on the
same path beside these."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Response
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import select

from signalsmith.api import ServiceView, create_app
from signalsmith.engine.stats import EngineStats
from signalsmith.errors import TransientError
from signalsmith.http_server import bind_listener
from signalsmith.observe.logging import SecretScrubber
from signalsmith.observe.metrics import Metrics
from signalsmith.query.models import StrategySignalDetail, StrategySignalPage, StrategyStats
from signalsmith.query.strategy_routes import PENDING_TIMEOUT_S
from signalsmith.query.strategy_statements import CSV_NAMES
from signalsmith.source.redis_streams import GroupRef
from signalsmith.store.database import DatabaseTarget, create_engine, parse_database_url
from signalsmith.store.rows import DecisionValues
from signalsmith.store.schema import EnhancementTaskRow
from signalsmith.strategy.contract import Outcome
from signalsmith.strategy.stats import pending_signals
from tests.conftest import RedisTarget, in_thread
from tests.integration.test_store_strategy import decision, hand_set, write
from tests.unit.test_store_strategy_rows import PUBLISHED_AT, strategy_meta

SYMBOLS = ("AAPL", "MSFT", "BTC-USD")
STRATEGIES = ("ema_cross", "rsi_revert", "breakout")
OUTCOMES: tuple[Outcome, ...] = ("ok", "degraded", "expired")


@dataclass(frozen=True)
class Stored:
    """A stored signal as the test wrote it, with the row id the store gave it."""

    signal_id: str
    symbol: str
    strategy: str
    status: str
    seconds: int  # published this long after PUBLISHED_AT
    row_id: int


def _data_set() -> list[DecisionValues]:
    """The seven hand-counted signals, twenty more (three to a published_at instant, so pages
    break ties by id), and one whose id holds a slash."""
    rows = hand_set()
    for n in range(20):
        meta = strategy_meta(
            f"p{n:02d}",
            OUTCOMES[n % 3],
            symbol=SYMBOLS[n % 3],
            strategy=STRATEGIES[n // 3 % 3],
        )
        rows.append(decision(meta, 100 + n // 3))
    rows.append(decision(strategy_meta("tv/123", symbol="ETH-USD", strategy="webhook"), 200))
    return rows


async def _fill(url: str) -> list[Stored]:
    rows = _data_set()
    await write(url, rows[:15], rows[10:])
    engine = create_engine(parse_database_url(url))
    table = EnhancementTaskRow.__table__
    try:
        async with engine.connect() as connection:
            stored = (await connection.execute(select(table))).mappings().all()
    finally:
        await engine.dispose()
    seconds = {row["correlation_id"]: row["published_at"] - PUBLISHED_AT for row in rows}
    return [
        Stored(
            row["signal_id"],
            row["symbol"],
            row["strategy"],
            row["status"],
            int(seconds[row["signal_id"]] / timedelta(seconds=1)),
            row["id"],
        )
        for row in stored
    ]


class Backlog:
    """The ``pending`` counter the router is given: a number, or a Redis failure."""

    def __init__(self) -> None:
        self.value: int | None = 12
        self.failing = False
        self.delay_s = 0.0

    async def __call__(self) -> int | None:
        await asyncio.sleep(self.delay_s)
        if self.failing:
            raise TransientError("Redis failed while reading the strategy group's backlog")
        return self.value


def _view(target: DatabaseTarget, pending: Any, **access: Any) -> ServiceView:
    return ServiceView(
        redis_where="redis://127.0.0.1:6379/0",
        embedded=False,
        ref=GroupRef("in", "group", "consumer"),
        signal_stream="out",
        analyzers=("lexicon",),
        llm=None,
        stats=EngineStats(),
        metrics=Metrics(),
        scrubber=SecretScrubber([]),
        database=target,
        strategy_pending=pending,
        **access,
    )


@contextlib.contextmanager
def _serve(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` under uvicorn in a thread with its own event loop, as the service runs it."""
    listener = bind_listener("127.0.0.1", 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server stopped during start-up"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
        assert not thread.is_alive()


@dataclass(frozen=True)
class Served:
    client: httpx.Client
    stored: list[Stored]
    backlog: Backlog
    url: str


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The data set in a migrated SQLite file or PostgreSQL schema, and the service's app over
    it, with a POST route of another module's on the same path."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('strategy') / 'store.db'}"
        else:
            url = stack.enter_context(_postgres_schema(request.getfixturevalue("postgres_dsn")))
        stored = in_thread(_fill(url))
        backlog = Backlog()
        app = create_app(_view(parse_database_url(url), backlog))

        async def queue_signal() -> Response:
            return Response(b'{"state":"pending"}', status_code=202)

        app.add_api_route("/api/strategy-signals", queue_signal, methods=["POST"])
        client = stack.enter_context(_serve(app))
        yield Served(client, stored, backlog, url)


@contextlib.contextmanager
def _postgres_schema(dsn: str) -> Iterator[str]:
    import asyncpg

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    schema = f"ss_strategy_{uuid.uuid4().hex[:12]}"
    in_thread(admin(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{dsn}?options=-csearch_path%3D{schema}"
    finally:
        in_thread(admin(f'DROP SCHEMA "{schema}" CASCADE'))


def _newest_first(stored: list[Stored], keep: Any = lambda _: True) -> list[str]:
    kept = sorted((s for s in stored if keep(s)), key=lambda s: (s.seconds, s.row_id))
    return [s.signal_id for s in reversed(kept)]


def _all_pages(client: httpx.Client, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of /api/strategy-signals, following next_cursor; none may come twice."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        got = client.get(
            "/api/strategy-signals", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert got.status_code == 200, got.text
        page = StrategySignalPage.model_validate(got.json())
        assert len(page.items) <= int(params.get("limit", 100))
        items += got.json()["items"]
        cursor = page.next_cursor
        if cursor is None:
            break
    ids = [item["signal_id"] for item in items]
    assert len(ids) == len(set(ids)), "an item came twice"
    return items


def test_pages_are_newest_first_with_each_signals_ratings(served: Served) -> None:
    items = _all_pages(served.client, {"limit": 4})
    assert [item["signal_id"] for item in items] == _newest_first(served.stored)
    by_id = {item["signal_id"]: item for item in items}
    rated = by_id["s1"]
    assert (rated["status"], rated["rating"], rated["agreement"]) == ("done", 8, "confirm")
    assert [r["analyst"] for r in rated["ratings"]] == ["rules", "llm"]
    model = rated["ratings"][1]
    assert (model["model"], model["tokens_in"], model["risks"]) == (
        "groq/llama-3.3-70b",
        900,
        ["earnings next week"],
    )
    assert [r["analyst"] for r in by_id["s4"]["ratings"]] == ["rules"]  # degraded
    assert by_id["s4"]["last_error"] == "reply: rating 14 is outside 1..10"
    assert by_id["s5"]["ratings"] == []  # expired


def _at(seconds: int) -> str:
    return (PUBLISHED_AT + timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"symbol": "msft"}, lambda s: s.symbol == "MSFT"),
        (
            {"symbol": "BTC-USD", "status": "expired"},
            lambda s: s.symbol == "BTC-USD" and s.status == "expired",
        ),
        ({"strategy": "rsi_revert"}, lambda s: s.strategy == "rsi_revert"),
        ({"status": "FAILED"}, lambda s: s.status == "failed"),
        ({"since": _at(101)}, lambda s: s.seconds >= 101),
        ({"until": _at(3)}, lambda s: s.seconds < 3),
    ],
)
def test_each_filter_keeps_the_signals_it_names(
    served: Served, params: dict[str, Any], keep: Any
) -> None:
    expected = _newest_first(served.stored, keep)
    assert expected, "the filter must keep something"
    assert expected != _newest_first(served.stored), "and leave something out"
    items = _all_pages(served.client, {**params, "limit": 5})
    assert [item["signal_id"] for item in items] == expected


def test_csv_has_the_signals_columns_then_each_analysts(served: Served) -> None:
    got = served.client.get("/api/strategy-signals", params={"format": "csv", "limit": 10})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["x-next-cursor"]
    rows = list(csv.reader(io.StringIO(got.text)))
    assert tuple(rows[0]) == CSV_NAMES
    assert len(rows) == 11
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [r["signal_id"] for r in records] == _newest_first(served.stored)[:10]
    done = next(r for r in records if r["status"] == "done")
    assert (done["rules_model"], done["llm_model"]) == ("rules", "groq/llama-3.3-70b")


def test_one_signal_with_its_ratings_and_envelope(served: Served) -> None:
    got = served.client.get("/api/strategy-signals/s2")
    assert got.status_code == 200, got.text
    detail = StrategySignalDetail.model_validate(got.json())
    assert (detail.signal_id, detail.rating, len(detail.ratings)) == ("s2", 6, 2)
    assert detail.envelope is not None
    assert detail.envelope["correlation_id"] == "s2"
    slashed = served.client.get("/api/strategy-signals/tv/123")
    assert slashed.status_code == 200, slashed.text
    assert slashed.json()["symbol"] == "ETH-USD"
    missing = served.client.get("/api/strategy-signals/nope")
    assert missing.status_code == 404


def test_stats_are_not_read_as_a_signal_id_and_take_pending_from_the_counter(
    served: Served,
) -> None:
    served.backlog.value, served.backlog.failing = 12, False
    got = served.client.get("/api/strategy-signals/stats")
    assert got.status_code == 200, got.text
    stats = StrategyStats.model_validate(got.json())
    assert stats.pending == 12
    # the hand-counted seven, plus twenty of which seven ok, seven degraded, six expired,
    # plus one more done
    assert (stats.total, stats.processed, stats.failed, stats.expired) == (28, 12, 8, 8)
    assert stats.strategies is None
    per = served.client.get("/api/strategy-signals/stats", params={"per_strategy": "true"})
    names = [each["strategy"] for each in per.json()["strategies"]]
    assert sorted(names) == ["breakout", "ema_cross", "rsi_revert", "webhook"]
    assert sum(each["total"] for each in per.json()["strategies"]) == 28


def test_pending_is_null_when_the_counter_fails_or_knows_nothing(served: Served) -> None:
    served.backlog.failing = True
    try:
        assert served.client.get("/api/strategy-signals/stats").json()["pending"] is None
    finally:
        served.backlog.failing = False
    served.backlog.value = None
    assert served.client.get("/api/strategy-signals/stats").json()["pending"] is None


def test_a_slow_counter_makes_pending_null_not_the_answer_late(served: Served) -> None:
    served.backlog.delay_s = 30.0
    try:
        started = time.monotonic()
        got = served.client.get("/api/strategy-signals/stats")
        assert time.monotonic() - started < PENDING_TIMEOUT_S + 3
    finally:
        served.backlog.delay_s = 0.0
    assert got.status_code == 200, got.text
    assert got.json()["pending"] is None


def test_beyond_loopback_every_route_needs_the_token(served: Served) -> None:
    view = _view(
        parse_database_url(served.url), None, api_token=SecretStr("t-1"), require_token=True
    )
    with _serve(create_app(view)) as client:
        for path in (
            "/api/strategy-signals",
            "/api/strategy-signals/stats",
            "/api/strategy-signals/s1",
        ):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer t-1"}).status_code == 200


def test_a_post_route_on_the_same_path_is_another_methods(served: Served) -> None:
    assert served.client.post("/api/strategy-signals", json={}).status_code == 202
    assert served.client.get("/api/strategy-signals").status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"status": "processing"},
        {"staus": "done"},
        {"cursor": "not-a-cursor"},
        {"since": "2026-12-04", "until": "2026-12-03"},
        {"strategy": "x" * 65},
        {"limit": "0"},
    ],
)
def test_refused_parameters_are_a_422(served: Served, params: dict[str, str]) -> None:
    assert served.client.get("/api/strategy-signals", params=params).status_code == 422


@pytest.mark.redis
def test_stats_without_a_counter_and_with_the_real_redis(
    served: Served, redis_target: RedisTarget, prefix: str
) -> None:
    """No counter: pending is null. A counter over the real Redis: the group's backlog."""
    target = parse_database_url(served.url)
    with _serve(create_app(_view(target, None))) as client:
        assert client.get("/api/strategy-signals/stats").json()["pending"] is None
    stream, group = f"{prefix}:strategy", f"{prefix}-strategy"

    async def from_redis() -> int | None:
        client = Redis.from_url(redis_target.url)  # of the HTTP thread's event loop
        try:
            return await pending_signals(client, stream, group)
        finally:
            await client.aclose()

    async def backlog_of(count: int) -> None:
        client = Redis.from_url(redis_target.url)
        try:
            for n in range(count):
                await client.xadd(stream, {"data": str(n)})
            await client.xgroup_create(stream, group, id="0")
        finally:
            await client.aclose()

    async def drop() -> None:
        client = Redis.from_url(redis_target.url)
        try:
            await client.delete(stream)
        finally:
            await client.aclose()

    in_thread(backlog_of(4))
    try:
        with _serve(create_app(_view(target, from_redis))) as client:
            assert client.get("/api/strategy-signals/stats").json()["pending"] == 4
    finally:
        in_thread(drop())
