"""``signalsmith run``: every enabled pipeline and fan-out consumer in one process, with the HTTP
endpoints, signal handling and a clean drain.

The pipelines share one LLM chain (one limit, budget and breaker per provider) and one metrics
registry labelled by pipeline. A fan-out consumer (the SQL store) runs beside them on their
output and, when the run ends on idleness, outlives them until it has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from signalsmith.api import PipelineView, ServiceView, create_app
from signalsmith.engine.engine import Engine
from signalsmith.engine.stats import EngineStats
from signalsmith.errors import ConfigError
from signalsmith.http_server import HttpThread, bind_listener, listen_url
from signalsmith.lifecycle import (
    STORE_FAILED,
    STORE_PENDING,
    AnalyzerStack,
    RedisHandle,
    build_analyzers,
    build_candle_finder,
    build_market,
    build_posts,
    build_scheduler,
    build_store,
    build_strategy,
    group_ref,
    market_writer,
    open_redis,
    strategy_rater,
)
from signalsmith.observe.heartbeat import beat_until, heartbeat_key
from signalsmith.observe.logging import SecretScrubber
from signalsmith.observe.metrics import Metrics
from signalsmith.query.access import is_loopback
from signalsmith.redisclient import LoopClient, RedisClient
from signalsmith.settings import Settings
from signalsmith.source.redis_streams import GroupRef

if TYPE_CHECKING:  # SQLAlchemy loads only when the store runs or is queried
    from signalsmith.intake import StreamIntake
    from signalsmith.live.hub import LiveHub
    from signalsmith.market.finder import SourceFinder
    from signalsmith.market.insight import Candles
    from signalsmith.market.scheduler import InsightScheduler
    from signalsmith.query.candle_routes import FindCandles
    from signalsmith.store.database import DatabaseTarget

log = structlog.get_logger("signalsmith")

# The pipelines, then the fan-out consumers they feed.
PIPELINES = ("posts", "market", "strategy", "store", "csv", "notify")
_GC_YOUNG_THRESHOLD = 50_000  # allocations between young-generation collections (default 700)
_CATCH_UP_S = 0.5  # a fan-out consumer's idleness once its pipelines have stopped


@dataclass(frozen=True, slots=True)
class RunOptions:
    until_idle: float | None = None
    max_messages: int | None = None
    http: bool = True
    only: frozenset[str] = frozenset()  # empty: every enabled pipeline


Sidecar = Callable[[RedisClient, asyncio.Event, Callable[[str], None]], Coroutine[Any, Any, None]]


def selected(settings: Settings, only: frozenset[str]) -> tuple[str, ...]:
    """The pipelines to run: those named (``--only``), else every enabled one."""
    unknown = sorted(only - set(PIPELINES))
    if unknown:
        raise ConfigError("--only", f"unknown {', '.join(unknown)}; choose from {PIPELINES}")
    store = settings.store_enabled and bool(settings.decision_stream)
    if "store" in only and not settings.decision_stream:
        raise ConfigError("DECISION_STREAM", "the store reads the decision stream: set it")
    market = ["market"] if settings.market_enabled else []
    strategy = ["strategy"] if settings.strategy_enabled else []
    csv = ["csv"] if settings.strategy_enabled and settings.csv_enabled else []
    notify = ["notify"] if _notify_urls(settings) else []
    if "notify" in only and not notify:
        raise ConfigError("NOTIFY_URLS", "notifications need at least one apprise URL: set it")
    wanted = only or {"posts", *market, *strategy, *(["store"] if store else []), *csv, *notify}
    return tuple(name for name in PIPELINES if name in wanted)


async def run_service(
    settings: Settings,
    scrubber: SecretScrubber,
    options: RunOptions,
    sidecars: tuple[Sidecar, ...] = (),
    announce: Callable[[str], None] = print,
) -> dict[str, EngineStats]:
    """Every selected pipeline + HTTP until stopped or idle; returns each one's final counts."""
    names = selected(settings, options.only)
    if options.http:
        check_api_access(settings)
    stop = asyncio.Event()
    with stop_on_signals(stop):  # before building: SIGTERM during start-up ends it cleanly
        async with open_redis(settings) as handle, contextlib.AsyncExitStack() as closing:
            listener = None
            if options.http:  # the dashboard's address comes first: it is what a newcomer opens
                listener = bind_listener(settings.http_host, settings.http_port)
                closing.callback(listener.close)
                announce(f"Dashboard: {listen_url(settings.http_host, listener)}/")
            metrics = Metrics()
            built = await _build(
                settings, names, handle, metrics, closing=closing, announce=announce
            )
            engines, refs, stack = built.engines, built.refs, built.stack
            view = _view(
                settings,
                handle,
                engines=engines,
                refs=refs,
                stack=stack,
                metrics=metrics,
                scrubber=scrubber,
            )
            if listener is not None:
                http = await start_http(settings, view, listener)
                closing.push_async_callback(http.stop)
                url = http.url
                announce(f"HTTP: {url}/health  {url}/metrics  {url}/readyz  {url}/livez")
            if handle.embedded:
                announce(f"embedded Redis ({handle.where}); connect with: {handle.cli_hint}")
            log.info("signalsmith started", pipelines=list(engines), redis=handle.where)
            helpers = [asyncio.create_task(car(handle.client, stop, announce)) for car in sidecars]
            if "posts" in engines:
                helpers.append(
                    asyncio.create_task(_heartbeat(settings, handle.client, stop, engines["posts"]))
                )
            if built.scheduler is not None:  # --until-idle: the current tick only, fired first
                helpers += await built.scheduler.start(stop, repeat=options.until_idle is None)
            settle_memory()
            stats = await _run_all(engines, stop, options)
            stop.set()
            await asyncio.gather(*helpers, return_exceptions=True)
            for name, counts in stats.items():
                log.info(
                    "stopped",
                    pipeline=name,
                    read=counts.read,
                    acknowledged=counts.acknowledged,
                    published=counts.published,
                    dead_lettered=counts.dead_lettered,
                    retried=counts.retried,
                )
            return stats


