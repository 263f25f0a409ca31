"""Candle files: CSV and Parquet read into raw rows; every broken file is refused with its name
and its problem, and nothing else escapes, whatever the bytes."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signalsmith.errors import ConfigError, PoisonInput
from signalsmith.market.candle_files import FileCandles, FileRead, read_candle_file

HEADER = "time,open,high,low,close,volume\n"
T0 = 1_700_000_000  # a whole minute


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_text(times: list[object]) -> str:
    """A CSV file's text: one candle per time, prices rising by one a row."""
    return HEADER + "".join(
        f"{moment},{100 + index},{102 + index},{99 + index},{101 + index},{5 + index}\n"
        for index, moment in enumerate(times)
    )


def refusal(path: Path, **kwargs: int) -> str:
    with pytest.raises(PoisonInput) as refused:
        read_candle_file(path, **kwargs)
    assert refused.value.reason == "bad_candle_file"
    assert str(path) in str(refused.value)
    return refused.value.detail


def test_a_csv_file_becomes_rows_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path / "BTC-USD.csv", csv_text([T0, T0 + 60, T0 + 120]))
    read = read_candle_file(path)
    assert read == FileRead(
        [
            (T0, 100.0, 102.0, 99.0, 101.0, 5.0),
            (T0 + 60, 101.0, 103.0, 100.0, 102.0, 6.0),
            (T0 + 120, 102.0, 104.0, 101.0, 103.0, 7.0),
        ]
    )


def test_columns_are_found_by_name_in_any_case_and_order(tmp_path: Path) -> None:
    text = "Volume,Close,symbol,Low,High,Open,Timestamp\n7,101,BTC,99,102,100,1700000000\n"
    path = write(tmp_path / "x.csv", "\ufeff" + text)  # a spreadsheet's byte-order mark too
    assert read_candle_file(path).rows == [(T0, 100.0, 102.0, 99.0, 101.0, 7.0)]


def test_millisecond_times_become_seconds(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", csv_text([T0 * 1000, (T0 + 60) * 1000]))
    assert [row[0] for row in read_candle_file(path).rows] == [T0, T0 + 60]


def test_iso_times_become_epoch_seconds_utc_unless_they_say(tmp_path: Path) -> None:
    times: list[object] = [
        "2023-11-14T22:13:20Z",
        "2023-11-14 22:14:20",
        "2023-11-14T23:15:20+01:00",
    ]
    path = write(tmp_path / "x.csv", csv_text(times))
    assert [row[0] for row in read_candle_file(path).rows] == [T0, T0 + 60, T0 + 120]


def test_a_parquet_file_becomes_rows(tmp_path: Path) -> None:
    moments = [datetime.fromtimestamp(T0 + 60 * index, tz=UTC) for index in range(3)]
    table = pa.table(
        {
            "timestamp": pa.array(moments, type=pa.timestamp("ns", tz="UTC")),
            "Open": [100.0, 101.0, 102.0],
            "high": [102, 103, 104],
            "low": ["99", "100", "101"],
            "close": [101.0, 102.0, 103.0],
            "volume": [5.0, 6.0, None],
        }
    )
    path = tmp_path / "ETH-USD.parquet"
    pq.write_table(table, path)
    read = read_candle_file(path)
    assert read.rows == [
        (T0, 100.0, 102.0, 99.0, 101.0, 5.0),
        (T0 + 60, 101.0, 103.0, 100.0, 102.0, 6.0),
    ]
    assert read.dropped == 1
    assert read.first_problem == "row 3: no volume value"


def test_parquet_epoch_millisecond_times_become_seconds(tmp_path: Path) -> None:
    table = pa.table(
        {name: [1.0] for name in ("open", "high", "low", "close", "volume")}
        | {"time": pa.array([T0 * 1000], type=pa.int64())}
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path)
    assert read_candle_file(path).rows == [(T0, 1.0, 1.0, 1.0, 1.0, 1.0)]


def test_a_missing_file_is_refused_by_name(tmp_path: Path) -> None:
    assert "does not exist" in refusal(tmp_path / "nowhere.csv")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "BTC-USD.csv").mkdir()
    assert "is a directory" in refusal(tmp_path / "BTC-USD.csv")


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "time,open,high,low,close\n1700000000,1,2,1,2\n")
    assert "no column volume" in refusal(path)


def test_an_empty_file_is_refused_and_a_header_alone_has_no_rows(tmp_path: Path) -> None:
    assert "is empty" in refusal(write(tmp_path / "empty.csv", "\n\n"))
    assert read_candle_file(write(tmp_path / "header.csv", HEADER)) == FileRead([])


def test_rows_with_a_non_numeric_cell_are_dropped_and_counted(tmp_path: Path) -> None:
    text = csv_text([T0, T0 + 60]) + f"{T0 + 120},n/a,1,1,1,1\n{T0 + 180},1,1,1\n\n"
    read = read_candle_file(write(tmp_path / "x.csv", text))
    assert len(read.rows) == 2
    assert read.dropped == 2
    assert read.first_problem == "line 4: open is 'n/a', not a number"


