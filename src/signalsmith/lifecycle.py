"""Start-up wiring: the one place that knows the concrete Redis, SQL store and analyzers, and
builds each pipeline's engine from the settings (``service`` runs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from signalsmith.analyze.base import Analyzer
from signalsmith.analyze.llm.providers import ProviderConfig, resolve_providers
from signalsmith.analyze.offline import OfflineAnalyzer
from signalsmith.cluster import check_cluster_slots, open_cluster
from signalsmith.decide import DEAD_ZONE
from signalsmith.embedded import EmbeddedRedis
from signalsmith.engine.engine import Engine, EngineConfig
from signalsmith.engine.outcome import Committer, Handler
from signalsmith.engine.stats import EngineStats
from signalsmith.errors import ConfigError
from signalsmith.observe.metrics import Metrics, PipelineMetrics
from signalsmith.pipelines.posts import PostsConfig, PostsHandler
from signalsmith.redact import redact_url, url_secrets
from signalsmith.redisclient import RedisClient
from signalsmith.settings import Settings
from signalsmith.sink.consensus import ConsensusPart, RollingConfig
from signalsmith.sink.hash_part import HashPart
from signalsmith.sink.outputs import OutputPolicy
from signalsmith.sink.redis_publish import RedisCommitter
from signalsmith.source.redis_streams import GroupRef, StreamSource
from signalsmith.tickers import TickerExtractor, load_symbol_book

if TYPE_CHECKING:  # the LLM stack (the openai SDK, aiohttp) loads only when a provider is set
    from signalsmith.analyze.llm.batching import BatchOptions
    from signalsmith.analyze.llm.chain import LLMChain, ProviderSlot
    from signalsmith.analyze.llm.limits import SystemClock
    from signalsmith.analyze.llm.openai_compat import HttpPool
    from signalsmith.analyze.llm.reuse import Reuse
    from signalsmith.dedup import StoryIndex
    from signalsmith.market.finder import SourceFinder
    from signalsmith.market.llm_insight import InsightWriter
    from signalsmith.market.scheduler import InsightScheduler
    from signalsmith.pipelines.market import CandleFinder, MarketConfig, ModelWriter
    from signalsmith.pipelines.strategy import SignalRater
    from signalsmith.store.writer import RowWriter
    from signalsmith.strategy.llm_rating import StrategyRater

log = structlog.get_logger("signalsmith")

_SECONDS_PER_DAY = 86_400
_GC_YOUNG_THRESHOLD = 50_000  # allocations between young-generation collections (default 700)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value the settings hold, for the log scrubber."""
    values = [settings.redis_password, settings.api_token]
    values += [p.api_key for p in settings.providers.values()]
    found = [value.get_secret_value() for value in values if value is not None]
    if settings.redis_url is not None:
        found += url_secrets(settings.redis_url.get_secret_value())
    if settings.database_url is not None:
        found += url_secrets(settings.database_url.get_secret_value())
    for provider in settings.providers.values():
        found += url_secrets(provider.base_url or "")
    found += url_secrets(settings.market_exchange_url or "")
    if settings.notify_urls is not None:
        from signalsmith.notify.build import notify_secrets

        found += notify_secrets(settings)
    return found


@dataclass(frozen=True, slots=True)
class RedisHandle:
    client: RedisClient  # a RedisCluster with REDIS_CLUSTER=true
    where: str  # for logs and /health: never holds a password
    cli_hint: str
    embedded: bool
    # Another client to the same Redis, for another event loop (the HTTP thread's).
    connect: Callable[[], RedisClient]


