"""The notification consumers, concretely: per channel one apprise sender and, per stream it
reads, one engine with the channel's own consumer group and dead-letter stream. A channel that
fails only keeps its own entries pending; the others read on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError

from signalsmith.engine.engine import Engine, EngineConfig
from signalsmith.notify.channels import Channel, url_list_secrets
from signalsmith.notify.config import NotifyConfig, NotifySettings
from signalsmith.notify.consumer import NotifyHandler, NotifySource, SentMarks
from signalsmith.notify.sender import AppriseNotifier, Backoff
from signalsmith.observe.metrics import Metrics
from signalsmith.redisclient import RedisClient
from signalsmith.sink.redis_publish import RedisCommitter
from signalsmith.source.redis_streams import GroupRef

log = structlog.get_logger("signalsmith.notify")


@dataclass(frozen=True, slots=True)
class Notifiers:
    """Every channel's engines, by name (``notify:<channel id>``, plus ``@<stream>`` when
    several streams are read), with the groups they read."""

    engines: Mapping[str, Engine]
    refs: Mapping[str, GroupRef]
    channels: tuple[Channel, ...]
    sources: tuple[NotifySource, ...]

    async def prepare(self) -> bool:
        """Create every channel's group now, before the pipelines publish: a group created at
        the stream's end after the first records were added would never see them. False when
        Redis does not answer yet: each engine then creates its group once it does."""
        try:
            for source in self.sources:
                await source.ensure_group()
        except RedisError as exc:
            log.warning("notification groups not created yet", error=type(exc).__name__)
            return False
        return True


def build_notifiers(config: NotifyConfig, redis: RedisClient, metrics: Metrics) -> Notifiers:
    """The engines for ``config``. Raises ``ConfigError`` for a URL apprise cannot send to."""
    engines: dict[str, Engine] = {}
    refs: dict[str, GroupRef] = {}
    sources: list[NotifySource] = []
    marks = SentMarks(redis, claim_ms=config.claim_idle_ms, sent_ttl_s=config.sent_ttl_s)
    for channel in config.channels:
        notifier = AppriseNotifier(
            channel,
            Backoff(config.backoff_s, config.backoff_max_s),
            max_in_flight=config.max_in_flight,
        )
        handler = NotifyHandler(notifier, marks, config)
        for stream in config.streams:
            name = f"notify:{channel.id}" + (f"@{stream}" if len(config.streams) > 1 else "")
            ref = GroupRef(stream, config.group_of(channel), config.consumer)
            source = NotifySource(
                redis,
                ref,
                block_ms=config.block_ms,
                claim_idle_ms=config.claim_idle_ms,
                from_start=config.start == "all",
            )
            engines[name] = Engine(
                _engine_config(config, stream, config.dlq_of(stream, channel)),
                source=source,
                committer=RedisCommitter(redis, ref),
                handler=handler,
                metrics=metrics.pipeline(name),
            )
            refs[name] = ref
            sources.append(source)
    return Notifiers(engines, refs, config.channels, tuple(sources))


def notify_secrets(settings: NotifySettings) -> list[str]:
    """Every secret NOTIFY_URLS carries, for the log scrubber (even when it does not parse)."""
    urls = settings.notify_urls.get_secret_value() if settings.notify_urls else ""
    return url_list_secrets(urls)


def _engine_config(config: NotifyConfig, stream: str, dlq_stream: str) -> EngineConfig:
    return EngineConfig(
        stream=stream,
        dlq_stream=dlq_stream,
        dlq_maxlen=config.dlq_maxlen,
        read_count=config.read_count,
        max_in_flight=config.max_in_flight,
        max_deliveries=config.max_deliveries,
        drain_timeout_s=config.drain_timeout_s,
        block_s=config.block_ms / 1000,
    )
