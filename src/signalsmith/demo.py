"""The demo: feed the bundled posts into the input stream, and trend requests over the bundled
candles into the market stream, and print signals and insights as they appear."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, cast

from rich.console import Console
from rich.text import Text

from signalsmith.redisclient import RedisClient
from signalsmith.source.files import jsonl_fields

_COLOURS = {"BUY": "bold green", "SELL": "bold red", "HOLD": "yellow", "SPIKE": "bold magenta"}
_FEED_BATCH = 50
_CANDLE_FIELDS = ("time", "open", "high", "low", "close", "volume")


def demo_posts() -> Iterator[dict[str, str]]:
    """The bundled sample posts, as stream fields."""
    text = files("signalsmith").joinpath("data", "demo_posts.jsonl").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip():
            yield jsonl_fields(line)


async def feed(redis: RedisClient, stream: str) -> int:
    """XADD every demo post to ``stream``; returns how many."""
    posts = list(demo_posts())
    for start in range(0, len(posts), _FEED_BATCH):
        async with redis.pipeline(transaction=False) as pipe:
            for fields in posts[start : start + _FEED_BATCH]:
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            await pipe.execute()
    return len(posts)


def signal_line(fields: dict[bytes, bytes]) -> Text | None:
    """One printable line for a signal stream entry (envelope or legacy), or None."""
    if b"data" in fields:
        envelope = json.loads(fields[b"data"])
        decision = envelope["decision"]
        verdict = decision["synthesis"]["verdict"]
        ticker = decision["target"]["ticker"]
        confidence = decision["synthesis"]["confidence"]
        title = (decision.get("source") or {}).get("title", "") or _cues(decision)
        if decision.get("kind") == "spike":
            reasoning = decision["synthesis"]["reasoning"].removeprefix("mention spike: ")
            title = f"{verdict}: {reasoning}"
            verdict = "SPIKE"
    elif b"decision" in fields:
        verdict = fields[b"decision"].decode().upper()
        ticker = fields[b"ticker"].decode()
        confidence = None
        title = fields.get(b"post_title", b"").decode()
    else:
        return None
    line = Text()
    line.append(f"{verdict:<4} ", style=_COLOURS.get(verdict, ""))
    line.append(f"{ticker:<6} ", style="bold")
    if confidence is not None:
        line.append(f"conf {confidence:.2f}  ")
    line.append(title[:90], style="dim")
    return line


def _cues(decision: dict[str, Any]) -> str:
    signals = decision.get("agent_signals") or [{}]
    return "; ".join(signals[0].get("key_factors", [])[:3])


Sidecar = Callable[[RedisClient, asyncio.Event, Callable[[str], None]], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class DemoStreams:
    """Where the demo feeds and what it prints; ``market`` empty: no market requests."""

    posts: str
    signals: str
    market: str = ""
    insights: str = ""
    strategy: str = ""  # empty: no strategy signals
    enhanced: str = ""


DEMO_PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD")


def demo_candles() -> Path:
    """The bundled candle files' directory (``<PRODUCT>.csv``), MARKET_CANDLES of the demo."""
    return Path(str(files("signalsmith").joinpath("data", "candles")))


def demo_requests() -> Iterator[dict[str, str]]:
    """Seed 001's request for each bundled product, its candles inline (no exchange needed)."""
    for product in DEMO_PRODUCTS:
        path = files("signalsmith").joinpath("data", "candles", f"{product}.csv")
        with path.open(encoding="utf-8") as handle:
            rows = [[row[name] for name in _CANDLE_FIELDS] for row in csv.DictReader(handle)]
        yield {
            "correlation_id": f"demo-{product.lower()}",
            "product_id": product,
            "prompt": "trend_analysis",
            "candles": json.dumps(rows),
        }


# A trading system's signals: a buy the context supports, a buy into an overbought market, a
# sell in a downtrend, and one that waited too long to be acted on (published "expired").
_DEMO_SIGNALS: Final = (
    (
        "AAPL",
        "buy",
        189.5,
        0,
        {
            "rsi": 58.2,
            "atr": 2.1,
            "sma_20": 186.4,
            "sma_50": 181.9,
            "volume_ratio": 1.6,
            "bb_upper": 193.0,
            "bb_lower": 179.8,
            "bb_middle": 186.4,
            "stochastic_k": 62.0,
            "stochastic_d": 58.5,
        },
    ),
    (
        "TSLA",
        "buy",
        412.0,
        0,
        {
            "rsi": 81.5,
            "atr": 14.2,
            "sma_20": 371.0,
            "sma_50": 344.6,
            "volume_ratio": 0.7,
            "bb_upper": 405.3,
            "bb_lower": 336.7,
            "bb_middle": 371.0,
            "stochastic_k": 94.1,
            "stochastic_d": 90.2,
        },
    ),
    (
        "NVDA",
        "sell",
        128.4,
        0,
        {
            "rsi": 38.9,
            "atr": 4.4,
            "sma_20": 134.2,
            "sma_50": 139.8,
            "volume_ratio": 1.8,
            "bb_upper": 143.1,
            "bb_lower": 125.3,
            "bb_middle": 134.2,
            "stochastic_k": 24.0,
            "stochastic_d": 29.7,
        },
    ),
    ("MSFT", "buy", 421.7, 900, {"rsi": 55.0, "sma_20": 418.2, "sma_50": 409.9}),
)


