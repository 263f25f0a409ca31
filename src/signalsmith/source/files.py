"""Posts from JSONL or CSV files, as the flat string fields a producer would XADD.

A JSONL line that is not a JSON object is kept whole in a ``data`` field, so the worker
dead-letters it with the reason instead of it vanishing here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

Fields = dict[str, str]


def read_posts(path: Path) -> Iterator[Fields]:
    """Every record of a ``.jsonl``/``.json`` or ``.csv`` file, in order."""
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(path)
    else:
        yield from _jsonl_rows(path)


def _jsonl_rows(path: Path) -> Iterator[Fields]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield jsonl_fields(line)


def jsonl_fields(line: str) -> Fields:
    """One JSONL line as stream fields; non-string values become their JSON text."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return {"data": line.rstrip("\n")}
    if not isinstance(record, dict):
        return {"data": line.rstrip("\n")}
    return {
        str(key): value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        for key, value in record.items()
        if value is not None
    }


def _csv_rows(path: Path) -> Iterator[Fields]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield {key: value for key, value in row.items() if key and value}
