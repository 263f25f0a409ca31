"""The CSV export's rows and files, on real files in a temporary directory: an envelope of kind
``strategy`` becomes one ``llm_signals.csv`` row, column by column, and one
``llm_strategy_results.csv`` row per bar, exactly one of them the signal's bar; what is no
envelope is refused with its reason, a hostile one leaves cells empty or cut, never a second
line; each signal is written once (within a batch, across batches, after a reopen); what a
crash leaves (a partial line, the bars of a batch whose signal rows never came) is cut off at
start; a write that fails half-way is undone; the summary counts what the file holds."""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import resource
import stat
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalsmith.errors import ConfigError, PoisonInput, TransientError
from signalsmith.source.redis_streams import Entry
from signalsmith.strategy.contract import SEED_INDICATORS, Agreement, Outcome, StrategyMeta
from signalsmith.strategy.csv_consumer import CsvHandler, read_record
from signalsmith.strategy.csv_files import (
    LOCK_FILE,
    LONG_TEXT_LIMIT,
    RESULT_COLUMNS,
    RESULTS_FILE,
    SIGNAL_COLUMNS,
    SIGNALS_FILE,
    SUMMARY_FILE,
    Backlog,
    ExportRecord,
    StrategyCsvFiles,
    encode_rows,
    signal_cells,
    signal_key,
)

SIGNAL_TIME = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
NOW = SIGNAL_TIME + timedelta(seconds=5)
INDICATORS = {
    "rsi": 31.5,
    "atr": 2.4,
    "sma_20": 186.1,
    "sma_50": 181.0,
    "volume_ratio": 1.8,
    "bb_upper": 191.2,
    "bb_lower": 180.3,
    "bb_middle": 185.75,
    "stochastic_k": 18.0,
    "stochastic_d": 22.5,
}


# --- envelopes as the contract describes them (strategy.contract) -----------------------------


def bars_before(count: int, *, step_s: int = 60, end: datetime = SIGNAL_TIME) -> list[Any]:
    """``count`` bars, one every ``step_s``, the last at ``end``, each with two indicators."""
    bars = []
    for n in range(count):
        time = end - timedelta(seconds=step_s * (count - 1 - n))
        close = 180.0 + n
        bars.append(
            {
                "time": time.isoformat(),
                "open": close - 0.5,
                "high": close + 1.0,
                "low": close - 1.0,
                "close": close,
                "volume": 1000 + n,
                "rsi": 30.0 + n,
                "sma_20": 185.0,
            }
        )
    return bars


def strategy_meta(
    signal_id: str = "sig-1",
    status: Outcome = "ok",
    *,
    symbol: str = "AAPL",
    strategy: str = "ema_cross",
    rating: int = 8,
    agreement: Agreement = "confirm",
    model: bool = True,
    processing_ms: float = 850.0,
    tokens: tuple[int, int] = (900, 60),
    cost_usd: float = 0.0012,
    bars: int = 3,
) -> StrategyMeta:
    """``meta.strategy`` as the pipeline writes it: ``ok`` with ``model`` rated by the model
    (its rating final), ``ok`` without by the rules; ``degraded``: a model gave no valid
    rating; ``expired``: not rated."""
    rated = status != "expired"
    llm = None
    if status == "ok" and model:
        llm = {
            "rating": rating,
            "agreement": agreement,
            "confidence": 0.8,
            "reasoning": "Oversold bounce with a rising 50-day average.",
            "risks": ["earnings next week", "thin volume"],
            "key_factors": ["rsi oversold", "trend up"],
            "model": "groq/llama-3.3-70b",
            "tokens_in": tokens[0],
            "tokens_out": tokens[1],
            "cost_usd": cost_usd,
            "latency_ms": 640.0,
        }
    offline = None
    if rated:
        offline = {
            "score": -0.4 if not llm else 0.4,
            "rating": rating if not llm else 7,
            "agreement": agreement if not llm else "caution",
            "confidence": 0.55,
            "reasons": ["rsi 31.5 < 35: oversold supports buy"],
            "unread": [],
        }
    meta: Any = {
        "signal": {
            "signal_id": signal_id,
            "symbol": symbol,
            "side": "buy",
            "price": 187.25,
            "timestamp": SIGNAL_TIME.isoformat(),
            "strategy": strategy,
            "indicators": dict(INDICATORS),
        },
        "status": status,
        "offline": offline,
        "llm": llm,
        "llm_error": "reply: rating 14 is outside 1..10" if status == "degraded" else None,
        "agreement": agreement if rated else None,
        "rating": rating if rated else None,
        "confidence": (0.8 if llm else 0.55) if rated else 0.0,
        "age_s": 1.5 if rated else 900.0,
        "received_at": (SIGNAL_TIME + timedelta(seconds=1)).isoformat(),
        "processed_at": NOW.isoformat(),
        "processing_ms": processing_ms,
        "attempts": 1,
        "bars": bars_before(bars),
    }
    return meta  # type: ignore[no-any-return]


