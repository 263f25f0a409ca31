"""The command line: run, replay, analyze, eval. ``python -m signalsmith`` is the same."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from redis.exceptions import RedisError
from rich.console import Console

from signalsmith import __version__, eventloop
from signalsmith.errors import ConfigError, TransientError
from signalsmith.observe.logging import SecretScrubber, configure_logging
from signalsmith.settings import Settings, load_settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn market chatter into validated trading signals over Redis Streams.",
)
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (the environment wins).")
]


def _fail(exc: ConfigError) -> typer.Exit:
    typer.echo(f"signalsmith: configuration error: {exc}", err=True)
    return typer.Exit(2)


def _setup(config: Path | None, **overrides: object) -> tuple[Settings, SecretScrubber]:
    from signalsmith.lifecycle import secrets_of

    try:
        settings = load_settings(config, **overrides)
    except ConfigError as exc:
        raise _fail(exc) from None
    scrubber = configure_logging(settings.log_level, settings.log_format, secrets_of(settings))
    return settings, scrubber


def _version(value: bool) -> None:
    if value:
        typer.echo(f"signalsmith {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """signalsmith: posts in, BUY / SELL / HOLD per ticker out."""


@app.command()
def run(
    demo: Annotated[
        bool, typer.Option(help="Feed the bundled sample posts and print signals.")
    ] = False,
    until_idle: Annotated[
        float | None,
        typer.Option(
            help="Exit 0 once nothing new arrived for this many seconds and nothing is pending."
        ),
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option(help="Exit after reading this many entries.")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=256, help="Worker processes in the consumer group.")
    ] = 1,
    only: Annotated[
        str | None,
        typer.Option(
            help="Run only these, comma-separated: posts, market, store, notify (default: all)."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run every enabled pipeline, the SQL store and the HTTP API (/api, /health, /metrics)."""
    from signalsmith.demo import DemoStreams, demo_candles, demo_sidecar
    from signalsmith.service import RunOptions, run_service

    settings, scrubber = _setup(config)
    if demo and settings.market_candles is None:  # requests for the demo's products work offline
        settings = settings.model_copy(update={"market_candles": demo_candles()})
    chosen = frozenset(name.strip() for name in (only or "").split(",") if name.strip())
    if workers > 1:
        from signalsmith.supervise import run_workers

        forwarded = [
            *(["--until-idle", str(until_idle)] if until_idle is not None else []),
            *(["--max-messages", str(max_messages)] if max_messages is not None else []),
            *(["--config", str(config)] if config is not None else []),
            *(["--only", only] if only else []),
        ]
        raise typer.Exit(run_workers(settings, workers, forwarded, demo))
    console = Console(highlight=False, soft_wrap=True)
    market = settings.market_enabled and (not chosen or "market" in chosen)
    strategy = settings.strategy_enabled and (not chosen or "strategy" in chosen)
    streams = DemoStreams(
        settings.stream,
        settings.signal_stream,
        settings.market_stream if market else "",
        settings.insight_stream,
        settings.strategy_stream if strategy else "",
        settings.enhanced_stream,
    )
    sidecars = (demo_sidecar(streams, console),) if demo else ()
    options = RunOptions(until_idle=until_idle, max_messages=max_messages, only=chosen)
    try:
        every = eventloop.run(run_service(settings, scrubber, options, sidecars, console.print))
    except ConfigError as exc:
        raise _fail(exc) from None
    if (stats := every.get("posts")) is not None:
        console.print(
            f"done: read {stats.read}, acknowledged {stats.acknowledged}, "
            f"published {stats.published}, dead-lettered {stats.dead_lettered}, "
            f"retried {stats.retried}",
            style="dim",
        )
    if (stored := every.get("store")) is not None:
        console.print(
            f"stored: read {stored.read}, acknowledged {stored.acknowledged}, "
            f"dead-lettered {stored.dead_lettered}, retried {stored.retried}",
            style="dim",
        )


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL or CSV posts.")],
    stream: Annotated[str | None, typer.Option(help="Input stream (default: STREAM).")] = None,
    config: ConfigOption = None,
) -> None:
    """Append the posts in FILE to the input stream (XADD), as a producer would."""
    from signalsmith.replay import replay_file

    settings, _ = _setup(config)
    try:
        count = eventloop.run(replay_file(settings, file, stream or settings.stream))
    except ConfigError as exc:
        raise _fail(exc) from None
    typer.echo(f"replayed {count} posts into {stream or settings.stream}")


