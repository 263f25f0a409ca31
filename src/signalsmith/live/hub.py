"""One reader of the decision log for every live-feed client, on the HTTP thread's event loop.

The reader XREADs DECISION_STREAM (at most every TICK_S while it keeps up), turns each entry
into its event once (``live.events``) and keeps the newest ``capacity`` in a ring, each with a
sequence number. A client walks the ring
from its own position, writing the events its filter wants; the pipelines never wait for it
(they only append to a stream). A client that falls more than the ring behind, or reconnects
with the id of the last event it had (``Last-Event-ID``), is first told so (``behind``) and
caught up from the stream itself, a page at a time, then joins the ring again; entries already
trimmed from the stream are reported as a ``gap``. The number of clients is bounded.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final, cast

import structlog

from signalsmith.live.events import LiveEvent, LiveFilter, live_event, notice_frame
from signalsmith.redisclient import LoopClient, RedisClient, redis_errors
from signalsmith.source.redis_streams import entry_order

log = structlog.get_logger(__name__)

READ_COUNT: Final = 500
BLOCK_MS: Final = 1_000
# A busy stream is read (and its clients woken) at most this often: a batch a tenth of a
# second wide costs the clients one write instead of one per decision.
TICK_S: Final = 0.1
PAGE: Final = 200  # entries per catch-up read from the stream
RECENT: Final = 100  # events a new client (no Last-Event-ID) starts with
HEARTBEAT_S: Final = 15.0
MAX_BATCHES: Final = 256  # distinct (filter, place) batches kept for the newest events
Rows = list[tuple[bytes, dict[bytes, bytes]]]


class TooManyClients(Exception):
    """LIVE_MAX_CLIENTS are connected already."""


@dataclass(frozen=True, slots=True)
class HubConfig:
    stream: str  # DECISION_STREAM
    capacity: int = 4_096  # events kept for clients to catch up from memory
    max_clients: int = 100


class LiveHub:
    """The shared reader and its ring. Made in any thread; used from the HTTP thread's loop."""

    def __init__(self, config: HubConfig, connect: Callable[[], RedisClient]) -> None:
        self._config = config
        self._client = LoopClient(connect)
        self._ring: list[LiveEvent | None] = [None] * config.capacity
        self._ids: list[str] = []  # the ring's entry ids, oldest first (for a resume)
        self._next = 0  # the sequence number the next event gets
        self._after = "$"  # the reader's position on the stream
        self._arrived: asyncio.Event | None = None
        self._batches: dict[tuple[LiveFilter, int, int], bytes] = {}  # for the newest end
        self._batches_at = -1
        self._started: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self.clients = 0

    def admit(self) -> Callable[[], None]:
        """A client's place, given back by calling what this returns; ``TooManyClients`` when
        LIVE_MAX_CLIENTS are connected."""
        if self.clients >= self._config.max_clients:
            raise TooManyClients
        self.clients += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.clients -= 1

        return release

    async def frames(self, wanted: LiveFilter, last_id: str | None) -> AsyncIterator[bytes]:
        """The client's stream: what it missed since ``last_id`` (or the RECENT newest), then
        every new event its filter wants, a batch of frames per write."""
        await self._start()
        walk = self._resume(last_id)
        while True:
            if walk.behind:
                yield notice_frame("behind", {"last_event_id": walk.last_id})
                async for batch in self._catch_up(walk, wanted):
                    yield batch
            batch = await self._from_ring(walk, wanted)
            if batch:
                yield batch

    # --- the reader ----------------------------------------------------------------------

    async def _start(self) -> None:
        """The ring filled with the newest entries and the reader running (once; a client
        arriving meanwhile waits for it, and a failure lets the next client try again)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_task(self._prefill())
        try:
            await asyncio.shield(self._started)
        except Exception:
            self._started = None
            raise

    async def _prefill(self) -> None:
        self._arrived = asyncio.Event()
        redis = self._client.get()
        with redis_errors("reading the decision log's newest entries"):
            newest = cast(Rows, await redis.xrevrange(self._config.stream, count=RECENT))
        self._keep(list(reversed(newest)))
        if newest:
            self._after = newest[0][0].decode()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        redis = self._client.get()
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                reply = await redis.xread(
                    {self._config.stream: self._after}, count=READ_COUNT, block=BLOCK_MS
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: the clients wait, the reader retries
                log.warning("live feed cannot read the decision log", error=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            streams = cast(list[tuple[bytes, Rows]], reply or [])
            rows = streams[0][1] if streams else []
            if rows:
                self._after = rows[-1][0].decode()
                self._keep(rows)
            if 0 < len(rows) < READ_COUNT:  # caught up: let the next decisions gather
                await asyncio.sleep(max(0.0, started + TICK_S - loop.time()))

    def _keep(self, rows: Rows) -> None:
        capacity = self._config.capacity
        for entry_id, fields in rows:
            try:
                event = live_event(entry_id.decode(), fields)
            except Exception as exc:  # never the reader's end: the entry is left out
                log.warning("live feed left an entry out", error=type(exc).__name__)
                continue
            if event is None:
                continue
            self._ring[self._next % capacity] = event
            self._ids.append(event.entry_id)
            self._next += 1
        if len(self._ids) > capacity:
            del self._ids[: len(self._ids) - capacity]
        if rows and self._arrived is not None:
            arrived, self._arrived = self._arrived, asyncio.Event()
            arrived.set()

    # --- a client's walk -----------------------------------------------------------------

    def _resume(self, last_id: str | None) -> _Walk:
        """Where a client starts: after ``last_id`` (from the ring when it still holds what
        follows, else from the stream first), or at the RECENT newest events."""
        oldest = self._next - len(self._ids)
        if last_id is None:
            return _Walk(max(oldest, self._next - RECENT), None)
        walk = _Walk(oldest, last_id, behind=True)
        if self._ids and entry_order(last_id) >= entry_order(self._ids[0]):
            walk.rejoin(oldest, self._ids, last_id)
        return walk

    async def _catch_up(self, walk: _Walk, wanted: LiveFilter) -> AsyncIterator[bytes]:
        """The stream after the walk's last id, up to what the ring holds (``gap`` first when
        entries after it were trimmed); the walk then goes on in the ring."""
        redis = self._client.get()
        after = walk.last_id or "0-0"
        with redis_errors("catching a live client up"):
            info = await redis.xinfo_stream(self._config.stream)
        first = info.get("first-entry")
        if first and entry_order(first[0].decode()) > entry_order(after):
            yield notice_frame("gap", {"after": after, "resumes_at": first[0].decode()})
        while True:
            with redis_errors("catching a live client up"):
                rows = cast(
                    Rows, await redis.xrange(self._config.stream, min=f"({after}", count=PAGE)
                )
            frames: list[bytes] = []
            for entry_id, fields in rows:
                text = entry_id.decode()
                if self._ids and entry_order(text) >= entry_order(self._ids[0]):  # the ring has it
                    if frames:
                        yield b"".join(frames)
                    walk.rejoin(self._next - len(self._ids), self._ids, after)
                    return
                event = live_event(text, fields)
                if event is not None and wanted.wants(event):
                    frames.append(event.frame)
                after = text
            if frames:
                yield b"".join(frames)
            if len(rows) < PAGE:
                walk.rejoin(self._next - len(self._ids), self._ids, after)
                return

    async def _from_ring(self, walk: _Walk, wanted: LiveFilter) -> bytes:
        """The frames of the events from the walk's position on, waiting for some (a
        keep-alive comment after HEARTBEAT_S without any); a walk the ring has passed
        meanwhile is marked behind."""
        if walk.seq >= self._next:
            assert self._arrived is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEARTBEAT_S):
                    await self._arrived.wait()
            if walk.seq >= self._next:
                return b": keep-alive\n\n"
        if walk.seq < self._next - len(self._ids):
            walk.behind = True
            return b""
        end = self._next
        batch = self._batch(wanted, walk.seq, end)
        last = self._ring[(end - 1) % self._config.capacity]
        walk.seq, walk.last_id = end, last.entry_id if last is not None else walk.last_id
        return batch

    def _batch(self, wanted: LiveFilter, start: int, end: int) -> bytes:
        """The frames of events ``start`` to ``end`` that ``wanted`` keeps, joined; made once
        for every client with the same filter and place (most follow the feed as it comes)."""
        key = (wanted, start, end)
        if self._batches_at != end:
            self._batches.clear()
            self._batches_at = end
        batch = self._batches.get(key)
        if batch is None:
            capacity = self._config.capacity
            events = (self._ring[number % capacity] for number in range(start, end))
            batch = b"".join(e.frame for e in events if e is not None and wanted.wants(e))
            if len(self._batches) < MAX_BATCHES:
                self._batches[key] = batch
        return batch


@dataclass(slots=True)
class _Walk:
    """One client's place: the next sequence number in the ring, the last entry id it has
    been through, and whether it must first catch up from the stream."""

    seq: int
    last_id: str | None
    behind: bool = False

    def rejoin(self, oldest: int, ids: list[str], after: str) -> None:
        """Continue in the ring right after entry ``after``."""
        self.seq = oldest + bisect.bisect_right(ids, entry_order(after), key=entry_order)
        self.last_id, self.behind = after, False