@dataclass(slots=True)
class _Built:
    engines: dict[str, Engine]
    refs: dict[str, GroupRef]
    stack: AnalyzerStack
    scheduler: InsightScheduler | None = None  # INSIGHT_SCHEDULE, beside the market pipeline


async def _build(
    settings: Settings,
    names: tuple[str, ...],
    handle: RedisHandle,
    metrics: Metrics,
    *,
    closing: contextlib.AsyncExitStack,
    announce: Callable[[str], None],
) -> _Built:
    """Every selected pipeline's and consumer's engine, with what to close when done."""
    built = _Built({}, {}, AnalyzerStack((), None, None))
    redis = handle.client
    if "posts" in names:
        built.stack = build_analyzers(settings, metrics, redis)
        closing.push_async_callback(built.stack.aclose)
        built.engines["posts"] = build_posts(settings, redis, metrics, built.stack.analyzers)
        built.refs["posts"] = group_ref(settings)
    if "market" in names:
        had_chain = built.stack.chain is not None
        model, built.stack = market_writer(settings, metrics, redis, built.stack)
        if built.stack.chain is not None and not had_chain:
            closing.push_async_callback(built.stack.aclose)
        candles = build_candle_finder(settings, redis)
        closing.push_async_callback(candles.aclose)
        built.engines["market"] = build_market(settings, redis, metrics, candles, model)
        built.scheduler = build_scheduler(settings, redis, metrics)
        built.refs["market"] = GroupRef(
            settings.market_stream, settings.market_group, settings.consumer
        )
    if "strategy" in names:
        had_chain = built.stack.chain is not None
        rater, built.stack = strategy_rater(settings, metrics, redis, built.stack)
        if built.stack.chain is not None and not had_chain:
            closing.push_async_callback(built.stack.aclose)
        built.engines["strategy"] = build_strategy(settings, redis, metrics, rater)
        built.refs["strategy"] = GroupRef(
            settings.strategy_stream, settings.strategy_group, settings.consumer
        )
    if "store" in names:
        store = await build_store(settings, redis, metrics)
        closing.push_async_callback(store.writer.aclose)
        built.engines["store"] = store.engine
        built.refs["store"] = GroupRef(
            settings.decision_stream, settings.store_group, settings.consumer
        )
        for name, (engine, ref) in store.readers.items():
            built.engines[name], built.refs[name] = engine, ref
        announce(f"SQL store: {store.where}")
    if "csv" in names:
        from signalsmith.strategy.csv_consumer import build_csv_export

        export = await build_csv_export(settings, redis, metrics)
        closing.callback(export.files.close)
        built.engines["csv"] = export.engine
        built.refs["csv"] = export.ref
        announce(f"CSV files: {export.files.directory}")
    if "notify" in names:
        await _add_notifiers(settings, redis, metrics, built, announce)
    return built


