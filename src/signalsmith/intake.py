"""Requests over HTTP, queued on a pipeline's input stream: ``POST /api/insights`` (market
requests) and ``POST /api/strategy-signals`` validate the body, queue it and answer at once;
``state`` says where a request without a stored result stands.

A queued request is remembered under ``<prefix>:<key>`` (its key: the correlation id or the
signal id; its value: the stream entry id, for the configured TTL). One script, one round trip:
a key already remembered is not queued again (a client retrying its POST gets the same answer,
and the pipeline does the work once); otherwise the request is XADDed (one ``data`` JSON field,
as the pipeline reads it) and its entry id remembered, so a request that failed can be found
among the dead letters written after it.

On a Redis Cluster whose request prefix and stream do not share a hash slot, a script cannot
touch both, so the same happens in three calls: ``SET key queued NX EX ttl``, ``XADD``, ``SET
key <entry id> XX KEEPTTL`` (a failed XADD deletes the key again). A crash between the first
two leaves a key saying "queued" for a request that never was, until the key expires (the POST
itself failed, so the client knows to send it again, under a new id).

Where a request without a stored result stands comes from Redis: ``failed`` once it was
dead-lettered, ``processing`` while a worker of the pipeline's group holds it unacknowledged
(being computed, or read ahead as the next; with how many times it was delivered), ``decided``
once acknowledged (its result on its way to the store), ``pending`` before the group read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from pydantic_core import from_json
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import ResponseError

from signalsmith.errors import PoisonInput
from signalsmith.redisclient import LoopClient, RedisClient, redis_errors
from signalsmith.source.redis_streams import entry_order

QUEUED: Final = b"queued"
DEAD_LETTERS_SEARCHED: Final = 1_000  # dead letters written after a request, oldest first
DEAD_LETTER_PAGE: Final = 100
# KEYS: the request key, the stream; ARGV: the TTL in seconds, the data field.
_SUBMIT: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id = redis.call('XADD', KEYS[2], '*', 'data', ARGV[2])
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return id
"""


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    stream: str  # MARKET_STREAM
    group: str  # the pipeline's consumer group on it
    dead_letter_stream: str
    max_body_bytes: int
    key_prefix: str
    ttl_s: int


@dataclass(frozen=True, slots=True)
class Submission:
    """A request as it is queued: its key, its ``data`` field, and what it is about."""

    key: str  # the correlation id, or the signal id
    data: str  # JSON
    subject: str  # the product or symbol


@dataclass(frozen=True, slots=True)
class Queued:
    key: str
    entry_id: str | None  # None: queued by an earlier POST with this key
    subject: str


Parse = Callable[[Any], Submission]  # a parsed JSON body -> its submission, or PoisonInput


@dataclass(frozen=True, slots=True)
class RequestState:
    """Where a request without a stored result stands."""

    state: Literal["pending", "processing", "decided", "failed"]
    reason: str = ""  # failed: the dead letter's reason and detail
    detail: str = ""
    deliveries: int = 0  # processing: times the pipeline was given it (1 unless retried)


