"""One channel's fan-out consumer: the handler that sends each wanted record once, the marks
that make it once, and the stream source that starts a new channel at the stream's end.

Once per (record, channel), across crashes and consumers, by a Redis key per pair
(``<NOTIFY_PREFIX>:sent:<channel id>:<correlation id>``):

1. claim it: ``SET key "sending ..." NX PX=CLAIM_IDLE_MS`` (already "sent": acknowledge, send
   nothing; another consumer's claim: retry later);
2. send;
3. mark it: ``SET key sent EX=NOTIFY_SENT_TTL`` (a failed send releases the claim instead);
4. return the commit, which acknowledges the entry (or, after MAX_DELIVERIES, dead-letters it
   on the channel's own stream) in one step.

A redelivery after a crash between 3 and 4 finds "sent" and sends nothing; a crash between 1
and 2 leaves a claim that expires, and the entry is then sent once. What is left, each at most
one duplicate per event:

* a crash, a kill or a Redis failure after the service took the message and before the mark
  is written: the service's reply in transit plus one Redis round trip, typically milliseconds;
* a send cut off by the drain timeout on shutdown while apprise's thread still delivers it;
* a send the service took but apprise reports as failed (a reply that timed out): it is
  retried like any failure.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Literal

import structlog
from redis.exceptions import RedisError

from signalsmith.engine.outcome import Commit
from signalsmith.errors import PoisonInput, TransientError
from signalsmith.notify.config import NotifyConfig
from signalsmith.notify.message import Notice, fit, read_notice
from signalsmith.notify.sender import Notifier
from signalsmith.redisclient import RedisClient
from signalsmith.source.redis_streams import Entry, GroupRef, StreamSource

log = structlog.get_logger("signalsmith.notify")

SENT: Final = b"sent"
Claim = Literal["claimed", "sent", "busy"]
# Delete the claim only while it is still this consumer's: once expired, another may hold it.
_RELEASE: Final = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class SentMarks:
    """The per-(channel, record) keys: a claim while a consumer sends, "sent" once it has."""

    def __init__(self, redis: RedisClient, *, claim_ms: int, sent_ttl_s: int) -> None:
        self._redis = redis
        self._claim_ms = claim_ms
        self._sent_ttl_s = sent_ttl_s
        self._release = redis.register_script(_RELEASE)

    async def claim(self, key: str, token: str) -> Claim:
        """Take the key for one send; "sent" when that already happened, "busy" when another
        consumer is sending it now (its claim lasts CLAIM_IDLE_MS, the group's own horizon
        for deciding that a consumer is gone)."""
        if await self._redis.set(key, token, nx=True, px=self._claim_ms):
            return "claimed"
        return "sent" if await self._redis.get(key) == SENT else "busy"

    async def release(self, key: str, token: str) -> None:
        """Give the key back after a failed send, so that the retry may send."""
        await self._release(keys=[key], args=[token])

    async def hold(self, key: str, owner: str, ms: int) -> bool:
        """Take ``key`` for ``owner`` for ``ms`` (a ticker's cooldown, owned by the record
        sent); True too when ``owner`` holds it already (its send was cut short by a crash
        and is redelivered), False while another record holds it."""
        if await self._redis.set(key, owner, nx=True, px=ms):
            return True
        return bool(await self._redis.get(key) == owner.encode())

    async def mark_sent(self, key: str) -> None:
        await self._redis.set(key, SENT, ex=self._sent_ttl_s)


class NotifyHandler:
    """Entry → at most one message on one channel → acknowledge. A record of a kind not
    notified is acknowledged untouched; one that cannot be read is a ``PoisonInput``; a channel
    that does not take the message is a ``TransientError`` (the entry stays pending)."""

    immediate = False  # a send goes over the network

    def __init__(
        self,
        notifier: Notifier,
        marks: SentMarks,
        config: NotifyConfig,
    ) -> None:
        self._notifier = notifier
        self._marks = marks
        self._config = config
        self._kinds: Collection[str] = config.kinds
        self._cooldown_ms = round(config.cooldown_s * 1000)

    async def handle(self, entry: Entry) -> Commit:
        raw = (entry.fields or {}).get(b"data")
        if raw is None:
            raise PoisonInput("bad_envelope", "the entry has no 'data' field")
        notice = read_notice(raw, self._kinds, self._config.rules)
        if notice is not None:
            await self._deliver(notice, entry.id)
        return Commit(entry.id)

    def handle_now(self, entry: Entry) -> Commit:
        raise NotImplementedError("notifications are sent by handle()")

    async def _deliver(self, notice: Notice, entry_id: str) -> None:
        channel = self._notifier.channel
        key = self._config.sent_key(channel, notice.key)
        await self._notifier.ready()
        token = f"sending {self._config.consumer} {entry_id}"
        claim = await self._marks.claim(key, token)
        if claim == "sent":
            log.info("already sent; acknowledging", channel=channel.shown, record=notice.key)
            return
        if claim == "busy":
            raise TransientError(f"{channel.shown}: {notice.key} is being sent by another consumer")
        quiet = self._cooldown_key(notice)
        if quiet is not None and not await self._marks.hold(quiet, notice.key, self._cooldown_ms):
            await self._marks.mark_sent(key)  # decided: not sent (a redelivery skips it too)
            log.info("ticker in cooldown; not sent", channel=channel.shown, record=notice.key)
            return
        title, body = fit(notice, self._notifier.limit, self._notifier.title_limit)
        try:
            await self._notifier.send(title, body)
        except TransientError:
            await self._give_back(key, token)
            if quiet is not None:  # the retry may send: this send did not happen
                await self._give_back(quiet, notice.key)
            raise
        await self._marks.mark_sent(key)
        log.debug("notification sent", channel=channel.shown, kind=notice.kind, record=notice.key)

    def _cooldown_key(self, notice: Notice) -> str | None:
        """The channel's cooldown mark for the notice's ticker; None without a cooldown."""
        if self._cooldown_ms <= 0 or not notice.ticker:
            return None
        return self._config.cooldown_key(self._notifier.channel, notice.ticker_key)

    async def _give_back(self, key: str, token: str) -> None:
        try:
            await self._marks.release(key, token)
        except RedisError as exc:  # the claim expires by itself; the send error is what counts
            log.warning("could not release a notification claim", error=type(exc).__name__)


class NotifySource(StreamSource):
    """A channel's reader: creates its group at the stream's end (``start="new"``), so a
    channel added to a running system is not sent the stream's whole history."""

    def __init__(
        self,
        redis: RedisClient,
        ref: GroupRef,
        *,
        block_ms: int,
        claim_idle_ms: int,
        from_start: bool = False,
    ) -> None:
        start = "0" if from_start else "$"
        super().__init__(redis, ref, block_ms=block_ms, claim_idle_ms=claim_idle_ms, start=start)