def test_a_file_whose_every_row_is_unreadable_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", HEADER + "yesterday,1,2,1,2,3\nsoon,1,2,1,2,3\n")
    detail = refusal(path)
    assert "none of its 2 rows is readable" in detail
    assert "time is 'yesterday', not a time" in detail


def test_a_file_over_the_size_bound_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", csv_text(list(range(T0, T0 + 60 * 100, 60))))
    assert "over the limit of 1000" in refusal(path, max_bytes=1_000)


def test_a_file_that_is_not_utf8_or_not_parquet_is_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(HEADER.encode() + "1700000000,1,2,1,2,3 \xe9\n".encode("latin-1"))
    assert "not UTF-8" in refusal(latin)
    fake = write(tmp_path / "fake.parquet", HEADER)
    assert "not a readable Parquet file" in refusal(fake)


def test_the_bundled_demo_candles_read_cleanly() -> None:
    import signalsmith

    path = Path(signalsmith.__file__).parent / "data" / "candles" / "BTC-USD.csv"
    read = read_candle_file(path)
    assert read.dropped == 0
    assert len(read.rows) > 100


# The source over a file or a directory


async def test_a_directory_serves_each_product_its_own_newest_rows_by_time(tmp_path: Path) -> None:
    write(tmp_path / "BTC-USD.csv", csv_text([T0 + 120, T0, T0 + 60, T0 + 180]))
    table = pa.table({name: [1.0, 2.0] for name in ("open", "high", "low", "close", "volume")})
    pq.write_table(
        table.append_column("time", pa.array([T0, T0 + 60])), tmp_path / "SOL-USD.parquet"
    )
    source = FileCandles(tmp_path)
    assert [row[0] for row in await source.fetch("BTC-USD", "1m", 3)] == [
        T0 + 60,
        T0 + 120,
        T0 + 180,
    ]
    assert [row[0] for row in await source.fetch("SOL-USD", "1m", 10)] == [T0, T0 + 60]
    assert await source.fetch("ETH-USD", "1m", 10) == []
    assert await source.fetch("../BTC-USD", "1m", 10) == []


async def test_a_single_file_serves_only_the_product_it_is_named_after(tmp_path: Path) -> None:
    source = FileCandles(write(tmp_path / "btc-usd.csv", csv_text([T0, T0 + 60])))
    assert len(await source.fetch("BTC-USD", "1h", 10)) == 2
    assert await source.fetch("ETH-USD", "1h", 10) == []


async def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path / "BTC-USD.csv", csv_text([T0]))
    source = FileCandles(tmp_path)
    assert len(await source.fetch("BTC-USD", "1m", 10)) == 1
    write(path, csv_text([T0, T0 + 60]))
    os.utime(path, ns=(1, 2))  # a different modification time even on a coarse clock
    assert len(await source.fetch("BTC-USD", "1m", 10)) == 2


async def test_a_broken_file_found_at_request_time_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "BTC-USD.csv", "when,price\n1,2\n")
    with pytest.raises(PoisonInput) as refused:
        await FileCandles(tmp_path).fetch("BTC-USD", "1m", 10)
    assert refused.value.reason == "bad_candle_file"


def test_an_unusable_configured_path_stops_start_up(tmp_path: Path) -> None:
    for path, problem in [
        (tmp_path / "missing.csv", "neither a file nor a directory"),
        (write(tmp_path / "BTC-USD.txt", HEADER), "ends in .csv or .parquet"),
        (write(tmp_path / "candles export.csv", HEADER), "name the file after its product"),
    ]:
        with pytest.raises(ConfigError) as stopped:
            FileCandles(path)
        assert stopped.value.setting == "MARKET_CANDLES"
        assert problem in stopped.value.problem


# Fuzz: whatever a file holds, the reader returns rows or refuses it, and nothing else.

CELLS = st.one_of(
    st.text(max_size=12),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "1e999", "-0", "2023-11-14T22:13:20Z", "0x10", "1_0", '"', ",,"]),
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(data=st.binary(max_size=2_000), suffix=st.sampled_from([".csv", ".parquet", ".txt"]))
def test_random_bytes_give_rows_or_the_clear_refusal(
    tmp_path: Path, data: bytes, suffix: str
) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    read_or_refuse(path)


@FUZZ
@given(rows=st.lists(st.lists(CELLS, max_size=8), max_size=20), header=st.booleans())
def test_garbage_csv_gives_rows_or_the_clear_refusal(
    tmp_path: Path, rows: list[list[str]], header: bool
) -> None:
    path = tmp_path / "fuzz.csv"
    body = "\n".join(",".join(cells) for cells in rows)
    path.write_text((HEADER if header else "") + body, encoding="utf-8")
    read = read_or_refuse(path)
    if read is not None:
        assert all(
            len(row) == 6 and all(isinstance(value, float) for value in row) for row in read.rows
        )


def read_or_refuse(path: Path) -> FileRead | None:
    try:
        return read_candle_file(path)
    except PoisonInput as exc:
        refused = exc
    assert refused.reason == "bad_candle_file"
    assert str(path) in refused.detail
    return None