@contextlib.asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[RedisHandle]:
    """Connect to the configured Redis, or start the embedded one; close (and stop) on exit."""
    embedded: EmbeddedRedis | None = None
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    options: dict[str, Any] = {"socket_connect_timeout": 5, "health_check_interval": 30}
    connect: Callable[[], RedisClient]
    if settings.redis_cluster:
        check_cluster_slots(settings)
        client, where, hint = open_cluster(settings, password, options)
        handle = RedisHandle(
            client, where, hint, False, lambda: open_cluster(settings, password, options)[0]
        )
    elif settings.redis_url is not None:
        url = settings.redis_url.get_secret_value()
        connect = functools.partial(Redis.from_url, url, password=password, **options)
        shown = redact_url(url)
        handle = RedisHandle(connect(), shown, f"redis-cli -u {shown}", False, connect)
    elif settings.redis_addr is not None:
        host, _, port = settings.redis_addr.rpartition(":")
        connect = functools.partial(Redis, host=host, port=int(port), password=password, **options)
        handle = RedisHandle(
            connect(),
            redact_url(f"redis://{settings.redis_addr}"),
            f"redis-cli -h {host} -p {port}",
            False,
            connect,
        )
    else:
        embedded = EmbeddedRedis(settings.state_dir)
        socket_path = await asyncio.to_thread(embedded.start)
        connect = functools.partial(Redis, unix_socket_path=socket_path, **options)
        handle = RedisHandle(connect(), f"unix://{socket_path}", embedded.cli_hint, True, connect)
    try:
        if not handle.embedded and settings.redis_strict_start:
            await _check_credentials(handle.client, settings)
        yield handle
    finally:
        await handle.client.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def _unknown_host(cause: BaseException | None) -> bool:
    """The resolver says the name does not exist (not a passing failure such as EAI_AGAIN)."""
    final = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
    return isinstance(cause, socket.gaierror) and cause.errno in final


async def _check_credentials(client: RedisClient, settings: Settings) -> None:
    """At start-up, a refused password or a host name that does not resolve is the operator's
    mistake and stops with one line (REDIS_STRICT_START=false waits them out instead); a server
    that refuses connections or does not answer yet is waited out by the worker. With
    REDIS_CLUSTER=true, a server that is no cluster node stops start-up too."""
    setting = "REDIS_URL" if settings.redis_url is not None else "REDIS_ADDR"
    retry = client.get_retry() if isinstance(client, Redis) else client.retry
    client.set_retry(Retry(NoBackoff(), 0))  # redis-py would retry a refused password for a while
    try:
        await client.ping()
    except RedisClusterException as exc:
        if "Cluster mode is not enabled" not in str(exc):
            raise
        raise ConfigError("REDIS_CLUSTER", f"{setting} is no cluster node") from None
    except (AuthenticationError, NoPermissionError):
        credential = "REDIS_PASSWORD" if settings.redis_password is not None else setting
        raise ConfigError(credential, "Redis refused the credentials") from None
    except (RedisConnectionError, RedisTimeoutError) as exc:
        if _unknown_host(exc.__cause__ or exc.__context__):
            raise ConfigError(setting, "the host name does not resolve") from None
        log.warning("redis not reachable yet; waiting for it", error=type(exc).__name__)
    finally:
        if retry is not None:
            client.set_retry(retry)


def group_ref(settings: Settings) -> GroupRef:
    """The input stream, group and consumer the settings name."""
    return GroupRef(settings.stream, settings.group, settings.consumer)


def consensus_part(settings: Settings) -> ConsensusPart:
    """The posts pipeline's part of the commit: the daily hash, the rolling view and spikes."""
    publish = settings.output_format in ("envelope", "both")
    return ConsensusPart(
        RollingConfig(
            dead_zone=DEAD_ZONE,
            hash_ttl_s=int(settings.decision_ttl_days * _SECONDS_PER_DAY),
            window_s=settings.consensus_window_s,
            bucket_s=settings.spike_bucket_s,
            baseline_buckets=settings.spike_baseline_s // settings.spike_bucket_s,
            spike_factor=settings.spike_factor,
            spike_min_mentions=settings.spike_min_mentions,
            spike_stream=settings.signal_stream if publish else "",
            spike_maxlen=settings.signal_maxlen,
            log_stream=settings.decision_stream,
            log_maxlen=settings.decision_maxlen,
        )
    )


