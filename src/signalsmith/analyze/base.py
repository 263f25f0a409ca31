"""The one interface every analyzer implements: a post and its tickers in, a vote per ticker out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from signalsmith.domain import Analysis, Post


class Analyzer(Protocol):
    """Reads a post and votes on each ticker; raises ``TransientError`` to retry later."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    async def analyze(self, post: Post, tickers: Sequence[str]) -> Analysis: ...
