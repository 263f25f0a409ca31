"""The event loop every command runs on: uvloop where it is installed (everywhere but Windows),
else asyncio's own. With 64 LLM calls in flight a worker spends a good part of each call in
the loop's transports and scheduling, which uvloop does in C: about 5% less CPU per LLM call
on the realistic benchmark (1.74 against 1.83 ms, bench/bench_llm_cpu.py, measured)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not installed on this platform: asyncio's default loop
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the fastest loop available."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)
