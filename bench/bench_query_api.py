"""Latency of the query API on a large store: a ticker + time-range page of /api/decisions and
/api/tickers (the last 24 hours), over real HTTP, on SQLite or PostgreSQL.

    python bench/bench_query_api.py --db sqlite|postgres [--rows 1000000] [--requests 300]
        [--server uvicorn|service] [--index NAME] [--keep] [--url URL]

Fills a fresh database (migrated with ``signalsmith.store.migrate``) with --rows decisions over
the last 30 days: ~5,000 tickers mentioned along a Zipf-like curve, mixed kinds, verdicts and
statuses, envelopes of a realistic size; bulk inserts (SQLite: one executemany in one
transaction; PostgreSQL: COPY, then VACUUM ANALYZE as autovacuum would do on its own). Then
starts the service's app in a child process, under uvicorn (--server uvicorn: what the queries
cost) or in the service's own paced HTTP thread (--server service: what a client of a running
worker sees), and times --requests sequential requests per query from this process (after a
warm-up), printing one JSON line per query with p50/p99/max in milliseconds.

--index NAME adds one of the candidate indexes below before measuring. --keep leaves the
database in place and prints its URL; --url measures an existing one (no fill). PostgreSQL:
TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test, a schema of its own, dropped
afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from signalsmith.store.database import create_engine, parse_database_url
from signalsmith.store.migrate import upgrade
from signalsmith.store.summary import recompute

POSTGRES_DSN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DAYS = 30
TICKERS = 5_000
ZIPF_S = 1.07
COLUMNS = (
    "correlation_id",
    "kind",
    "ticker",
    "trade_date",
    "verdict",
    "confidence",
    "score",
    "status",
    "source_stream",
    "source_entry_id",
    "post_id",
    "post_url",
    "post_author",
    "post_subreddit",
    "post_created",
    "analyzers",
    "models",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "published_at",
    "stored_at",
    "envelope",
)
INDEXES = {
    # What the query API asks of the schema: the two ranges it reads most carry the columns its
    # sums need (same leading columns as today's, so every current use stays), and a ticker's
    # rows of one kind are a range of their own.
    "recommended": (
        "DROP INDEX ix_decisions_ticker_published",
        "CREATE INDEX ix_decisions_ticker_published ON decisions "
        "(ticker, published_at, id, kind, status, verdict, confidence, score, trade_date)",
        "DROP INDEX ix_decisions_kind_published",
        "CREATE INDEX ix_decisions_kind_published ON decisions "
        "(kind, published_at, id, ticker, status, verdict, confidence, score)",
        "CREATE INDEX ix_decisions_ticker_kind_published ON decisions "
        "(ticker, kind, published_at, id)",
    ),
}
_FILLER = "The post discusses earnings, guidance and the options flow in some detail. " * 9


def _tickers(rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < TICKERS:
        length = rng.choice((1, 2, 3, 3, 4, 4, 4, 5))
        names.add("".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(length)))
    ordered = sorted(names)  # a set's order changes from process to process
    rng.shuffle(ordered)
    return ordered


def _score(rng: random.Random, verdict: str) -> float:
    if verdict == "BUY":
        return round(rng.uniform(0.15, 1.0), 3)
    if verdict == "SELL":
        return round(rng.uniform(-1.0, -0.15), 3)
    return round(rng.uniform(-0.149, 0.149), 3)


def generate(count: int, now: datetime, seed: int = 7) -> Iterator[tuple[object, ...]]:
    """``count`` rows in COLUMNS order, oldest first (as a store fills)."""
    rng = random.Random(seed)
    names = _tickers(rng)
    weights = list(itertools.accumulate(1 / (rank**ZIPF_S) for rank in range(1, TICKERS + 1)))
    start = now - timedelta(days=DAYS)
    offsets = sorted(rng.random() * DAYS * 86_400 for _ in range(count))
    tickers = rng.choices(names, cum_weights=weights, k=count)
    kinds = rng.choices(
        ("post", "consensus", "spike", "insight", "strategy"), (93, 2, 1, 2, 2), k=count
    )
    verdicts = rng.choices(("BUY", "SELL", "HOLD"), (35, 25, 40), k=count)
    statuses = rng.choices(("ok", "degraded", "abstain", "error"), (85, 7, 5, 3), k=count)
    for i in range(count):
        published = start + timedelta(seconds=offsets[i])
        trade_day = published.date() - timedelta(days=int(rng.random() < 0.1))
        ticker, kind, verdict = tickers[i], kinds[i], verdicts[i]
        confidence = round(rng.random() ** 0.7, 3)
        score = _score(rng, verdict)
        cid = f"{i:08x}{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}"
        envelope = (
            f'{{"schema_version":"1","arena":"trading_intelligence","correlation_id":"{cid}",'
            f'"decision":{{"kind":"{kind}","target":{{"ticker":"{ticker}",'
            f'"trade_date":"{trade_day.isoformat()}"}}}},"synthesis":{{"verdict":"{verdict}",'
            f'"confidence":{confidence},"ensemble_score":{score},"reasoning":"{_FILLER}"}}}}'
        )
        yield (
            cid,
            kind,
            ticker,
            trade_day,
            verdict,
            confidence,
            score,
            statuses[i],
            "reddit-events",
            f"{int(published.timestamp() * 1000)}-{i % 7}",
            f"t3_{i:x}",
            f"https://www.reddit.com/r/stocks/comments/{i:x}/",
            f"user{rng.randrange(50_000)}",
            rng.choice(("stocks", "wallstreetbets", "investing", "options", "pennystocks")),
            published - timedelta(seconds=rng.randrange(1, 600)),
            "regex,lexicon" if rng.random() < 0.7 else "regex,lexicon,llm",
            "" if rng.random() < 0.7 else "groq/llama-3.1-8b-instant",
            rng.randrange(0, 900),
            rng.randrange(0, 120),
            round(rng.random() / 10_000, 8),
            published,
            published + timedelta(milliseconds=rng.randrange(5, 900)),
            envelope,
        )


def _sqlite_value(value: object) -> object:
    """A value as SQLAlchemy stores it on SQLite: times as UTC wall time with microseconds,
    dates as YYYY-MM-DD."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def fill_sqlite(path: Path, rows: int, now: datetime) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    names = ", ".join(COLUMNS)
    marks = ", ".join("?" * len(COLUMNS))
    statement = f"INSERT INTO decisions ({names}) VALUES ({marks})"  # noqa: S608 - fixed names
    with connection:
        batch: list[tuple[object, ...]] = []
        for row in generate(rows, now):
            batch.append(tuple(_sqlite_value(value) for value in row))
            if len(batch) == 50_000:
                connection.executemany(statement, batch)
                batch.clear()
        connection.executemany(statement, batch)
    connection.close()