def strategy_envelope(
    meta: Mapping[str, Any], *, kind: str = "strategy", correlation_id: str | None = None
) -> dict[str, Any]:
    """The v1 envelope around ``meta`` (``meta.strategy``), as the contract describes it."""
    signal = meta.get("signal") if isinstance(meta.get("signal"), dict) else {}
    side = signal.get("side", "buy")
    verdict = ("BUY" if side == "buy" else "SELL") if meta.get("agreement") == "confirm" else "HOLD"
    return {
        "schema_version": "1",
        "arena": "trading_intelligence",
        "correlation_id": signal.get("signal_id", "") if correlation_id is None else correlation_id,
        "arena_id": "signalsmith",
        "published_at": NOW.isoformat(),
        "decision": {
            "kind": kind,
            "status": meta.get("status", "ok"),
            "target": {
                "ticker": signal.get("symbol", ""),
                "trade_date": SIGNAL_TIME.date().isoformat(),
                "exchange": "",
                "asset_class": "equity",
            },
            "synthesis": {
                "verdict": verdict,
                "confidence": 0.8,
                "ensemble_score": 0.4,
                "reasoning": "",
            },
            "agent_signals": [],
            "source_metrics": {
                "total_calls": 1,
                "successful": 1,
                "failed": 0,
                "total_bytes": 0,
                "by_source": {},
            },
            "phase_timings": [],
            "arena_total_seconds": 0.85,
            "source": None,
        },
        "meta": {"strategy": dict(meta)},
    }


def data(meta: Mapping[str, Any], **options: Any) -> bytes:
    """The ``data`` field of an ENHANCED_STREAM entry carrying ``meta``'s envelope."""
    return json.dumps(strategy_envelope(meta, **options)).encode()


def record_of(meta: Mapping[str, Any], **options: Any) -> ExportRecord:
    record = read_record(data(meta, **options))
    assert record is not None
    return record


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as a reader takes them (the header names the columns)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def summary(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / SUMMARY_FILE).read_text())
    return loaded


@pytest.fixture
def files(tmp_path: Path) -> Iterator[StrategyCsvFiles]:
    opened = StrategyCsvFiles.open(tmp_path / "out", clock=lambda: NOW)
    yield opened
    opened.close()


NO_BACKLOG = Backlog(None, "no Redis here")


# --- rows -------------------------------------------------------------------------------------