@app.command()
def analyze(
    text: Annotated[
        str | None, typer.Argument(help="Text to analyze; omit to read JSONL on stdin.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """One text, or JSONL {"id","text",...} on stdin -> one JSON line per input."""
    from signalsmith.oneshot import analyze_lines, analyze_text

    settings, _ = _setup(config)
    try:
        if text is not None:
            result = eventloop.run(analyze_text(settings, text))
            typer.echo(json.dumps(result, ensure_ascii=False))
            return
        failures = eventloop.run(analyze_lines(settings, sys.stdin, sys.stdout))
    except ConfigError as exc:
        raise _fail(exc) from None
    except TransientError as exc:
        typer.echo(f"signalsmith: {exc}", err=True)
        raise typer.Exit(1) from None
    if failures:
        raise typer.Exit(1)


@app.command()
def insight(
    product: Annotated[str, typer.Argument(help="Product id, e.g. BTC-USD or AAPL.")],
    candles: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="CSV or Parquet candles (default: MARKET_* sources)."),
    ] = None,
    granularity: Annotated[
        str | None, typer.Option(help="Candle size: 1m 5m 15m 1h 6h 1d (MARKET_GRANULARITY).")
    ] = None,
    lookback: Annotated[
        int | None, typer.Option(min=2, max=1_000, help="Candles to read (MARKET_LOOKBACK).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the envelope as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """A trend insight on one product: its indicators, the trend read and the insight text."""
    from signalsmith.errors import PoisonInput
    from signalsmith.market.show import insight_lines, one_insight

    settings, _ = _setup(config)
    try:
        made = eventloop.run(one_insight(settings, product, candles, granularity, lookback))
    except ConfigError as exc:
        raise _fail(exc) from None
    except (PoisonInput, TransientError) as exc:
        typer.echo(f"signalsmith: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(made.envelope, ensure_ascii=False))
        return
    console = Console(highlight=False, soft_wrap=True)
    for line in insight_lines(made):
        console.print(line)


@app.command("eval")
def eval_(
    file: Annotated[
        str,
        typer.Argument(help="Labeled JSONL, or dev / test / all for the bundled sets."),
    ],
    errors: Annotated[
        int,
        typer.Option(min=0, help="Include up to N misclassified examples (and N rater signals)."),
    ] = 0,
    concurrency: Annotated[
        int, typer.Option(min=1, max=1024, help="Texts analyzed at once (LLM calls in flight).")
    ] = 16,
    output: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also write the metrics to this file.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Labeled JSONL {"text","label": buy|sell|hold,...} -> accuracy, F1, confusion, cost."""
    from signalsmith.errors import PoisonInput
    from signalsmith.evaluate import EvalOptions, evaluate, load_items

    settings, _ = _setup(config)
    try:
        items = load_items(file)
        options = EvalOptions(concurrency=concurrency, show_errors=errors)
        metrics = eventloop.run(evaluate(settings, items, options))
    except PoisonInput as exc:
        typer.echo(f"signalsmith: eval: {exc.detail or exc}", err=True)
        raise typer.Exit(2) from None
    except ConfigError as exc:
        raise _fail(exc) from None
    text = json.dumps(metrics, ensure_ascii=False, indent=2)
    typer.echo(text)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")


@app.command()
def check(
    consumer: Annotated[
        str | None, typer.Option(help="This consumer only (default: any in the group).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Exit 0 when a live worker of this stream and group is healthy (for supervisors)."""
    from signalsmith.lifecycle import open_redis
    from signalsmith.observe.heartbeat import heartbeat_key, live_workers

    settings, _ = _setup(config)
    pattern = heartbeat_key(
        settings.heartbeat_prefix, settings.stream, settings.group, consumer or "*"
    )

    async def go() -> list[dict[str, object]]:
        async with open_redis(settings) as handle:
            return await live_workers(handle.client, pattern)

    try:
        workers = eventloop.run(go())
    except RedisError as exc:
        typer.echo(f"unhealthy: Redis unreachable ({type(exc).__name__})", err=True)
        raise typer.Exit(1) from None
    healthy = [w for w in workers if w.get("healthy")]
    for worker in workers:
        typer.echo(json.dumps(worker))
    if not healthy:
        typer.echo(
            f"unhealthy: no live, healthy worker for {settings.stream}/{settings.group}", err=True
        )
        raise typer.Exit(1)


dlq_app = typer.Typer(no_args_is_help=True, help="Inspect and re-drive dead letters.")
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 100,
    config: ConfigOption = None,
) -> None:
    """Print dead letters as JSON lines: reason, detail, time, original fields."""
    from signalsmith.deadletters import list_dead_letters
    from signalsmith.lifecycle import open_redis

    settings, _ = _setup(config)

    async def go() -> list[dict[str, object]]:
        async with open_redis(settings) as handle:
            letters = await list_dead_letters(handle.client, settings.dead_letter_stream, limit)
            return [letter.as_json() for letter in letters]

    for line in eventloop.run(go()):
        typer.echo(json.dumps(line, ensure_ascii=False))


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids (default: all).")] = None,
    reason: Annotated[str | None, typer.Option(help="Only dead letters with this reason.")] = None,
    config: ConfigOption = None,
) -> None:
    """Put dead letters back on the input stream (new ids) and remove them from the DLQ."""
    from signalsmith.deadletters import replay_dead_letters
    from signalsmith.lifecycle import open_redis

    settings, _ = _setup(config)

    async def go() -> int:
        async with open_redis(settings) as handle:
            return await replay_dead_letters(
                handle.client,
                settings.dead_letter_stream,
                settings.stream,
                ids=ids or (),
                reason=reason,
            )

    typer.echo(f"replayed {eventloop.run(go())} dead letters into {settings.stream}")


db_app = typer.Typer(no_args_is_help=True, help="The SQL store: migrations and backfill.")
app.add_typer(db_app, name="db")


def _store_failed(exc: Exception, scrubber: SecretScrubber) -> typer.Exit:
    """The database or Redis cannot be reached: one line, exit status 1."""
    if isinstance(exc, ConfigError):
        return _fail(exc)
    typer.echo(f"signalsmith: {scrubber.scrub(str(exc))}", err=True)
    return typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Bring the SQL store (DATABASE_URL, or a SQLite file in STATE_DIR) to the newest schema."""
    from signalsmith.store.commands import upgrade_store

    settings, scrubber = _setup(config)
    try:
        target, revision = eventloop.run(upgrade_store(settings))
    except (ConfigError, TransientError) as exc:
        raise _store_failed(exc, scrubber) from None
    typer.echo(f"database {target.shown} is up to date (revision {revision})")


@db_app.command("backfill")
def db_backfill(
    stream: Annotated[
        str | None, typer.Option(help="Decision stream to read (default: DECISION_STREAM).")
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(min=1, max=10_000, help="Entries per read and transaction (STORE_BATCH)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Store every decision already on the decision stream; repeating it stores nothing twice."""
    from signalsmith.store.commands import backfill_store

    settings, scrubber = _setup(config)
    try:
        counts = eventloop.run(backfill_store(settings, stream, batch))
    except (ConfigError, TransientError, RedisError) as exc:
        raise _store_failed(exc, scrubber) from None
    typer.echo(
        f"backfilled: read {counts.read}, inserted {counts.inserted}, "
        f"already stored {counts.already_stored}, invalid {counts.invalid}"
    )


strategy_app = typer.Typer(no_args_is_help=True, help="The strategy pipeline's rated signals.")
app.add_typer(strategy_app, name="strategy")
STRATEGY_REDIS_TIMEOUT_S = 3.0  # then pending is shown as unknown


@strategy_app.command("stats")
def strategy_stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
    per_strategy: Annotated[
        bool, typer.Option("--per-strategy", help="Also count each strategy's signals.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Statistics of the rated strategy signals (SQL store) and of those pending (Redis)."""
    from signalsmith.store.database import database_target
    from signalsmith.strategy.stats import describe, stored_stats

    settings, scrubber = _setup(config)
    try:
        target = database_target(settings)
        pending = eventloop.run(_strategy_pending(settings))
        stats = eventloop.run(stored_stats(target, pending, per_strategy=per_strategy))
    except (ConfigError, TransientError) as exc:
        raise _store_failed(exc, scrubber) from None
    if as_json:
        typer.echo(json.dumps(stats.as_json(), ensure_ascii=False))
        return
    typer.echo(f"strategy signals in {target.shown}")
    for line in describe(stats):
        typer.echo(line)


async def _strategy_pending(settings: Settings) -> int | None:
    """The strategy group's pending signals; None when Redis does not answer in time."""
    from signalsmith.lifecycle import open_redis
    from signalsmith.strategy.stats import pending_signals

    stream, group = settings.strategy_stream, settings.strategy_group
    try:
        async with asyncio.timeout(STRATEGY_REDIS_TIMEOUT_S), open_redis(settings) as handle:
            return await pending_signals(handle.client, stream, group)
    except (TransientError, RedisError, OSError, TimeoutError):
        return None


@app.command("fake-llm")
def fake_llm(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8391,
    latency_ms: Annotated[float, typer.Option(help="Added to every answer.")] = 0.0,
    rate_429: Annotated[float, typer.Option(help="Share of calls answered 429.")] = 0.0,
    rate_5xx: Annotated[float, typer.Option(help="Share of calls answered 5xx.")] = 0.0,
    rate_timeout: Annotated[float, typer.Option(help="Share of calls that hang.")] = 0.0,
    rate_malformed: Annotated[float, typer.Option(help="Share of broken-JSON replies.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible faults.")] = None,
    rpm: Annotated[
        int | None, typer.Option(min=1, help="Requests per minute per API key; past it, 429.")
    ] = None,
    tpm: Annotated[
        int | None, typer.Option(min=1, help="Tokens per minute per API key; past it, 429.")
    ] = None,
    max_output_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="Most max_tokens a call may ask for; past it, 400."),
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Labeled JSONL (text, label, tickers): answer known texts with their labels.",
        ),
    ] = None,
) -> None:
    """A local OpenAI-compatible server that answers like an LLM, with injectable faults.

    Point a provider at it, e.g. OPENAI_BASE_URL=http://127.0.0.1:8391/v1 OPENAI_API_KEY=x.
    With --answers it is an oracle for the texts the file labels, and the lexicon for the rest.
    With --rpm/--tpm each API key gets a real provider's quota over a sliding minute, and with
    --max-output-tokens a real model's limit on max_tokens.
    """
    from signalsmith.fakellm import FakeConfig, check_config, serve
    from signalsmith.fakeoracle import Answers

    config = FakeConfig(
        latency_ms=latency_ms,
        rate_429=rate_429,
        rate_5xx=rate_5xx,
        rate_timeout=rate_timeout,
        rate_malformed=rate_malformed,
        seed=seed,
        rpm=rpm,
        tpm=tpm,
        max_output_tokens=max_output_tokens,
    )
    try:
        check_config(config)
    except ValueError as exc:
        typer.echo(f"signalsmith: fake-llm: {exc}", err=True)
        raise typer.Exit(2) from None
    labeled = None
    if answers is not None:
        try:
            labeled = Answers.load(answers)
        except ValueError as exc:
            typer.echo(f"signalsmith: fake-llm: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"answering {len(labeled)} labeled texts from {answers}")
    typer.echo(f"fake LLM on http://127.0.0.1:{port}/v1 (admin: /_fake/stats, /_fake/config)")
    serve(config, "127.0.0.1", port, labeled)


def main() -> None:
    """Console entry point: a configuration error found after start-up (Redis refusing the
    password, ...) ends every command the same way, one line and exit status 2."""
    try:
        app()
    except ConfigError as exc:
        raise SystemExit(_fail(exc).exit_code) from None