def build_posts(
    settings: Settings,
    redis: RedisClient,
    metrics: Metrics,
    analyzers: Sequence[Analyzer] | None = None,
) -> Engine:
    """The posts pipeline, concretely: its stream, committer, analyzers and symbol book."""
    book = load_symbol_book()
    ref = group_ref(settings)
    stats = EngineStats()
    handler = PostsHandler(
        PostsConfig(
            stream=settings.stream,
            max_message_bytes=settings.max_message_bytes,
            policy=_output_policy(settings),
            max_tickers=settings.max_tickers_per_post,
        ),
        analyzers=list(analyzers) if analyzers is not None else [OfflineAnalyzer()],
        book=book,
        extractor=TickerExtractor(book),
        metrics=metrics,
        on_error=stats.error,
    )
    return Engine(
        _engine_config(settings, settings.stream, settings.dead_letter_stream),
        source=_source(settings, redis, ref),
        committer=RedisCommitter(redis, ref, consensus_part(settings)),
        handler=handler,
        metrics=metrics.pipeline("posts"),
        stats=stats,
    )


def build_market(
    settings: Settings,
    redis: RedisClient,
    metrics: Metrics,
    candles: CandleFinder,
    model: ModelWriter | None = None,
) -> Engine:
    """The market pipeline, concretely: its stream, committer and candle sources (numpy and
    TA-Lib load only when it runs)."""
    from signalsmith.pipelines.market import MarketHandler

    ref = GroupRef(settings.market_stream, settings.market_group, settings.consumer)
    handler = MarketHandler(market_config(settings), candles, model)
    config = _engine_config(settings, settings.market_stream, settings.market_dead_letter_stream)
    return Engine(
        replace(config, max_in_flight=settings.market_max_in_flight),
        source=_source(settings, redis, ref),
        committer=RedisCommitter(redis, ref, HashPart()),
        handler=handler,
        metrics=metrics.pipeline("market"),
    )


def build_strategy(
    settings: Settings,
    redis: RedisClient,
    metrics: Metrics,
    rater: SignalRater | None = None,
) -> Engine:
    """The strategy pipeline, concretely. With no model its handler runs inline."""
    from signalsmith.pipelines.strategy import StrategyConfig, StrategyHandler

    ref = GroupRef(settings.strategy_stream, settings.strategy_group, settings.consumer)
    config = StrategyConfig(
        stream=settings.strategy_stream,
        max_message_bytes=settings.max_message_bytes,
        enhanced_stream=settings.enhanced_stream,
        enhanced_maxlen=settings.enhanced_maxlen,
        decision_stream=settings.decision_stream,
        decision_maxlen=settings.decision_maxlen,
        max_age_s=settings.strategy_max_age_s,
        max_bars=settings.strategy_max_bars,
        arena_id=settings.arena_id,
    )
    engine_config = _engine_config(
        settings, settings.strategy_stream, settings.strategy_dead_letter_stream
    )
    return Engine(
        replace(engine_config, max_in_flight=settings.strategy_max_in_flight),
        source=_source(settings, redis, ref),
        committer=RedisCommitter(redis, ref),
        handler=StrategyHandler(config, rater),
        metrics=metrics.pipeline("strategy"),
    )


def build_candle_finder(settings: Settings, redis: RedisClient | None) -> SourceFinder:
    """Where a request without candles gets them, in order: the configured file or directory,
    a Redis stream per product, the exchange's public API."""
    from signalsmith.market.candle_files import FileCandles
    from signalsmith.market.candle_stream import StreamCandles
    from signalsmith.market.exchange import ExchangeCandles
    from signalsmith.market.finder import SourceFinder
    from signalsmith.market.sources import CandleSource

    sources: list[CandleSource] = []
    if settings.market_candles is not None:
        sources.append(FileCandles(settings.market_candles))
    if redis is not None:
        sources.append(StreamCandles(redis, prefix=settings.market_candle_prefix))
    if settings.market_exchange:
        sources.append(
            ExchangeCandles(
                settings.market_exchange,
                base_url=settings.market_exchange_url,
                ttl_s=settings.market_candle_cache_s,
            )
        )
    return SourceFinder(*sources)