def demo_signals(now: datetime) -> Iterator[dict[str, str]]:
    """Seed 002's signals, stamped ``now`` (the last one 15 minutes before)."""
    for number, (symbol, side, price, age_s, indicators) in enumerate(_DEMO_SIGNALS, 1):
        signal = {
            "signal_id": f"demo-{symbol.lower()}-{number}",
            "symbol": symbol,
            "side": side,
            "price": price,
            "timestamp": (now - timedelta(seconds=age_s)).isoformat(),
            "strategy": "demo_sma_cross",
            "indicators": indicators,
        }
        yield {"data": json.dumps(signal)}


def strategy_line(fields: dict[bytes, bytes]) -> Text | None:
    """A rated strategy signal, as a printable line."""
    if b"data" not in fields:
        return None
    envelope = json.loads(fields[b"data"])
    decision, meta = envelope["decision"], envelope["meta"]["strategy"]
    signal = meta["signal"]
    verdict = decision["synthesis"]["verdict"]
    line = Text("strategy ", style="bold magenta")
    line.append(f"{signal['side']:<4} {signal['symbol']:<5} ")
    if meta["status"] == "expired":
        line.append("expired ", style="dim")
        line.append(decision["synthesis"]["reasoning"], style="dim")
        return line
    line.append(f"{meta['agreement']:<7} ", style=_COLOURS.get(verdict, ""))
    line.append(f"rating {meta['rating']}/10  conf {meta['confidence']:.2f}  ")
    line.append(decision["synthesis"]["reasoning"][:160])
    return line


def insight_line(fields: dict[bytes, bytes]) -> Text | None:
    """The insight an insight stream entry carries, as a printable line."""
    if b"data" not in fields:
        return None
    envelope = json.loads(fields[b"data"])
    decision = envelope["decision"]
    verdict = decision["synthesis"]["verdict"]
    line = Text("insight ", style="bold cyan")
    line.append(f"{verdict:<4} ", style=_COLOURS.get(verdict, ""))
    line.append(f"conf {decision['synthesis']['confidence']:.2f}  ")
    line.append(decision["synthesis"]["reasoning"])
    return line


def demo_sidecar(streams: DemoStreams, console: Console) -> Sidecar:
    """Feed the demo posts, requests and signals, then print every new signal, insight and
    rated signal until stopped (and once more after)."""

    async def run(redis: RedisClient, stop: asyncio.Event, announce: Callable[[str], None]) -> None:
        printers = _printers(streams)
        last = {name: await _newest(redis, name) for name in printers}
        await _feed_all(redis, streams, announce)
        while True:
            stopping = stop.is_set()
            reply = cast(
                list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None,
                await redis.xread(last, count=100, block=None if stopping else 200),  # type: ignore[arg-type]
            )
            for stream, rows in reply or []:
                name = stream.decode()
                for entry_id, fields in rows:
                    last[name] = entry_id
                    line = printers[name](fields)
                    if line is not None:
                        console.print(line)
            if stopping and not reply:
                return

    return run


Printer = Callable[[dict[bytes, bytes]], Text | None]


def _printers(streams: DemoStreams) -> dict[str, Printer]:
    printers: dict[str, Printer] = {streams.signals: signal_line}
    if streams.market:
        printers[streams.insights] = insight_line
    if streams.strategy:
        printers[streams.enhanced] = strategy_line
    return printers


async def _feed_all(
    redis: RedisClient, streams: DemoStreams, announce: Callable[[str], None]
) -> None:
    announce(
        f"demo: feeding {await feed(redis, streams.posts)} sample posts into {streams.posts!r}"
    )
    if streams.market:
        for request in demo_requests():
            await redis.xadd(streams.market, request)  # type: ignore[arg-type]
        announce(f"demo: {len(DEMO_PRODUCTS)} trend requests into {streams.market!r}")
    if streams.strategy:
        for signal in demo_signals(datetime.now(UTC)):
            await redis.xadd(streams.strategy, signal)  # type: ignore[arg-type]
        announce(f"demo: {len(_DEMO_SIGNALS)} strategy signals into {streams.strategy!r}")


async def _newest(redis: RedisClient, stream: str) -> bytes | str:
    newest = cast(list[tuple[bytes, object]], await redis.xrevrange(stream, count=1))
    return newest[0][0] if newest else "0-0"
