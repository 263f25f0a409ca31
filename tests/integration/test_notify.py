"""Notifications end to end: the real engines, apprise and Redis, posting to a local webhook
server. Each insight reaches each channel once with its text; kinds not notified are only
acknowledged; a failing channel retries and dead-letters on its own stream while the others
keep up; a redelivery after the send sends nothing again; a long text is cut to the channel's
limit; the secret in a channel's URL appears in no log, dead letter or error."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
import structlog
from redis.asyncio import Redis

from signalsmith.engine.stats import EngineStats
from signalsmith.errors import ConfigError
from signalsmith.notify import NotifyConfig, build_notifiers, parse_channels
from signalsmith.notify.channels import Channel
from signalsmith.notify.consumer import NotifyHandler, SentMarks
from signalsmith.notify.message import ELLIPSIS, SEPARATOR, units
from signalsmith.notify.sender import AppriseNotifier, Backoff
from signalsmith.observe.metrics import Metrics
from signalsmith.source.redis_streams import GroupRef, StreamSource
from tests.unit.test_notify_message import TEXT, insight_bytes
from tests.unit.test_store_rows import envelope_bytes

pytestmark = [
    pytest.mark.redis,
    # apprise's e-mail plugin imports imghdr, which Python 3.11 deprecates (apprise's to fix)
    pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning"),
]
SECRET = "hunter2-Notify-Canary"
Letters = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class Received:
    path: str
    at: float  # time.time() on arrival
    title: str
    message: str
    authorization: str


@dataclass
class Webhook:
    """A local JSON webhook receiver: records every POST; paths in ``failing`` answer 500."""

    port: int = 0
    failing: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, userinfo: str = "") -> str:
        return f"json://{userinfo}127.0.0.1:{self.port}/{path}"

    def messages(self, path: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.path == f"/{path}"]


def _handler_class(hook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            with hook.lock:
                hook.attempts[self.path] = hook.attempts.get(self.path, 0) + 1
                failing = self.path.strip("/") in hook.failing
                if not failing:
                    hook.received.append(
                        Received(
                            self.path,
                            time.time(),
                            payload.get("title", ""),
                            payload.get("message", ""),
                            self.headers.get("Authorization", ""),
                        )
                    )
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    return Handler


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(hook))
    hook.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _config(prefix: str, urls: Sequence[str], **changes: Any) -> NotifyConfig:
    config = NotifyConfig(
        channels=parse_channels(" ".join(urls)),
        streams=(f"{prefix}:insights",),
        group=f"{prefix}-notify",
        prefix=f"{prefix}:notify",
        consumer="c1",
        claim_idle_ms=300,
        block_ms=50,
        max_deliveries=2,
        backoff_s=0.02,
        backoff_max_s=0.1,
        drain_timeout_s=2.0,
    )
    return replace(config, **changes)


async def _add(redis: Redis, stream: str, raws: Sequence[bytes]) -> None:
    for raw in raws:
        await redis.xadd(stream, {"data": raw})


async def _run(config: NotifyConfig, redis: Redis, idle_s: float = 0.4) -> dict[str, EngineStats]:
    """Every channel's engines until each is idle with nothing pending."""
    notifiers = build_notifiers(config, redis, Metrics())
    await notifiers.prepare()
    stop = asyncio.Event()
    names = list(notifiers.engines)
    runs = [engine.run(stop, until_idle=idle_s) for engine in notifiers.engines.values()]
    results = await asyncio.wait_for(asyncio.gather(*runs), timeout=60)
    return dict(zip(names, results, strict=True))


def _by_channel(config: NotifyConfig, stats: Mapping[str, EngineStats]) -> dict[str, EngineStats]:
    return {channel.id: stats[f"notify:{channel.id}"] for channel in config.channels}


async def _pending(redis: Redis, stream: str, group: str) -> int:
    return int((await redis.xpending(stream, group))["pending"])


async def test_each_insight_reaches_every_channel_once_with_its_text(
    redis: Redis, prefix: str, webhook: Webhook
) -> None:
    """Two channels, three insights: three messages each, titled "<product> <verdict> (conf
    <c>)" with the insight as the body; every entry acknowledged; each send marked (with a TTL)."""
    config = _config(prefix, [webhook.url("a"), webhook.url("b")], start="all")
    stream = config.streams[0]
    products = ["BTC-USD", "ETH-USD", "SOL-USD"]
    await _add(redis, stream, [insight_bytes(p, correlation_id=f"req-{p}") for p in products])
    stats = await _run(config, redis)
    for path in ("a", "b"):
        messages = webhook.messages(path)
        assert [m.title for m in messages] == [f"{p} BUY (conf 0.62)" for p in products]
        assert {m.message for m in messages} == {TEXT}
    for channel in config.channels:
        assert stats[f"notify:{channel.id}"].acknowledged == 3
        assert await _pending(redis, stream, config.group_of(channel)) == 0
        key = config.sent_key(channel, "req-BTC-USD")
        assert await redis.get(key) == b"sent"
        assert 0 < await redis.ttl(key) <= config.sent_ttl_s