async def fill_postgres(dsn: str, schema: str, rows: int, now: datetime) -> None:
    connection = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        batch: list[tuple[object, ...]] = []
        for row in generate(rows, now):
            batch.append(row)
            if len(batch) == 100_000:
                await connection.copy_records_to_table("decisions", records=batch, columns=COLUMNS)
                batch.clear()
        await connection.copy_records_to_table("decisions", records=batch, columns=COLUMNS)
        await connection.execute("VACUUM ANALYZE decisions")
    finally:
        await connection.close()


async def _postgres(dsn: str, statement: str, schema: str | None = None) -> None:
    settings = {"search_path": schema} if schema else None
    connection = await asyncpg.connect(dsn, server_settings=settings)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def add_index(url: str, name: str) -> None:
    target = parse_database_url(url)
    if target.is_sqlite:
        connection = sqlite3.connect(target.url.database or "")
        for statement in INDEXES[name]:
            connection.execute(statement)
        connection.close()
        return
    schema = target.server_settings["search_path"]
    for statement in (*INDEXES[name], "VACUUM ANALYZE decisions"):
        asyncio.run(_postgres(POSTGRES_DSN, statement, schema))


async def summarise(url: str) -> None:
    """Sum the bulk-loaded rows into ``ticker_hours``, as migration 0003 does for a store
    filled before it (the bulk load bypasses the writer that keeps them)."""
    engine = create_engine(parse_database_url(url))
    try:
        async with engine.begin() as connection:
            for statement in recompute(engine.dialect.name):
                await connection.execute(statement)
    finally:
        await engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(url: str, port: int, service: bool) -> None:
    """The child process: the service's app over ``url`` on 127.0.0.1:``port``."""
    import uvicorn

    from signalsmith.api import ServiceView, create_app
    from signalsmith.engine.stats import EngineStats
    from signalsmith.http_server import HttpThread, bind_listener
    from signalsmith.observe.logging import SecretScrubber
    from signalsmith.observe.metrics import Metrics
    from signalsmith.source.redis_streams import GroupRef

    view = ServiceView(
        redis_where="redis://127.0.0.1:6379/0",
        embedded=False,
        ref=GroupRef("bench", "bench", "bench"),
        signal_stream="bench",
        analyzers=(),
        llm=None,
        stats=EngineStats(),
        metrics=Metrics(),
        scrubber=SecretScrubber([]),
        database=parse_database_url(url),
    )
    listener = bind_listener("127.0.0.1", port)
    if not service:
        config = uvicorn.Config(create_app(view), log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[listener])
        return

    async def forever() -> None:
        await HttpThread(create_app(view), listener, "127.0.0.1").start()
        await asyncio.Event().wait()

    asyncio.run(forever())


def _timed(client: httpx.Client, path: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"{path} {params}: {answer.status_code} {answer.text[:300]}")
    return elapsed