def test_a_rated_signal_is_one_row_column_by_column(files: StrategyCsvFiles) -> None:
    """Every column of ``llm_signals.csv`` holds what the envelope says; the header comes once."""
    assert files.write([record_of(strategy_meta())], NO_BACKLOG) == 1
    text = (files.directory / SIGNALS_FILE).read_bytes().decode()
    assert text.startswith(",".join(SIGNAL_COLUMNS) + "\r\n")
    assert text.count("signal_id,") == 1
    [row] = read_csv(files.directory / SIGNALS_FILE)
    assert list(row) == list(SIGNAL_COLUMNS)
    assert row == {
        "signal_id": "sig-1",
        "symbol": "AAPL",
        "side": "buy",
        "price": "187.25",
        "signal_time": "2026-03-02T14:30:00+00:00",
        "strategy": "ema_cross",
        **{name: repr(value) for name, value in INDICATORS.items()},
        "status": "ok",
        "agreement": "confirm",
        "rating": "8",
        "confidence": "0.8",
        "verdict": "BUY",
        "offline_score": "0.4",
        "offline_rating": "7",
        "offline_agreement": "caution",
        "llm_rating": "8",
        "llm_agreement": "confirm",
        "llm_confidence": "0.8",
        "llm_reasoning": "Oversold bounce with a rising 50-day average.",
        "llm_risks": "earnings next week; thin volume",
        "llm_key_factors": "rsi oversold; trend up",
        "llm_model": "groq/llama-3.3-70b",
        "llm_tokens_in": "900",
        "llm_tokens_out": "60",
        "llm_cost_usd": "0.0012",
        "llm_latency_ms": "640.0",
        "llm_error": "",
        "age_s": "1.5",
        "processing_ms": "850.0",
        "received_at": "2026-03-02T14:30:01+00:00",
        "processed_at": "2026-03-02T14:30:05+00:00",
        "published_at": "2026-03-02T14:30:05+00:00",
    }


def test_without_a_model_rating_its_columns_are_empty_and_the_error_is_kept(
    files: StrategyCsvFiles,
) -> None:
    """Degraded: the rules' rating stands, the model's columns are empty, llm_error says why;
    expired: no rating at all; an indicator the signal lacks is an empty cell."""
    degraded = strategy_meta("d1", "degraded", rating=5, agreement="caution")
    expired = strategy_meta("e1", "expired")
    del expired["signal"]["indicators"]["atr"]
    files.write([record_of(degraded), record_of(expired)], NO_BACKLOG)
    rows = {row["signal_id"]: row for row in read_csv(files.directory / SIGNALS_FILE)}
    model_columns = [
        name for name in SIGNAL_COLUMNS if name.startswith("llm_") and name != "llm_error"
    ]
    assert {name: rows["d1"][name] for name in model_columns} == dict.fromkeys(model_columns, "")
    assert rows["d1"]["llm_error"] == "reply: rating 14 is outside 1..10"
    assert (rows["d1"]["status"], rows["d1"]["rating"], rows["d1"]["offline_score"]) == (
        "degraded",
        "5",
        "-0.4",
    )
    assert (rows["e1"]["status"], rows["e1"]["rating"], rows["e1"]["offline_rating"]) == (
        "expired",
        "",
        "",
    )
    assert rows["e1"]["atr"] == ""
    assert rows["e1"]["rsi"] == "31.5"


def test_each_bar_is_a_row_and_the_signal_bar_is_the_one_at_the_signal_instant(
    files: StrategyCsvFiles,
) -> None:
    """The bar whose time is the signal's instant (written with another offset) is marked,
    not the last; with no bar at that instant the last is; a signal without bars adds none."""
    at_instant = strategy_meta("mid", bars=0)
    at_instant["bars"] = bars_before(5, end=SIGNAL_TIME + timedelta(minutes=2))
    at_instant["bars"][2]["time"] = "2026-03-02T15:30:00+01:00"  # the signal's instant
    no_match = strategy_meta("last", bars=3)
    no_match["signal"]["timestamp"] = (SIGNAL_TIME + timedelta(seconds=30)).isoformat()
    files.write(
        [record_of(at_instant), record_of(no_match), record_of(strategy_meta("none", bars=0))],
        NO_BACKLOG,
    )
    rows = read_csv(files.directory / RESULTS_FILE)
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert [row["signal_id"] for row in rows] == ["mid"] * 5 + ["last"] * 3
    marks = [row["is_signal_bar"] for row in rows]
    assert marks == ["false", "false", "true", "false", "false", "false", "false", "true"]
    assert rows[2] == {
        "signal_id": "mid",
        "symbol": "AAPL",
        "time": "2026-03-02T15:30:00+01:00",
        "open": "181.5",
        "high": "183.0",
        "low": "181.0",
        "close": "182.0",
        "volume": "1002",
        **dict.fromkeys(SEED_INDICATORS, ""),
        "rsi": "32.0",
        "sma_20": "185.0",
        "is_signal_bar": "true",
        "rating": "8",
        "agreement": "confirm",
        "confidence": "0.8",
        "status": "ok",
    }


