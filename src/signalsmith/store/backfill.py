"""Fill the store from the decision stream's history, oldest first (XRANGE pages). Idempotent:
a decision stored already is counted, not written again; an entry that cannot become a row is
counted and left where it is (the stream is only read)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import structlog

from signalsmith.errors import PoisonInput
from signalsmith.normalize import utc_now
from signalsmith.redisclient import RedisClient
from signalsmith.store.rows import DecisionValues, row_from_fields
from signalsmith.store.writer import RowWriter

log = structlog.get_logger("signalsmith.store")

Page = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass(slots=True)
class BackfillCounts:
    read: int = 0
    inserted: int = 0
    invalid: int = 0

    @property
    def already_stored(self) -> int:
        return self.read - self.inserted - self.invalid


async def backfill(
    redis: RedisClient,
    writer: RowWriter,
    stream: str,
    *,
    batch: int,
    clock: Callable[[], datetime] = utc_now,
) -> BackfillCounts:
    """Every entry of ``stream`` into the store, ``batch`` entries per read and transaction."""
    counts = BackfillCounts()
    start = "-"
    while page := cast(Page, await redis.xrange(stream, min=start, count=batch)):
        counts.read += len(page)
        rows = _rows(page, counts, clock())
        counts.inserted += await writer.write_rows(rows)
        start = "(" + page[-1][0].decode()
    return counts


def _rows(page: Page, counts: BackfillCounts, now: datetime) -> list[DecisionValues]:
    rows: list[DecisionValues] = []
    for entry_id, fields in page:
        try:
            rows.append(row_from_fields(fields, now))
        except PoisonInput as exc:
            counts.invalid += 1
            log.warning("skipping entry", entry_id=entry_id.decode(), reason=exc.reason)
    return rows
