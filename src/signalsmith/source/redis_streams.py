"""Read posts from a Redis Stream through a consumer group: own pending first, then new, then
entries a dead consumer left behind (XAUTOCLAIM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

RawFields = dict[bytes, bytes]
Rows = list[tuple[bytes, RawFields | None]]
Cursor = Literal["0", ">"]


@dataclass(frozen=True, slots=True)
class GroupRef:
    """One consumer of one group on one stream: who reads, and who may acknowledge."""

    stream: str
    group: str
    consumer: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as read: its id and raw fields (None when it was deleted meanwhile)."""

    id: str
    fields: RawFields | None


class StreamSource:
    """Consumer-group reader. ``rewind()`` after a failure re-reads this consumer's pending."""

    def __init__(self, redis: Redis, ref: GroupRef, *, block_ms: int, claim_idle_ms: int) -> None:
        self._redis = redis
        self.stream, self.group, self.consumer = ref.stream, ref.group, ref.consumer
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._cursor: Cursor = "0"
        self._claim_from = "0-0"

    async def ensure_group(self) -> None:
        """Create the group (and stream) from the start of the stream; exists already is fine."""
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def rewind(self) -> None:
        self._cursor = "0"

    async def read(self, count: int) -> list[Entry]:
        """Up to ``count`` entries: pending of ours, else new (blocking), else reclaimed."""
        if self._cursor == "0":
            entries = await self._read_group("0", count, block=None)
            if entries:
                return entries
            self._cursor = ">"
        entries = await self._read_group(">", count, block=self._block_ms)
        return entries or await self.reclaim(count)

    async def _read_group(self, cursor: Cursor, count: int, block: int | None) -> list[Entry]:
        reply = cast(
            list[tuple[bytes, Rows]] | None,
            await self._redis.xreadgroup(
                self.group, self.consumer, {self.stream: cursor}, count=count, block=block
            ),
        )
        if not reply:
            return []
        return _entries(reply[0][1])

    async def reclaim(self, count: int) -> list[Entry]:
        """Take over entries idle longer than the claim threshold in another consumer's hands."""
        reply = await self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self._claim_idle_ms,
            start_id=self._claim_from,
            count=count,
        )
        self._claim_from = _text(cast(bytes, reply[0]))
        return _entries(cast(Rows, reply[1]))

    async def pending(self) -> int:
        """Entries delivered to any consumer of the group and not yet acknowledged."""
        summary = await self._redis.xpending(self.stream, self.group)
        return int(summary["pending"])


def _entries(rows: Rows) -> list[Entry]:
    return [Entry(_text(entry_id), fields or None) for entry_id, fields in rows]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