def _report(name: str, times: list[float], extra: dict[str, object]) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
    print(
        json.dumps(
            {
                "query": name,
                "requests": len(times),
                "p50_ms": round(statistics.median(ordered), 2),
                "p99_ms": round(p99, 2),
                "max_ms": round(ordered[-1], 2),
                **extra,
            }
        ),
        flush=True,
    )


def measure(
    base: str, requests: int, now: datetime, extra: dict[str, object], rate: float = 0.0
) -> None:
    """Each query, ``requests`` times after a warm-up (the ticker pages a fifth as often),
    back to back, or ``rate`` a second as a dashboard or a person asks (the service paces a
    flood of queries to a quarter of a CPU, so back to back measures its pacing too)."""
    rng = random.Random(11)
    names = _tickers(random.Random(7))  # the same tickers, in the same Zipf order
    weights = list(itertools.accumulate(1 / (rank**ZIPF_S) for rank in range(1, TICKERS + 1)))

    def span() -> dict[str, str]:
        since = now - timedelta(days=rng.uniform(1, DAYS))
        until = since + timedelta(days=rng.uniform(1, 7))
        return {"since": since.isoformat(), "until": until.isoformat()}

    def page() -> tuple[str, dict[str, str]]:  # a ticker as often as it is mentioned
        return "/api/decisions", {"ticker": rng.choices(names, cum_weights=weights)[0], **span()}

    def rare_posts() -> tuple[str, dict[str, str]]:  # any ticker, mostly rare ones
        return "/api/decisions", {"ticker": rng.choice(names), "kind": "post", **span()}

    def hot_ticker() -> tuple[str, dict[str, str]]:  # the heaviest ticker pages
        return f"/api/tickers/{rng.choice(names[:10])}", {}

    cases = {
        "ticker_time_page": (page, requests),
        "tickers_24h": (lambda: ("/api/tickers", {}), requests),
        "ticker_kind_page_any_ticker": (rare_posts, requests),
        "ticker_detail_top10": (hot_ticker, max(20, requests // 5)),
    }
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, (request, count) in cases.items():
            for _ in range(20):  # warm-up
                _timed(client, *request())
            times = []
            for _ in range(count):
                started = time.perf_counter()
                times.append(_timed(client, *request()))
                if rate > 0:
                    time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
            _report(name, times, extra)


def _wait_until_up(base: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/livez", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if child.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.1)


def _prepare(args: argparse.Namespace, now: datetime) -> tuple[str, str | None]:
    """(the database URL, the PostgreSQL schema to drop afterwards or None)."""
    started = time.perf_counter()
    if args.db == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="bench-query-")) / "store.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(upgrade(url))
        fill_sqlite(path, args.rows, now)
        schema = None
    else:
        schema = f"bench_query_{uuid.uuid4().hex[:8]}"
        asyncio.run(_postgres(POSTGRES_DSN, f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES_DSN}?options=-csearch_path%3D{schema}"
        asyncio.run(upgrade(url))
        asyncio.run(fill_postgres(POSTGRES_DSN, schema, args.rows, now))
    asyncio.run(summarise(url))
    if schema is not None:  # as autovacuum leaves them in steady state
        for table in ("ticker_hours", "ticker_days"):
            asyncio.run(_postgres(POSTGRES_DSN, f"VACUUM ANALYZE {table}", schema))
    print(f"filled {args.rows} rows in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return url, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--server", choices=("uvicorn", "service"), default="uvicorn")
    parser.add_argument("--index", choices=sorted(INDEXES), action="append", default=[])
    parser.add_argument("--keep", action="store_true", help="leave the database in place")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s (0: back to back)")
    parser.add_argument("--url", help="measure this database (already filled)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.server == "service")
        return
    # The rows end a minute from now: a long run still finds the last day full.
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    url, schema = (args.url, None) if args.url else _prepare(args, now)
    for name in args.index:
        add_index(url, name)
    port = _free_port()
    command = [sys.executable, __file__, "--serve", url, "--port", str(port)]
    child = subprocess.Popen([*command, "--server", args.server])
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, child)
        extra = {"db": args.db, "rows": args.rows, "server": args.server, "rate": args.rate}
        measure(base, args.requests, now, extra, args.rate)
    finally:
        child.terminate()
        child.wait(10)
        if args.keep or args.url:
            print(f"database: {url}", file=sys.stderr)
        elif schema is not None:
            asyncio.run(_postgres(POSTGRES_DSN, f'DROP SCHEMA "{schema}" CASCADE'))
        elif args.db == "sqlite":
            path = Path(parse_database_url(url).url.database or "")
            for leftover in path.parent.glob("store.db*"):
                leftover.unlink()
            path.parent.rmdir()


if __name__ == "__main__":
    main()