def test_formulas_are_defused_text_is_flat_and_cut_but_our_numbers_stay_numbers(
    files: StrategyCsvFiles,
) -> None:
    meta = strategy_meta("=1+1", symbol="@SUM(A1)", strategy="+cmd|' /C calc'!A0")
    llm = meta["llm"]
    assert llm is not None
    llm["reasoning"] = "-2+3\r\nline two\tand =HYPERLINK(x)" + "x" * 5_000
    llm["model"] = "\tmodel"
    meta["llm_error"] = "\t=cmd"
    llm["risks"] = ["=risk", "two\nlines"]
    meta["offline"]["score"] = -0.4  # type: ignore[index]
    files.write([record_of(meta)], NO_BACKLOG)
    raw = (files.directory / SIGNALS_FILE).read_bytes()
    assert raw.count(b"\n") == 2  # the header and one row: no line break inside a cell
    [row] = read_csv(files.directory / SIGNALS_FILE)
    assert row["signal_id"] == "'=1+1"
    assert row["symbol"] == "'@SUM(A1)"
    assert row["strategy"] == "'+cmd|' /C calc'!A0"
    assert row["llm_model"] == " model"
    assert row["llm_error"] == "' =cmd"
    assert row["llm_reasoning"].startswith("'-2+3  line two and =HYPERLINK(x)xx")
    assert len(row["llm_reasoning"]) == LONG_TEXT_LIMIT + 1  # the quote, then the cut text
    assert row["llm_reasoning"].endswith("…")
    assert row["llm_risks"] == "'=risk; two lines"
    assert row["offline_score"] == "-0.4"
    assert files.written("=1+1")


def test_an_id_that_is_long_odd_or_quoted_has_a_key_of_its_own() -> None:
    """Keys are cells: plain ids stay as they are; long, unprintable or quote-led ones get a
    prefix and a hash, so that no two ids share a key."""
    ids = ["sig-1", "=x", "'=x", "a\nb", "a b", "x" * 200, "x" * 199 + "y", "x" * 128, ""]
    keys = [signal_key(signal_id) for signal_id in ids]
    assert len(set(keys)) == len(ids)
    assert keys[:2] == ["sig-1", "'=x"]
    assert keys[7] == "x" * 128
    assert all("\n" not in key and len(key) <= 130 for key in keys)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "bad_envelope"),
        (b'"text"', "bad_envelope"),
        (b'{"schema_version": "2", "decision": {"kind": "strategy"}}', "unknown_schema"),
        (b'{"schema_version": "1", "decision": "strategy"}', "bad_envelope"),
        (b'{"schema_version": "1", "decision": {"kind": "strategy"}}', "bad_envelope"),
        (b"[" * 100_000 + b"]" * 100_000, "bad_json"),
        (b" " * (16 << 20) + b"{}", "oversize"),
        (b"\xff\xfe{}", "bad_json"),
    ],
)
def test_what_is_no_strategy_envelope_is_refused_with_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PoisonInput) as refused:
        read_record(raw)
    assert refused.value.reason == reason


