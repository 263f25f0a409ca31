"""``signalsmith dlq``: inspect dead letters, and re-drive them into the input stream.

A dead letter keeps the entry's original fields as ``orig.<name>`` (or, for an entry with very
many fields, all in one JSON field ``orig``); replaying restores exactly those fields with a new id,
and removes the dead letter in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from signalsmith.redisclient import RedisClient

_ORIGINAL = b"orig."
_PACKED = b"orig"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    reason: str
    detail: str
    stream: str
    entry_id: str
    failed_at: str
    fields: dict[bytes, bytes]  # the entry's original fields

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "reason": self.reason,
            "detail": self.detail,
            "stream": self.stream,
            "entry_id": self.entry_id,
            "failed_at": self.failed_at,
            "fields": {
                k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                for k, v in self.fields.items()
            },
        }


def read_dead_letter(entry_id: bytes, raw: dict[bytes, bytes]) -> DeadLetter:
    """A dead-letter stream entry: why, where from, and the entry's original fields."""

    def meta(name: str) -> str:
        return raw.get(name.encode(), b"").decode("utf-8", "replace")

    return DeadLetter(
        id=entry_id.decode(),
        reason=meta("reason"),
        detail=meta("detail"),
        stream=meta("stream"),
        entry_id=meta("entry_id"),
        failed_at=meta("failed_at"),
        fields=_originals(raw),
    )


def _originals(raw: dict[bytes, bytes]) -> dict[bytes, bytes]:
    if _PACKED in raw:
        try:
            pairs = json.loads(raw[_PACKED])
            return {
                name.encode("utf-8", "surrogateescape"): value.encode("utf-8", "surrogateescape")
                for name, value in pairs
            }
        except (ValueError, TypeError, AttributeError):  # damaged: nothing to re-drive
            return {}
    return {k[len(_ORIGINAL) :]: v for k, v in raw.items() if k.startswith(_ORIGINAL)}


async def list_dead_letters(redis: RedisClient, dlq: str, limit: int) -> list[DeadLetter]:
    """The oldest ``limit`` dead letters."""
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(dlq, count=limit))
    return [read_dead_letter(entry_id, raw) for entry_id, raw in rows]


async def replay_dead_letters(
    redis: RedisClient,
    dlq: str,
    stream: str,
    *,
    ids: Sequence[str] = (),
    reason: str | None = None,
    limit: int = 1000,
) -> int:
    """Put dead letters (all, or those ``ids``, or of one ``reason``) back on ``stream`` as new
    entries and delete them from the dead-letter stream, each in one transaction."""
    letters = await list_dead_letters(redis, dlq, limit if not ids else 1_000_000)
    chosen = [
        letter
        for letter in letters
        if (not ids or letter.id in ids) and (reason is None or letter.reason == reason)
    ]
    for letter in chosen:
        if not letter.fields:  # nothing to re-drive; keep it for a human to look at
            continue
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xadd(stream, letter.fields)  # type: ignore[arg-type]
            pipe.xdel(dlq, letter.id)
            await pipe.execute()
    return sum(1 for letter in chosen if letter.fields)
