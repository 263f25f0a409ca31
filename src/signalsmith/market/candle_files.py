"""Candles from files: one CSV or Parquet file named after its product (``BTC-USD.csv``), or a
directory holding ``<PRODUCT>.csv`` / ``<PRODUCT>.parquet``; the file holds what it holds, so
the granularity asked for is not checked here (validation notes candles closer than it).

A row with a cell that is not a number is dropped and counted (an export with a stray blank
line or a "n/a" should not hide the thousand good rows after it); a file that cannot be read,
lacks a column or has no readable row at all is refused, naming the file and the problem.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
import os
import re
import stat
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import structlog

from signalsmith.errors import ConfigError, PoisonInput
from signalsmith.market.candles import ALIASES, FIELDS
from signalsmith.market.requests import MAX_LOOKBACK
from signalsmith.market.sources import (
    CandleRow,
    check_lookback,
    parse_number,
    parse_time,
    row_from_values,
)

log = structlog.get_logger("signalsmith.market")

MAX_FILE_BYTES: Final = 50 * 1024 * 1024
MAX_PARQUET_ROWS: Final = 2_000_000  # Parquet compresses well: its byte size bounds little
MAX_CACHED_FILES: Final = 64
SUFFIXES: Final = (".csv", ".parquet")
PRODUCT_NAME: Final = re.compile(r"[A-Z0-9]{1,15}(?:-[A-Z0-9]{1,15})?")  # no path can hide in it
# The names a header may give each column (any case); exports often call the time "date".
COLUMN_NAMES: Final = {**ALIASES, "time": (*ALIASES["time"], "date", "datetime")}
_SHOWN: Final = 200  # characters of a header or a cell quoted in an error
_PYARROW_HINT: Final = "pip install 'signalsmith[parquet]'"


@dataclass(frozen=True, slots=True)
class FileRead:
    """A file's rows in file order, how many rows were dropped, and the first drop's reason."""

    rows: list[CandleRow]
    dropped: int = 0
    first_problem: str = ""


def read_candle_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> FileRead:
    """Every readable row of a ``.parquet`` file, or of a CSV file (any other suffix) whose
    header names time, open, high, low, close and volume; the time as epoch seconds or
    milliseconds, or as ISO-8601 text. Raises ``PoisonInput("bad_candle_file", "<path>: ...")``
    when the file is missing, not a regular file, over ``max_bytes``, unreadable, lacks a
    column, or holds rows of which none is readable."""
    _check_file(path, max_bytes)
    parquet = path.suffix.lower() == ".parquet"
    read = _read_parquet(path) if parquet else _read_csv(path, max_bytes)
    if read.dropped and not read.rows:
        raise _bad(path, f"none of its {read.dropped} rows is readable ({read.first_problem})")
    return read


class FileCandles:
    """A ``CandleSource`` over a candle file or a directory of them (see the module docstring).

    Each file is parsed once per change (its modification time and size), off the event loop;
    only its newest ``max_lookback`` rows are kept. Raises ``ConfigError`` at construction when
    the path is not usable, and ``PoisonInput("bad_candle_file")`` when a file turns out broken.
    """

    name: Final = "file"

    def __init__(
        self, path: Path, *, max_bytes: int = MAX_FILE_BYTES, max_lookback: int = MAX_LOOKBACK
    ) -> None:
        self.path = path
        self._directory = path.is_dir()
        if not self._directory:
            _check_configured_file(path)
        self._max_bytes = max_bytes
        self._max_lookback = max_lookback
        self._parsed: dict[Path, tuple[tuple[int, int], list[CandleRow]]] = {}
        self._lock = threading.Lock()  # reads run in worker threads, several at once

    async def fetch(self, product_id: str, granularity: str, lookback: int) -> list[CandleRow]:
        """The newest ``lookback`` rows of the product's file by time, oldest first; no rows
        when there is no file for the product."""
        check_lookback(lookback, self._max_lookback)
        rows = await asyncio.to_thread(self._rows_of, product_id)  # file I/O off the event loop
        return rows[-lookback:]

    async def aclose(self) -> None:
        """Nothing to release: each read opens and closes its file."""

    def file_for(self, product_id: str) -> Path | None:
        """The file that holds ``product_id``'s candles, if any."""
        if not PRODUCT_NAME.fullmatch(product_id):
            return None
        if not self._directory:
            return self.path if self.path.stem.upper() == product_id else None
        for suffix in SUFFIXES:
            candidate = self.path / f"{product_id}{suffix}"
            if candidate.exists():
                return candidate
        return None

    def _rows_of(self, product_id: str) -> list[CandleRow]:
        path = self.file_for(product_id)
        return [] if path is None else self._newest(path)

    def _newest(self, path: Path) -> list[CandleRow]:
        """The file's newest rows by time; parsed again only when the file changed."""
        try:
            info = path.stat()
        except OSError as exc:
            raise _bad(path, _os_problem(exc)) from None
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            kept = self._parsed.get(path)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        read = read_candle_file(path, max_bytes=self._max_bytes)
        if read.dropped:
            log.warning(
                "candle file rows dropped",
                path=str(path),
                dropped=read.dropped,
                first=read.first_problem,
            )
        rows = sorted(read.rows, key=_time)[-self._max_lookback :]
        with self._lock:
            if len(self._parsed) >= MAX_CACHED_FILES:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[path] = (stamp, rows)
        return rows


def _time(row: CandleRow) -> float:
    return row[0]