async def test_kinds_not_notified_are_acknowledged_without_a_message(
    redis: Redis, prefix: str, webhook: Webhook
) -> None:
    """NOTIFY_KINDS=insight: a post on the same stream is acknowledged and sends nothing; with
    post added, it is sent too."""
    stream = f"{prefix}:insights"
    await _add(redis, stream, [envelope_bytes("NVDA"), insight_bytes()])
    only_insights = _config(prefix, [webhook.url("insights")], start="all")
    stats = await _run(only_insights, redis)
    assert [m.title for m in webhook.messages("insights")] == ["BTC-USD BUY (conf 0.62)"]
    (counts,) = stats.values()
    assert (counts.read, counts.acknowledged, counts.dead_lettered) == (2, 2, 0)
    both = _config(prefix, [webhook.url("both")], start="all", kinds=frozenset({"insight", "post"}))
    await _run(both, redis)
    assert [m.title for m in webhook.messages("both")] == [
        "NVDA BUY (conf 0.80) · post",
        "BTC-USD BUY (conf 0.62)",
    ]


async def test_a_failing_channel_dead_letters_on_its_own_while_the_other_keeps_up(
    redis: Redis, prefix: str, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    """One webhook answers 500: the good channel has every message before the first dead
    letter is written; the failing one tries each entry MAX_DELIVERIES times, then moves it to
    its own dead-letter stream with a reason. The URL's password appears in no log line, dead
    letter or error."""
    webhook.failing.add("down")
    good, bad = webhook.url("up"), webhook.url("down", f"user:{SECRET}@")
    config = _config(prefix, [good, bad], start="all")
    stream = config.streams[0]
    await _add(redis, stream, [insight_bytes(correlation_id=f"r{n}") for n in range(5)])
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        stats = await _run(config, redis)
    good_channel, bad_channel = config.channels
    assert len(webhook.messages("up")) == 5
    assert webhook.attempts["/down"] == 5 * config.max_deliveries
    letters = cast(Letters, await redis.xrange(config.dlq_of(stream, bad_channel)))
    assert len(letters) == 5
    first_letter_ms = int(letters[0][0].split(b"-")[0])
    assert max(m.at for m in webhook.messages("up")) * 1000 < first_letter_ms
    for _id, fields in letters:
        assert fields[b"reason"] == b"max_deliveries"
        assert b"json://127.0.0.1" in fields[b"detail"]
        assert b"not delivered" in fields[b"detail"]
        assert fields[b"orig.data"].startswith(b'{"schema_version":"1"')
    assert await redis.xlen(config.dlq_of(stream, good_channel)) == 0
    by_channel = _by_channel(config, stats)
    assert by_channel[bad_channel.id].dead_lettered == 5
    assert by_channel[good_channel.id].dead_lettered == 0
    for channel in config.channels:
        assert await _pending(redis, stream, config.group_of(channel)) == 0
    said = [json.dumps(logs, default=str), caplog.text, *(str(f) for _i, f in letters)]
    said += [s.last_error for s in stats.values()]
    assert all(SECRET not in text for text in said)
    assert "not delivered" in json.dumps(logs, default=str)


async def test_an_entry_that_cannot_be_read_is_dead_lettered_on_the_channels_stream(
    redis: Redis, prefix: str, webhook: Webhook
) -> None:
    """Bad JSON, no ``data`` field, an unknown schema: each a dead letter with its reason on the
    channel's own stream, acknowledged, nothing sent; the good entry after them is sent."""
    config = _config(prefix, [webhook.url("strict")], start="all")
    (channel,) = config.channels
    stream = config.streams[0]
    await redis.xadd(stream, {"data": b"not json"})
    await redis.xadd(stream, {"json": insight_bytes()})
    await redis.xadd(stream, {"data": insight_bytes().replace(b'"1"', b'"9"', 1)})
    await _add(redis, stream, [insight_bytes()])
    stats = await _run(config, redis)
    letters = cast(Letters, await redis.xrange(config.dlq_of(stream, channel)))
    reasons = [fields[b"reason"] for _id, fields in letters]
    assert reasons == [b"bad_envelope", b"bad_envelope", b"unknown_schema"]
    assert len(webhook.messages("strict")) == 1
    (counts,) = stats.values()
    assert (counts.acknowledged, counts.dead_lettered) == (4, 3)


async def test_a_redelivery_after_the_send_sends_nothing_again(
    redis: Redis, prefix: str, webhook: Webhook
) -> None:
    """The crash window: the message went out and was marked, but the process died before
    the acknowledgement. The entry is still pending; redelivered, it is acknowledged unsent."""
    config = _config(prefix, [webhook.url("once")], start="all")
    (channel,) = config.channels
    stream = config.streams[0]
    await _add(redis, stream, [insight_bytes()])
    ref = GroupRef(stream, config.group_of(channel), config.consumer)
    source = StreamSource(redis, ref, block_ms=50, claim_idle_ms=config.claim_idle_ms)
    await source.ensure_group()
    (entry,) = await source.read(1, wait=False)
    await _handler(config, channel, redis).handle(entry)  # sent and marked; never acknowledged
    assert await _pending(redis, stream, ref.group) == 1
    stats = await _run(config, redis)
    assert len(webhook.messages("once")) == 1
    (counts,) = stats.values()
    assert (counts.read, counts.acknowledged) == (1, 1)
    assert await _pending(redis, stream, ref.group) == 0


async def test_a_crash_before_the_send_still_sends_once_when_the_claim_expires(
    redis: Redis, prefix: str, webhook: Webhook
) -> None:
    """A consumer that claimed an entry and died before sending: its claim holds others off
    until it expires (CLAIM_IDLE_MS), then the entry is sent, once."""
    config = _config(prefix, [webhook.url("late")], start="all", max_deliveries=10)
    (channel,) = config.channels
    await _add(redis, config.streams[0], [insight_bytes(correlation_id="req-9")])
    key = config.sent_key(channel, "req-9")
    await redis.set(key, "sending dead-consumer 1-0", px=config.claim_idle_ms)
    stats = await _run(config, redis)
    assert len(webhook.messages("late")) == 1
    assert await redis.get(key) == b"sent"
    (counts,) = stats.values()
    assert counts.retried >= 1
    assert counts.dead_lettered == 0


async def test_a_long_text_is_cut_to_the_channels_limit(
    redis: Redis, prefix: str, webhook: Webhook
) -> None:
    """A text far over the JSON webhook's limit arrives as one message, cut at the limit,
    ending in "…"."""
    config = _config(prefix, [webhook.url("long")], start="all")
    (channel,) = config.channels
    await _add(redis, config.streams[0], [insight_bytes(text="lorem ipsum " * 6_000)])
    await _run(config, redis)
    (message,) = webhook.messages("long")
    assert message.title == "BTC-USD BUY (conf 0.62)"
    assert units(message.title) + SEPARATOR + units(message.message) <= channel.limit
    assert units(message.message) > channel.limit - 100
    assert message.message.endswith(ELLIPSIS)


async def test_a_new_channel_starts_at_the_end_of_the_stream(
    redis: Redis, prefix: str, webhook: Webhook
) -> None:
    """NOTIFY_START=new: what the stream held before the channel existed is not sent; what
    arrives after its group is prepared is."""
    config = _config(prefix, [webhook.url("fresh")])
    stream = config.streams[0]
    await _add(redis, stream, [insight_bytes("OLD-USD", correlation_id="old")])
    notifiers = build_notifiers(config, redis, Metrics())
    await notifiers.prepare()
    await _add(redis, stream, [insight_bytes("NEW-USD", correlation_id="new")])
    await _run(config, redis)
    assert [m.title for m in webhook.messages("fresh")] == ["NEW-USD BUY (conf 0.62)"]


async def test_the_password_reaches_the_service_but_nothing_else(
    redis: Redis, prefix: str, webhook: Webhook
) -> None:
    """The URL's credentials are sent to the webhook (HTTP basic auth) and shown nowhere."""
    config = _config(prefix, [webhook.url("auth", f"user:{SECRET}@")], start="all")
    await _add(redis, config.streams[0], [insight_bytes()])
    stats = await _run(config, redis)
    (message,) = webhook.messages("auth")
    assert message.authorization.startswith("Basic ")
    (channel,) = config.channels
    assert SECRET not in f"{channel} {channel!r} {list(stats)} {config.group_of(channel)}"


def test_a_url_apprise_cannot_send_to_stops_start_up_without_quoting_it() -> None:
    (channel,) = parse_channels(f"nosuchservice://user:{SECRET}@example.com/x")
    with pytest.raises(ConfigError, match="NOTIFY_URLS") as caught:
        AppriseNotifier(channel, Backoff(1, 1))
    assert SECRET not in str(caught.value)


def _handler(config: NotifyConfig, channel: Channel, redis: Redis) -> NotifyHandler:
    marks = SentMarks(redis, claim_ms=config.claim_idle_ms, sent_ttl_s=config.sent_ttl_s)
    notifier = AppriseNotifier(channel, Backoff(config.backoff_s, config.backoff_max_s))
    return NotifyHandler(notifier, marks, config)
