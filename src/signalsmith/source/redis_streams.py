"""Read posts from a Redis Stream through a consumer group: own pending first, then new, then
entries a dead consumer left behind (XAUTOCLAIM).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import cast

from redis.exceptions import ResponseError

from signalsmith.redisclient import RedisClient

RawFields = dict[bytes, bytes]
Rows = list[tuple[bytes, RawFields | None]]


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
    deliveries: int = 1  # how many times the group has handed it out, this time included


class StreamSource:
    """Consumer-group reader: this consumer's pending history first (after a start or a
    reconnect), then new entries, then entries idle too long anywhere in the group (reclaim).
    """

    def __init__(
        self,
        redis: RedisClient,
        ref: GroupRef,
        *,
        block_ms: int,
        claim_idle_ms: int,
        start: str = "0",
    ) -> None:
        """``start``: where a group created here begins: ``0`` the stream's first entry, ``$``
        the next one added."""
        self._redis = redis
        self.stream, self.group, self.consumer = ref.stream, ref.group, ref.consumer
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._start = start
        self._history_from: str | None = "0-0"  # None once our pending history is read
        self._claim_from = "0-0"

    async def ensure_group(self) -> None:
        """Create the group (and stream) at ``start``; exists already is fine. Looked up
        first: that read works when the server refuses writes (out of memory)."""
        if await self._group_exists():
            return
        try:
            await self._redis.xgroup_create(self.stream, self.group, id=self._start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _group_exists(self) -> bool:
        try:
            groups = await self._redis.xinfo_groups(self.stream)
        except ResponseError:  # no such stream yet
            return False
        return any(_text(group["name"]) == self.group for group in groups)

    def rewind(self) -> None:
        """Read this consumer's pending history again (after losing the connection)."""
        self._history_from = "0-0"

    async def read(self, count: int, *, wait: bool) -> list[Entry]:
        """Up to ``count`` entries; blocks up to BLOCK_MS for new ones only when ``wait``."""
        if self._history_from is not None:
            entries = await self._read_group(self._history_from, count, block=None)
            if entries:
                self._history_from = entries[-1].id
                return await self._with_deliveries(entries)
            self._history_from = None
        entries = await self._read_group(">", count, block=self._block_ms if wait else None)
        return entries or await self.reclaim(count)

    async def _read_group(self, cursor: str, count: int, block: int | None) -> list[Entry]:
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
        """Take over entries idle longer than CLAIM_IDLE_MS, whoever holds them (a dead
        consumer, or this one after a transient failure), with their delivery counts."""
        reply = await self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self._claim_idle_ms,
            start_id=self._claim_from,
            count=count,
        )
        self._claim_from = _text(cast(bytes, reply[0]))
        return await self._with_deliveries(_entries(cast(Rows, reply[1])))

    async def _with_deliveries(self, entries: list[Entry]) -> list[Entry]:
        if not entries:
            return entries
        rows = await self._redis.xpending_range(
            self.stream, self.group, min=entries[0].id, max=entries[-1].id, count=len(entries) * 2
        )
        counts = {
            _text(cast(bytes, row["message_id"])): int(row["times_delivered"]) for row in rows
        }
        return [replace(entry, deliveries=counts.get(entry.id, 1)) for entry in entries]

    async def fetch(self, entry_id: str) -> RawFields | None:
        """One entry's fields as they stand in the stream now (None: deleted or trimmed)."""
        rows = cast(Rows, await self._redis.xrange(self.stream, entry_id, entry_id, count=1))
        return rows[0][1] or None if rows else None

    async def pending(self) -> int:
        """Entries delivered to any consumer of the group and not yet acknowledged."""
        summary = await self._redis.xpending(self.stream, self.group)
        return int(summary["pending"])


def entry_time(entry_id: str, fallback: datetime) -> datetime:
    """When an entry reached its stream: its id's milliseconds (``fallback`` for an id that
    is none)."""
    millis, _, _ = entry_id.partition("-")
    try:
        return datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (ValueError, OverflowError, OSError):  # an id a test or a tool made up
        return fallback


def entry_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id (``<ms>-<seq>``) as what orders it; (-1, -1) for an id that is none."""
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() and (seq or "0").isdigit() else (-1, -1)


async def unread_after(redis: RedisClient, stream: str, last: object, limit: int) -> int | None:
    """Entries of ``stream`` after ``last`` (a group's last delivered id), counted up to
    ``limit`` (more, or no id: None, unknown): a group's lag where Redis (before 7.0) does not
    report it."""
    if isinstance(last, bytes):
        last = last.decode()
    if not isinstance(last, str):
        return None
    entries = await redis.xrange(stream, min=f"({last}", count=limit + 1) or []
    return len(entries) if len(entries) <= limit else None


# (pending entries, lag: entries not read yet) of one consumer group; None: Redis cannot tell.
Backlog = tuple[int | None, int | None]
_NO_SUCH_KEY = "no such key"


async def group_backlogs(
    redis: RedisClient, stream: str, unread_limit: int, only: Collection[str] = ()
) -> dict[str, Backlog]:
    """The consumer groups of ``stream`` (those in ``only``, if given) with their backlogs;
    empty when the stream does not exist yet. Where Redis (before 7.0) reports no lag, the
    entries after the group's last delivered one are counted, up to ``unread_limit``."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError as exc:
        if str(exc).lower() == _NO_SUCH_KEY:
            return {}
        raise
    found: dict[str, Backlog] = {}
    for info in groups:
        name = _text(info.get("name") or "")
        if only and name not in only:
            continue
        lag = _count(info.get("lag"))
        if lag is None:
            lag = await unread_after(redis, stream, info.get("last-delivered-id"), unread_limit)
        found[name] = (_count(info.get("pending")), lag)
    return found


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _entries(rows: Rows) -> list[Entry]:
    return [Entry(_text(entry_id), fields or None) for entry_id, fields in rows]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