class StreamIntake:
    """Queues requests from HTTP bodies and finds what became of them. Its Redis client is made
    on first use, on the event loop that uses it (the HTTP thread's)."""

    def __init__(
        self, config: IntakeConfig, connect: Callable[[], RedisClient], parse: Parse
    ) -> None:
        self._config = config
        self._parse = parse
        self._client = LoopClient(connect)
        self._script: tuple[RedisClient, AsyncScript] | None = None

    @property
    def max_body_bytes(self) -> int:
        return self._config.max_body_bytes

    @property
    def _redis(self) -> RedisClient:
        return self._client.get()

    async def submit(self, body: bytes) -> Queued:
        """Queue the request in ``body``. Raises ``PoisonInput`` for a body that is no request
        and ``TransientError`` when Redis cannot take it now."""
        submission = self._parse(json_body(body, self._config.max_body_bytes))
        key = self._key(submission.key)
        with redis_errors("queueing a request"):
            if self._one_slot(key):
                entry_id = await self._queue_at_once(key, submission.data)
            else:
                entry_id = await self._queue_in_steps(key, submission.data)
        return Queued(submission.key, entry_id, submission.subject)

    def _one_slot(self, key: str) -> bool:
        """Whether one script may touch ``key`` and the stream: always on one server."""
        redis = self._redis
        if not isinstance(redis, RedisCluster):
            return True
        return key_slot(key.encode()) == key_slot(self._config.stream.encode())

    async def _queue_at_once(self, key: str, data: str) -> str | None:
        """The entry id, or None for a key already queued."""
        redis = self._redis
        if self._script is None or self._script[0] is not redis:
            self._script = (redis, redis.register_script(_SUBMIT))
        reply = await self._script[1](
            keys=[key, self._config.stream], args=[self._config.ttl_s, data]
        )
        if reply is None:
            return None
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    async def _queue_in_steps(self, key: str, data: str) -> str | None:
        if not await self._redis.set(key, QUEUED, nx=True, ex=self._config.ttl_s):
            return None
        try:
            entry_id = await self._xadd(data)
        except BaseException:
            await self._redis.delete(key)
            raise
        await self._redis.set(key, entry_id, xx=True, keepttl=True)
        return entry_id

    async def state(self, key: str) -> RequestState | None:
        """Where the request queued under ``key`` stands; None for a key not queued here (or
        longer ago than the TTL)."""
        with redis_errors("reading a request's state"):
            value = await self._redis.get(self._key(key))
            if value is None:
                return None
            if value == QUEUED:
                return RequestState("pending")
            entry_id = value.decode() if isinstance(value, bytes) else str(value)
            return await self._progress(entry_id)

    async def _progress(self, entry_id: str) -> RequestState:
        """From the group's view of ``entry_id``, asked in the order it moves (so a request
        moving on between two calls reads as where it was): not read yet ``pending``; held
        ``processing``; let go, ``failed`` if dead-lettered, else ``decided``."""
        stream, group = self._config.stream, self._config.group
        try:
            groups = await self._redis.xinfo_groups(stream)
        except ResponseError:  # no stream yet
            return RequestState("pending")
        read_up_to = next(
            (
                _text(found.get("last-delivered-id"))
                for found in groups
                if _text(found.get("name")) == group
            ),
            None,
        )
        if read_up_to is None or entry_order(read_up_to) < entry_order(entry_id):
            return RequestState("pending")
        try:
            held = await self._redis.xpending_range(stream, group, entry_id, entry_id, 1)
        except ResponseError:  # the group was just deleted
            return RequestState("pending")
        if held:
            return RequestState("processing", deliveries=int(held[0]["times_delivered"]))
        return await self._dead_letter(entry_id) or RequestState("decided")

    async def _xadd(self, data: str) -> str:
        # Never trimmed here: an input stream loses only what its consumers acknowledged.
        entry_id = await self._redis.xadd(self._config.stream, {"data": data})
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def _dead_letter(self, entry_id: str) -> RequestState | None:
        """The dead letter of the request queued as ``entry_id``: among those written after it,
        oldest first (a request fails soon after it is queued), DEAD_LETTER_PAGE at a time, at
        most DEAD_LETTERS_SEARCHED."""
        start, wanted = entry_id, entry_id.encode()
        for _ in range(DEAD_LETTERS_SEARCHED // DEAD_LETTER_PAGE):
            letters = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self._redis.xrange(
                    self._config.dead_letter_stream, min=start, max="+", count=DEAD_LETTER_PAGE
                ),
            )
            for letter_id, fields in letters:
                if fields.get(b"entry_id") == wanted:
                    reason = fields.get(b"reason", b"").decode("utf-8", "replace")
                    detail = fields.get(b"detail", b"").decode("utf-8", "replace")
                    return RequestState("failed", reason, detail)
                start = "(" + letter_id.decode()
            if len(letters) < DEAD_LETTER_PAGE:
                return None
        return None

    def _key(self, key: str) -> str:
        return f"{self._config.key_prefix}:{key}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def json_body(body: bytes, limit: int) -> dict[str, Any]:
    """The JSON object a POST body holds."""
    if len(body) > limit:
        raise PoisonInput("oversize", f"{len(body)} bytes, limit {limit}")
    try:
        values = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise PoisonInput("bad_request", f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(values, dict):
        raise PoisonInput("bad_request", f"a JSON object is needed, not {type(values).__name__}")
    return values
