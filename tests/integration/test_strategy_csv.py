"""The CSV export driven by the real engine over the real Redis, into real files: each strategy
envelope on the stream becomes its rows, other kinds are acknowledged without one and what is
no envelope is dead-lettered with its reason; a redelivery, a restart, a crash between the
write and the acknowledgement, a batch cut short and a real SIGKILL all leave each signal once
with all its bars; a reader reading in a loop while batches are written never sees a broken
row or summary; the summary's numbers and backlog are the ones worked out by hand."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import stat
import sys
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from signalsmith.engine.engine import Engine, EngineConfig
from signalsmith.engine.stats import EngineStats
from signalsmith.observe.metrics import Metrics
from signalsmith.settings import Settings
from signalsmith.source.redis_streams import GroupRef, StreamSource
from signalsmith.strategy.csv_consumer import (
    CsvCommitter,
    CsvHandler,
    StrategyBacklog,
    build_csv_export,
    read_record,
)
from signalsmith.strategy.csv_files import (
    RESULT_COLUMNS,
    RESULTS_FILE,
    SIGNAL_COLUMNS,
    SIGNALS_FILE,
    SUMMARY_FILE,
    Backlog,
    ExportRecord,
    StrategyCsvFiles,
    encode_rows,
    signal_key,
)
from tests.conftest import RedisTarget
from tests.unit.test_strategy_csv import (
    EXPECTED,
    NOW,
    bars_before,
    data,
    read_csv,
    strategy_meta,
)

pytestmark = pytest.mark.redis
GROUP = "signalsmith-csv"
RUN_TIMEOUT_S = 60
CLAIM_IDLE_MS = 300  # a dead consumer's entries are taken over once idle this long
REPO = Path(__file__).resolve().parents[2]


def _stream(prefix: str) -> str:
    return f"{prefix}:enhanced"


def engine_for(
    redis: Redis,
    stream: str,
    files: StrategyCsvFiles,
    *,
    consumer: str = "c1",
    claim_idle_ms: int = 60_000,
    read_count: int = 64,
    backlog: StrategyBacklog | None = None,
) -> Engine:
    """The export's engine as ``build_csv_export`` makes it, on this test's stream."""
    ref = GroupRef(stream, GROUP, consumer)
    return Engine(
        EngineConfig(
            stream=stream, dlq_stream=f"{stream}:csv:dlq", dlq_maxlen=0, read_count=read_count
        ),
        source=StreamSource(redis, ref, block_ms=20, claim_idle_ms=claim_idle_ms),
        committer=CsvCommitter(files, redis, ref, backlog),
        handler=CsvHandler(),
        metrics=Metrics().pipeline("csv"),
    )


async def run(engine: Engine) -> EngineStats:
    return await asyncio.wait_for(engine.run(asyncio.Event(), until_idle=0.3), RUN_TIMEOUT_S)


async def export(redis: Redis, stream: str, directory: Path, **options: Any) -> EngineStats:
    """One run of the export over ``stream`` into ``directory``, as a process would: the
    files opened at start and closed at the end."""
    files = StrategyCsvFiles.open(directory, clock=lambda: NOW)
    try:
        return await run(engine_for(redis, stream, files, **options))
    finally:
        files.close()


async def feed(redis: Redis, stream: str, entries: Sequence[bytes | Mapping[str, bytes]]) -> None:
    for entry in entries:
        await redis.xadd(stream, dict(entry) if isinstance(entry, Mapping) else {"data": entry})


async def unacknowledged(redis: Redis, stream: str) -> int:
    return int((await redis.xpending(stream, GROUP))["pending"])


def mixed_metas(count: int) -> list[Any]:
    """Signals of every status, with 0 to 4 bars."""
    kinds: list[dict[str, Any]] = [
        {},
        {"model": False, "rating": 3, "agreement": "reject"},
        {"status": "degraded", "rating": 5, "agreement": "caution"},
        {"status": "expired"},
    ]
    return [
        strategy_meta(f"sig-{n:04d}", symbol=f"T{n % 7}", bars=n % 5, **kinds[n % 4])
        for n in range(count)
    ]


def ids_in(path: Path) -> list[str]:
    return [row["signal_id"] for row in read_csv(path)]


def assert_each_once(directory: Path, metas: Sequence[Any]) -> None:
    """Every signal has one row and exactly its bars, one of them marked as its bar."""
    keys = [signal_key(meta["signal"]["signal_id"]) for meta in metas]
    assert sorted(ids_in(directory / SIGNALS_FILE)) == sorted(keys)
    bars = read_csv(directory / RESULTS_FILE)
    per_signal = Counter(row["signal_id"] for row in bars)
    marked = Counter(row["signal_id"] for row in bars if row["is_signal_bar"] == "true")
    for signal_id, meta in zip(keys, metas, strict=True):
        expected = len(meta["bars"])
        assert per_signal[signal_id] == expected, signal_id
        assert marked[signal_id] == min(expected, 1), signal_id


# --- rows -------------------------------------------------------------------------------------


async def test_each_strategy_envelope_becomes_its_rows_and_the_rest_never_stops_the_export(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """Strategy envelopes among other kinds and hostile entries: every entry acknowledged,
    the hostile ones dead-lettered with their reason, each signal's row equal to its envelope."""
    stream = _stream(prefix)
    metas = mixed_metas(24)
    injected = strategy_meta('=HYPERLINK("http://x")', symbol="-1+2")
    assert injected["llm"] is not None
    injected["llm"]["reasoning"] = "@SUM(1)\n" + "r" * 1_000_000
    injected["signal"]["price"] = -3.5
    hostile: list[bytes | Mapping[str, bytes]] = [
        {"title": b"no data field"},
        b"{not json",
        b"[1, 2, 3]",
        b'{"schema_version": "9", "decision": {"kind": "strategy"}}',
        b'{"schema_version": "1", "decision": {"kind": "strategy"}, "correlation_id": 7}',
        b"\xff\xfe\xfd",
        b"[" * 50_000 + b"]" * 50_000,
    ]
    others = [data(strategy_meta("ins-1"), kind="insight"), data(strategy_meta("p-1"), kind="post")]
    await feed(
        redis,
        stream,
        [*map(data, metas[:12]), *hostile, *others, data(injected), *map(data, metas[12:])],
    )

    stats = await export(redis, stream, tmp_path)

    assert (stats.read, stats.acknowledged, stats.dead_lettered) == (34, 34, 7)
    assert await unacknowledged(redis, stream) == 0
    letters = await redis.xrange(f"{stream}:csv:dlq")
    assert [fields[b"reason"] for _, fields in letters] == [
        b"bad_envelope", b"bad_json", b"bad_envelope", b"unknown_schema", b"bad_envelope",
        b"bad_json", b"bad_json",
    ]  # fmt: skip
    rows = {row["signal_id"]: row for row in read_csv(tmp_path / SIGNALS_FILE)}
    assert len(rows) == 25
    for meta in metas:
        assert_row_is(rows[meta["signal"]["signal_id"]], meta)
    hyperlink = rows['\'=HYPERLINK("http://x")']
    assert (hyperlink["symbol"], hyperlink["price"]) == ("'-1+2", "-3.5")
    assert hyperlink["llm_reasoning"].startswith("'@SUM(1) rrr")
    assert len(hyperlink["llm_reasoning"]) == 2_001
    assert_each_once(tmp_path, [*metas, injected])


