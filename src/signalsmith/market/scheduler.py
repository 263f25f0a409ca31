"""INSIGHT_SCHEDULE's task in ``signalsmith run``: at each tick of each schedule, one market
request per product on MARKET_STREAM, made by one process however many run.

A (product, tick) is queued once: one Lua script checks the lock
``<MARKET_STREAM>:schedule:<PRODUCT>:<tick epoch>``, XADDs the request and sets the lock (for two
intervals, so a clock somewhat behind still finds it), atomically. A crash can leave neither a
lock without its request (a lost tick) nor a request without its lock (a second one later); a
second process, or a second run within the tick, finds the lock and queues nothing. The locks are
named after the stream, so on a Redis Cluster they share its hash tag and slot.

Missed ticks are not made up: the scheduler fires the tick the clock is in, at start-up and then
at each boundary. A tick that failed (Redis down) is tried again, with backoff, while it is still
the current one; then the next tick is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

import structlog

from signalsmith.errors import TransientError
from signalsmith.market.schedule import Schedule, next_tick, request_data, tick_at, tick_text
from signalsmith.observe.metrics import Metrics
from signalsmith.redisclient import RedisClient, redis_errors

log = structlog.get_logger("signalsmith.schedule")

Clock = Callable[[], float]  # epoch seconds
RETRY_FIRST_S: Final = 1.0
RETRY_MAX_S: Final = 60.0
ANSWER_TIMEOUT_S: Final = 5.0  # a Redis that hangs fails the tick, and never holds up a stop

_SCRIPT: Final = """
-- KEYS[1] the request stream, KEYS[2..] one lock per request; ARGV[1] the locks' time to live
-- (seconds), ARGV[2..] each request's data JSON. Returns per request its entry id, or '' where
-- the lock was taken already. Checks the stream's type before its first write.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'stream' then
  return redis.error_reply('WRONGTYPE the request stream holds a ' .. kind)
end
local ids = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    ids[#ids + 1] = ''
  else
    local id = redis.call('XADD', KEYS[1], '*', 'data', ARGV[i])
    redis.call('SET', KEYS[i], id, 'EX', ARGV[1])
    ids[#ids + 1] = id
  end
end
return ids
"""


def lock_key(stream: str, product: str, tick: int) -> str:
    """The lock of (product, tick), beside the stream (its hash tag, its cluster slot)."""
    return f"{stream}:schedule:{product}:{tick}"


@dataclass(frozen=True, slots=True)
class Fired:
    """One schedule's tick: the products queued by this call, and those found queued."""

    schedule: Schedule
    tick: int
    queued: tuple[str, ...]
    taken: tuple[str, ...]


class InsightScheduler:
    """Queues the schedules' requests on ``stream`` at their ticks, by ``clock``."""

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        schedules: Sequence[Schedule],
        *,
        metrics: Metrics | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._stream = stream
        self._schedules = tuple(schedules)
        self._script = redis.register_script(_SCRIPT)
        self._metrics = metrics
        self._clock = clock
        self._done: dict[Schedule, int] = {}  # each schedule's last tick fired (by anyone)
        self.queued = 0  # requests this process queued

    async def fire(self, schedule: Schedule, tick: int) -> Fired:
        """Queue ``tick``'s requests for ``schedule`` unless queued already; raises
        ``TransientError`` when Redis fails or does not answer (after a timeout the script may
        have run: trying again then finds the tick queued)."""
        products = schedule.products
        keys = [self._stream, *(lock_key(self._stream, p, tick) for p in products)]
        args: list[str | int] = [2 * schedule.interval_s]
        args += [request_data(p, tick) for p in products]
        try:
            with redis_errors("queueing scheduled market requests"):
                answer = await asyncio.wait_for(
                    self._script(keys=keys, args=args), ANSWER_TIMEOUT_S
                )
        except TimeoutError:
            raise TransientError(f"Redis did not answer within {ANSWER_TIMEOUT_S:g} s") from None
        ids = cast(list[bytes | str], answer)
        queued = tuple(p for p, entry in zip(products, ids, strict=True) if entry)
        taken = tuple(p for p, entry in zip(products, ids, strict=True) if not entry)
        return Fired(schedule, tick, queued, taken)

    async def start(self, stop: asyncio.Event, *, repeat: bool) -> list[asyncio.Task[None]]:
        """With ``repeat``, the task that keeps the schedules until ``stop``. Without (a run
        with ``--until-idle``), every schedule's current tick only, fired before this returns,
        so before the pipelines read: the run handles its requests, then ends."""
        if repeat:
            return [asyncio.create_task(self.run(stop))]
        now = self._clock()
        for schedule in self._schedules:
            await self._attempt(schedule, tick_at(now, schedule.interval_s))
        return []

    async def run(self, stop: asyncio.Event) -> None:
        """Every schedule: its current tick at once, then each tick as it comes, until
        ``stop``."""
        await asyncio.gather(*(self._keep(schedule, stop) for schedule in self._schedules))
        log.info("schedule stopped", queued=self.queued)

    async def _keep(self, schedule: Schedule, stop: asyncio.Event) -> None:
        """One schedule: fire the current tick unless done, then wait for the next (or, after
        a failure, for the retry, whichever comes first)."""
        failures = 0
        while not stop.is_set():
            tick = tick_at(self._clock(), schedule.interval_s)
            if self._done.get(schedule) != tick:
                failures = 0 if await self._attempt(schedule, tick) else failures + 1
            now = self._clock()
            wait = next_tick(now, schedule.interval_s) - now
            if failures:
                wait = min(wait, RETRY_MAX_S, RETRY_FIRST_S * 2 ** min(failures, 8))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.0))

    async def _attempt(self, schedule: Schedule, tick: int) -> bool:
        """Fire the tick, log and count what happened; False when Redis failed."""
        try:
            fired = await self.fire(schedule, tick)
        except TransientError as exc:
            self._count("failed", len(schedule.products))
            log.warning(
                "could not queue scheduled requests",
                schedule=schedule.name,
                tick=tick_text(tick),
                error=str(exc),
            )
            return False
        self._done[schedule] = tick
        self.queued += len(fired.queued)
        self._count("queued", len(fired.queued))
        self._count("taken", len(fired.taken))
        if fired.queued:
            log.info(
                "scheduled market requests",
                schedule=schedule.name,
                tick=tick_text(tick),
                queued=list(fired.queued),
                taken=list(fired.taken),
            )
        else:
            log.debug("tick already scheduled", schedule=schedule.name, tick=tick_text(tick))
        return True

    def _count(self, outcome: str, requests: int) -> None:
        if self._metrics is not None and requests:
            self._metrics.scheduled_requests.labels(outcome).inc(requests)
