"""Ingest rate of the SQL store into SQLite and PostgreSQL, through `signalsmith run`.

    python bench/bench_store.py [--db sqlite|postgres|both] [--posts N] [--rounds R]
                                [--batches 100,500,2000] [--profile]

Each round, on fresh keys each time (N posts: the demo posts, cycled, malformed ones included,
XADDed to the input stream):
  pipeline        `signalsmith run --only posts --until-idle 1`: the posts pipeline alone
                  (PUBLISH=actionable, offline analyzer, decision log on), the reference
then for each database:
  pipeline+store  `signalsmith run --until-idle 1`: the pipeline and the store in one process,
                  into a new empty database. Every ~50 ms another client samples the decision
                  stream's length and the store's and the pipeline's groups (XINFO GROUPS), on
                  Redis's clock (TIME), the clock of the entry ids.
  store           then `signalsmith run --only store --until-idle 1` alone over the same, now
                  complete, decision stream, into a new empty database with a new group
                  (STORE_GROUP=bench-<n>), once per STORE_BATCH in --batches
Every case with a database checks that it holds one row per decision stream entry (SQL count =
XLEN) and that the store dead-lettered nothing. A case whose process stopped before its input
was all acknowledged (e.g. it was sent SIGTERM: it drains and exits 0) says "complete": false and
is left out of the medians. The last lines are each database's medians and ratios.

Figures:
  posts_per_s   N / (last - first decision on the decision stream, by entry id time)
  behind        decisions logged but not yet acknowledged by the store: XLEN(decision stream) -
                (store group's entries-read - its pending); p50 and max over the samples from
                the first decision to the store's last acknowledgement
  catch_up_s    from the pipeline's last decision (its entry id) to the first sample in which
                the store had acknowledged every row (resolution: one sample)
  rows_per_s    store alone: rows acknowledged between the first sample showing an
                acknowledgement and the first showing them all, over that time. Start-up
                (imports, migrations) and the idle second are outside it; wall_s has them.
With --profile, the store alone (STORE_BATCH=500) then runs once more per database inside this
process under cProfile (every thread): the main thread's own time summed by where it is spent
(parsing rows, SQLAlchemy, the driver, the Redis client, the engine, the event loop, waiting),
the other threads' busy time (SQLite runs in a thread of its own), the rows per transaction,
and the functions with the most time of their own. The profiler slows Python code more than C
code: read its shares as a rough guide.
Uses REDIS_URL, else redis://127.0.0.1:6379/0, and --postgres-url (a new schema per database,
dropped afterwards); cleans up its keys, schemas and files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from redis import Redis
from sqlalchemy import text

from benchkeys import fresh_keys
from signalsmith.demo import demo_posts
from signalsmith.store.database import create_engine, parse_database_url

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
STORE_GROUP = "signalsmith-store"
SAMPLE_S = 0.05
TARGET_ROWS_PER_S = 5_000
# Settings a run must not take from the caller's environment.
_DROPPED = (
    "REDIS_ADDR",
    "LLM_PROVIDERS",
    "SIGNALSMITH_CONFIG",
    "DATABASE_URL",
    "STORE_BATCH",
    "STORE_GROUP",
    "STORE_DLQ_STREAM",
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at the streams: Redis's clock (ms), the decision stream's length, and the
    entries the store's and the pipeline's groups have acknowledged."""

    ms: float
    logged: int
    stored: int
    posts_done: int

    @property
    def behind(self) -> int:
        """Decisions logged and not yet acknowledged by the store."""
        return self.logged - self.stored


@dataclass(frozen=True, slots=True)
class Run:
    """Where one case's processes look: Redis keys, a scratch folder, the PostgreSQL server."""

    names: dict[str, str]
    scratch: Path
    postgres_url: str


def _load(stream: str, posts: int) -> None:
    client = Redis.from_url(URL)
    source = itertools.cycle(list(demo_posts()))
    for start in range(0, posts, 5000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(5000, posts - start)):
            pipe.xadd(stream, next(source))  # type: ignore[arg-type]
        pipe.execute()
    client.close()