def test_another_kind_is_acknowledged_without_a_row_and_no_data_field_is_refused() -> None:
    handler = CsvHandler()
    insight = data(strategy_meta(), kind="insight")
    assert handler.handle_now(Entry("1-0", {b"data": insight})).parts == ()
    commit = handler.handle_now(Entry("2-0", {b"data": data(strategy_meta())}))
    assert [part.signal_id for part in commit.parts if isinstance(part, ExportRecord)] == ["sig-1"]
    with pytest.raises(PoisonInput, match="no 'data' field"):
        handler.handle_now(Entry("3-0", {b"title": b"x"}))


def test_the_signal_id_falls_back_to_the_signal_when_the_envelope_has_none() -> None:
    assert record_of(strategy_meta("from-signal"), correlation_id="").signal_id == "from-signal"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = ("signal", "status", "offline", "llm", "llm_error", "agreement", "rating", "confidence")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    replaced=st.dictionaries(
        st.sampled_from([*_FIELDS, "bars", "processing_ms"]), _JSON, max_size=5
    ),
    text=st.text(max_size=300),
)
def test_a_hostile_meta_still_makes_rows_of_one_line_each(
    replaced: dict[str, Any], text: str
) -> None:
    """Whatever ``meta.strategy`` holds instead, the record is made (unreadable pieces empty),
    and each row is one CSV line of the header's width."""
    meta: Any = copy.deepcopy(strategy_meta())
    meta.update(replaced)
    if isinstance(meta.get("llm"), dict):
        meta["llm"]["reasoning"] = text
    meta_signal = meta.get("signal")
    if isinstance(meta_signal, dict):
        meta_signal["strategy"] = text
    record = read_record(json.dumps(strategy_envelope(meta, correlation_id="x" + text)).encode())
    assert record is not None
    line = encode_rows([signal_cells(signal_key(record.signal_id), record)])
    assert line.count(b"\n") == 1
    assert line.endswith(b"\r\n")
    [parsed] = list(csv.reader(io.StringIO(line.decode())))
    assert len(parsed) == len(SIGNAL_COLUMNS)
    assert parsed[SIGNAL_COLUMNS.index("status")] in {"ok", "degraded", "expired"}


# --- the files --------------------------------------------------------------------------------


def _ids(path: Path) -> list[str]:
    return [row["signal_id"] for row in read_csv(path)]