async def _add_notifiers(
    settings: Settings,
    redis: RedisClient,
    metrics: Metrics,
    built: _Built,
    announce: Callable[[str], None],
) -> None:
    """A consumer per notification channel (apprise loads only when one is configured)."""
    from signalsmith.notify.build import build_notifiers
    from signalsmith.notify.config import NotifyConfig

    notifiers = build_notifiers(NotifyConfig.from_settings(settings), redis, metrics)
    await notifiers.prepare()  # before any pipeline publishes (NOTIFY_START=new)
    built.engines.update(notifiers.engines)
    built.refs.update(notifiers.refs)
    for channel in notifiers.channels:
        announce(f"notifications: {channel.shown} ({channel.id})")


def is_fan_out(name: str) -> bool:
    """The consumers of the pipelines' output (the store, the CSV files, each notification
    channel) and the store's readers of the strategy signals queued and dead-lettered."""
    return name in ("store", STORE_PENDING, STORE_FAILED, "csv") or name.startswith("notify:")


async def _run_all(
    engines: Mapping[str, Engine], stop: asyncio.Event, options: RunOptions
) -> dict[str, EngineStats]:
    """The pipelines until stopped, idle or spent; the fan-out consumers beside them, and after
    them until they have caught up when the run ends on its own."""
    upstream_done = asyncio.Event()
    pipelines = {name: engine for name, engine in engines.items() if not is_fan_out(name)}
    consumers = {name: engine for name, engine in engines.items() if is_fan_out(name)}

    async def upstream() -> list[EngineStats]:
        try:
            return await _pipelines(pipelines, stop, options)
        finally:
            upstream_done.set()

    ends_itself = options.until_idle is not None or options.max_messages is not None
    first = asyncio.ensure_future(upstream())
    # The store's reader of STRATEGY_STREAM reads the pipelines' input, which a producer may
    # keep adding to: a run that ends on its own stops it with the pipelines.
    behind = {
        name: asyncio.ensure_future(
            engine.run(
                upstream_done if name == STORE_PENDING and ends_itself else stop,
                until_idle=(options.until_idle or _CATCH_UP_S) if ends_itself else None,
                upstream_done=upstream_done if pipelines else None,
            )
        )
        for name, engine in consumers.items()
    }
    await asyncio.gather(first, *behind.values())
    stats = dict(zip(pipelines, first.result(), strict=True))
    return stats | {name: task.result() for name, task in behind.items()}