def _check_configured_file(path: Path) -> None:
    """A file given as the candle source must exist, be CSV or Parquet, and say its product."""
    if not path.is_file():
        raise ConfigError("MARKET_CANDLES", f"{path} is neither a file nor a directory")
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError("MARKET_CANDLES", f"{path}: a candle file ends in .csv or .parquet")
    if not PRODUCT_NAME.fullmatch(path.stem.upper()):
        raise ConfigError(
            "MARKET_CANDLES", f"{path}: name the file after its product, such as BTC-USD.csv"
        )
    if path.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ConfigError("MARKET_CANDLES", f"{path}: Parquet needs pyarrow ({_PYARROW_HINT})")


def _check_file(path: Path, max_bytes: int) -> None:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _bad(path, _os_problem(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise _bad(path, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise _bad(path, "is not a regular file")  # a FIFO or a device would block the read
    if info.st_size > max_bytes:
        raise _bad(path, f"is {info.st_size} bytes, over the limit of {max_bytes}")


def _os_problem(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    return f"cannot be read: {exc.strerror or exc}"


def _bad(path: Path, problem: str) -> PoisonInput:
    return PoisonInput("bad_candle_file", f"{path}: {problem}")


# CSV


def _read_csv(path: Path, max_bytes: int) -> FileRead:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise _bad(path, _os_problem(exc)) from None
    if len(data) > max_bytes:  # it grew since it was measured
        raise _bad(path, f"is over the limit of {max_bytes} bytes")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is how spreadsheets say UTF-8
    except UnicodeDecodeError as exc:
        raise _bad(path, f"is not UTF-8 text (byte {exc.start})") from None
    try:
        return _csv_rows(path, csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise _bad(path, f"is not CSV: {exc}") from None


def _csv_rows(path: Path, reader: Iterable[list[str]]) -> FileRead:
    lines = iter(reader)
    header = next((row for row in lines if any(cell.strip() for cell in row)), None)
    if header is None:
        raise _bad(path, "is empty; expected a header such as time,open,high,low,close,volume")
    columns = _columns(path, header)
    rows: list[CandleRow] = []
    drops = _Drops()
    for number, cells in enumerate(lines, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        picked = [cells[index] if index < len(cells) else None for index in columns]
        row = row_from_values(picked)
        if row is None:
            drops.add(f"line {number}", picked)
        else:
            rows.append(row)
    return FileRead(rows, drops.count, drops.first)


def _columns(path: Path, header: Sequence[str]) -> list[int]:
    """The index of each field's column, in ``FIELDS`` order."""
    names = [cell.strip().lower() for cell in header]
    found: list[int] = []
    missing: list[str] = []
    for field in FIELDS:
        index = next((names.index(name) for name in COLUMN_NAMES[field] if name in names), None)
        if index is None:
            missing.append(field)
        else:
            found.append(index)
    if missing:
        shown = ",".join(header)[:_SHOWN]
        raise _bad(path, f"has no column {', '.join(missing)} (its header: {shown!r})")
    return found


class _Drops:
    """Counts dropped rows; the first one's reason is worded, the rest only counted."""

    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def add(self, where: str, values: Sequence[object]) -> None:
        if not self.count:
            self.first = f"{where}: {_unreadable(values)}"
        self.count += 1


def _unreadable(values: Sequence[object]) -> str:
    """Which of a dropped row's values is unreadable, in words."""
    for field, value in zip(FIELDS, values, strict=True):
        if value is None:
            return f"no {field} value"
        kind, parse = ("time", parse_time) if field == "time" else ("number", parse_number)
        if parse(value) is None:
            return f"{field} is {str(value)[:_SHOWN]!r}, not a {kind}"
    return "unreadable"


# Parquet


def _pyarrow(path: Path) -> tuple[ModuleType, ModuleType]:
    """pyarrow and pyarrow.parquet, imported only when a Parquet file is read (it is large)."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise _bad(path, f"reading Parquet needs pyarrow ({_PYARROW_HINT})") from None
    return pyarrow, pyarrow.parquet


def _read_parquet(path: Path) -> FileRead:
    pyarrow, parquet = _pyarrow(path)
    try:
        metadata = parquet.read_metadata(path)
        if metadata.num_rows > MAX_PARQUET_ROWS:
            raise _bad(
                path, f"holds {metadata.num_rows} rows, over the limit of {MAX_PARQUET_ROWS}"
            )
        names = list(metadata.schema.to_arrow_schema().names)
        columns = [names[index] for index in _columns(path, names)]
        table = parquet.read_table(path, columns=columns)
        values = [_column_values(pyarrow, table.column(name)) for name in columns]
    except (pyarrow.ArrowException, OSError, ValueError, TypeError) as exc:
        raise _bad(path, f"is not a readable Parquet file: {str(exc)[:_SHOWN]}") from None
    rows: list[CandleRow] = []
    drops = _Drops()
    for number, picked in enumerate(zip(*values, strict=True), start=1):
        row = row_from_values(picked)
        if row is None:
            drops.add(f"row {number}", picked)
        else:
            rows.append(row)
    return FileRead(rows, drops.count, drops.first)


def _column_values(pyarrow: ModuleType, column: Any) -> list[object]:
    """A column as Python values; timestamps at microseconds, which ``datetime`` can hold."""
    if pyarrow.types.is_timestamp(column.type):
        column = column.cast(pyarrow.timestamp("us", tz=column.type.tz), safe=False)
    values: list[object] = column.to_pylist()
    return values