def build_scheduler(
    settings: Settings, redis: RedisClient, metrics: Metrics
) -> InsightScheduler | None:
    """INSIGHT_SCHEDULE's requests on MARKET_STREAM, or None without a schedule. A malformed
    schedule stops start-up; so does, on a Redis Cluster, a MARKET_STREAM without a hash tag
    (the locks are written with the requests in one script, so they need the stream's slot)."""
    from signalsmith.cluster import hash_tag, tagged
    from signalsmith.market.schedule import parse_schedules
    from signalsmith.market.scheduler import InsightScheduler

    schedules = parse_schedules(settings.insight_schedule)
    if not schedules:
        return None
    if settings.redis_cluster and hash_tag(settings.market_stream) is None:
        example = tagged(settings.market_stream, "signalsmith")
        raise ConfigError(
            "MARKET_STREAM",
            "REDIS_CLUSTER=true and INSIGHT_SCHEDULE writes its locks "
            f"(<MARKET_STREAM>:schedule:...) with the requests, so it needs a hash tag: "
            f"e.g. MARKET_STREAM={example}",
        )
    return InsightScheduler(redis, settings.market_stream, schedules, metrics=metrics)


def market_config(settings: Settings) -> MarketConfig:
    from signalsmith.market.insight import InsightOptions
    from signalsmith.pipelines.market import MarketConfig

    return MarketConfig(
        stream=settings.market_stream,
        max_message_bytes=settings.max_message_bytes,
        insight_stream=settings.insight_stream,
        insight_maxlen=settings.insight_maxlen,
        decision_stream=settings.decision_stream,
        decision_maxlen=settings.decision_maxlen,
        hash_prefix=settings.decision_hash_prefix,
        hash_ttl_s=int(settings.decision_ttl_days * _SECONDS_PER_DAY),
        granularity=settings.market_granularity,
        lookback=settings.market_lookback,
        options=InsightOptions(
            short_window=settings.market_short_window,
            long_window=settings.market_long_window,
            exchange=settings.market_exchange,
            arena_id=settings.arena_id,
        ),
    )


STORE_PENDING = "store:strategy"  # the store's reader of STRATEGY_STREAM: pending rows
STORE_FAILED = "store:strategy-dlq"  # ... and of its dead letters: those rows failed


@dataclass(frozen=True, slots=True)
class StoreConsumer:
    """The SQL store's engine and the writer to close when it is done."""

    engine: Engine
    writer: RowWriter
    where: str  # the database, password masked
    # With the strategy pipeline: the readers of its signals and of its dead letters, by name.
    readers: dict[str, tuple[Engine, GroupRef]] = field(default_factory=dict)


async def build_store(settings: Settings, redis: RedisClient, metrics: Metrics) -> StoreConsumer:
    """The SQL store as a fan-out consumer of the decision stream, its schema brought up to
    date first (several processes starting together apply each migration once)."""
    from signalsmith.store.consumer import StoreHandler
    from signalsmith.store.database import database_target
    from signalsmith.store.migrate import upgrade_database
    from signalsmith.store.writer import RowWriter, SqlCommitter

    target = database_target(settings)
    await upgrade_database(target)
    writer = RowWriter.open(target)
    ref = GroupRef(settings.decision_stream, settings.store_group, settings.consumer)
    dlq = settings.store_dead_letter_stream
    engine = Engine(
        replace(
            _engine_config(settings, settings.decision_stream, dlq),
            read_count=settings.store_batch,
            log_stream="",
        ),
        source=_source(settings, redis, ref),
        committer=SqlCommitter(writer.write_rows, redis, ref),
        handler=StoreHandler(),
        metrics=metrics.pipeline("store"),
    )
    readers = (
        _strategy_readers(settings, redis, metrics, writer) if settings.strategy_enabled else {}
    )
    return StoreConsumer(engine, writer, target.shown, readers)