async def _pipelines(
    pipelines: Mapping[str, Engine], stop: asyncio.Event, options: RunOptions
) -> list[EngineStats]:
    """Every pipeline until stopped or idle; with ``max_messages``, until the first has read
    that many, and the others then stop too (their streams may stay empty)."""
    if options.max_messages is None:
        return list(
            await asyncio.gather(
                *(e.run(stop, until_idle=options.until_idle) for e in pipelines.values())
            )
        )
    enough = asyncio.Event()

    async def run(engine: Engine) -> EngineStats:
        try:
            return await engine.run(
                enough, until_idle=options.until_idle, max_messages=options.max_messages
            )
        finally:
            enough.set()

    relay = asyncio.ensure_future(_relay(stop, enough))
    try:
        return list(await asyncio.gather(*(run(engine) for engine in pipelines.values())))
    finally:
        relay.cancel()


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def start_http(settings: Settings, view: ServiceView, listener: socket.socket) -> HttpThread:
    """Serve the API from its own thread and event loop, on ``listener`` (bound at start, so
    that a taken port or a wrong host stops start-up with one line); returns once it accepts
    connections."""
    http = HttpThread(create_app(view), listener, settings.http_host)
    await http.start()
    return http


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM/SIGINT: stop reading, finish what is in flight, acknowledge, exit. On the way out
    the signals get their default handling back (a closed uvloop loop would keep them)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def settle_memory() -> None:
    """Once everything long-lived is built (the lexicon's tables, the symbol book, clients):
    keep it out of the cyclic garbage collector's way, and collect the young generation less
    often. Nearly all of a post's garbage is freed by reference counting; with the defaults the
    collector ran every 700 allocations and its full passes walked every table built at start-up
    (at 100 ms per LLM call, one process moved 5-9% fewer posts, measured)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _view(
    settings: Settings,
    handle: RedisHandle,
    *,
    engines: Mapping[str, Engine],
    refs: Mapping[str, GroupRef],
    stack: AnalyzerStack,
    metrics: Metrics,
    scrubber: SecretScrubber,
) -> ServiceView:
    first = next(iter(engines))
    # The HTTP thread's short reads (statistics, operations, candles) share one client, made
    # there on first use; the live feed and the intakes keep their own.
    reads = LoopClient(handle.connect)
    return ServiceView(
        redis_where=handle.where,
        embedded=handle.embedded,
        ref=refs[first],
        signal_stream=settings.signal_stream,
        analyzers=tuple(analyzer.name for analyzer in stack.analyzers),
        llm=stack.chain,
        stats=engines[first].stats,
        metrics=metrics,
        scrubber=scrubber,
        pipelines={
            name: PipelineView(refs[name], engine.stats) for name, engine in engines.items()
        },
        database=_queried(settings, engines),
        api_token=settings.api_token,
        require_token=_token_required(settings),
        insight_intake=_insight_intake(settings, handle) if "market" in engines else None,
        strategy_intake=_strategy_intake(settings, handle) if "strategy" in engines else None,
        strategy_pending=_strategy_pending(settings, reads) if "strategy" in engines else None,
        live=_live(settings, handle),
        live_send_timeout_s=settings.live_send_timeout_s,
        http_redis=reads.get,
        dead_letter_streams=_dead_letter_streams(settings, engines),
        candles=_candles(settings, reads) if "market" in engines else None,
        candle_granularity=settings.market_granularity,
    )


def _dead_letter_streams(settings: Settings, engines: Mapping[str, Engine]) -> tuple[str, ...]:
    """The dead-letter streams of the pipelines that run here, for the operations view."""
    named = {
        "posts": (settings.dead_letter_stream,),
        "market": (settings.market_dead_letter_stream,),
        "strategy": (settings.strategy_dead_letter_stream,),
        "store": (
            settings.store_dead_letter_stream,
            *(dlq for _, dlq in settings.strategy_store_dead_letter_streams),
        ),
    }
    return tuple(dict.fromkeys(s for name in engines for s in named.get(name, ())))


def _candles(settings: Settings, client: LoopClient) -> FindCandles:
    """GET /api/candles: the market pipeline's candle sources, built on the HTTP thread's loop
    on first use, over its client."""
    finder: list[SourceFinder] = []

    async def find(product_id: str, granularity: str, lookback: int) -> Candles:
        if not finder:
            finder.append(build_candle_finder(settings, client.get()))
        return await finder[0].find(product_id, granularity, lookback)

    return find


def _live(settings: Settings, handle: RedisHandle) -> LiveHub | None:
    """GET /api/live: one reader of DECISION_STREAM for every client, on the HTTP thread's
    loop with a client of its own; none without a decision log."""
    if not settings.decision_stream:
        return None
    from signalsmith.live.hub import HubConfig, LiveHub

    config = HubConfig(settings.decision_stream, settings.live_buffer, settings.live_max_clients)
    return LiveHub(config, handle.connect)


def _insight_intake(settings: Settings, handle: RedisHandle) -> StreamIntake:
    """POST /api/insights: requests queued on MARKET_STREAM with a client of their own, on the
    HTTP thread's event loop."""
    from signalsmith.intake import IntakeConfig, StreamIntake
    from signalsmith.market.submission import market_submission

    config = IntakeConfig(
        stream=settings.market_stream,
        group=settings.market_group,
        dead_letter_stream=settings.market_dead_letter_stream,
        max_body_bytes=settings.max_message_bytes,
        key_prefix=settings.insight_request_prefix,
        ttl_s=settings.insight_request_ttl_s,
    )
    return StreamIntake(config, handle.connect, market_submission)


