"""``signalsmith insight``: one request made from the command line, and its insight as lines a
person reads (the text, the trend read, every indicator and what is missing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text

from signalsmith.market.candle_files import read_candle_file
from signalsmith.market.candles import format_granularity, parse_granularity
from signalsmith.market.indicators import format_number
from signalsmith.market.insight import Candles, Insight
from signalsmith.market.requests import MarketRequest, derived_id, request_from_values
from signalsmith.settings import Settings

_COLOURS = {"BUY": "bold green", "SELL": "bold red", "HOLD": "yellow"}


async def one_insight(
    settings: Settings,
    product: str,
    candles: Path | None,
    granularity: str | None,
    lookback: int | None,
) -> Insight:
    """The insight on ``product`` from ``candles`` (a CSV or Parquet file, whatever its name),
    else from the configured sources that need no Redis (MARKET_CANDLES, the exchange); written
    by the configured model, if any, as the pipeline would."""
    from signalsmith.lifecycle import (
        AnalyzerStack,
        build_candle_finder,
        market_config,
        market_writer,
    )
    from signalsmith.observe.metrics import Metrics
    from signalsmith.pipelines.market import MarketHandler

    values: dict[str, object] = {"product_id": product, "correlation_id": derived_id("cli", "")}
    if granularity is not None:
        values["granularity"] = granularity
    if lookback is not None:
        values["lookback"] = lookback
    request = request_from_values(values)
    model, stack = market_writer(settings, Metrics(), None, AnalyzerStack((), None, None))
    finder = build_candle_finder(settings, None)
    try:
        handler = MarketHandler(market_config(settings), finder, model)
        given = None if candles is None else await _from_file(candles, request, settings)
        return await handler.insight(request, candles=given)
    finally:
        await finder.aclose()
        await stack.aclose()


async def _from_file(path: Path, request: MarketRequest, settings: Settings) -> Candles:
    read = await asyncio.to_thread(read_candle_file, path)
    seconds = parse_granularity(request.granularity or settings.market_granularity)
    lookback = request.lookback or settings.market_lookback
    return Candles(read.rows[-lookback:], "file", seconds)


def insight_lines(insight: Insight) -> list[Text | str]:
    """The insight, then why: the read, the candles, the indicators."""
    read, series = insight.read, insight.series
    head = Text()
    head.append(f"{read.verdict.value:<4} ", style=_COLOURS[read.verdict.value])
    head.append(f"{insight.request.product_id}  ", style="bold")
    head.append(f"conf {read.confidence:.2f}  {read.direction}, strength {read.strength:.2f}")
    lines: list[Text | str] = [head, insight.text, ""]
    lines += [f"  - {reason}" for reason in read.reasons]
    lines.append(
        f"candles: {len(series)} x {format_granularity(series.granularity_s)} from {insight.source}"
    )
    lines += [f"  note: {note}" for note in series.notes]
    lines += [
        f"  {name:<18} {format_number(value)}"
        for name, value in insight.indicators.values().items()
    ]
    lines += [f"  {name:<18} missing: {why}" for name, why in insight.indicators.missing.items()]
    return lines