@contextlib.contextmanager
def fresh_database(kind: str, run: Run) -> Iterator[str]:
    """DATABASE_URL of a new, empty database: a SQLite file in the scratch folder, or a new
    PostgreSQL schema, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{run.scratch / name}.db"
        return
    asyncio.run(_postgres(run.postgres_url, f"CREATE SCHEMA {name}"))
    try:
        driver_url = run.postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        yield f"{driver_url}?options=-csearch_path%3D{name}"
    finally:
        asyncio.run(_postgres(run.postgres_url, f"DROP SCHEMA {name} CASCADE"))


async def _postgres(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _stored_rows(database_url: str) -> int:
    """Rows in the store's table, through the store's own URL parsing and engine."""

    async def count() -> int:
        engine = create_engine(parse_database_url(database_url))
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text("SELECT count(*) FROM decisions"))
                return int(result.scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def _env(run: Run, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a signalsmith process of this case: its keys and database, quiet,
    offline."""
    base = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    quiet = {
        "REDIS_URL": URL,
        "HTTP_PORT": "0",
        "LOG_LEVEL": "ERROR",
        "LLM_POLICY": "never",
        "PUBLISH": "actionable",
        "STORE_ENABLED": "true",
        "STATE_DIR": str(run.scratch / "state"),
        "DATABASE_URL": database_url,
    }
    return {**base, **run.names, **quiet, **extra}


def _acknowledged(groups: object, group: str) -> int:
    """Entries a group has acknowledged: read (entries-read) less still pending."""
    for info in groups if isinstance(groups, list) else ():  # an error: no stream yet
        if info["name"].decode() == group:
            return int(info["entries-read"] or 0) - int(info["pending"])
    return 0


def _sample(client: Redis, names: dict[str, str], store_group: str) -> Sample:
    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.xlen(names["DECISION_STREAM"])
    pipe.xinfo_groups(names["DECISION_STREAM"])
    pipe.xinfo_groups(names["STREAM"])
    clock, logged, store, posts = pipe.execute(raise_on_error=False)
    return Sample(
        ms=clock[0] * 1000 + clock[1] / 1000,
        logged=int(logged),
        stored=_acknowledged(store, store_group),
        posts_done=_acknowledged(posts, names["GROUP"]),
    )


def _run_sampled(
    command: list[str], env: dict[str, str], names: dict[str, str], store_group: str
) -> tuple[list[Sample], float]:
    """Run ``command``, sampling every SAMPLE_S until it exits; the samples and its wall time."""
    client = Redis.from_url(URL)
    samples: list[Sample] = []
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        while process.poll() is None:
            samples.append(_sample(client, names, store_group))
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - started
        samples.append(_sample(client, names, store_group))
        client.close()
        if process.returncode != 0:
            output.seek(0)
            tail = output.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command[2:])} exited {process.returncode}:\n{tail}")
    return samples, wall


def _run_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "signalsmith", "run", "--until-idle", "1", *extra]


def _decision_span(names: dict[str, str]) -> tuple[int, int, float]:
    """Entries on the decision stream, its last entry's id time (ms) and the seconds from the
    first entry to the last, by their ids."""
    client = Redis.from_url(URL)
    stream = names["DECISION_STREAM"]
    first = int(client.xrange(stream, count=1)[0][0].split(b"-")[0])
    last = int(client.xrevrange(stream, count=1)[0][0].split(b"-")[0])
    count = client.xlen(stream)
    client.close()
    return count, last, (last - first) / 1000


def _dead_letters(names: dict[str, str]) -> int:
    client = Redis.from_url(URL)
    count = client.xlen(f"{names['DECISION_STREAM']}:store:dlq")
    client.close()
    return count


def _rate(samples: list[Sample], attribute: str) -> tuple[float, Sample, Sample]:
    """Entries/s of a counter between the first sample it moved in and the first in which it
    had reached its final value; those two samples."""
    final = getattr(samples[-1], attribute)
    if final <= 0:
        raise RuntimeError(f"{attribute}: nothing was acknowledged")
    first = next(s for s in samples if getattr(s, attribute) > 0)
    done = next(s for s in samples if getattr(s, attribute) >= final)
    span_s = (done.ms - first.ms) / 1000
    moved = final - getattr(first, attribute)
    return (round(moved / span_s, 1) if span_s > 0 else 0.0), first, done


def _interval_ms(samples: list[Sample]) -> float:
    return round(statistics.median(b.ms - a.ms for a, b in itertools.pairwise(samples)), 1)