def _strategy_intake(settings: Settings, handle: RedisHandle) -> StreamIntake:
    """POST /api/strategy-signals: signals queued on STRATEGY_STREAM, like market requests."""
    from signalsmith.intake import IntakeConfig, StreamIntake
    from signalsmith.strategy.submission import strategy_submission

    config = IntakeConfig(
        stream=settings.strategy_stream,
        group=settings.strategy_group,
        dead_letter_stream=settings.strategy_dead_letter_stream,
        max_body_bytes=settings.max_message_bytes,
        key_prefix=settings.strategy_request_prefix,
        ttl_s=settings.strategy_request_ttl_s,
    )
    return StreamIntake(config, handle.connect, strategy_submission(settings.strategy_max_bars))


def _strategy_pending(
    settings: Settings, client: LoopClient
) -> Callable[[], Awaitable[int | None]]:
    """The statistics' pending count, from the strategy group, on the HTTP thread's loop over
    its client."""
    from signalsmith.strategy.stats import pending_signals

    async def pending() -> int | None:
        stream, group = settings.strategy_stream, settings.strategy_group
        return await pending_signals(client.get(), stream, group)

    return pending


def _queried(settings: Settings, engines: Mapping[str, Engine]) -> DatabaseTarget | None:
    """The database the query API reads: the store's, when it runs here or is configured."""
    if "store" in engines or settings.database_url is not None:
        from signalsmith.store.database import database_target

        return database_target(settings)
    return None


def _notify_urls(settings: Settings) -> bool:
    urls = settings.notify_urls
    return urls is not None and bool(urls.get_secret_value().strip())


def _token_set(settings: Settings) -> bool:
    return settings.api_token is not None and bool(settings.api_token.get_secret_value())


def _token_required(settings: Settings) -> bool:
    """A token that is set is asked for, on loopback too; beyond loopback one is always asked
    for (start-up refuses to run without it)."""
    return _token_set(settings) or not is_loopback(settings.http_host)


def check_api_access(settings: Settings) -> None:
    """An API reachable from other machines must ask for a token."""
    if not is_loopback(settings.http_host) and not _token_set(settings):
        raise ConfigError(
            "API_TOKEN", f"HTTP_HOST={settings.http_host} is not loopback: set a token for /api"
        )


async def _heartbeat(
    settings: Settings, redis: RedisClient, stop: asyncio.Event, posts: Engine
) -> None:
    key = heartbeat_key(
        settings.heartbeat_prefix, settings.stream, settings.group, settings.consumer
    )
    await beat_until(
        redis,
        stop,
        key=key,
        ttl_s=settings.heartbeat_ttl,
        stats=posts.stats,
        consumer=settings.consumer,
    )
