"""Reading a benchmark's output stream: how many envelopes of each status, and the steady
rate at which they were written."""

from __future__ import annotations

import json

Entries = list[tuple[bytes, dict[bytes, bytes]]]


def statuses(entries: Entries) -> dict[str, int]:
    """Envelopes (one ``data`` field each) by ``decision.status``."""
    counted: dict[str, int] = {}
    for _id, fields in entries:
        status = json.loads(fields[b"data"])["decision"]["status"]
        counted[status] = counted.get(status, 0) + 1
    return counted


def steady_rate(entries: Entries, in_flight: int) -> float | None:
    """Answers K+1 to N-K per second of the time between answer K and answer N-K (entry ids
    are Redis' milliseconds); ``None`` when there are too few answers for a steady state."""
    written = [int(entry_id.split(b"-")[0]) for entry_id, _ in entries]
    counted = len(written) - 2 * in_flight
    span_ms = written[-in_flight - 1] - written[in_flight - 1] if counted > 0 else 0
    return round(counted / (span_ms / 1000), 1) if span_ms > 0 else None