def assert_row_is(row: Mapping[str, str], meta: Any) -> None:
    """The row says what the envelope says (numbers as written, missing parts empty)."""
    llm, offline = meta["llm"] or {}, meta["offline"] or {}
    expected = {
        "symbol": meta["signal"]["symbol"],
        "price": "187.25",
        "status": meta["status"],
        "rating": str(meta["rating"] or ""),
        "agreement": meta["agreement"] or "",
        "confidence": str(meta["confidence"]),
        "offline_rating": str(offline.get("rating", "")),
        "llm_rating": str(llm.get("rating", "")),
        "llm_tokens_in": str(llm.get("tokens_in", "")),
        "llm_risks": "; ".join(llm.get("risks", [])),
        "llm_error": meta["llm_error"] or "",
        "processing_ms": str(meta["processing_ms"]),
        "rsi": "31.5",
    }
    assert {name: row[name] for name in expected} == expected


# --- each signal once -------------------------------------------------------------------------


async def test_a_redelivery_and_a_restart_write_nothing_twice(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """The group is rewound to the stream's start (every entry delivered again) and the
    export restarted as another consumer: the files stay byte for byte the same."""
    stream = _stream(prefix)
    metas = mixed_metas(30)
    await feed(redis, stream, [data(meta) for meta in metas])
    await export(redis, stream, tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in (SIGNALS_FILE, RESULTS_FILE)}

    await redis.xgroup_setid(stream, GROUP, "0")
    stats = await export(redis, stream, tmp_path, consumer="c2")

    assert (stats.read, stats.acknowledged) == (30, 30)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert json.loads((tmp_path / SUMMARY_FILE).read_text())["total"] == 30
    assert_each_once(tmp_path, metas)


async def _read_as_dead_consumer(redis: Redis, stream: str, count: int) -> list[ExportRecord]:
    """Entries a consumer took and never acknowledged (it died), with their records."""
    source = StreamSource(redis, GroupRef(stream, GROUP, "dead"), block_ms=10, claim_idle_ms=60_000)
    await source.ensure_group()
    entries = await source.read(count, wait=False)
    assert len(entries) == count
    records = [read_record((entry.fields or {})[b"data"]) for entry in entries]
    return [record for record in records if record is not None]


async def test_a_crash_between_the_write_and_the_acknowledgement_adds_nothing(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """A consumer wrote a batch (another process's files object) and died before it
    acknowledged: the entries, reclaimed by another consumer, are acknowledged without a row."""
    stream = _stream(prefix)
    metas = mixed_metas(12)
    await feed(redis, stream, [data(meta) for meta in metas])
    records = await _read_as_dead_consumer(redis, stream, 8)
    dead = StrategyCsvFiles.open(tmp_path)
    assert dead.write(records, Backlog(None)) == 8
    dead.close()
    await asyncio.sleep(CLAIM_IDLE_MS / 1000)

    stats = await export(redis, stream, tmp_path, consumer="c2", claim_idle_ms=CLAIM_IDLE_MS)

    assert stats.acknowledged == 12
    assert await unacknowledged(redis, stream) == 0
    assert ids_in(tmp_path / SIGNALS_FILE) == [m["signal"]["signal_id"] for m in metas]
    assert_each_once(tmp_path, metas)


async def test_a_batch_cut_short_by_a_crash_is_repaired_and_written_once(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """What a crash mid-batch leaves: the bars of two signals and half a bar row of a third,
    and half of the first signal row; none of it acknowledged. At start the export cuts it
    off; the entries, reclaimed, are written whole."""
    stream = _stream(prefix)
    metas = [strategy_meta(f"s{n}", bars=4) for n in range(5)]
    await feed(redis, stream, [data(meta) for meta in metas])
    await export(redis, stream, tmp_path)  # s0..s4 written and acknowledged
    more = [strategy_meta(f"m{n}", bars=3) for n in range(4)]
    await feed(redis, stream, [data(meta) for meta in more])
    await _read_as_dead_consumer(redis, stream, 4)
    bar_rows = [[f"m{n}", "AAPL", f"2026-03-02T14:2{b}:00+00:00"] for n in (0, 1) for b in range(3)]
    with (tmp_path / RESULTS_FILE).open("ab") as handle:
        handle.write(encode_rows(bar_rows) + b"m2,AAPL,2026-03-02T14:2")
    with (tmp_path / SIGNALS_FILE).open("ab") as handle:
        handle.write(b"m0,AAPL,buy,187.")
    await asyncio.sleep(CLAIM_IDLE_MS / 1000)

    stats = await export(redis, stream, tmp_path, consumer="c2", claim_idle_ms=CLAIM_IDLE_MS)

    assert stats.acknowledged == 4
    for name in (SIGNALS_FILE, RESULTS_FILE):
        content = (tmp_path / name).read_bytes()
        assert content.endswith(b"\r\n")
        assert b"187.m" not in content
        assert b"14:2m" not in content
    assert_each_once(tmp_path, [*metas, *more])
    assert ids_in(tmp_path / SIGNALS_FILE) == [
        *(f"s{n}" for n in range(5)),
        *(f"m{n}" for n in range(4)),
    ]


CHILD = """
import asyncio, pathlib, sys
from redis.asyncio import Redis
from signalsmith.strategy.csv_files import StrategyCsvFiles
from tests.integration.test_strategy_csv import engine_for, run

async def main(url, stream, directory):
    files = StrategyCsvFiles.open(pathlib.Path(directory))
    print("ready", flush=True)
    await run(engine_for(Redis.from_url(url), stream, files, consumer="doomed", read_count=20))

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.slow
async def test_a_sigkill_mid_run_then_a_restart_leaves_each_signal_once(
    redis: Redis, redis_target: RedisTarget, prefix: str, tmp_path: Path
) -> None:
    """A real SIGKILL of a process exporting small batches, wherever it falls; the export
    restarted as another consumer finishes the stream: each signal once, with all its bars."""
    stream, directory = _stream(prefix), tmp_path / "out"
    metas = [strategy_meta(f"k{n:05d}", bars=12) for n in range(1_500)]
    await feed(redis, stream, [data(meta) for meta in metas])
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, redis_target.url, stream, str(directory),
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert await child.stdout.readline() == b"ready\n"
        for _ in range(15_000):
            if (directory / SIGNALS_FILE).stat().st_size > 100_000:
                break
            await asyncio.sleep(0.002)
    finally:
        child.kill()
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(ids_in(directory / SIGNALS_FILE)) < len(metas)  # killed mid-run
    await asyncio.sleep(CLAIM_IDLE_MS / 1000)

    stats = await export(redis, stream, directory, consumer="after", claim_idle_ms=CLAIM_IDLE_MS)

    assert stats.read > 0
    assert await unacknowledged(redis, stream) == 0
    assert_each_once(directory, metas)
    assert json.loads((directory / SUMMARY_FILE).read_text())["total"] == len(metas)


# --- readers ----------------------------------------------------------------------------------


class LoopingReader(threading.Thread):
    """Reads the three files over and over as a reader would (whole lines only: a line without
    its newline is still being written), and records whatever looks broken."""

    def __init__(self, directory: Path) -> None:
        super().__init__(daemon=True)
        self.directory = directory
        self.stop = threading.Event()
        self.reads = 0
        self.sizes: set[int] = set()
        self.broken: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self._check(SIGNALS_FILE, SIGNAL_COLUMNS, "price", "187.25")
            self._check(RESULTS_FILE, RESULT_COLUMNS, "volume", None)
            self._check_summary()
            self.reads += 1

    def _check(self, name: str, columns: Sequence[str], column: str, value: str | None) -> None:
        try:
            content = (self.directory / name).read_bytes()
        except FileNotFoundError:
            return
        whole = content[: content.rfind(b"\n") + 1].decode("utf-8")
        rows = list(csv.reader(io.StringIO(whole, newline="")))
        if name == SIGNALS_FILE:
            self.sizes.add(len(rows))
        if rows and rows[0] != list(columns):
            self.broken.append(f"{name}: header {rows[0][:3]}")
        index = list(columns).index(column)
        for row in rows[1:]:
            if (
                len(row) != len(columns)
                or not row[0].startswith("r")
                or (value and row[index] != value)
            ):
                self.broken.append(f"{name}: {row[:4]}")

    def _check_summary(self) -> None:
        try:
            text = (self.directory / SUMMARY_FILE).read_text()
        except FileNotFoundError:
            return
        try:
            totals = json.loads(text)
        except ValueError:
            self.broken.append(f"summary: {text[:80]!r}")
            return
        if set(totals) != set(EXPECTED):
            self.broken.append(f"summary keys: {sorted(totals)}")


async def test_a_reader_reading_in_a_loop_never_sees_a_broken_row_or_summary(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    stream = _stream(prefix)
    metas = [strategy_meta(f"r{n:05d}", bars=6) for n in range(1_200)]
    for meta in metas:  # line breaks a writer could let into a row
        meta["llm"]["reasoning"] = 'Oversold,\r\nbut "thin"\nvolume.' * 20
    await feed(redis, stream, [data(meta) for meta in metas])
    files = StrategyCsvFiles.open(tmp_path)
    reader = LoopingReader(tmp_path)
    reader.start()
    try:
        await run(engine_for(redis, stream, files, read_count=25))
    finally:
        reader.stop.set()
        reader.join(10)
        files.close()
    assert reader.broken == []
    assert reader.reads >= 10
    assert len(reader.sizes) >= 5  # it read the files at many points of their growth
    assert_each_once(tmp_path, metas)


# --- the summary ------------------------------------------------------------------------------


async def test_the_summary_counts_the_signals_and_the_strategy_streams_backlog(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """Six signals worked out by hand (one of them twice on the stream); the strategy stream
    holds 7 signals its group has not finished: 3 read and not acknowledged, 4 not read."""
    stream, strategy = _stream(prefix), f"{prefix}:strategy"
    for n in range(7):
        await redis.xadd(strategy, {"data": f"signal {n}"})
    await redis.xgroup_create(strategy, f"{prefix}-strategy", id="0")
    await redis.xreadgroup(f"{prefix}-strategy", "worker", {strategy: ">"}, count=3)
    metas = [
        strategy_meta("s1", rating=8, processing_ms=800.0, tokens=(900, 60), cost_usd=0.0012),
        strategy_meta("s2", rating=6, agreement="caution", processing_ms=1200.0,
                      tokens=(1000, 40), cost_usd=0.001),
        strategy_meta("s3", rating=3, agreement="reject", processing_ms=20.0, model=False),
        strategy_meta("s4", "degraded", rating=5, agreement="caution", processing_ms=3000.0),
        strategy_meta("s5", "expired", processing_ms=1.0),
        strategy_meta("s6", rating=8, processing_ms=400.0, tokens=(500, 50), cost_usd=0.0006),
    ]  # fmt: skip
    await feed(redis, stream, [data(meta) for meta in [*metas, metas[1]]])
    backlog = StrategyBacklog(redis, strategy, f"{prefix}-strategy")

    await export(redis, stream, tmp_path, backlog=backlog)

    assert json.loads((tmp_path / SUMMARY_FILE).read_text()) == EXPECTED


async def test_a_strategy_group_that_does_not_exist_is_a_backlog_of_zero_with_a_note(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    stream = _stream(prefix)
    await feed(redis, stream, [data(strategy_meta())])
    backlog = StrategyBacklog(redis, f"{prefix}:strategy", "nobody")
    await export(redis, stream, tmp_path, backlog=backlog)
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert summary["pending"] == 0
    assert "no group nobody" in summary["pending_note"]


# --- wiring -----------------------------------------------------------------------------------


async def test_the_export_built_from_settings_writes_into_the_state_directory(
    redis: Redis, redis_target: RedisTarget, prefix: str, tmp_path: Path
) -> None:
    """``build_csv_export`` with the settings' names: <STATE_DIR>/llm_enhanced/ made 0755,
    group CSV_GROUP, dead letters on <ENHANCED_STREAM>:csv:dlq."""
    settings = Settings(
        state_dir=tmp_path / "state",
        enhanced_stream=_stream(prefix),
        csv_group=f"{prefix}-csv",
        consumer="c1",
        strategy_stream=f"{prefix}:strategy",
        strategy_group=f"{prefix}-strategy",
        block_ms=20,
    )
    await feed(redis, settings.enhanced_stream, [data(strategy_meta()), b"nope"])
    built = await build_csv_export(settings, redis, Metrics())
    try:
        stats = await run(built.engine)
    finally:
        built.files.close()
    directory = tmp_path / "state" / "llm_enhanced"
    assert built.ref == GroupRef(settings.enhanced_stream, f"{prefix}-csv", "c1")
    assert (stats.acknowledged, stats.dead_lettered) == (2, 1)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert ids_in(directory / SIGNALS_FILE) == ["sig-1"]
    assert await redis.xlen(f"{settings.enhanced_stream}:csv:dlq") == 1
    assert len(bars_before(3)) == len(read_csv(directory / RESULTS_FILE))
