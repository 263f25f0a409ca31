"""Rows as the API shows them: JSON items (times in UTC, ISO 8601) and CSV, whose text cells
cannot start a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Final

from signalsmith.consensus import Consensus
from signalsmith.query.statements import ROW_NAMES, AnyRow

CSV_CHUNK_ROWS: Final = 200
# A spreadsheet reads a cell starting with one of these as a formula (OWASP's list).
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")

Item = dict[str, object]


def utc(value: datetime) -> datetime:
    """SQLite hands times back without their offset; the store writes them in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def item(row: AnyRow, names: Sequence[str] = ROW_NAMES) -> Item:
    """A row's columns ``names`` (a decision's: all but the envelope) as JSON values."""
    values = row._mapping
    return {name: _plain(values[name]) for name in names}


def consensus(result: Consensus) -> Item:
    return {
        "verdict": result.verdict.value,
        "confidence": result.confidence,
        "score": result.score,
        "posts": result.posts,
        "buy": result.buy,
        "sell": result.sell,
        "hold": result.hold,
    }


def json_body(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula gets a leading quote; numbers are
    ours, written as numbers (a negative score is not a formula)."""
    plain = _plain(value)
    if isinstance(plain, str) and plain.startswith(_FORMULA_START):
        return "'" + plain
    return "" if plain is None else plain


def csv_chunks(rows: Sequence[AnyRow], names: Sequence[str] = ROW_NAMES) -> Iterator[bytes]:
    """A header line, then the rows' columns ``names``, a few hundred rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(names)
    for first in range(0, len(rows), CSV_CHUNK_ROWS):
        for row in rows[first : first + CSV_CHUNK_ROWS]:
            values = row._mapping
            writer.writerow([_cell(values[name]) for name in names])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def envelope(text: object) -> object:
    """The stored envelope JSON, parsed (the store only keeps envelopes that parse)."""
    return json.loads(text) if isinstance(text, str) else None
