"""Seed 002's three files in one directory, kept by the CSV export: ``llm_signals.csv`` (a row
per signal), ``llm_strategy_results.csv`` (a row per bar sent with a signal) and
``llm_processing_summary.json`` (the counts over every row written), each signal once.

Each signal once, across crashes, redeliveries and processes sharing the directory:

* every batch is written under an exclusive lock (``flock`` on ``.llm_enhanced.lock``): first
  the new signals' bars (one write, fsync), then their signal rows (one write, fsync), then
  the summary (a temporary file, fsync, ``os.replace``); the committer acknowledges after;
* a signal's row in ``llm_signals.csv`` is the mark that it is written: its id is looked up
  there before writing (the ids are read at start and kept, with the running totals, in step
  with the file: rows another process appended are read when the lock is taken);
* under the lock the files are repaired before anything is added: a last line without its
  newline (a write cut short) is cut off, and so are the bar rows at the end of
  ``llm_strategy_results.csv`` whose signal has no row yet (a batch whose signal rows never
  made it); those entries were not acknowledged, so they come again and are written whole.

Every row ends with CRLF and holds no line break (text is flattened), so a row is one line: a
reader takes the lines that end in a newline and never sees half a row. A text cell that a
spreadsheet would run as a formula gets a leading ``'`` (the API's rule); numbers are ours.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import itertools
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import structlog

from signalsmith.errors import ConfigError, TransientError
from signalsmith.normalize import utc_now
from signalsmith.strategy.contract import SEED_INDICATORS

log = structlog.get_logger("signalsmith.csv")

SIGNALS_FILE: Final = "llm_signals.csv"
RESULTS_FILE: Final = "llm_strategy_results.csv"
SUMMARY_FILE: Final = "llm_processing_summary.json"
LOCK_FILE: Final = ".llm_enhanced.lock"
FILE_MODE: Final = 0o644
DIR_MODE: Final = 0o755
LOCK_WAIT_S: Final = 10.0
TEXT_LIMIT: Final = 256  # characters of a text cell
LONG_TEXT_LIMIT: Final = 2_000  # the model's reasoning, risks, key factors; the error
MAX_ID_CHARS: Final = 128  # a longer (or unprintable) signal id is written as prefix~hash
_CHUNK: Final = 1 << 16
_INT_LIMIT: Final = 2**63
# A spreadsheet reads a cell starting with one of these as a formula (query.render's rule).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")

MODEL_COLUMNS: Final = (
    "llm_rating",
    "llm_agreement",
    "llm_confidence",
    "llm_reasoning",
    "llm_risks",
    "llm_key_factors",
    "llm_model",
    "llm_tokens_in",
    "llm_tokens_out",
    "llm_cost_usd",
    "llm_latency_ms",
)
SIGNAL_COLUMNS: Final = (
    "signal_id",
    "symbol",
    "side",
    "price",
    "signal_time",
    "strategy",
    *SEED_INDICATORS,
    "status",
    "agreement",
    "rating",
    "confidence",
    "verdict",
    "offline_score",
    "offline_rating",
    "offline_agreement",
    *MODEL_COLUMNS,
    "llm_error",
    "age_s",
    "processing_ms",
    "received_at",
    "processed_at",
    "published_at",
)
RESULT_COLUMNS: Final = (
    "signal_id",
    "symbol",
    "time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    *SEED_INDICATORS,
    "is_signal_bar",
    "rating",
    "agreement",
    "confidence",
    "status",
)
_LONG: Final = frozenset({"llm_reasoning", "llm_risks", "llm_key_factors", "llm_error"})
_AT: Final = {name: index for index, name in enumerate(SIGNAL_COLUMNS)}

Value = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """One strategy signal as the files take it: its values by column name (the id apart)."""

    signal_id: str
    signal: Mapping[str, Value]
    bars: Sequence[Mapping[str, Value]] = ()


@dataclass(frozen=True, slots=True)
class Backlog:
    """The strategy stream's signals not handled yet; ``note`` says why when unknown (None)."""

    count: int | None
    note: str | None = None


class _ForeignFile(Exception):
    """A file whose first line is not this version's header."""


# --- cells ------------------------------------------------------------------------------------