def pipeline_case(run: Run, posts: int) -> dict[str, object]:
    """The pipeline alone: the reference for what the store costs it."""
    scratch_db = f"sqlite+aiosqlite:///{run.scratch / 'unused.db'}"
    env = _env(run, scratch_db)
    samples, wall = _run_sampled(_run_command("--only", "posts"), env, run.names, STORE_GROUP)
    logged, _last_ms, span_s = _decision_span(run.names)
    return {
        "case": "pipeline",
        "posts": posts,
        "decisions": logged,
        "posts_per_s": round(posts / span_s, 1),
        "decisions_per_s": round(logged / span_s, 1),
        "posts_per_s_by_input_acks": _rate(samples, "posts_done")[0],
        "posts_acknowledged": samples[-1].posts_done,
        "complete": samples[-1].posts_done == posts,
        "wall_s": round(wall, 2),
    }


def pipeline_store_case(kind: str, run: Run, posts: int) -> dict[str, object]:
    """The pipeline and the store in one process: the pipeline's rate, the store's lag."""
    with fresh_database(kind, run) as database:
        env = _env(run, database)
        samples, wall = _run_sampled(_run_command(), env, run.names, STORE_GROUP)
        rows = _stored_rows(database)
    logged, last_ms, span_s = _decision_span(run.names)
    dead = _dead_letters(run.names)
    stored = _rate(samples, "stored")[2]
    behind = [s.behind for s in samples if s.logged > 0 and s.ms <= stored.ms]
    return {
        "case": "pipeline+store",
        "db": kind,
        "posts": posts,
        "decisions": logged,
        "posts_per_s": round(posts / span_s, 1),
        "decisions_per_s": round(logged / span_s, 1),
        "posts_per_s_by_input_acks": _rate(samples, "posts_done")[0],
        "rows": rows,
        "posts_acknowledged": samples[-1].posts_done,
        "rows_match": rows == logged == samples[-1].stored and dead == 0,
        "complete": samples[-1].posts_done == posts and rows == logged == samples[-1].stored,
        "store_dead_letters": dead,
        "behind_p50": round(statistics.median(behind)) if behind else 0,
        "behind_max": max(behind, default=0),
        "catch_up_s": round((stored.ms - last_ms) / 1000, 3),
        "pipeline_s": round(span_s, 3),
        "wall_s": round(wall, 2),
        "samples": len(behind),
        "sample_interval_ms": _interval_ms(samples),
    }


def store_case(kind: str, run: Run, batch: int, group: str) -> dict[str, object]:
    """The store alone over the complete decision stream: a new group, a new database."""
    with fresh_database(kind, run) as database:
        env = _env(run, database, STORE_GROUP=group, STORE_BATCH=str(batch))
        samples, wall = _run_sampled(_run_command("--only", "store"), env, run.names, group)
        rows = _stored_rows(database)
    logged = samples[-1].logged
    dead = _dead_letters(run.names)
    rate, first, done = _rate(samples, "stored")
    return {
        "case": "store",
        "db": kind,
        "store_batch": batch,
        "decisions": logged,
        "rows": rows,
        "rows_match": rows == logged == done.stored and dead == 0,
        "complete": rows == logged == done.stored,
        "rows_per_s": rate,
        "target_met": rate >= TARGET_ROWS_PER_S,
        "ingest_s": round((done.ms - first.ms) / 1000, 3),
        "wall_s": round(wall, 2),
        "sample_interval_ms": _interval_ms(samples),
    }


def _median_of(results: list[dict[str, object]], key: str) -> float | None:
    values = [float(str(result[key])) for result in results]
    return round(statistics.median(values), 2) if values else None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 2) if top is not None and bottom else None


def summary(kind: str, results: list[dict[str, object]]) -> dict[str, object]:
    """Medians over the complete cases of the rounds, and ratios between figures of this run
    (the pipeline with the store against the pipeline alone: round by round, then the median)."""
    mine = [r for r in results if r.get("db") in (kind, None)]
    complete = [r for r in mine if r["complete"]]
    reference = {r["round"]: r for r in complete if r["case"] == "pipeline"}
    together = [r for r in complete if r["case"] == "pipeline+store"]
    alone = [r for r in complete if r["case"] == "store"]
    batches = sorted({int(str(r["store_batch"])) for r in alone})
    rates = {
        b: _median_of([r for r in alone if r["store_batch"] == b], "rows_per_s") for b in batches
    }
    ratios = [
        _ratio(float(str(r["posts_per_s"])), float(str(reference[r["round"]]["posts_per_s"])))
        for r in together
        if r["round"] in reference
    ]
    decisions = _median_of(together, "decisions_per_s")
    return {
        "case": "summary",
        "db": kind,
        "rounds_complete": len(together),
        "cases_left_out": len(mine) - len(complete),
        "pipeline_posts_per_s": _median_of(list(reference.values()), "posts_per_s"),
        "pipeline_with_store_posts_per_s": _median_of(together, "posts_per_s"),
        "with_store_vs_alone_by_round": ratios,
        "with_store_vs_alone": round(statistics.median(ratios), 2) if ratios else None,
        "decisions_per_s_with_store": decisions,
        "behind_p50": _median_of(together, "behind_p50"),
        "behind_max": _median_of(together, "behind_max"),
        "catch_up_s": _median_of(together, "catch_up_s"),
        "store_rows_per_s_by_batch": rates,
        "store_500_vs_decisions_with_store": _ratio(rates.get(500), decisions),
        "largest_vs_smallest_batch": _ratio(rates[batches[-1]], rates[batches[0]])
        if batches
        else None,
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "target_met_by_batch": {
            b: rate is not None and rate >= TARGET_ROWS_PER_S for b, rate in rates.items()
        },
    }