def test_each_signal_is_written_once_within_a_batch_across_batches_and_after_a_reopen(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "out"
    first = StrategyCsvFiles.open(directory)
    try:
        batch = [
            record_of(strategy_meta("a")),
            record_of(strategy_meta("b")),
            record_of(strategy_meta("a")),
        ]
        assert first.write(batch, NO_BACKLOG) == 2
        assert (
            first.write([record_of(strategy_meta("b")), record_of(strategy_meta("c"))], NO_BACKLOG)
            == 1
        )
    finally:
        first.close()
    again = StrategyCsvFiles.open(directory)
    try:
        assert (
            again.write([record_of(strategy_meta(n)) for n in ("a", "b", "c", "d")], NO_BACKLOG)
            == 1
        )
    finally:
        again.close()
    assert _ids(directory / SIGNALS_FILE) == ["a", "b", "c", "d"]
    assert _ids(directory / RESULTS_FILE) == [n for n in "abcd" for _ in range(3)]
    assert (directory / SIGNALS_FILE).read_bytes().count(b"signal_id,symbol") == 1


def test_two_writers_on_one_directory_write_each_signal_once(tmp_path: Path) -> None:
    """A second writer (another process's) learns the rows the first appended when it takes
    the lock: a signal redelivered to it is not written again."""
    one = StrategyCsvFiles.open(tmp_path)
    two = StrategyCsvFiles.open(tmp_path)
    try:
        assert one.write([record_of(strategy_meta("a"))], NO_BACKLOG) == 1
        assert (
            two.write([record_of(strategy_meta("a")), record_of(strategy_meta("b"))], NO_BACKLOG)
            == 1
        )
        assert one.write([record_of(strategy_meta("b"))], NO_BACKLOG) == 0
    finally:
        one.close()
        two.close()
    assert _ids(tmp_path / SIGNALS_FILE) == ["a", "b"]
    assert summary(tmp_path)["total"] == 2


def test_what_a_crash_leaves_is_cut_off_at_start(tmp_path: Path) -> None:
    """A batch cut short: half a signal row, and the bars of signals whose rows never came
    (many chunks of them, the last half a line). Reopened, both files end with their last
    whole signal; the unfinished signals, delivered again, are written whole."""
    files = StrategyCsvFiles.open(tmp_path)
    files.write([record_of(strategy_meta("done", bars=2_000))], NO_BACKLOG)
    files.close()
    orphan = ExportRecord("lost", {}, [{"time": "t", "close": 1.0}] * 2)
    with (tmp_path / RESULTS_FILE).open("ab") as handle:
        handle.write(encode_rows([["lost", "AAPL", "t"]] * 30_000) + b"cut,AAP")
    with (tmp_path / SIGNALS_FILE).open("ab") as handle:
        handle.write(b"cut,AAPL,buy,18")
    files = StrategyCsvFiles.open(tmp_path)
    try:
        for name in (SIGNALS_FILE, RESULTS_FILE):
            assert (tmp_path / name).read_bytes().endswith(b"\r\n")
        assert _ids(tmp_path / SIGNALS_FILE) == ["done"]
        assert _ids(tmp_path / RESULTS_FILE) == ["done"] * 2_000
        assert files.write([record_of(strategy_meta("cut")), orphan], NO_BACKLOG) == 2
    finally:
        files.close()
    assert _ids(tmp_path / SIGNALS_FILE) == ["done", "cut", "lost"]
    assert _ids(tmp_path / RESULTS_FILE) == ["done"] * 2_000 + ["cut"] * 3 + ["lost"] * 2


def test_a_file_of_other_columns_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / SIGNALS_FILE).write_text("id,price\r\n1,2\r\n")
    with pytest.raises(ConfigError, match=r"CSV_OUTPUT_DIR.*other columns"):
        StrategyCsvFiles.open(tmp_path)
    assert (tmp_path / SIGNALS_FILE).read_bytes() == b"id,price\r\n1,2\r\n"


def test_the_directory_and_files_are_made_readable_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        files = StrategyCsvFiles.open(tmp_path / "a" / "b")
        files.write([record_of(strategy_meta())], NO_BACKLOG)
        files.close()
    finally:
        os.umask(previous)
    for directory in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    for name in (SIGNALS_FILE, RESULTS_FILE, SUMMARY_FILE, LOCK_FILE):
        assert stat.S_IMODE((tmp_path / "a" / "b" / name).stat().st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == sorted(
        [SIGNALS_FILE, RESULTS_FILE, SUMMARY_FILE, LOCK_FILE]
    )


def test_an_unwritable_directory_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="CSV_OUTPUT_DIR"):
        StrategyCsvFiles.open(tmp_path / "file" / "out")