def _strategy_readers(
    settings: Settings, redis: RedisClient, metrics: Metrics, writer: RowWriter
) -> dict[str, tuple[Engine, GroupRef]]:
    """The store's own group on STRATEGY_STREAM (each signal's pending row, as it is queued)
    and on its dead-letter stream (the row of a signal dead-lettered later, failed):
    ``store.strategy_intake``."""
    from signalsmith.store.strategy_intake import (
        FailedTaskHandler,
        IntakeLimits,
        PendingTaskHandler,
    )
    from signalsmith.store.writer import SqlCommitter

    limits = IntakeLimits(
        settings.strategy_stream, settings.max_message_bytes, settings.strategy_max_bars
    )
    (signals, signals_dlq), (dead, dead_dlq) = settings.strategy_store_dead_letter_streams
    signals_ref = GroupRef(signals, settings.strategy_store_group, settings.consumer)
    dead_ref = GroupRef(dead, settings.strategy_store_group, settings.consumer)
    pending = _reader(
        settings,
        redis,
        signals_ref,
        dlq=signals_dlq,
        handler=PendingTaskHandler(limits),
        committer=SqlCommitter(writer.write_pending, redis, signals_ref),
        metrics=metrics.pipeline(STORE_PENDING),
    )
    failed = _reader(
        settings,
        redis,
        dead_ref,
        dlq=dead_dlq,
        handler=FailedTaskHandler(limits),
        committer=SqlCommitter(writer.write_failed, redis, dead_ref),
        metrics=metrics.pipeline(STORE_FAILED),
    )
    return {STORE_PENDING: (pending, signals_ref), STORE_FAILED: (failed, dead_ref)}


def _reader(
    settings: Settings,
    redis: RedisClient,
    ref: GroupRef,
    *,
    dlq: str,
    handler: Handler,
    committer: Committer,
    metrics: PipelineMetrics,
) -> Engine:
    """One of the store's strategy readers, in batches of STORE_BATCH. Its group starts at
    the next entry: a signal queued before the store first ran may have been decided long ago
    (its decision trimmed from the log), and its row would stay pending."""
    source = StreamSource(
        redis, ref, block_ms=settings.block_ms, claim_idle_ms=settings.claim_idle_ms, start="$"
    )
    config = replace(
        _engine_config(settings, ref.stream, dlq), read_count=settings.store_batch, log_stream=""
    )
    return Engine(
        config,
        source=source,
        committer=committer,
        handler=handler,
        metrics=metrics,
    )


def _source(settings: Settings, redis: RedisClient, ref: GroupRef) -> StreamSource:
    return StreamSource(
        redis, ref, block_ms=settings.block_ms, claim_idle_ms=settings.claim_idle_ms
    )


def _engine_config(settings: Settings, stream: str, dlq_stream: str) -> EngineConfig:
    return EngineConfig(
        stream=stream,
        dlq_stream=dlq_stream,
        dlq_maxlen=settings.dlq_maxlen,
        read_count=settings.read_count,
        max_in_flight=settings.max_in_flight,
        max_deliveries=settings.max_deliveries,
        drain_timeout_s=settings.drain_timeout,
        block_s=settings.block_ms / 1000,
        log_stream=settings.decision_stream,
    )


def _output_policy(settings: Settings) -> OutputPolicy:
    return OutputPolicy(
        signal_stream=settings.signal_stream,
        legacy_stream=settings.legacy_signal_stream,
        output_format=settings.output_format,
        publish_all=settings.publish == "all",
        hash_prefix=settings.decision_hash_prefix,
        arena_id=settings.arena_id,
        signal_maxlen=settings.signal_maxlen,
        decision_stream=settings.decision_stream,
        decision_maxlen=settings.decision_maxlen,
    )


@dataclass(frozen=True, slots=True)
class AnalyzerStack:
    """The analyzers the settings ask for, and the LLM chain (if any) behind them."""

    analyzers: tuple[Analyzer, ...]
    chain: LLMChain | None
    pool: HttpPool | None

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


def build_analyzers(
    settings: Settings, metrics: Metrics, redis: RedisClient | None
) -> AnalyzerStack:
    """The offline lexicon alone, or tiered with the LLM chain when providers are configured."""
    offline = OfflineAnalyzer()
    providers = resolve_providers(settings)
    policy = settings.llm_policy or ("always" if providers else "never")
    if policy != "never" and not providers:
        raise ConfigError("LLM_POLICY", f"{policy!r} needs a provider: set LLM_PROVIDERS or a key")
    if policy == "never" or not providers:
        return AnalyzerStack((offline,), None, None)
    tier: Literal["uncertain", "always"] = "always" if policy == "always" else "uncertain"
    return _tiered(settings, metrics, redis, providers, offline=offline, policy=tier)