def cell(value: Value, column: str = "") -> str:
    """One value as its cell: numbers as Python writes them (non-finite: empty), text flat,
    cut and defused (see ``text_cell``), None empty, booleans ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < _INT_LIMIT else ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return text_cell(value, LONG_TEXT_LIMIT if column in _LONG else TEXT_LIMIT)


def text_cell(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` on one line (control characters become spaces, lone surrogates go), at most
    ``limit`` characters (cut ones end in "…"), a leading ``'`` where it would be a formula
    (also behind spaces: a tab or line break before it became one)."""
    flat = _SURROGATE.sub("", _CONTROL.sub(" ", text[: limit * 2]))
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return "'" + flat if flat.lstrip(" ").startswith(_FORMULA_START) else flat


def signal_key(signal_id: str) -> str:
    """The id as its cell, the key a signal is written once under: itself when short and
    printable, else a readable prefix, "~" and a hash (an id starting with ``'`` too, so that
    a defused id and a literal one cannot meet)."""
    plain = text_cell(signal_id, MAX_ID_CHARS)
    short = len(signal_id) <= MAX_ID_CHARS and not signal_id.startswith("'")
    if short and plain.removeprefix("'") == signal_id:
        return plain
    digest = hashlib.sha256(signal_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return text_cell(signal_id, 64).removesuffix("…") + "~" + digest


def encode_rows(rows: Iterable[Sequence[str]]) -> bytes:
    """CSV lines (CRLF), UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def signal_cells(key: str, record: ExportRecord) -> list[str]:
    return [key, *(cell(record.signal.get(name), name) for name in SIGNAL_COLUMNS[1:])]


def bar_cells(key: str, bar: Mapping[str, Value]) -> list[str]:
    return [key, *(cell(bar.get(name), name) for name in RESULT_COLUMNS[1:])]


def _parse_line(line: bytes) -> list[str]:
    text = line.decode("utf-8", "replace").removesuffix("\r")
    return next(csv.reader([text]), [])


# --- the summary's running totals -------------------------------------------------------------


@dataclass(slots=True)
class Totals:
    """What ``llm_signals.csv`` holds, summed from its cells (at start from the file, then row
    by row as written: the same numbers either way)."""

    total: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    processing_ms: float = 0.0  # of the processed (ok) signals
    timed: int = 0
    ratings: Counter[int] = field(default_factory=Counter)
    llm_rated: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0

    def learn(self, cells: Sequence[str]) -> None:
        def at(name: str) -> str:
            index = _AT[name]
            return cells[index] if index < len(cells) else ""

        self.total += 1
        status = at("status")
        self.statuses[status] += 1
        if status == "ok" and (ms := _float(at("processing_ms"))) is not None:
            self.processing_ms += ms
            self.timed += 1
        if (rating := _int(at("rating"))) is not None and 1 <= rating <= 10:
            self.ratings[rating] += 1
        self.llm_rated += at("llm_rating") != ""
        self.tokens_in += max(0, _int(at("llm_tokens_in")) or 0)
        self.tokens_out += max(0, _int(at("llm_tokens_out")) or 0)
        self.cost_usd += max(0.0, _float(at("llm_cost_usd")) or 0.0)

    def as_json(self, backlog: Backlog, now: datetime) -> dict[str, object]:
        average = round(self.processing_ms / self.timed, 3) if self.timed else None
        return {
            "processed": self.statuses["ok"],
            "pending": backlog.count or 0,
            "failed": self.statuses["degraded"],
            "expired": self.statuses["expired"],
            "total": self.total,
            "avg_processing_ms": average,
            "rating_distribution": {str(r): self.ratings[r] for r in range(1, 11)},
            "llm_rated": self.llm_rated,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": round(self.cost_usd, 6),
            "pending_note": backlog.note,
            "updated_at": now.isoformat(),
        }


def _float(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# --- one CSV file -----------------------------------------------------------------------------

Opened = Literal["same", "opened", "created"]


class _CsvFile:
    """One appended CSV file: its descriptor (again when the path was replaced), its header,
    and ``size``, the length of the whole rows this writer has accounted for."""

    def __init__(self, directory: Path, name: str, columns: Sequence[str]) -> None:
        self.path = directory / name
        self.header = encode_rows([columns])
        self.fd = -1
        self.size = 0
        self._identity: tuple[int, int] | None = None

    def current(self) -> Opened:
        """Open the file at its path unless it is the one open (created when missing)."""
        try:
            found = os.stat(self.path)
            if self.fd >= 0 and (found.st_dev, found.st_ino) == self._identity:
                return "same"
        except FileNotFoundError:
            pass
        self.close()
        self.fd, created = _open_file(self.path)
        opened = os.fstat(self.fd)
        self._identity = (opened.st_dev, opened.st_ino)
        self.size = 0
        return "created" if created else "opened"

    def repair(self, *, check_header: bool) -> int:
        """The file's length once a last line without its newline is cut off and an empty
        file has its header. Raises ``_ForeignFile`` when the first line is another header."""
        end = os.fstat(self.fd).st_size
        whole = _whole_end(self.fd, end)
        if whole < end:
            log.warning("cut a partial last line", file=self.path.name, bytes=end - whole)
            os.ftruncate(self.fd, whole)
        if whole == 0:
            self.size = 0
            self.append(self.header)
            return len(self.header)
        if check_header and os.pread(self.fd, len(self.header), 0) != self.header:
            raise _ForeignFile(f"{self.path} holds other columns than this version writes")
        return whole

    def append(self, data: bytes) -> None:
        """``data`` at the end, on disk (fsync) before this returns."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        os.fsync(self.fd)
        self.size += len(data)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        os.fsync(self.fd)
        self.size = size

    def rows(self, start: int, end: int) -> Iterator[list[str]]:
        """The rows between two line boundaries, first to last."""
        rest, offset = b"", start
        while offset < end:
            chunk = os.pread(self.fd, min(_CHUNK, end - offset), offset)
            if not chunk:
                return
            offset += len(chunk)
            *lines, rest = (rest + chunk).split(b"\n")
            yield from (_parse_line(line) for line in lines)

    def rows_back(self, end: int) -> Iterator[tuple[int, list[str]]]:
        """(offset, row) of the rows after the header up to ``end``, last first."""
        floor = len(self.header)
        if end <= floor:
            return
        position, tail = end - 1, b""
        while position > floor:
            size = min(_CHUNK, position - floor)
            position -= size
            parts = (os.pread(self.fd, size, position) + tail).split(b"\n")
            starts = list(itertools.accumulate((len(p) + 1 for p in parts[:-1]), initial=position))
            for start, part in zip(reversed(starts[1:]), reversed(parts[1:]), strict=True):
                yield start, _parse_line(part)
            tail = parts[0]
        yield floor, _parse_line(tail)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _whole_end(fd: int, end: int) -> int:
    """The offset just past the file's last newline (0: none)."""
    if end and os.pread(fd, 1, end - 1) == b"\n":
        return end
    position = end
    while position > 0:
        size = min(_CHUNK, position)
        position -= size
        found = os.pread(fd, size, position).rfind(b"\n")
        if found >= 0:
            return position + found + 1
    return 0


def _open_file(path: Path) -> tuple[int, bool]:
    """A read-append descriptor; a new file is made FILE_MODE whatever the umask."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags), False
    os.fchmod(fd, FILE_MODE)
    _fsync_directory(path.parent)
    return fd, True


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_directory(directory: Path) -> None:
    """``directory`` and any missing parent, each made DIR_MODE whatever the umask."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            made.mkdir(mode=DIR_MODE)
            made.chmod(DIR_MODE)


def replace_atomically(path: Path, body: bytes) -> None:
    """``path`` holds ``body`` whole or its old content, never a mix: a temporary file in the
    same directory, fsync, ``os.replace``, fsync of the directory."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fchmod(handle.fileno(), FILE_MODE)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


# --- the three files --------------------------------------------------------------------------


class StrategyCsvFiles:
    """The directory's three files and what they hold: the ids written and the totals. Not
    thread-safe: one batch at a time (the committer's). ``open`` at start; ``write`` per batch."""

    def __init__(self, directory: Path, clock: Callable[[], datetime] = utc_now) -> None:
        self.directory = directory
        self._clock = clock
        self._signals = _CsvFile(directory, SIGNALS_FILE, SIGNAL_COLUMNS)
        self._results = _CsvFile(directory, RESULTS_FILE, RESULT_COLUMNS)
        self._keys: set[str] = set()
        self.totals = Totals()
        self._lock_fd = -1

    @classmethod
    def open(cls, directory: Path, clock: Callable[[], datetime] = utc_now) -> StrategyCsvFiles:
        """The files in ``directory`` (made if missing), repaired and read. Raises
        ``ConfigError`` when it cannot be written or holds files with other columns."""
        files = cls(directory, clock)
        try:
            _make_directory(directory)
            files._lock_fd, _ = _open_file(directory / LOCK_FILE)
            with files._locked():
                for stale in directory.glob(f".{SUMMARY_FILE}.*.tmp"):  # a crashed rewrite's
                    stale.unlink(missing_ok=True)
                files._sync()
                files._write_summary(Backlog(None, "not read yet: read after each batch"))
        except (OSError, _ForeignFile) as exc:
            files.close()
            problem = f"cannot keep the CSV files in {directory}: {exc}"
            raise ConfigError("CSV_OUTPUT_DIR", problem) from None
        return files

    def written(self, signal_id: str) -> bool:
        return signal_key(signal_id) in self._keys

    def write(self, records: Sequence[ExportRecord], backlog: Backlog) -> int:
        """Append the signals of ``records`` not written yet, with their bars, and rewrite the
        summary; returns how many were new. Raises ``TransientError`` when the files cannot
        take them now (what this batch appended is cut off again)."""
        try:
            with self._locked():
                self._sync()
                new = self._append(self._new(records))
                self._write_summary(backlog)
        except (OSError, _ForeignFile) as exc:
            raise TransientError(f"CSV files in {self.directory}: {exc}") from None
        return new

    def close(self) -> None:
        self._signals.close()
        self._results.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The directory's lock, held while the files are read or written (another process
        holds it for one batch at a time: a few milliseconds)."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TransientError(f"{self.directory / LOCK_FILE} stays locked") from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _sync(self) -> None:
        """Catch up with the files as they are now (rows another process added, a file moved
        away, what a crash left) before adding to them."""
        opened = self._signals.current()
        if opened != "same":
            self._forget()
        start = self._signals.size
        end = self._signals.repair(check_header=opened != "same")
        if end < start:  # cut short by hand: read it all again
            self._forget()
            start = 0
        for cells in self._signals.rows(max(start, len(self._signals.header)), end):
            self._learn(cells)
        self._signals.size = end
        self._sync_results(signals_created=opened == "created")

    def _sync_results(self, *, signals_created: bool) -> None:
        """Cut the bar rows at the end whose signal has no row: a batch that did not finish."""
        opened = self._results.current()
        end = self._results.repair(check_header=opened != "same")
        if opened == "same" and end == self._results.size:
            return
        if signals_created and end > len(self._results.header):
            log.warning("llm_signals.csv was missing; the bar rows are left as they are")
        else:
            end = self._trim_orphans(end)
        self._results.size = end

    def _trim_orphans(self, end: int) -> int:
        cut = end
        for start, cells in self._results.rows_back(end):
            if cells and cells[0] in self._keys:
                break
            cut = start
        if cut < end:
            log.warning("cut the bar rows of an unfinished batch", bytes=end - cut)
            self._results.truncate(cut)
        return cut

    def _forget(self) -> None:
        self._keys.clear()
        self.totals = Totals()

    def _learn(self, cells: Sequence[str]) -> None:
        if cells and cells[0]:
            self._keys.add(cells[0])
            self.totals.learn(cells)

    def _new(self, records: Sequence[ExportRecord]) -> dict[str, ExportRecord]:
        """The records whose signal is not written yet, the first of each id."""
        new: dict[str, ExportRecord] = {}
        for record in records:
            key = signal_key(record.signal_id)
            if key not in self._keys and key not in new:
                new[key] = record
        return new

    def _append(self, new: Mapping[str, ExportRecord]) -> int:
        """Bars first, then the signal rows (the mark that a signal is written)."""
        if not new:
            return 0
        rows = [signal_cells(key, record) for key, record in new.items()]
        bars = [bar_cells(key, bar) for key, record in new.items() for bar in record.bars]
        before = (self._results.size, self._signals.size)
        try:
            if bars:
                self._results.append(encode_rows(bars))
            self._signals.append(encode_rows(rows))
        except OSError:
            # What cannot be cut now, the next batch's repair cuts (or keeps, when whole).
            with contextlib.suppress(OSError):
                self._results.truncate(before[0])
            with contextlib.suppress(OSError):
                self._signals.truncate(before[1])
            raise
        for cells in rows:
            self._learn(cells)
        return len(rows)

    def _write_summary(self, backlog: Backlog) -> None:
        summary = self.totals.as_json(backlog, self._clock())
        body = json.dumps(summary, indent=2, allow_nan=False).encode() + b"\n"
        replace_atomically(self.directory / SUMMARY_FILE, body)
