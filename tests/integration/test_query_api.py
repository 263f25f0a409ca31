"""The read-only query API (/api) of the service's real FastAPI app, over real HTTP (uvicorn in a
thread of its own, as in the service), on a SQLite file and on the real PostgreSQL (a schema of
its own per module, dropped afterwards): every filter, keyset pages, CSV, single decisions,
tickers and their consensus against a reference computed here, spikes, refused parameters, the
bearer token, and hostile query strings.

The tables are made by the store's migrations (``signalsmith.store.migrate.upgrade``)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import select, text

from signalsmith.api import ServiceView, create_app
from signalsmith.consensus import DayTotals, day_consensus
from signalsmith.decide import DEAD_ZONE
from signalsmith.engine.stats import EngineStats
from signalsmith.http_server import HttpThread, bind_listener
from signalsmith.observe.logging import SecretScrubber
from signalsmith.observe.metrics import Metrics
from signalsmith.query.access import is_loopback
from signalsmith.query.database import QueryDatabase, StoreUnavailable
from signalsmith.query.models import (
    Decision,
    DecisionDetail,
    DecisionPage,
    TickerDetail,
    TickerList,
)
from signalsmith.source.redis_streams import GroupRef
from signalsmith.store.database import DatabaseTarget, create_engine, parse_database_url
from signalsmith.store.migrate import upgrade
from signalsmith.store.schema import DecisionRow
from signalsmith.store.writer import RowWriter
from tests.conftest import in_thread

TOKEN = "query-token-7c1e9a44"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
TABLE = DecisionRow.__table__
INJECTION = {
    "post_author": '=HYPERLINK("http://x")',
    "post_subreddit": "+SUM(1,2)",
    "post_id": "-2+3",
    "post_url": "@evil",
    "models": "\tcmd",
    "analyzers": "\rcmd",
}


# --- the data set -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One stored decision as the test wrote it (``row_id`` is filled in once stored)."""

    correlation_id: str
    kind: str
    ticker: str
    verdict: str
    confidence: float
    score: float
    status: str
    published_at: datetime
    trade_date: date
    extra: Mapping[str, str] | None = None
    row_id: int = 0


def _facts() -> list[Fact]:
    facts: list[Fact] = []

    def add(ticker: str, hours_ago: float, **fields: Any) -> None:
        at = NOW - timedelta(hours=hours_ago)
        fields.setdefault("kind", "post")
        fields.setdefault("verdict", "BUY")
        fields.setdefault("confidence", 0.6)
        fields.setdefault("score", 0.4)
        fields.setdefault("status", "ok")
        fields.setdefault("trade_date", at.date())
        cid = f"{ticker.lower().replace('/', '_')}-{len(facts):04d}"
        facts.append(Fact(correlation_id=cid, ticker=ticker, published_at=at, **fields))

    verdicts = ("BUY", "SELL", "HOLD")
    statuses = ("ok", "ok", "degraded", "abstain", "error")
    for k in range(1, 31):  # AAPL: an hour apart, every verdict, status and confidence
        add(
            "AAPL",
            k * 1.0 + 0.25,
            verdict=verdicts[k % 3],
            status=statuses[k % 5],
            confidence=round(0.03 * k, 2),
            score=round((k % 7 - 3) / 4, 2),
        )
    for _ in range(5):  # five AAPL posts published in the same microsecond
        add("AAPL", 2.0, verdict="SELL", confidence=0.7, score=-0.6)
    add("AAPL", 3.0, kind="spike", confidence=0.5, score=0.5)
    add("AAPL", 50.0, kind="spike", confidence=0.4, score=-0.3, verdict="SELL")
    add("AAPL", 24 * 40, kind="spike", confidence=0.4, score=0.3)  # older than the days shown
    add("AAPL", 4.0, kind="consensus", confidence=0.55, score=0.3)
    for k in range(12):
        add("TSLA", 0.5 + k, verdict="SELL", confidence=0.8, score=-0.7)
    for k in range(3):
        add("TSLA", 30 + k, verdict="BUY", confidence=0.9, score=0.9)  # outside the last day
    # Worked out by hand in test_tickers_consensus_matches_the_hand_computed_numbers.
    add("HAND", 1, verdict="BUY", confidence=0.8, score=0.6, status="ok")
    add("HAND", 2, verdict="SELL", confidence=0.02, score=-0.5, status="degraded")
    add("HAND", 3, verdict="HOLD", confidence=0.5, score=0.0, status="ok")
    add("HAND", 4, verdict="BUY", confidence=0.9, score=0.9, status="error")
    add("BRK/B", 5, verdict="HOLD", confidence=0.3, score=0.05)
    add("BRK/B", 6, kind="spike")
    add("OLD", 24 * 40, verdict="SELL", confidence=0.9, score=-0.9)
    add("CSV", 7, verdict="HOLD", extra=INJECTION)
    add("BTC-USD", 8, kind="insight", verdict="BUY", confidence=0.7, score=0.5)
    add("ETH-USD", 9, kind="strategy", verdict="SELL", confidence=0.65, score=-0.4)
    # A post whose trade date (when it was written) is the day before it was published.
    add("AAPL", 26, trade_date=(NOW - timedelta(hours=50)).date(), verdict="HOLD", score=0.0)
    return facts