class _ThreadProfiles:
    """cProfile for this thread and for every thread started while it is on (the SQLite
    driver runs the database's calls in a thread of its own)."""

    def __init__(self) -> None:
        self.main = cProfile.Profile()
        self.others: list[cProfile.Profile] = []

    def _start(self, *_args: object) -> None:
        profile = cProfile.Profile()
        self.others.append(profile)
        profile.enable()

    def __enter__(self) -> _ThreadProfiles:
        threading.setprofile(self._start)
        self.main.enable()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.main.disable()
        threading.setprofile(None)


# Where a function's own time goes, by its file (first match wins). A built-in (file "~") counts
# where its callers are, in proportion to the time each call site spent in it. Own time rather
# than time under a step: SQLAlchemy's async layer switches greenlets, which cProfile cannot
# follow, so a step's inclusive time would take in the event loop's waits.
_PLACES = (
    ("waiting (epoll; includes the idle second)", ("<method 'poll' of 'select.epoll'",)),
    ("start-up (imports, migrations, gc)", ("alembic/", "importlib", "migrate.py", "service.py")),
    ("parse rows (store/rows.py)", ("signalsmith/store/rows.py", "pydantic_core")),
    ("SQLAlchemy", ("sqlalchemy/", "greenlet")),
    ("driver (asyncpg / aiosqlite)", ("asyncpg/", "aiosqlite/", "sqlite3")),
    ("redis client (reads, acks)", ("redis/", "hiredis")),
    ("engine + store handler", ("signalsmith/",)),
    ("event loop", ("asyncio/", "selectors.py")),
)
_WAITS = ("<method 'get' of '_queue.SimpleQueue' objects>", "<method 'acquire'")
Key = tuple[str, int, str]
Row = tuple[int, int, float, float, dict[Key, tuple[int, int, float, float]]]


def _rows(stats: pstats.Stats) -> dict[Key, Row]:
    return stats.stats  # type: ignore[attr-defined,no-any-return]


def _place(key: Key, rows: dict[Key, Row], depth: int = 0) -> list[tuple[str, float]]:
    """Where ``key``'s own time goes: one place, or for a built-in its callers' places."""
    where, builtin = f"{key[0]} {key[2]}", key[0] == "~"
    for place, marks in _PLACES:
        direct = not builtin or place.startswith("waiting")
        if direct and any(mark in where for mark in marks):
            return [(place, 1.0)]
    callers = rows[key][4]
    spent = sum(row[2] for row in callers.values())
    if not builtin or not spent or depth > 3:
        return [("other", 1.0)]
    return [
        (place, share * row[2] / spent)
        for caller, row in callers.items()
        for place, share in _place(caller, rows, depth + 1)
    ]


def _by_place(stats: pstats.Stats) -> dict[str, float]:
    rows = _rows(stats)
    seconds: dict[str, float] = {}
    for key, row in rows.items():
        for place, share in _place(key, rows):
            seconds[place] = seconds.get(place, 0.0) + row[2] * share
    ranked = sorted(seconds.items(), key=lambda item: item[1], reverse=True)
    return {place: round(s, 3) for place, s in ranked} | {
        "main thread total": round(sum(seconds.values()), 3)
    }


def _busy_seconds(profiles: list[cProfile.Profile]) -> float:
    """Time the other threads spent not waiting for work (with SQLite: the database's own)."""
    busy = 0.0
    for profile in profiles:
        for key, row in _rows(pstats.Stats(profile)).items():
            if not key[2].startswith(_WAITS):
                busy += row[2]
    return round(busy, 3)