@contextlib.contextmanager
def _limited(size: int) -> Iterator[None]:
    """Writes past ``size`` bytes of any file fail (EFBIG; Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_write_that_fails_half_way_is_undone_and_can_be_done_again(tmp_path: Path) -> None:
    """The file system takes the batch's bars and part of its signal rows, then no more: both
    files are cut back to where they were, the error is transient, and the batch written
    later is there once."""
    files = StrategyCsvFiles.open(tmp_path)
    try:
        files.write([record_of(strategy_meta("a", bars=0))], NO_BACKLOG)
        before = {name: (tmp_path / name).read_bytes() for name in (SIGNALS_FILE, RESULTS_FILE)}
        batch = [record_of(strategy_meta(f"b{n}", bars=1)) for n in range(5)]
        limit = len(before[SIGNALS_FILE]) + 40  # the bars fit, the signal rows do not
        assert len(before[RESULTS_FILE]) + 5 * 120 < limit
        with pytest.raises(TransientError, match="CSV files"), _limited(limit):
            files.write(batch, NO_BACKLOG)
        assert {name: (tmp_path / name).read_bytes() for name in before} == before
        assert files.write(batch, NO_BACKLOG) == 5
    finally:
        files.close()
    assert _ids(tmp_path / SIGNALS_FILE) == ["a", "b0", "b1", "b2", "b3", "b4"]
    assert _ids(tmp_path / RESULTS_FILE) == ["b0", "b1", "b2", "b3", "b4"]


def test_a_file_moved_away_is_started_again(files: StrategyCsvFiles) -> None:
    """The operator rotates llm_signals.csv: the next batch starts a new one, with its header,
    and the summary counts what the new file holds."""
    files.write([record_of(strategy_meta("a"))], NO_BACKLOG)
    (files.directory / SIGNALS_FILE).rename(files.directory / "old.csv")
    files.write([record_of(strategy_meta("b"))], NO_BACKLOG)
    assert _ids(files.directory / SIGNALS_FILE) == ["b"]
    assert summary(files.directory)["total"] == 1


# --- the summary ------------------------------------------------------------------------------


def hand_set() -> list[ExportRecord]:
    """Six signals whose summary is worked out by hand below."""
    metas = [
        strategy_meta("s1", rating=8, processing_ms=800.0, tokens=(900, 60), cost_usd=0.0012),
        strategy_meta(
            "s2",
            rating=6,
            agreement="caution",
            processing_ms=1200.0,
            tokens=(1000, 40),
            cost_usd=0.001,
        ),
        strategy_meta("s3", rating=3, agreement="reject", processing_ms=20.0, model=False),
        strategy_meta("s4", "degraded", rating=5, agreement="caution", processing_ms=3000.0),
        strategy_meta("s5", "expired", processing_ms=1.0),
        strategy_meta("s6", rating=8, processing_ms=400.0, tokens=(500, 50), cost_usd=0.0006),
    ]
    return [record_of(meta) for meta in metas]


EXPECTED = {
    "processed": 4,
    "pending": 7,
    "failed": 1,
    "expired": 1,
    "total": 6,
    "avg_processing_ms": 605.0,  # (800 + 1200 + 20 + 400) / 4
    "rating_distribution": {
        "1": 0,
        "2": 0,
        "3": 1,
        "4": 0,
        "5": 1,
        "6": 1,
        "7": 0,
        "8": 2,
        "9": 0,
        "10": 0,
    },
    "llm_rated": 3,
    "tokens_in": 2400,
    "tokens_out": 150,
    "cost_usd": 0.0028,
    "pending_note": None,
    "updated_at": NOW.isoformat(),
}


def test_the_summary_counts_what_the_file_holds_and_survives_a_reopen(tmp_path: Path) -> None:
    """Written in two batches (one signal twice), then recounted from the file at start."""
    records = hand_set()
    files = StrategyCsvFiles.open(tmp_path, clock=lambda: NOW)
    try:
        files.write(records[:4], Backlog(3))
        files.write(records[2:], Backlog(7))
    finally:
        files.close()
    assert summary(tmp_path) == EXPECTED
    reopened = StrategyCsvFiles.open(tmp_path, clock=lambda: NOW)
    try:
        reopened.write(records, Backlog(7))
    finally:
        reopened.close()
    assert summary(tmp_path) == EXPECTED
    assert list(tmp_path.glob(".*.tmp")) == []


def test_an_unknown_backlog_is_zero_with_a_note(files: StrategyCsvFiles) -> None:
    assert summary(files.directory)["pending_note"] == "not read yet: read after each batch"
    files.write([], Backlog(None, "no strategy group yet"))
    assert (summary(files.directory)["pending"], summary(files.directory)["pending_note"]) == (
        0,
        "no strategy group yet",
    )