def _values(fact: Fact) -> dict[str, object]:
    envelope = {
        "schema_version": "1",
        "correlation_id": fact.correlation_id,
        "decision": {"kind": fact.kind, "target": {"ticker": fact.ticker}},
    }
    values: dict[str, object] = {
        "correlation_id": fact.correlation_id,
        "kind": fact.kind,
        "ticker": fact.ticker,
        "trade_date": fact.trade_date,
        "verdict": fact.verdict,
        "confidence": fact.confidence,
        "score": fact.score,
        "status": fact.status,
        "source_stream": "reddit-events",
        "source_entry_id": f"{fact.correlation_id}-0",
        "post_id": None,
        "post_url": None,
        "post_author": "someone",
        "post_subreddit": "stocks",
        "post_created": fact.published_at - timedelta(minutes=1),
        "analyzers": "lexicon",
        "models": "",
        "tokens_in": 10,
        "tokens_out": 5,
        "cost_usd": 0.0,
        "published_at": fact.published_at,
        "stored_at": fact.published_at + timedelta(seconds=1),
        "envelope": json.dumps(envelope),
    }
    values.update(fact.extra or {})
    return values


async def _fill(url: str, facts: list[Fact]) -> list[Fact]:
    """Through the store's writer, in two batches that overlap: what /api/tickers reads from
    ``ticker_hours`` is what the writer kept there."""
    await upgrade(url)
    target = parse_database_url(url)
    engine = create_engine(target)
    writer = RowWriter(engine, target)
    values = [_values(fact) for fact in facts]
    try:
        await writer.write_rows(values[: len(values) * 2 // 3])
        await writer.write_rows(values[len(values) // 3 :])
        async with engine.begin() as connection:
            stored = await connection.execute(select(TABLE.c.correlation_id, TABLE.c.id))
            ids = {cid: row_id for cid, row_id in stored.all()}
    finally:
        await engine.dispose()
    return [replace(fact, row_id=ids[fact.correlation_id]) for fact in facts]


# --- the database and the server ----------------------------------------------------------------


async def _admin(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def _postgres_schema(dsn: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped with its tables afterwards."""
    schema = f"ss_query_{uuid.uuid4().hex[:12]}"
    in_thread(_admin(dsn, f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{dsn}?options=-csearch_path%3D{schema}"
    finally:
        in_thread(_admin(dsn, f'DROP SCHEMA "{schema}" CASCADE'))


@dataclass(frozen=True)
class Store:
    url: str
    target: DatabaseTarget
    facts: list[Fact]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """The data set in a migrated SQLite file, or in a PostgreSQL schema of its own."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('query') / 'store.db'}"
        else:
            dsn = request.getfixturevalue("postgres_dsn")  # skipped, or failed under CI
            url = stack.enter_context(_postgres_schema(dsn))
        facts = in_thread(_fill(url, _facts()))
        yield Store(url, parse_database_url(url), facts)


def _view(database: DatabaseTarget | None, **access: Any) -> ServiceView:
    return ServiceView(
        redis_where="redis://127.0.0.1:6379/0",
        embedded=False,
        ref=GroupRef("in", "group", "consumer"),
        signal_stream="out",
        analyzers=("lexicon",),
        llm=None,
        stats=EngineStats(),
        metrics=Metrics(),
        scrubber=SecretScrubber([TOKEN]),
        database=database,
        **access,
    )


@contextlib.contextmanager
def _serve(view: ServiceView) -> Iterator[str]:
    """The service's app under uvicorn in a thread with its own event loop, as the service runs
    it (lifespan off), without the service's CPU pacing; its base URL."""
    listener = bind_listener("127.0.0.1", 0)
    config = uvicorn.Config(create_app(view), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server stopped during start-up"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[httpx.Client]:
    with _serve(_view(store.target)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


# --- expectations -------------------------------------------------------------------------------


def _newest_first(facts: list[Fact], keep: Callable[[Fact], bool]) -> list[str]:
    kept = sorted((f for f in facts if keep(f)), key=lambda f: (f.published_at, f.row_id))
    return [f.correlation_id for f in reversed(kept)]


def _all_pages(client: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item, following next_cursor; no item may come twice."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        got = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert got.status_code == 200, got.text
        page = DecisionPage.model_validate(got.json())
        items += got.json()["items"]
        assert len(page.items) <= int(params.get("limit", 100))
        cursor = page.next_cursor
        if cursor is None:
            break
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "an item came twice"
    return items


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["correlation_id"] for item in items]


def _reference(facts: list[Fact]) -> tuple[int, dict[str, object]]:
    """(mentions, consensus) as the live pipeline folds the same posts."""
    totals = DayTotals()
    for fact in facts:
        if fact.status in ("ok", "degraded"):
            totals.fold(fact.confidence, fact.score, fact.verdict)
    result = day_consensus(totals, DEAD_ZONE)
    shown = {
        "verdict": result.verdict.value,
        "confidence": result.confidence,
        "score": result.score,
        "posts": result.posts,
        "buy": result.buy,
        "sell": result.sell,
        "hold": result.hold,
    }
    return len(facts), shown


def _same_consensus(got: Mapping[str, object], want: Mapping[str, object]) -> None:
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-9), key
        else:
            assert got[key] == value, key


# --- decisions ----------------------------------------------------------------------------------


def test_every_decision_newest_first_without_filters(client: httpx.Client, store: Store) -> None:
    """No filter: every row, ordered by published_at then id, newest first, across pages."""
    items = _all_pages(client, "/api/decisions", {"limit": 7})
    assert _ids(items) == _newest_first(store.facts, lambda f: True)


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"ticker": "aapl"}, lambda f: f.ticker == "AAPL"),
        ({"ticker": "BRK/B"}, lambda f: f.ticker == "BRK/B"),
        ({"kind": "spike"}, lambda f: f.kind == "spike"),
        ({"kind": "Insight"}, lambda f: f.kind == "insight"),
        ({"verdict": "sell"}, lambda f: f.verdict == "SELL"),
        ({"status": "degraded"}, lambda f: f.status == "degraded"),
        ({"min_confidence": "0.7"}, lambda f: f.confidence >= 0.7),
        (
            {"since": (NOW - timedelta(hours=5)).isoformat()},
            lambda f: f.published_at >= NOW - timedelta(hours=5),
        ),
        (
            {"until": (NOW - timedelta(hours=5)).isoformat()},
            lambda f: f.published_at < NOW - timedelta(hours=5),
        ),
        (
            {"ticker": "AAPL", "verdict": "BUY", "status": "ok", "min_confidence": "0.3"},
            lambda f: (
                (f.ticker, f.verdict, f.status) == ("AAPL", "BUY", "ok") and f.confidence >= 0.3
            ),
        ),
        (
            {"kind": "post", "ticker": "TSLA", "since": (NOW - timedelta(hours=24)).isoformat()},
            lambda f: (
                f.kind == "post"
                and f.ticker == "TSLA"
                and f.published_at >= NOW - timedelta(hours=24)
            ),
        ),
    ],
)
def test_each_filter_keeps_exactly_the_matching_rows(
    client: httpx.Client, store: Store, params: dict[str, str], keep: Callable[[Fact], bool]
) -> None:
    """Each filter (case-insensitive where it names a ticker, kind or verdict) keeps exactly the
    rows a filter over the test's own data keeps, in the API's order."""
    items = _all_pages(client, "/api/decisions", {**params, "limit": 5})
    assert items, params
    assert _ids(items) == _newest_first(store.facts, keep)


def test_dates_cover_whole_days_and_offsets_are_honoured(
    client: httpx.Client, store: Store
) -> None:
    """since=<date> starts at its midnight (UTC), until=<date> includes that day; a time with an
    offset (its "+" sent raw, arriving as a space) means the same instant in UTC."""
    day = (NOW - timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    items = _all_pages(
        client, "/api/decisions", {"since": day.isoformat(), "until": day.isoformat()}
    )
    assert _ids(items) == _newest_first(
        store.facts, lambda f: start <= f.published_at < start + timedelta(days=1)
    )
    cut = NOW - timedelta(hours=6)
    shifted = cut.astimezone(pytest.importorskip("zoneinfo").ZoneInfo("Asia/Kolkata"))
    raw = shifted.isoformat().replace("+", " ")  # "+05:30" as a browser-less client sends it
    got = client.get(f"/api/decisions?since={raw}&limit=1000")
    assert got.status_code == 200, got.text
    assert _ids(got.json()["items"]) == _newest_first(store.facts, lambda f: f.published_at >= cut)


def test_keyset_pages_cross_rows_published_in_the_same_instant(
    client: httpx.Client, store: Store
) -> None:
    """Five rows share a published_at: pages of 2 still give every row once, in id order."""
    tied = [
        f for f in store.facts if f.ticker == "AAPL" and f.published_at == NOW - timedelta(hours=2)
    ]
    assert len(tied) == 5
    items = _all_pages(client, "/api/decisions", {"ticker": "AAPL", "limit": 2})
    assert _ids(items) == _newest_first(store.facts, lambda f: f.ticker == "AAPL")
    one = _all_pages(client, "/api/decisions", {"ticker": "AAPL", "limit": 1})
    assert _ids(one) == _ids(items)
    page = client.get("/api/decisions", params={"ticker": "AAPL", "limit": 1000}).json()
    assert page["next_cursor"] is None


def test_items_carry_the_row_columns_without_the_envelope(
    client: httpx.Client, store: Store
) -> None:
    got = client.get("/api/decisions", params={"ticker": "CSV"})
    assert got.headers["content-type"] == "application/json"
    (item,) = got.json()["items"]
    assert "envelope" not in item
    fact = next(f for f in store.facts if f.ticker == "CSV")
    assert item["id"] == fact.row_id
    assert item["post_author"] == INJECTION["post_author"]
    assert datetime.fromisoformat(item["published_at"]) == fact.published_at
    assert item["published_at"].endswith("+00:00")
    assert item["trade_date"] == fact.trade_date.isoformat()


def test_csv_has_a_header_every_row_and_no_formula_cells(
    client: httpx.Client, store: Store
) -> None:
    """format=csv: text/csv, a header, the same rows as JSON; a text cell starting with = + - @
    tab or CR is prefixed with a quote; numbers stay numbers; the next cursor is in a header."""
    got = client.get("/api/decisions", params={"format": "csv", "limit": 1000})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert "x-next-cursor" not in got.headers
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [row["correlation_id"] for row in rows] == _newest_first(store.facts, lambda f: True)
    assert "envelope" not in rows[0]
    injected = next(row for row in rows if row["ticker"] == "CSV")
    for column, value in INJECTION.items():
        assert injected[column] == "'" + value, column
    negative = next(row for row in rows if row["ticker"] == "TSLA")
    assert negative["score"] == "-0.7"
    paged = client.get("/api/decisions", params={"format": "csv", "limit": 3, "ticker": "TSLA"})
    assert len(list(csv.DictReader(io.StringIO(paged.text)))) == 3
    cursor = paged.headers["x-next-cursor"]
    rest = _all_pages(client, "/api/decisions", {"ticker": "TSLA", "cursor": cursor})
    assert len(rest) == 12
    empty = client.get("/api/decisions", params={"format": "csv", "ticker": "NOPE"})
    assert empty.text.splitlines() == [",".join(Decision.model_fields)]


def test_one_decision_with_its_envelope_and_404_when_absent(
    client: httpx.Client, store: Store
) -> None:
    fact = store.facts[3]
    got = client.get(f"/api/decisions/{fact.correlation_id}")
    assert got.status_code == 200, got.text
    detail = DecisionDetail.model_validate(got.json())
    assert detail.id == fact.row_id
    assert detail.envelope["correlation_id"] == fact.correlation_id
    missing = client.get("/api/decisions/no-such-id")
    assert missing.status_code == 404
    assert "correlation_id" in missing.json()["detail"]


# --- tickers ------------------------------------------------------------------------------------


def test_tickers_ranks_by_mentions_in_the_last_day_with_the_reference_consensus(
    client: httpx.Client, store: Store
) -> None:
    """By default the last 24 hours; every post row counts as a mention, and the consensus is
    the live pipeline's over the ok and degraded ones (``day_consensus``)."""
    got = client.get("/api/tickers")
    assert got.status_code == 200, got.text
    TickerList.model_validate(got.json())
    items = got.json()["items"]
    start = datetime.fromisoformat(got.json()["since"])
    assert abs(start - (datetime.now(UTC) - timedelta(hours=24))) < timedelta(minutes=1)
    recent: dict[str, list[Fact]] = {}
    for fact in store.facts:
        if fact.kind == "post" and fact.published_at >= start:
            recent.setdefault(fact.ticker, []).append(fact)
    want = sorted(recent, key=lambda ticker: (-len(recent[ticker]), ticker))
    assert [item["ticker"] for item in items] == want
    for item in items:
        mentions, consensus = _reference(recent[item["ticker"]])
        assert item["mentions"] == mentions
        _same_consensus(item["consensus"], consensus)
        last = max(f.published_at for f in recent[item["ticker"]])
        assert datetime.fromisoformat(item["last_seen"]) == last
    assert [i["ticker"] for i in client.get("/api/tickers?limit=2").json()["items"]] == want[:2]


def test_tickers_consensus_matches_the_hand_computed_numbers(client: httpx.Client) -> None:
    """HAND: BUY 0.8/+0.6 ok, SELL 0.02/-0.5 degraded (weighs 0.05), HOLD 0.5/0 ok, and a BUY
    with status error that is a mention but not folded. Weights 0.8+0.05+0.5 = 1.35; weighted
    0.48-0.025+0 = 0.455; score 0.455/1.35 = 0.33704 >= 0.15: BUY; confidence: the mean 0.44
    times the 1 of 3 posts that agree = 0.14667."""
    items = client.get("/api/tickers", params={"limit": 200}).json()["items"]
    hand = next(item for item in items if item["ticker"] == "HAND")
    assert hand["mentions"] == 4
    assert hand["consensus"] == {
        "verdict": "BUY",
        "confidence": pytest.approx(0.44 / 3),
        "score": pytest.approx(0.455 / 1.35),
        "posts": 3,
        "buy": 1,
        "sell": 1,
        "hold": 1,
    }


def test_tickers_at_the_end_of_time_is_an_empty_window(client: httpx.Client) -> None:
    """A window opening in the last hour that dates can name holds nothing, and says so."""
    got = client.get("/api/tickers", params={"since": "9999-12-31T23:30:00Z"})
    assert got.status_code == 200, got.text
    assert got.json()["items"] == []


def test_tickers_window_can_be_chosen(client: httpx.Client, store: Store) -> None:
    since, until = NOW - timedelta(hours=40), NOW - timedelta(hours=20)
    got = client.get(
        "/api/tickers", params={"since": since.isoformat(), "until": until.isoformat()}
    )
    items = {item["ticker"]: item for item in got.json()["items"]}
    window = [f for f in store.facts if f.kind == "post" and since <= f.published_at < until]
    assert set(items) == {f.ticker for f in window}
    tsla = [f for f in window if f.ticker == "TSLA"]
    mentions, consensus = _reference(tsla)
    assert items["TSLA"]["mentions"] == mentions == 3
    _same_consensus(items["TSLA"]["consensus"], consensus)


def _hour(hours_ago: float) -> datetime:
    """The start of the hour ``hours_ago`` hours before NOW."""
    return (NOW - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)


AT_A_POST = NOW - timedelta(hours=3.25)  # AAPL's post k=3 is published at exactly this time
WINDOWS = {
    "whole hours": (_hour(30), _hour(2)),
    "inside one hour": (_hour(5) + timedelta(minutes=1), _hour(5) + timedelta(minutes=59)),
    "open end": (NOW - timedelta(hours=6.3), None),
    "starts at a post": (AT_A_POST, _hour(1)),
    "ends at a post": (_hour(20) + timedelta(seconds=7), AT_A_POST),
    "two partial hours": (_hour(8) + timedelta(minutes=30), _hour(7) + timedelta(minutes=30)),
    "everything": (NOW - timedelta(days=60), NOW + timedelta(hours=1)),
}


@pytest.mark.parametrize("name", WINDOWS)
def test_tickers_in_any_window_match_the_rows(
    client: httpx.Client, store: Store, name: str
) -> None:
    """Whole hours come from ``ticker_hours`` and partial ones from the rows: wherever a
    window's ends fall (on an hour, inside one, on a post's own time), the ranking, mentions,
    last mention and consensus are the rows' own."""
    since, until = WINDOWS[name]
    params = {"since": since.isoformat(), "limit": "200"}
    if until is not None:
        params["until"] = until.isoformat()
    got = client.get("/api/tickers", params=params)
    assert got.status_code == 200, got.text
    window: dict[str, list[Fact]] = {}
    for fact in store.facts:
        if (
            fact.kind == "post"
            and since <= fact.published_at
            and (until is None or fact.published_at < until)
        ):
            window.setdefault(fact.ticker, []).append(fact)
    assert window, "the window holds posts"
    want = sorted(window, key=lambda ticker: (-len(window[ticker]), ticker))
    items = got.json()["items"]
    assert [item["ticker"] for item in items] == want
    for item in items:
        facts = window[item["ticker"]]
        mentions, consensus = _reference(facts)
        assert item["mentions"] == mentions
        _same_consensus(item["consensus"], consensus)
        last = max(fact.published_at for fact in facts)
        assert datetime.fromisoformat(item["last_seen"]) == last


def test_ticker_page_has_days_window_recent_decisions_and_spikes(
    client: httpx.Client, store: Store
) -> None:
    got = client.get("/api/tickers/aapl", params={"days": 5, "window_s": 6 * 3600})
    assert got.status_code == 200, got.text
    page = TickerDetail.model_validate(got.json())
    assert page.ticker == "AAPL"
    posts = [f for f in store.facts if f.ticker == "AAPL" and f.kind == "post"]
    first_day = datetime.now(UTC).date() - timedelta(days=4)
    days = sorted({f.trade_date for f in posts if f.trade_date >= first_day}, reverse=True)
    assert [day.trade_date for day in page.days] == days
    for shown in got.json()["days"]:
        on_day = [f for f in posts if f.trade_date.isoformat() == shown["trade_date"]]
        mentions, consensus = _reference(on_day)
        assert shown["mentions"] == mentions
        _same_consensus(shown["consensus"], consensus)
    window = got.json()["window"]
    since = datetime.fromisoformat(window["since"])
    mentions, consensus = _reference([f for f in posts if f.published_at >= since])
    assert window["mentions"] == mentions
    _same_consensus(window["consensus"], consensus)
    assert (
        _ids(got.json()["recent"]) == _newest_first(store.facts, lambda f: f.ticker == "AAPL")[:20]
    )
    day_start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    assert _ids(got.json()["spikes"]) == _newest_first(
        store.facts,
        lambda f: f.ticker == "AAPL" and f.kind == "spike" and f.published_at >= day_start,
    )
    assert client.get("/api/tickers/BRK/B").status_code == 200
    old = client.get("/api/tickers/OLD").json()
    assert old["days"] == []
    assert old["window"]["mentions"] == 0
    assert len(old["recent"]) == 1
    assert client.get("/api/tickers/NEVER").status_code == 404


def test_spikes_are_the_spike_rows_newest_first(client: httpx.Client, store: Store) -> None:
    items = _all_pages(client, "/api/spikes", {"limit": 1})
    assert _ids(items) == _newest_first(store.facts, lambda f: f.kind == "spike")
    aapl = _all_pages(
        client,
        "/api/spikes",
        {"ticker": "aapl", "since": (NOW - timedelta(days=3)).date().isoformat()},
    )
    assert _ids(aapl) == _newest_first(
        store.facts,
        lambda f: (
            f.kind == "spike"
            and f.ticker == "AAPL"
            and f.published_at.date() >= (NOW - timedelta(days=3)).date()
        ),
    )


# --- refused parameters -------------------------------------------------------------------------


def _tampered_cursors(client: httpx.Client) -> list[str]:
    cursor = client.get("/api/decisions", params={"limit": 1}).json()["next_cursor"]
    body = json.loads(_b64(cursor))
    forged = dict(body, i=body["i"] + 1)
    return [
        cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1],
        cursor + "x",
        cursor + "==",
        _unb64(json.dumps(forged)),
        _unb64(json.dumps(dict(body, i=-1))),
        _unb64(json.dumps(dict(body, p="yesterday"))),
        _unb64("[1,2]"),
        _unb64("not json"),
        "%%%",
        "A" * 300,
    ]


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _unb64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


BAD = [
    ("/api/decisions", {"ticker": "AA PL"}, "ticker"),
    ("/api/decisions", {"ticker": "A" * 33}, "ticker"),
    ("/api/decisions", {"ticker": "ÄAPL"}, "ticker"),
    ("/api/decisions", {"ticker": "ı"}, "ticker"),  # upper-cases to an ASCII I
    ("/api/decisions", {"kind": "tweet"}, "kind"),
    ("/api/decisions", {"verdict": "STRONG_BUY"}, "verdict"),
    ("/api/decisions", {"status": "fine"}, "status"),
    ("/api/decisions", {"since": "yesterday"}, "since"),
    ("/api/decisions", {"since": "2024-13-01"}, "since"),
    ("/api/decisions", {"until": "2024-02-30T00:00:00"}, "until"),
    ("/api/decisions", {"until": "9999-12-31"}, "until"),
    ("/api/decisions", {"since": "2024-05-02", "until": "2024-05-01"}, "since"),
    ("/api/decisions", {"since": "2024-05-01T12:00:00Z", "until": "2024-05-01T11:00:00Z"}, "since"),
    ("/api/decisions", {"min_confidence": "1.5"}, "min_confidence"),
    ("/api/decisions", {"min_confidence": "-0.1"}, "min_confidence"),
    ("/api/decisions", {"min_confidence": "nan"}, "min_confidence"),
    ("/api/decisions", {"min_confidence": "lots"}, "min_confidence"),
    ("/api/decisions", {"limit": "0"}, "limit"),
    ("/api/decisions", {"limit": "1001"}, "limit"),
    ("/api/decisions", {"limit": "9" * 40}, "limit"),
    ("/api/decisions", {"limit": "ten"}, "limit"),
    ("/api/decisions", {"format": "xml"}, "format"),
    ("/api/decisions", {"tickr": "AAPL"}, "tickr"),
    ("/api/tickers", {"limit": "201"}, "limit"),
    ("/api/tickers", {"since": "2024-05-02", "until": "2024-05-01"}, "since"),
    ("/api/tickers", {"until": "soon"}, "until"),
    ("/api/tickers/AAPL", {"days": "367"}, "days"),
    ("/api/tickers/AAPL", {"days": "0"}, "days"),
    ("/api/tickers/AAPL", {"window_s": "0"}, "window_s"),
    ("/api/tickers/AAPL", {"window_s": str(31 * 86_400)}, "window_s"),
    ("/api/tickers/AA%20PL", {}, "ticker"),
    ("/api/tickers/" + "A" * 40, {}, "ticker"),
    ("/api/spikes", {"ticker": "$$$"}, "ticker"),
    ("/api/spikes", {"kind": "post"}, "kind"),
    ("/api/decisions/" + "x" * 65, {}, "correlation_id"),
    ("/api/decisions/bad%00id", {}, "correlation_id"),
]


@pytest.mark.parametrize(("path", "params", "name"), BAD)
def test_a_bad_parameter_is_a_422_naming_it(
    client: httpx.Client, path: str, params: dict[str, str], name: str
) -> None:
    got = client.get(path, params=params)
    assert got.status_code == 422, got.text
    errors = got.json()["detail"]
    assert any(error["loc"][-1] == name for error in errors), errors


def test_a_tampered_cursor_is_a_422_naming_cursor(client: httpx.Client) -> None:
    for cursor in _tampered_cursors(client):
        got = client.get("/api/decisions", params={"cursor": cursor})
        assert got.status_code == 422, (cursor, got.text)
        assert got.json()["detail"][0]["loc"] == ["query", "cursor"], cursor
        spikes = client.get("/api/spikes", params={"cursor": cursor})
        assert spikes.status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        "ticker=" + "A" * 60_000,
        "since=" + "9" * 5_000,
        "cursor=" + "%FF" * 1_000,
        "ticker=%00",
        "ticker=AAPL%00",
        "since=2024-05-01%00",
        "verdict=%00BUY",
        "kind=p%C3%B6st",
        "status=%E2%80%AE",
        "ticker=%F0%9F%9A%80",
        "format=%00",
        "limit=%00",
        "min_confidence=1e999",
        "min_confidence=%00",
        "%00=1",
        "ticker=A&ticker=B&ticker=%00",
        "since=%ED%A0%80",
        "x=" + "%" * 100,
        "&&&==&=",
    ],
)
def test_hostile_query_strings_are_refused_never_a_server_error(
    client: httpx.Client, query: str
) -> None:
    for path in ("/api/decisions", "/api/spikes", "/api/tickers", "/api/tickers/AAPL"):
        got = client.get(f"{path}?{query}")
        assert got.status_code < 500, (path, query, got.status_code)
        assert got.status_code in (400, 404, 413, 414, 422, 431), (path, query, got.text[:200])
    for path in ("/api/decisions/%00", "/api/decisions/%F0%9F%9A%80", "/api/tickers/%00%00"):
        assert client.get(path).status_code in (404, 422), path


# --- access -------------------------------------------------------------------------------------


def test_beyond_loopback_the_token_is_required(store: Store) -> None:
    """Served beyond loopback: no or a wrong bearer token is 401 with a challenge, the right one
    200; the token is in no answer, not even /health."""
    view = _view(store.target, api_token=SecretStr(TOKEN), require_token=True)
    with _serve(view) as url, httpx.Client(base_url=url, timeout=30) as http:
        for path in ("/api/decisions", "/api/tickers", "/api/tickers/AAPL", "/api/spikes"):
            missing = http.get(path)
            assert missing.status_code == 401, path
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = http.get(path, headers={"Authorization": f"Bearer {TOKEN}x"})
            assert wrong.status_code == 401
            assert "invalid_token" in wrong.headers["www-authenticate"]
            for header in (f"Basic {TOKEN}", TOKEN, "Bearer", f"Bearer {TOKEN[:-1]}"):
                assert http.get(path, headers={"Authorization": header}).status_code == 401
            not_ascii = {"Authorization": "Bearer \xe9\xff".encode("latin-1")}
            assert http.get(path, headers=not_ascii).status_code == 401
            right = http.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert right.status_code == 200, right.text
            assert TOKEN not in missing.text + wrong.text
        # Unauthenticated requests learn nothing from validation either.
        assert http.get("/api/decisions?limit=0").status_code == 401
        assert TOKEN not in http.get("/health").text
        assert TOKEN not in http.get("/openapi.json").text


def test_beyond_loopback_without_a_token_the_api_says_to_set_one(store: Store) -> None:
    with _serve(_view(store.target, require_token=True)) as url:
        got = httpx.get(url + "/api/decisions", headers={"Authorization": "Bearer x"}, timeout=30)
        assert got.status_code == 503
        assert "API_TOKEN" in got.json()["detail"]


def test_on_loopback_no_token_is_needed(client: httpx.Client) -> None:
    assert client.get("/api/decisions", params={"limit": 1}).status_code == 200
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "", "::", "10.0.0.1", "example.org"))