def _tiered(
    settings: Settings,
    metrics: Metrics,
    redis: RedisClient | None,
    providers: Sequence[ProviderConfig],
    *,
    offline: OfflineAnalyzer,
    policy: Literal["uncertain", "always"],
) -> AnalyzerStack:
    from signalsmith.analyze.llm.analyzer import LLMAnalyzer, LLMOptions, TieredAnalyzer
    from signalsmith.analyze.llm.prompt import load_prompt
    from signalsmith.analyze.route import Thresholds

    chain, pool = build_chain(settings, metrics, providers)
    llm = LLMAnalyzer(
        chain,
        load_prompt(settings.prompt_file),
        is_known=load_symbol_book().is_known,
        reuse=_reuse(settings, redis),
        stories=_story_index(settings, redis),
        options=LLMOptions(
            settings.llm_failure,
            settings.llm_max_output_tokens,
            settings.llm_temperature,
            batch_options(settings),
        ),
        metrics=metrics,
    )
    thresholds = Thresholds(settings.llm_uncertain_below, settings.llm_contested_below)
    tiered = TieredAnalyzer(offline, llm, policy, thresholds)
    return AnalyzerStack((tiered,), chain, pool)


def batch_options(settings: Settings) -> BatchOptions:
    from signalsmith.analyze.llm.batching import BatchOptions

    return BatchOptions(
        size=settings.llm_batch_size,
        tokens=settings.llm_batch_tokens,
        wait_s=settings.llm_batch_wait_ms / 1000,
    )


def build_chain(
    settings: Settings, metrics: Metrics, providers: Sequence[ProviderConfig]
) -> tuple[LLMChain, HttpPool]:
    """The one provider chain of a process (one limit, budget and breaker per provider) and
    the HTTP pool its clients share."""
    from signalsmith.analyze.llm.chain import LLMChain
    from signalsmith.analyze.llm.limits import SystemClock
    from signalsmith.analyze.llm.openai_compat import shared_pool

    for config in providers:
        _say_binding_limit(config, settings)
    clock = SystemClock()
    pool = shared_pool()
    chain = LLMChain(
        [_slot(config, settings, clock, pool) for config in providers],
        clock=clock,
        metrics=metrics,
        max_wait_s=settings.llm_max_wait_s,
        attempts=settings.llm_attempts,
        max_tokens=settings.llm_max_output_tokens,
        temperature=settings.llm_temperature,
    )
    return chain, pool


def _say_binding_limit(config: ProviderConfig, settings: Settings) -> None:
    """One line when a provider's own in-flight limit is below MAX_IN_FLIGHT: it binds."""
    if config.max_in_flight >= settings.max_in_flight:
        return
    upper = config.name.upper()
    waiting = "batched" if settings.llm_batch_size > 1 else "wait"
    log.info(
        "llm_in_flight_limit",
        message=(
            f"{upper}_MAX_IN_FLIGHT={config.max_in_flight} binds below "
            f"MAX_IN_FLIGHT={settings.max_in_flight}: {config.name} gets at most "
            f"{config.max_in_flight} at once, the other questions {waiting}"
        ),
    )


def market_writer(
    settings: Settings, metrics: Metrics, redis: RedisClient | None, stack_given: AnalyzerStack
) -> tuple[InsightWriter | None, AnalyzerStack]:
    """The market pipeline's model, on the posts pipeline's chain when there is one (one chain
    per process), else on a chain of its own; none without providers or with
    LLM_POLICY=never. Returns the stack that now holds the chain, to close."""
    from signalsmith.market.llm_insight import InsightWriter
    from signalsmith.market.prompt import load_market_prompt

    template = load_market_prompt(settings.market_prompt_file)  # a bad file stops start-up
    stack = _with_chain(settings, metrics, stack_given)
    if stack is None or stack.chain is None:
        return None, stack_given
    writer = InsightWriter(
        stack.chain,
        template,
        max_tokens=settings.llm_max_output_tokens,
        temperature=settings.llm_temperature,
        reuse=_reuse(settings, redis),
        metrics=metrics,
    )
    return writer, stack