def _top(stats: pstats.Stats, count: int) -> list[str]:
    ranked = sorted(_rows(stats).items(), key=lambda item: item[1][2], reverse=True)
    return [
        f"{Path(file).name}:{line}({function}) {row[1]} calls {row[2]:.3f}s"
        for (file, line, function), row in ranked[:count]
    ]


def _profiled_store(run: Run, database: str) -> tuple[_ThreadProfiles, int, float]:
    """The store alone, in this process, under the profiler; its profiles, acknowledged
    entries and wall time."""
    from signalsmith.observe.logging import configure_logging
    from signalsmith.service import RunOptions, run_service
    from signalsmith.settings import load_settings

    overrides = {key.lower(): value for key, value in run.names.items()}
    settings = load_settings(
        **overrides,
        redis_url=URL,
        state_dir=run.scratch / "state",
        database_url=database,
        store_group="bench-profile",
        store_batch=500,
    )
    scrubber = configure_logging("ERROR", "console")
    options = RunOptions(until_idle=1, http=False, only=frozenset({"store"}))
    with _ThreadProfiles() as profiles:
        started = time.perf_counter()
        every = asyncio.run(run_service(settings, scrubber, options, announce=lambda _: None))
        wall = time.perf_counter() - started
    return profiles, every["store"].acknowledged, wall


def profile_case(kind: str, run: Run) -> dict[str, object]:
    """Where the store's time goes, store alone, STORE_BATCH=500."""
    with fresh_database(kind, run) as database:
        profiles, acknowledged, wall = _profiled_store(run, database)
        rows = _stored_rows(database)
    main = pstats.Stats(profiles.main)
    # One XACK per commit call, so per transaction.
    transactions = sum(
        row[1] for key, row in _rows(main).items() if key[2] == "xack" and "redis/" in key[0]
    )
    return {
        "case": "profile",
        "db": kind,
        "store_batch": 500,
        "rows": rows,
        "acknowledged": acknowledged,
        "transactions": transactions,
        "rows_per_transaction": round(rows / transactions, 1) if transactions else None,
        "wall_s_under_profiler": round(wall, 2),
        "main_thread_own_s": _by_place(main),
        "other_threads_busy_s": _busy_seconds(profiles.others),
        "main_thread_top_own": _top(main, 10),
    }


def one_round(
    kinds: tuple[str, ...], posts: int, batches: list[int], run: Run
) -> Iterator[dict[str, object]]:
    """The pipeline alone, then for each database the pipeline with the store and the store
    alone at each batch size; each on its own keys."""
    groups = (f"bench-{n}" for n in itertools.count(1))
    with fresh_keys(URL, "bench-store") as names:
        _load(names["STREAM"], posts)
        yield pipeline_case(Run(names, run.scratch, run.postgres_url), posts)
    for kind in kinds:
        with fresh_keys(URL, "bench-store") as names:
            case_run = Run(names, run.scratch, run.postgres_url)
            _load(names["STREAM"], posts)
            yield pipeline_store_case(kind, case_run, posts)
            for batch in batches:
                yield store_case(kind, case_run, batch, next(groups))


def profiles(kinds: tuple[str, ...], posts: int, run: Run) -> Iterator[dict[str, object]]:
    """For each database: a complete decision stream (the pipeline alone), then the profile."""
    for kind in kinds:
        with fresh_keys(URL, "bench-store") as names:
            case_run = Run(names, run.scratch, run.postgres_url)
            _load(names["STREAM"], posts)
            pipeline_case(case_run, posts)
            yield profile_case(kind, case_run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", default="100,500,2000", help="STORE_BATCH values, store alone")
    parser.add_argument(
        "--postgres-url", default=POSTGRES_URL, help="a database to make schemas in"
    )
    parser.add_argument("--profile", action="store_true", help="then profile the store alone")
    args = parser.parse_args()
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    batches = sorted(int(b) for b in args.batches.split(","))
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        run = Run({}, Path(folder), args.postgres_url)
        for number in range(1, args.rounds + 1):
            for case in one_round(kinds, args.posts, batches, run):
                result = {"round": number, **case}
                print(json.dumps(result), flush=True)
                results.append(result)
        for kind in kinds:
            print(json.dumps(summary(kind, results)), flush=True)
        if args.profile:
            for result in profiles(kinds, args.posts, run):
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
