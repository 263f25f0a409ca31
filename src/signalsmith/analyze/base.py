"""The one interface every analyzer implements: a post and its tickers in, a vote per ticker out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from signalsmith.domain import Analysis, Post, Vote


class Analyzer(Protocol):
    """Reads a post and votes on each ticker; raises ``TransientError`` to retry later."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis: ...


@runtime_checkable
class ImmediateAnalyzer(Analyzer, Protocol):
    """An analyzer that never waits (no I/O): the worker may call it inline, without a task."""

    def analyze_now(self, post: Post, tickers: Sequence[str]) -> Mapping[str, Vote]: ...