def strategy_rater(
    settings: Settings, metrics: Metrics, redis: RedisClient | None, stack_given: AnalyzerStack
) -> tuple[StrategyRater | None, AnalyzerStack]:
    """The strategy pipeline's model, on the process's one chain (made here when no other
    pipeline made it); none without providers or with LLM_POLICY=never."""
    from signalsmith.strategy.llm_rating import StrategyRater
    from signalsmith.strategy.rating_prompt import load_strategy_prompt

    template = load_strategy_prompt(settings.strategy_prompt_file)  # a bad file stops start-up
    stack = _with_chain(settings, metrics, stack_given)
    if stack is None or stack.chain is None:
        return None, stack_given
    from signalsmith.analyze.llm.batching import Batcher

    rater = StrategyRater(
        stack.chain,
        template,
        max_tokens=settings.llm_max_output_tokens,
        temperature=settings.llm_temperature,
        reuse=_reuse(settings, redis),
        metrics=metrics,
        batcher=Batcher(stack.chain, batch_options(settings)),
    )
    return rater, stack


def _with_chain(settings: Settings, metrics: Metrics, stack: AnalyzerStack) -> AnalyzerStack | None:
    """``stack`` holding the process's one chain (made here when no pipeline made it yet), or
    None when no model is asked (no providers, or LLM_POLICY=never)."""
    providers = resolve_providers(settings)
    if settings.llm_policy == "never" or not providers:
        return None
    if stack.chain is not None:
        return stack
    chain, pool = build_chain(settings, metrics, providers)
    return AnalyzerStack(stack.analyzers, chain, pool)


def _reuse(settings: Settings, redis: RedisClient | None) -> Reuse:
    """Answers reused in this process, and through Redis (LLM_CACHE) when there is one."""
    from signalsmith.analyze.llm.cache import ReplyCache
    from signalsmith.analyze.llm.reuse import Reuse

    cache = None
    if redis is not None and settings.llm_cache != "off":
        cache = ReplyCache(
            redis,
            prefix=settings.llm_cache_prefix,
            ttl_seconds=int(settings.llm_cache_ttl_days * _SECONDS_PER_DAY),
            mode=settings.llm_cache,
        )
    return Reuse(cache, settings.llm_cache)


def _story_index(settings: Settings, redis: RedisClient | None) -> StoryIndex | None:
    """The shared story index in Redis, or this process's own without one (DEDUP_ENABLED)."""
    from signalsmith.dedup import MemoryStoryIndex, RedisStoryIndex

    if not settings.dedup_enabled:
        return None
    if redis is None:
        return MemoryStoryIndex(min_similarity=settings.dedup_similarity)
    return RedisStoryIndex(
        redis,
        prefix=settings.dedup_prefix,
        ttl_s=settings.dedup_ttl_s,
        min_similarity=settings.dedup_similarity,
    )


def _slot(
    config: ProviderConfig,
    settings: Settings,
    clock: SystemClock,
    pool: HttpPool,
) -> ProviderSlot:
    from signalsmith.analyze.llm.chain import ProviderSlot
    from signalsmith.analyze.llm.limits import CircuitBreaker, DailyBudget, RateLimiter
    from signalsmith.analyze.llm.openai_compat import OpenAICompatClient

    return ProviderSlot(
        client=OpenAICompatClient(config, pool),
        limiter=RateLimiter(config.rpm, config.tpm, clock),
        budget=DailyBudget(config.daily_tokens, clock),
        breaker=CircuitBreaker(
            settings.llm_breaker_threshold, settings.llm_breaker_cooldown_s, clock
        ),
        gate=asyncio.Semaphore(config.max_in_flight),
        rejected_cooldown=settings.llm_breaker_cooldown_s,
    )
