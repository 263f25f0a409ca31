"""The demo: feed the bundled posts into the input stream and print signals as they appear."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from importlib.resources import files
from typing import Any, cast

from rich.console import Console
from rich.text import Text

from signalsmith.redisclient import RedisClient
from signalsmith.source.files import jsonl_fields

_COLOURS = {"BUY": "bold green", "SELL": "bold red", "HOLD": "yellow", "SPIKE": "bold magenta"}
_FEED_BATCH = 50


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


def demo_sidecar(stream: str, signal_stream: str, console: Console) -> Sidecar:
    """Feed the demo posts, then print every new signal until stopped (and once more after)."""

    async def run(redis: RedisClient, stop: asyncio.Event, announce: Callable[[str], None]) -> None:
        newest = cast(list[tuple[bytes, object]], await redis.xrevrange(signal_stream, count=1))
        last: bytes | str = newest[0][0] if newest else "0-0"
        announce(f"demo: feeding {await feed(redis, stream)} sample posts into {stream!r}")
        while True:
            stopping = stop.is_set()
            reply = cast(
                list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None,
                await redis.xread(
                    {signal_stream: last}, count=100, block=None if stopping else 200
                ),
            )
            for _stream, rows in reply or []:
                for entry_id, fields in rows:
                    last = entry_id
                    line = signal_line(fields)
                    if line is not None:
                        console.print(line)
            if stopping and not reply:
                return

    return run