# --- the service around it ----------------------------------------------------------------------


def test_docs_and_openapi_list_the_query_endpoints(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/decisions", "/api/tickers", "/api/spikes"} <= paths
    assert "/api/decisions/{correlation_id}" in paths
    assert "/api/tickers/{ticker}" in paths
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200
    assert client.get("/health").status_code in (200, 503)


def test_without_a_database_there_are_no_api_routes() -> None:
    with _serve(_view(None)) as url:
        assert httpx.get(url + "/api/decisions", timeout=30).status_code == 404
        assert "/api/decisions" not in httpx.get(url + "/openapi.json", timeout=30).text


def test_a_database_without_the_table_is_a_503_not_a_500(tmp_path: Path) -> None:
    """The store not migrated yet (or unreachable): 503 with Retry-After, nothing written."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    with _serve(_view(parse_database_url(url))) as base:
        got = httpx.get(base + "/api/decisions", timeout=30)
        assert got.status_code == 503
        assert got.headers["retry-after"]
        assert "store" in got.json()["detail"]


def test_unreachable_postgres_is_a_503_without_the_password(tmp_path: Path) -> None:
    port = bind_listener("127.0.0.1", 0)
    closed = port.getsockname()[1]
    port.close()
    url = f"postgresql://postgres:{TOKEN}@127.0.0.1:{closed}/nowhere"
    with _serve(_view(parse_database_url(url))) as base:
        got = httpx.get(base + "/api/tickers", timeout=30)
        assert got.status_code == 503
        assert TOKEN not in got.text


def test_the_service_http_thread_serves_the_api_and_closes_its_pool(store: Store) -> None:
    """The service's own HTTP thread (lifespan off, paced): the API answers, and once it has
    stopped, while the app still exists, its pool is closed (SQLite's connections each hold a
    thread)."""
    before = {thread.ident for thread in threading.enumerate()}
    app = create_app(_view(store.target))

    async def run() -> None:
        http = HttpThread(app, bind_listener("127.0.0.1", 0), "127.0.0.1")
        await http.start()
        try:
            async with httpx.AsyncClient(base_url=http.url, timeout=30) as client:
                got = await client.get("/api/tickers")
                assert got.status_code == 200, got.text
                assert (await client.get("/api/decisions?limit=3")).status_code == 200
        finally:
            await http.stop()

    asyncio.run(run())
    deadline = time.monotonic() + 5
    while left := [t.name for t in threading.enumerate() if t.ident not in before]:
        assert time.monotonic() < deadline, left
        time.sleep(0.01)
    assert app.routes  # still alive: nothing above was closed by the garbage collector


def test_the_api_connections_cannot_write(store: Store) -> None:
    """Whatever a query said, its connection may only read (SQLite query_only, PostgreSQL
    read-only transactions): a write is refused and the rows stay."""

    async def delete_all(database: QueryDatabase) -> None:
        async with database.connect() as connection:
            await connection.execute(text("DELETE FROM decisions"))
            await connection.commit()

    async def attempt() -> int:
        database = QueryDatabase(store.target)
        with pytest.raises(StoreUnavailable):
            await delete_all(database)
        async with database.connect() as connection:
            return len((await connection.execute(select(TABLE.c.id))).all())

    assert in_thread(attempt()) == len(store.facts)
